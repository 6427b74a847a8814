//! Durations: their defaults, their bounds and reading them in humantime syntax.

use std::time::Duration;

use super::problems::Problems;

/// `interval` when the config does not set it.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Shortest `interval`: results arrive asynchronously, faster polling only adds load.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Longest `interval`: beyond a day the current day's costs would be stale for most of it.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
pub const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(15);

pub(super) fn validate_interval(raw: Option<&str>, p: &mut Problems) -> Option<Duration> {
    let Some(raw) = raw else {
        return Some(DEFAULT_INTERVAL);
    };
    match humantime::parse_duration(raw.trim()) {
        Err(_) => {
            // humantime's own messages ("expected number at 0") would confuse more than help.
            p.push(
                "interval",
                format!("{raw:?} is not a duration; expected a number and a unit, e.g. 30m, 1h or 1h 30m"),
            );
            None
        }
        Ok(d) if d < MIN_INTERVAL => {
            p.push(
                "interval",
                format!("{raw:?} is too short; expected at least 1m"),
            );
            None
        }
        Ok(d) if d > MAX_INTERVAL => {
            p.push(
                "interval",
                format!("{raw:?} is too long; expected at most 1d"),
            );
            None
        }
        Ok(d) => Some(d),
    }
}

/// An optional humantime duration within `(min, max, "what is expected")`.
pub(super) fn validate_duration(
    key: &str,
    raw: Option<&str>,
    default: Duration,
    (min, max, expected): (Duration, Duration, &str),
    p: &mut Problems,
) -> Option<Duration> {
    let Some(raw) = raw else {
        return Some(default);
    };
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if (min..=max).contains(&d) => Some(d),
        Ok(_) => {
            p.push(key, format!("{raw:?} is out of range; expected {expected}"));
            None
        }
        Err(_) => {
            p.push(
                key,
                format!("{raw:?} is not a duration; expected a number and a unit, {expected}"),
            );
            None
        }
    }
}
