//! The API key as a value: the client takes it from whoever read it (config, environment) and
//! knows nothing of where it came from.

use std::fmt;

/// An API key. `Debug` and `Display` print `<redacted>` so it cannot end up in a log by accident;
/// [`ApiKey::expose`] is the one, greppable, way to get at it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(s: String) -> Self {
        ApiKey(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
