//! Wire types of the Billing Usage API, named after the schema titles of the official OpenAPI
//! file (reference §16). Money and quantities are `Decimal`, parsed from the raw JSON number text.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::billing::calendar::{DayRange, YearMonth};
use crate::billing::labels::NOT_APPLICABLE;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");
time::serde::format_description!(
    instant_wire,
    OffsetDateTime,
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
);

/// `POST /billing/1/usage/query` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryBillingUsageRequest {
    pub callback_url: String,
    pub request: QueryBillingUsageApiRequest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryBillingUsageApiRequest {
    pub filter_by: BillingUsageDataFilter,
    pub aggregate_by: Vec<BillingUsageAggregate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BillingUsageQueryOptions>,
}

impl QueryBillingUsageApiRequest {
    /// All usage in `days` by `aggregate_by`: no filter but the dates, no options.
    pub fn unfiltered(days: DayRange, aggregate_by: Vec<BillingUsageAggregate>) -> Self {
        Self {
            filter_by: BillingUsageDataFilter {
                date_interval: days.into(),
                ..BillingUsageDataFilter::default()
            },
            aggregate_by,
            options: None,
        }
    }
}

/// Filters; empty lists are omitted on the wire (reference A7, A22).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingUsageDataFilter {
    pub date_interval: DateInterval,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_categories: Vec<SubCategory>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub country_codes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directions: Vec<Direction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub senders: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaign_reference_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaign_ids: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_ids: Vec<String>,
}

/// `[sentSince, sentUntil)` as `yyyy-MM-dd`, UTC, `sentUntil` exclusive (reference A1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateInterval {
    #[serde(with = "iso_date")]
    pub sent_since: Date,
    #[serde(with = "iso_date")]
    pub sent_until: Date,
}

impl Default for DateInterval {
    fn default() -> Self {
        Self {
            sent_since: Date::MIN,
            sent_until: Date::MIN,
        }
    }
}

impl From<DayRange> for DateInterval {
    fn from(r: DayRange) -> Self {
        Self {
            sent_since: r.since,
            sent_until: r.until,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingUsageQueryOptions {
    pub include_unfinalized_data: bool,
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }
        }

        impl From<$name> for &'static str {
            fn from(code: $name) -> Self {
                code.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownCode;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownCode(s.to_owned()))
            }
        }
    };
}

/// A code that is not in the schema's enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown code {0:?}")]
pub struct UnknownCode(pub String);

wire_enum!(
    /// `BillingUsageAggregate`: the 23 dimensions (reference §4.1).
    BillingUsageAggregate {
        DAY, MONTH, APPLICATION_ID, ENTITY_ID, ACCOUNT_NAME, ACCOUNT_KEY, USER_NAME,
        CATEGORY_CODE, CATEGORY_NAME, SUBCATEGORY_CODE, SUBCATEGORY_NAME, DIRECTION,
        TRAFFIC_TYPE, SENDER, SENDER_TYPE, NETWORK_NAME, NORM_NET_CODE, COUNTRY_NAME,
        COUNTRY_CODE, COUNTRY_PREFIX, CAMPAIGN_ID, CAMPAIGN_REFERENCE, TEMPLATE_ID,
    }
);

wire_enum!(
    /// Filter values of `categories` (the spec's 15; results may carry others, read as strings).
    Category {
        SMS, SMS_OPERATOR_FEE, MMS, MMS_OPERATOR_FEE, EMAIL, RCS, WHATSAPP, VIBER, APPLE_MB,
        MOBILE_PUSH, NUMBER_LOOKUP, CARRIER_LOOKUP, EMAIL_VALIDATION, AGENTOS, AI,
    }
);

wire_enum!(
    /// Filter values of `subCategories` (Viber only today).
    SubCategory { VIBER_BM, VIBER_BOTS }
);

wire_enum!(
    /// `Direction`.
    Direction { OUTBOUND, INBOUND }
);

/// `201 Created` answer to a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryAggregateDataResponse {
    pub request_id: String,
}

/// The error body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub error_code: String,
    pub description: String,
    pub action: String,
    pub violations: Vec<ApiErrorViolation>,
    pub resources: Vec<ApiErrorResource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorViolation {
    pub property: String,
    pub violation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorResource {
    pub name: String,
    pub url: String,
}

/// The callback body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingUsageResult {
    pub request_id: String,
    pub status: QueryAggregateDataStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<AggregateDataResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BillingUsageMetadata>,
}

/// An unknown status counts as a failure (reference A9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QueryAggregateDataStatus {
    Success,
    Failed,
    #[serde(other, skip_serializing)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateDataResponse {
    pub requested_period: DateTimeInterval,
    pub total_rows: i32,
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    pub column_name: String,
    pub column_data_type: ColumnDataType,
}

impl ColumnInfo {
    pub fn new(name: &str, data_type: ColumnDataType) -> Self {
        Self {
            column_name: name.to_owned(),
            column_data_type: data_type,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ColumnDataType {
    String,
    Integer,
    Number,
    Boolean,
    DateTime,
    #[serde(other, skip_serializing)]
    Unknown,
}

/// A date-time period; on the wire `…T00:00:00.000+0000`, read in every form of reference A6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeInterval {
    #[serde(with = "infobip_instant")]
    pub sent_since: OffsetDateTime,
    #[serde(with = "infobip_instant")]
    pub sent_until: OffsetDateTime,
}

impl DateTimeInterval {
    pub fn from_days(range: DayRange) -> Self {
        Self {
            sent_since: range.since.midnight().assume_utc(),
            sent_until: range.until.midnight().assume_utc(),
        }
    }

    /// The whole UTC days this period covers; a partial last day counts as covered.
    pub fn covered_days(&self) -> DayRange {
        let until = self.sent_until.date();
        let until = if self.sent_until.time() == Time::MIDNIGHT {
            until
        } else {
            until.next_day().unwrap_or(until)
        };
        DayRange {
            since: self.sent_since.date(),
            until,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingUsageMetadata {
    pub client_requested_period: DateTimeInterval,
    pub billing_periods: Vec<BillingUsageMetadataPeriod>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingUsageMetadataPeriod {
    pub month: String,
    pub volume_finalized: bool,
}

impl BillingUsageMetadataPeriod {
    pub fn new(month: YearMonth, volume_finalized: bool) -> Self {
        Self {
            month: month.to_string(),
            volume_finalized,
        }
    }
}

/// One row cell: the real values are JSON strings and numbers, and `"N/A"` (or `null`) marks
/// a value that does not apply (reference A16). Numbers keep their exact decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Number(Decimal),
    NotApplicable,
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Text(t) => s.serialize_str(t),
            Cell::NotApplicable => s.serialize_str(NOT_APPLICABLE),
            Cell::Number(d) => RawValue::from_string(d.normalize().to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        parse_cell(raw.get()).map_err(D::Error::custom)
    }
}

/// Reads one raw JSON cell: a string, a number (exact decimal, exponents allowed), or null.
pub fn parse_cell(raw: &str) -> Result<Cell, String> {
    match raw.as_bytes().first() {
        Some(b'"') => {
            let text: String = serde_json::from_str(raw).map_err(|e| e.to_string())?;
            Ok(if text == NOT_APPLICABLE {
                Cell::NotApplicable
            } else {
                Cell::Text(text)
            })
        }
        Some(b'n') if raw == "null" => Ok(Cell::NotApplicable),
        Some(b'-' | b'0'..=b'9') => parse_decimal(raw)
            .map(Cell::Number)
            .ok_or_else(|| format!("number {raw} does not fit a 96-bit decimal")),
        _ => Err(format!("expected a string, number or null cell, got {raw}")),
    }
}

/// Exact decimal from JSON number text, also in exponent form.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

/// The tolerant date-time reader and Infobip's writer (reference A5, A6).
pub mod infobip_instant {
    use super::{OffsetDateTime, UtcOffset, parse_instant};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        super::instant_wire::serialize(&t.to_offset(UtcOffset::UTC), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_instant(&text).ok_or_else(|| {
            D::Error::custom(format!(
                "unrecognised date-time {text:?}: expected e.g. 2026-04-01T00:00:00.000+0000, \
                 2026-04-01T00:00:00Z or 2026-04-01"
            ))
        })
    }
}

/// Parses `yyyy-MM-dd'T'HH:mm:ss[.SSS](Z|±HHMM|±HH:MM|)`, `yyyy-MM-dd` and `yyyy-MM`, all as UTC
/// unless an offset says otherwise.
pub fn parse_instant(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(num(5, 2)?).ok()?).ok()?;
    if b.len() == 7 {
        return Some(
            Date::from_calendar_date(year, month, 1)
                .ok()?
                .midnight()
                .assume_utc(),
        );
    }
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let date = Date::from_calendar_date(year, month, u8::try_from(num(8, 2)?).ok()?).ok()?;
    if b.len() == 10 {
        return Some(date.midnight().assume_utc());
    }
    if !matches!(b.get(10), Some(b'T' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    let second = if b.get(16) == Some(&b':') {
        num(17, 2)?
    } else {
        0
    };
    let mut at = if b.get(16) == Some(&b':') { 19 } else { 16 };
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let digits = &s[start..at];
        if digits.is_empty() {
            return None;
        }
        let keep = &digits[..digits.len().min(9)];
        nanos = keep.parse::<u32>().ok()? * 10u32.pow(9 - keep.len() as u32);
    }
    let offset = match &s[at..] {
        "" | "Z" | "z" => UtcOffset::UTC,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|d| d.is_ascii_digit()) {
                return None;
            }
            let h: i8 = digits[..2].parse().ok()?;
            let m: i8 = digits[2..].parse().ok()?;
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn every_documented_date_time_form_parses() {
        let want = datetime!(2026-04-01 0:00 UTC);
        for form in [
            "2026-04-01T00:00:00.000+0000",
            "2026-04-01T00:00:00Z",
            "2026-04-01T00:00:00+00:00",
            "2026-04-01T00:00:00.000000Z",
            "2026-04-01T00:00:00",
            "2026-04-01",
            "2026-04",
            "2026-04-01T02:00:00+0200",
        ] {
            assert_eq!(parse_instant(form), Some(want), "{form}");
        }
        for bad in [
            "",
            "2026-4-01",
            "2026-04-01T",
            "2026-04-01T00:00:00+2",
            "yesterday",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn cells_keep_exact_decimals() {
        let row: Vec<Cell> =
            serde_json::from_str(r#"["N/A", null, 0.0072, 86.69, 1e-2, "EUR", 12040]"#).unwrap();
        assert_eq!(
            row,
            vec![
                Cell::NotApplicable,
                Cell::NotApplicable,
                Cell::Number(dec("0.0072")),
                Cell::Number(dec("86.69")),
                Cell::Number(dec("0.01")),
                Cell::Text("EUR".into()),
                Cell::Number(dec("12040")),
            ]
        );
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"["N/A","N/A",0.0072,86.69,0.01,"EUR",12040]"#
        );
    }

    #[test]
    fn interval_is_written_like_infobip() {
        let i = DateTimeInterval::from_days(DayRange {
            since: time::macros::date!(2026 - 04 - 01),
            until: time::macros::date!(2026 - 04 - 04),
        });
        assert_eq!(
            serde_json::to_string(&i).unwrap(),
            r#"{"sentSince":"2026-04-01T00:00:00.000+0000","sentUntil":"2026-04-04T00:00:00.000+0000"}"#
        );
    }

    #[test]
    fn unknown_status_is_not_success() {
        let r: BillingUsageResult =
            serde_json::from_str(r#"{"requestId":"X","status":"PENDING"}"#).unwrap();
        assert_eq!(r.status, QueryAggregateDataStatus::Unknown);
    }
}
