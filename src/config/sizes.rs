//! Byte sizes, such as `callback.max_body`.

use super::problems::Problems;

pub const DEFAULT_MAX_BODY: u64 = 256 * 1024 * 1024;
const MIN_MAX_BODY: u64 = 1024;

/// A byte size: a whole number, optionally followed by B, KiB, MiB or GiB.
pub(super) fn validate_size(path: &str, raw: &str, p: &mut Problems) -> Option<u64> {
    let text = raw.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor = match unit.trim() {
        "" | "B" => Some(1),
        "KiB" => Some(1024),
        "MiB" => Some(1024 * 1024),
        "GiB" => Some(1024 * 1024 * 1024),
        _ => None,
    };
    let size = factor.and_then(|f| digits.parse::<u64>().ok()?.checked_mul(f));
    match size {
        Some(n) if n >= MIN_MAX_BODY => Some(n),
        Some(_) => {
            p.push(
                path,
                format!("{raw:?} is too small; expected at least 1KiB"),
            );
            None
        }
        None => {
            p.push(
                path,
                format!("{raw:?} is not a size; expected bytes or a number with KiB, MiB or GiB, e.g. 256MiB"),
            );
            None
        }
    }
}
