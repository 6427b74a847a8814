//! What validation reports: one [`Problem`] per wrong value, all of them in a [`ConfigError`].

use std::fmt;
use std::path::PathBuf;

/// One semantic problem in a config: where it is and what is expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `targets[1].base_url`.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The cause is part of the message, as everywhere (see `crate::errors`).
    #[error(
        "cannot read config file {}: {cause}; check the path given with --config (or INFOBIP_EXPORTER_CONFIG) and that the file is readable",
        path.display()
    )]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// Not YAML, or YAML of the wrong shape (unknown key, list instead of a mapping, ...).
    #[error("invalid configuration: {message}")]
    Syntax { message: String },
    /// Well-formed YAML whose values are wrong; all problems, in file order.
    #[error("invalid configuration: {}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConfigError {
    /// One line per problem, for `check-config` to print.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Syntax { message } => vec![message.clone()],
            ConfigError::Invalid(problems) => problems.iter().map(Problem::to_string).collect(),
        }
    }
}

/// Collects problems; each check returns `None` on failure so validation goes on.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }
}
