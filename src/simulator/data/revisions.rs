//! How far a day's processing has gone at `now`, and what that changes: late records, price
//! corrections and the retroactive discount, all frozen once the month is final (reference §6,
//! A21).

use time::{Date, Duration, OffsetDateTime};

use crate::billing::calendar::YearMonth;

/// Revision a day reaches when its month is final; below it the day is provisional.
pub(super) const FINAL_REVISION: u64 = 6;
/// Ages after a day's end at which a new batch of late records lands (revisions 2..=5).
const LATE_STEPS_HOURS: [i64; 4] = [2, 12, 36, 168];
/// A mispriced day is corrected at this revision (12 h after the day ends).
const PRICE_FIX_REVISION: u64 = 3;
/// Per-mille of stream-days first billed at a wrong price.
const MISPRICED_PER_MILLE: u64 = 30;
/// Days of the month from which an eligible account's retroactive volume discount grows by 1 %.
const DISCOUNT_DAYS: [u8; 2] = [11, 21];

/// How far a day's data has been processed at `now`: 0 while the day runs, 1..=5 as late records
/// land, [`FINAL_REVISION`] once its month is final. Never moves after finalization.
pub(super) fn revision(day: Date, now: OffsetDateTime) -> u64 {
    if now >= YearMonth::of(day).expected_final_at() {
        return FINAL_REVISION;
    }
    let closed = day.next_day().unwrap_or(day).midnight().assume_utc();
    if now < closed {
        return 0;
    }
    let age = now - closed;
    1 + LATE_STEPS_HOURS
        .iter()
        .filter(|h| age >= Duration::hours(**h))
        .count() as u64
}

/// Retroactive volume discount of a month, in percent, for eligible accounts: it grows as the
/// month's volume accrues and is settled when the month is final.
pub(super) fn discount_percent(month: YearMonth, now: OffsetDateTime) -> i64 {
    if now >= month.expected_final_at() {
        return DISCOUNT_DAYS.len() as i64 + 2;
    }
    let first = month.first_day();
    let passed = DISCOUNT_DAYS
        .iter()
        .filter(|d| {
            now >= first
                .replace_day(**d)
                .unwrap_or(first)
                .midnight()
                .assume_utc()
        })
        .count();
    let ended = usize::from(now >= month.end_exclusive().midnight().assume_utc());
    (passed + ended) as i64
}

/// Whether a stream-day, drawn by `h`, is billed at the wrong price until revision
/// [`PRICE_FIX_REVISION`] corrects it.
pub(super) fn mispriced(r: u64, h: u64) -> bool {
    r < PRICE_FIX_REVISION && (h >> 40) % 1000 < MISPRICED_PER_MILLE
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn revision_is_frozen_after_finalization() {
        let day = date!(2026 - 04 - 10);
        assert_eq!(revision(day, datetime!(2026-04-10 12:00 UTC)), 0);
        assert_eq!(revision(day, datetime!(2026-04-11 01:00 UTC)), 1);
        assert_eq!(revision(day, datetime!(2026-04-30 00:00 UTC)), 5);
        assert_eq!(
            revision(day, datetime!(2026-05-05 00:00 UTC)),
            FINAL_REVISION
        );
        let april = YearMonth::of(day);
        assert!(
            discount_percent(april, datetime!(2026-04-12 0:00 UTC))
                < discount_percent(april, datetime!(2026-05-05 0:00 UTC))
        );
        assert_eq!(
            discount_percent(april, datetime!(2026-05-05 0:00 UTC)),
            discount_percent(april, datetime!(2026-07-30 0:00 UTC))
        );
    }
}
