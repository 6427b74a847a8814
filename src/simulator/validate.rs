//! Request validation by hand over a JSON tree, so that several problems give several
//! violations, each with the property path Infobip-style errors use
//! (`request.filterBy.dateInterval.sentSince`).

use std::str::FromStr;

use serde_json::{Map, Value};
use time::{Date, Month};

use super::{OutOfWindow, SimulatorOptions};
use crate::billing::calendar::{YearMonth, retention_start};
use crate::infobip::model::{
    ApiErrorViolation, BillingUsageAggregate, BillingUsageDataFilter, BillingUsageQueryOptions,
    Category, DateInterval, Direction, Platform, QueryBillingUsageApiRequest,
    QueryBillingUsageRequest, SubCategory,
};

/// The most calendar months one query may touch (reference A2).
const MAX_SPAN_MONTHS: usize = 3;

#[derive(Default)]
struct Violations(Vec<ApiErrorViolation>);

impl Violations {
    fn push(&mut self, property: impl Into<String>, violation: impl Into<String>) {
        self.0.push(ApiErrorViolation {
            property: property.into(),
            violation: violation.into(),
        });
    }
}

/// The §14 switches that change what is accepted.
#[derive(Clone, Copy)]
struct Rules {
    today: Date,
    out_of_window: OutOfWindow,
    lenient_filters: bool,
    allow_day_and_month: bool,
}

/// Checks a query body against the contract as of `today` (UTC), with the options' §14 choices.
pub(super) fn validate(
    body: &[u8],
    today: Date,
    opts: &SimulatorOptions,
) -> Result<QueryBillingUsageRequest, Vec<ApiErrorViolation>> {
    let rules = Rules {
        today,
        out_of_window: opts.out_of_window,
        lenient_filters: opts.lenient_filters,
        allow_day_and_month: opts.allow_day_and_month,
    };
    let mut v = Violations::default();
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            v.push("body", format!("must be valid JSON: {e}"));
            return Err(v.0);
        }
    };
    let Some(root) = value.as_object() else {
        v.push("body", "must be a JSON object");
        return Err(v.0);
    };
    let callback_url = callback_url(root.get("callbackUrl"), &mut v);
    let request = object(root.get("request"), "request", &mut v).and_then(|request| {
        let filter = object(request.get("filterBy"), "request.filterBy", &mut v)
            .and_then(|f| filter(f, rules, &mut v));
        let aggregate_by = aggregate_by(request.get("aggregateBy"), rules, &mut v);
        let options = options(request.get("options"), &mut v);
        Some(QueryBillingUsageApiRequest {
            filter_by: filter?,
            aggregate_by: aggregate_by?,
            options,
        })
    });
    match (callback_url, request) {
        (Some(callback_url), Some(request)) if v.0.is_empty() => Ok(QueryBillingUsageRequest {
            callback_url,
            request,
        }),
        _ => Err(v.0),
    }
}

fn callback_url(value: Option<&Value>, v: &mut Violations) -> Option<String> {
    const PATH: &str = "callbackUrl";
    match value {
        None | Some(Value::Null) => v.push(PATH, "must not be null"),
        Some(Value::String(s)) if s.trim().is_empty() => v.push(PATH, "must not be blank"),
        Some(Value::String(s)) => match reqwest::Url::parse(s) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                return Some(s.clone());
            }
            _ => v.push(PATH, "must be an absolute http or https URL"),
        },
        Some(_) => v.push(PATH, "must be a string"),
    }
    None
}

fn object<'a>(
    value: Option<&'a Value>,
    path: &str,
    v: &mut Violations,
) -> Option<&'a Map<String, Value>> {
    match value {
        None | Some(Value::Null) => v.push(path, "must not be null"),
        Some(Value::Object(map)) => return Some(map),
        Some(_) => v.push(path, "must be an object"),
    }
    None
}

/// Strictly `yyyy-MM-dd`.
fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn date(interval: &Map<String, Value>, key: &str, v: &mut Violations) -> Option<Date> {
    let path = format!("request.filterBy.dateInterval.{key}");
    match interval.get(key) {
        None | Some(Value::Null) => v.push(path, "must not be null"),
        Some(Value::String(s)) => match parse_date(s) {
            Some(d) => return Some(d),
            None => v.push(
                path,
                format!("must be a date in yyyy-MM-dd format, got {s:?}"),
            ),
        },
        Some(other) => v.push(
            path,
            format!("must be a date in yyyy-MM-dd format, got {other}"),
        ),
    }
    None
}

fn date_interval(value: Option<&Value>, rules: Rules, v: &mut Violations) -> Option<DateInterval> {
    const PATH: &str = "request.filterBy.dateInterval";
    let interval = object(value, PATH, v)?;
    let since = date(interval, "sentSince", v);
    let until = date(interval, "sentUntil", v);
    let (since, until) = (since?, until?);
    let before = v.0.len();
    if since >= until {
        v.push(
            PATH,
            "sentUntil must be after sentSince (sentUntil is exclusive).",
        );
    } else {
        let last = YearMonth::of(until.previous_day().unwrap_or(until));
        let mut months = 1;
        let mut m = YearMonth::of(since);
        while m < last {
            m = m.next();
            months += 1;
        }
        if months > MAX_SPAN_MONTHS {
            v.push(
                PATH,
                format!(
                    "must not span more than {MAX_SPAN_MONTHS} calendar months, spans {months}"
                ),
            );
        }
    }
    // Retention: the current UTC month and the two before it (reference §3.4). Only `reject`
    // refuses dates outside it; `trim` and `empty` answer them in the result (A3).
    if rules.out_of_window != OutOfWindow::Reject {
        return (v.0.len() == before).then_some(DateInterval {
            sent_since: since,
            sent_until: until,
        });
    }
    let first = retention_start(rules.today);
    let end = YearMonth::of(rules.today).end_exclusive();
    let why = "data is kept for the current month and the two months before it (UTC)";
    if since < first {
        v.push(
            "request.filterBy.dateInterval.sentSince",
            format!("must not be before {first}: {why}"),
        );
    } else if since >= end {
        v.push(
            "request.filterBy.dateInterval.sentSince",
            format!("must be before {end}: {why}"),
        );
    }
    if until > end {
        v.push(
            "request.filterBy.dateInterval.sentUntil",
            format!("must not be after {end}: {why}"),
        );
    }
    (v.0.len() == before).then_some(DateInterval {
        sent_since: since,
        sent_until: until,
    })
}

fn filter(
    f: &Map<String, Value>,
    rules: Rules,
    v: &mut Violations,
) -> Option<BillingUsageDataFilter> {
    let date_interval = date_interval(f.get("dateInterval"), rules, v);
    let lenient = rules.lenient_filters;
    let text = |item: &Value| {
        item.as_str()
            .map(str::to_owned)
            .ok_or("must be a string".to_owned())
    };
    let filter = BillingUsageDataFilter {
        date_interval: date_interval.unwrap_or_default(),
        account_keys: list(f, "accountKeys", lenient, v, text),
        categories: list(f, "categories", lenient, v, code::<Category>),
        sub_categories: list(f, "subCategories", lenient, v, code::<SubCategory>),
        country_codes: list(f, "countryCodes", lenient, v, text),
        platforms: list(f, "platforms", lenient, v, platform),
        directions: list(f, "directions", lenient, v, code::<Direction>),
        traffic_types: list(f, "trafficTypes", lenient, v, text),
        senders: list(f, "senders", lenient, v, text),
        sender_types: list(f, "senderTypes", lenient, v, text),
        campaign_reference_ids: list(f, "campaignReferenceIds", lenient, v, text),
        campaign_ids: list(f, "campaignIds", lenient, v, |item| {
            item.as_i64().ok_or("must be an integer (int64)".to_owned())
        }),
        template_ids: list(f, "templateIds", lenient, v, text),
    };
    date_interval.map(|_| filter)
}

/// An optional filter list: `null` or `[]` mean no filter (A22); anything but an array is a
/// violation, unless `lenient` takes a bare scalar as a one-element list (A7); items must parse
/// and be unique.
fn list<T: PartialEq>(
    f: &Map<String, Value>,
    key: &str,
    lenient: bool,
    v: &mut Violations,
    parse: impl Fn(&Value) -> Result<T, String>,
) -> Vec<T> {
    let path = format!("request.filterBy.{key}");
    let items = match f.get(key) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items.as_slice(),
        Some(scalar @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) if lenient => {
            std::slice::from_ref(scalar)
        }
        Some(_) => {
            v.push(path, "must be an array");
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match parse(item) {
            Ok(value) if out.contains(&value) => {
                v.push(
                    format!("{path}[{i}]"),
                    format!("duplicate value {item}: items must be unique"),
                );
            }
            Ok(value) => out.push(value),
            Err(e) => v.push(format!("{path}[{i}]"), e),
        }
    }
    out
}

/// A value of one of the schema's enums.
fn code<T: FromStr + EnumCodes>(item: &Value) -> Result<T, String> {
    item.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("unknown value {item}; expected one of {}", T::codes()))
}

/// The accepted codes of an enum, for messages.
trait EnumCodes {
    fn codes() -> String;
}

macro_rules! enum_codes {
    ($($t:ty),+) => {$(
        impl EnumCodes for $t {
            fn codes() -> String {
                <$t>::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    )+};
}

enum_codes!(Category, SubCategory, Direction, BillingUsageAggregate);

fn platform(item: &Value) -> Result<Platform, String> {
    let Some(map) = item.as_object() else {
        return Err("must be an object with applicationId and/or entityId".to_owned());
    };
    let field = |key: &str| match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    };
    let platform = Platform {
        application_id: field("applicationId")?,
        entity_id: field("entityId")?,
    };
    if platform.application_id.is_none() && platform.entity_id.is_none() {
        // `{}` would match everything or nothing; the simulator refuses it (A22).
        return Err("must have applicationId or entityId".to_owned());
    }
    Ok(platform)
}

fn aggregate_by(
    value: Option<&Value>,
    rules: Rules,
    v: &mut Violations,
) -> Option<Vec<BillingUsageAggregate>> {
    const PATH: &str = "request.aggregateBy";
    let items = match value {
        None | Some(Value::Null) => {
            v.push(PATH, "must not be null");
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            v.push(PATH, "must be an array");
            return None;
        }
    };
    let before = v.0.len();
    if items.is_empty() {
        v.push(PATH, "must not be empty");
    }
    let mut out: Vec<BillingUsageAggregate> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match code::<BillingUsageAggregate>(item) {
            Ok(a) if out.contains(&a) => {
                v.push(
                    format!("{PATH}[{i}]"),
                    format!("duplicate value {a}: items must be unique"),
                );
            }
            Ok(a) => out.push(a),
            Err(e) => v.push(format!("{PATH}[{i}]"), e),
        }
    }
    if !rules.allow_day_and_month
        && out.contains(&BillingUsageAggregate::DAY)
        && out.contains(&BillingUsageAggregate::MONTH)
    {
        v.push(
            PATH,
            "DAY and MONTH cannot be combined: choose one time granularity",
        );
    }
    (v.0.len() == before).then_some(out)
}

fn options(value: Option<&Value>, v: &mut Violations) -> Option<BillingUsageQueryOptions> {
    let map = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(map)) => map,
        Some(_) => {
            v.push("request.options", "must be an object");
            return None;
        }
    };
    let include = match map.get("includeUnfinalizedData") {
        // The schema's default.
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            v.push(
                "request.options.includeUnfinalizedData",
                "must be a boolean",
            );
            return None;
        }
    };
    Some(BillingUsageQueryOptions {
        include_unfinalized_data: include,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn dates_must_be_strict() {
        assert_eq!(parse_date("2026-04-01"), Some(date!(2026 - 04 - 01)));
        for bad in [
            "2026-4-01",
            "2026-04-31",
            "20260401",
            "2026-04-01T00:00",
            "+026-04-01",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn several_problems_give_several_violations() {
        let body = br#"{"callbackUrl":"","request":{"filterBy":{"dateInterval":{"sentSince":"x"}},"aggregateBy":["DAY","DAY","NOPE"]}}"#;
        let violations =
            validate(body, date!(2026 - 04 - 10), &SimulatorOptions::default()).unwrap_err();
        let props: Vec<&str> = violations.iter().map(|v| v.property.as_str()).collect();
        assert_eq!(
            props,
            [
                "callbackUrl",
                "request.filterBy.dateInterval.sentSince",
                "request.filterBy.dateInterval.sentUntil",
                "request.aggregateBy[1]",
                "request.aggregateBy[2]",
            ]
        );
    }
}
