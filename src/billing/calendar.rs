//! The UTC billing calendar: which months are in retention, the exclusive date windows sent to
//! Infobip, and when a month is expected to be final.

use std::fmt;
use std::str::FromStr;

use time::{Date, Duration, Month, OffsetDateTime};

/// Infobip finalizes a month on this day of the following month (reference §6, A21).
pub const FINALIZE_DAY: u8 = 5;

/// Retention: the current calendar month and the two before it (reference §3.4).
pub const RETENTION_MONTHS: usize = 3;

/// Where "now" comes from: the system clock in production, a settable one in tests and in the
/// simulator's `--now`.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> OffsetDateTime;

    fn today(&self) -> Date {
        self.now().date()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stays where it is set.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(std::sync::Mutex::new(at))
    }

    pub fn set(&self, at: OffsetDateTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A calendar month, ordered chronologically, written `yyyy-MM` as in `billingPeriods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    pub year: i32,
    pub month: Month,
}

impl YearMonth {
    pub fn of(date: Date) -> Self {
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> Date {
        Date::from_calendar_date(self.year, self.month, 1).expect("day 1 exists in every month")
    }

    pub fn next(self) -> Self {
        match self.month {
            Month::December => Self {
                year: self.year + 1,
                month: Month::January,
            },
            m => Self {
                year: self.year,
                month: m.next(),
            },
        }
    }

    pub fn previous(self) -> Self {
        match self.month {
            Month::January => Self {
                year: self.year - 1,
                month: Month::December,
            },
            m => Self {
                year: self.year,
                month: m.previous(),
            },
        }
    }

    /// First day of the following month: the exclusive end of this month.
    pub fn end_exclusive(self) -> Date {
        self.next().first_day()
    }

    /// The moment Infobip is expected to have finalized this month (5th of the next, 00:00 UTC).
    /// Only a schedule hint: `volumeFinalized` in a result is the authority.
    pub fn expected_final_at(self) -> OffsetDateTime {
        let day = self.end_exclusive() + Duration::days(i64::from(FINALIZE_DAY) - 1);
        day.midnight().assume_utc()
    }

    pub fn contains(self, date: Date) -> bool {
        Self::of(date) == self
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month as u8)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected a month as yyyy-MM, got {0:?}")]
pub struct YearMonthParseError(pub String);

impl FromStr for YearMonth {
    type Err = YearMonthParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || YearMonthParseError(s.to_owned());
        let (y, m) = s.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(err());
        }
        let year: i32 = y.parse().map_err(|_| err())?;
        let month: u8 = m.parse().map_err(|_| err())?;
        let month = Month::try_from(month).map_err(|_| err())?;
        Ok(Self { year, month })
    }
}

impl serde::Serialize for YearMonth {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for YearMonth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The months whose data Infobip still holds, oldest first.
pub fn retention_months(today: Date) -> [YearMonth; RETENTION_MONTHS] {
    let current = YearMonth::of(today);
    let previous = current.previous();
    [previous.previous(), previous, current]
}

/// The first day Infobip still holds data for.
pub fn retention_start(today: Date) -> Date {
    retention_months(today)[0].first_day()
}

/// A half-open UTC day range `[since, until)`, the shape of `dateInterval` (reference A1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DayRange {
    pub since: Date,
    pub until: Date,
}

impl DayRange {
    pub fn contains(&self, day: Date) -> bool {
        self.since <= day && day < self.until
    }

    pub fn is_empty(&self) -> bool {
        self.since >= self.until
    }

    pub fn days(&self) -> impl Iterator<Item = Date> + '_ {
        let mut day = self.since;
        std::iter::from_fn(move || {
            (day < self.until).then(|| {
                let this = day;
                day = day.next_day().unwrap_or(Date::MAX);
                this
            })
        })
    }
}

/// The window to ask for one month: the whole month, clamped to end at most tomorrow
/// (reference A2), with the exclusive `sentUntil`.
pub fn month_query_range(month: YearMonth, today: Date) -> DayRange {
    let tomorrow = today.next_day().unwrap_or(today);
    DayRange {
        since: month.first_day(),
        until: month.end_exclusive().min(tomorrow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn retention_spans_year_boundary() {
        let months = retention_months(date!(2026 - 02 - 10));
        let shown: Vec<String> = months.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["2025-12", "2026-01", "2026-02"]);
        assert_eq!(
            retention_start(date!(2026 - 02 - 10)),
            date!(2025 - 12 - 01)
        );
    }

    #[test]
    fn month_range_is_exclusive_and_clamped_to_tomorrow() {
        let nov = YearMonth::of(date!(2026 - 11 - 01));
        assert_eq!(
            month_query_range(nov, date!(2026 - 11 - 27)),
            DayRange {
                since: date!(2026 - 11 - 01),
                until: date!(2026 - 11 - 28)
            }
        );
        assert_eq!(
            month_query_range(nov, date!(2026 - 12 - 03)).until,
            date!(2026 - 12 - 01)
        );
    }

    #[test]
    fn final_on_the_fifth_of_next_month() {
        let dec = "2026-12".parse::<YearMonth>().unwrap();
        assert_eq!(dec.expected_final_at(), datetime!(2027-01-05 0:00 UTC));
    }

    #[test]
    fn parse_rejects_bad_months() {
        assert!("2026-13".parse::<YearMonth>().is_err());
        assert!("2026-1".parse::<YearMonth>().is_err());
        assert_eq!(
            "2026-01".parse::<YearMonth>().unwrap().to_string(),
            "2026-01"
        );
    }

    #[test]
    fn day_range_iterates_half_open() {
        let r = DayRange {
            since: date!(2026 - 02 - 27),
            until: date!(2026 - 03 - 02),
        };
        assert_eq!(r.days().count(), 3);
        assert!(!r.contains(date!(2026 - 03 - 02)));
    }
}
