//! The dates a result covers: the requested ones cut to retention and, on request, to final
//! months, and the billing periods they overlap.

use time::{Date, OffsetDateTime};

use super::columns::time_column;
use crate::billing::calendar::{DayRange, YearMonth, retention_start};
use crate::infobip::model::{
    BillingUsageAggregate as Agg, BillingUsageMetadataPeriod, DateInterval,
    QueryBillingUsageApiRequest,
};

/// The period a result covers: inside retention, widened to whole months for MONTH (A4), and
/// cut at the first provisional month when only final data is wanted.
pub(super) fn effective_period(
    request: &QueryBillingUsageApiRequest,
    now: OffsetDateTime,
) -> DayRange {
    let today = now.date();
    let interval = request.filter_by.date_interval;
    let current = YearMonth::of(today);
    let mut since = interval.sent_since.max(retention_start(today));
    let mut until = interval.sent_until.min(current.end_exclusive());
    if time_column(&request.aggregate_by) == Some(Agg::MONTH) && since < until {
        since = YearMonth::of(since).first_day();
        let last = until.previous_day().unwrap_or(until);
        until = YearMonth::of(last).end_exclusive();
    }
    if request.options.is_some_and(|o| !o.include_unfinalized_data) {
        let mut month = YearMonth::of(since);
        while month.first_day() < until {
            if now < month.expected_final_at() {
                until = until.min(month.first_day().max(since));
                break;
            }
            month = month.next();
        }
    }
    DayRange {
        since,
        until: until.max(since),
    }
}

/// One entry per calendar month overlapping the period (A19).
pub(super) fn billing_periods(
    period: DayRange,
    now: OffsetDateTime,
) -> Vec<BillingUsageMetadataPeriod> {
    let mut out = Vec::new();
    let mut month = YearMonth::of(period.since);
    while !period.is_empty() && month.first_day() < period.until {
        out.push(BillingUsageMetadataPeriod::new(
            month,
            now >= month.expected_final_at(),
        ));
        month = month.next();
    }
    out
}

/// Whether the dates stay inside the retention window at `today` (reference §3.4).
pub(super) fn inside_window(interval: DateInterval, today: Date) -> bool {
    interval.sent_since >= retention_start(today)
        && interval.sent_until <= YearMonth::of(today).end_exclusive()
}
