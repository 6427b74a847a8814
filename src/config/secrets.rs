//! API keys: where each one comes from, read only when the exporter needs it.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::infobip::key::ApiKey;

/// An API key is a few dozen bytes; the cap makes a wrong path fail fast.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Where a target's API key is read from. It is resolved only when needed, never stored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeySource {
    /// The name of an environment variable.
    Env(String),
    /// A file whose content, trimmed, is the key.
    File(PathBuf),
}

/// Why an API key could not be read. No variant carries the key or any part of it.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {var} is not set; export it with the Infobip API key")]
    EnvMissing { var: String },
    #[error("environment variable {var} is empty; set it to the Infobip API key")]
    EnvEmpty { var: String },
    #[error("environment variable {var} is not valid UTF-8; set it to the Infobip API key")]
    EnvNotUnicode { var: String },
    #[error(
        "cannot read API key file {}: {cause}; check the path and that the exporter's user may read it",
        path.display()
    )]
    FileUnreadable {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("API key file {} is empty; write the Infobip API key into it", path.display())]
    FileEmpty { path: PathBuf },
    /// Caught here because an HTTP header cannot carry it and the client's error would be obscure.
    #[error(
        "the API key from {origin} contains spaces, line breaks or non-ASCII characters; it must be the key alone, on one line"
    )]
    Malformed { origin: String },
}

impl ApiKeySource {
    /// Reads the key from the process environment or the file.
    pub fn resolve(&self) -> Result<ApiKey, SecretError> {
        if let ApiKeySource::Env(var) = self
            && let Err(std::env::VarError::NotUnicode(_)) = std::env::var(var)
        {
            return Err(SecretError::EnvNotUnicode { var: var.clone() });
        }
        self.resolve_with(|var| std::env::var(var).ok())
    }

    /// Like [`ApiKeySource::resolve`], with the environment injected (tests, or a snapshot).
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiKey, SecretError> {
        let key = match self {
            ApiKeySource::Env(var) => {
                let value = env(var).ok_or_else(|| SecretError::EnvMissing { var: var.clone() })?;
                let key = value.trim();
                if key.is_empty() {
                    return Err(SecretError::EnvEmpty { var: var.clone() });
                }
                key.to_owned()
            }
            ApiKeySource::File(path) => {
                let content = read_capped(path, MAX_KEY_FILE_BYTES).map_err(|cause| {
                    SecretError::FileUnreadable {
                        path: path.clone(),
                        cause,
                    }
                })?;
                // Editors and `echo` add a final newline; it is never part of the key.
                let key = content.trim();
                if key.is_empty() {
                    return Err(SecretError::FileEmpty { path: path.clone() });
                }
                key.to_owned()
            }
        };
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretError::Malformed {
                origin: self.describe(),
            });
        }
        Ok(ApiKey::new(key))
    }

    /// Where the key comes from, for logs and messages: `env INFOBIP_API_KEY` or `file /x`.
    pub fn describe(&self) -> String {
        match self {
            ApiKeySource::Env(var) => format!("env {var}"),
            ApiKeySource::File(path) => format!("file {}", path.display()),
        }
    }

    /// The config key this source came from, for problem paths.
    pub(super) fn key_name(&self) -> &'static str {
        match self {
            ApiKeySource::Env(_) => "api_key_env",
            ApiKeySource::File(_) => "api_key_file",
        }
    }
}

/// Reads a UTF-8 file of at most `limit` bytes.
pub(super) fn read_capped(path: &Path, limit: u64) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut content = String::new();
    file.take(limit + 1).read_to_string(&mut content)?;
    if content.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("file is larger than {limit} bytes"),
        ));
    }
    Ok(content)
}
