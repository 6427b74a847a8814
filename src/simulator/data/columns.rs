//! The columns a request gets and how its DAY or MONTH cells are written.

use time::Date;

use crate::infobip::model::{BillingUsageAggregate as Agg, ColumnDataType};
use crate::simulator::DateTimeFormat;

/// The time column of a request: with `DAY` and `MONTH` both asked (allowed by
/// `--allow-day-and-month`), only the finer `DAY`, as the Metrics API does (reference A11).
pub(super) fn time_column(aggregate_by: &[Agg]) -> Option<Agg> {
    [Agg::DAY, Agg::MONTH]
        .into_iter()
        .find(|t| aggregate_by.contains(t))
}

/// The columns a request gets, in order (reference §5.1, A10).
pub(super) fn dimension_columns(aggregate_by: &[Agg]) -> Vec<Agg> {
    let mut dims = Vec::with_capacity(aggregate_by.len() + 2);
    if !aggregate_by
        .iter()
        .any(|a| matches!(a, Agg::ACCOUNT_NAME | Agg::ACCOUNT_KEY))
    {
        dims.push(Agg::ACCOUNT_NAME);
    }
    if !aggregate_by
        .iter()
        .any(|a| matches!(a, Agg::CATEGORY_CODE | Agg::CATEGORY_NAME))
    {
        dims.push(Agg::CATEGORY_CODE);
    }
    let time = time_column(aggregate_by);
    for a in aggregate_by {
        let dropped_time = matches!(a, Agg::DAY | Agg::MONTH) && Some(*a) != time;
        if !dims.contains(a) && !dropped_time {
            dims.push(*a);
        }
    }
    dims
}

pub(super) fn column_type(d: Agg) -> ColumnDataType {
    match d {
        Agg::DAY | Agg::MONTH => ColumnDataType::DateTime,
        Agg::CAMPAIGN_ID => ColumnDataType::Integer,
        _ => ColumnDataType::String,
    }
}

/// A DAY or MONTH cell: the bucket's first day in the chosen form (A5).
pub(super) fn format_bucket(day: Date, format: DateTimeFormat) -> String {
    let date = format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        day.month() as u8,
        day.day()
    );
    match format {
        DateTimeFormat::DatetimeMsOffset => format!("{date}T00:00:00.000+0000"),
        DateTimeFormat::Rfc3339 => format!("{date}T00:00:00Z"),
        DateTimeFormat::DateOnly => date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_added_columns_come_first() {
        let names = |a: &[Agg]| {
            dimension_columns(a)
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&[Agg::DAY]), ["ACCOUNT_NAME", "CATEGORY_CODE", "DAY"]);
        assert_eq!(
            names(&[Agg::ACCOUNT_KEY, Agg::DAY]),
            ["CATEGORY_CODE", "ACCOUNT_KEY", "DAY"]
        );
        assert_eq!(
            names(&[Agg::CATEGORY_NAME, Agg::ACCOUNT_NAME]),
            ["CATEGORY_NAME", "ACCOUNT_NAME"]
        );
        // DAY and MONTH together (allowed by a switch) keep only the finer DAY.
        assert_eq!(
            names(&[Agg::MONTH, Agg::DAY]),
            ["ACCOUNT_NAME", "CATEGORY_CODE", "DAY"]
        );
    }
}
