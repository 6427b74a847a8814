//! How errors are printed: the one convention of this crate, so that a cause appears once.
//!
//! **An error's `Display` is the whole story, and none of our error types returns a cause from
//! `source()`.** A variant that wraps a cause writes the cause's text into its own message (with
//! [`chain`] when the cause is a foreign error whose `Display` leaves its own causes out, as
//! reqwest's, hyper's and tonic's do) and does not mark the field `#[source]` or `#[from]`, nor
//! name it `source`, which thiserror would take for one. Then nothing that walks the chain
//! (anyhow's `{:#}` in `main`, [`chain`] itself, a tracing field) repeats a cause, and a log line
//! or a `check-config` problem that prints `{err}` still says why.
//!
//! `#[error(transparent)]` is fine: it forwards both `Display` and `source()` of the inner error.
//! In a log line, one of our errors goes in as `{err}` or `%err`; a foreign one as
//! `error = %chain(&e)`, or as `&e as &dyn Error`, which the log formatter prints with [`chain`].

use std::error::Error;
use std::fmt::Write as _;

/// `err` and every cause below it on one line, `a: b: c`. A cause whose text the line already
/// holds is left out: some crates print their cause in `Display` and return it as well.
pub fn chain(err: &(dyn Error + '_)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !said.is_empty() && !text.contains(&said) {
            let _ = write!(text, ": {said}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn every_cause_once() {
        let err = Outer(Middle(std::io::Error::other("refused")));
        assert_eq!(chain(&err), "outer: middle: refused");
    }
}
