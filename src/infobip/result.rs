//! Decodes a callback body (`BillingUsageResult`) into ledger facts. Columns are found by
//! `columnName`, never by position (reference A10); cells are read from the raw JSON text so
//! money is exact (A16) and strings are borrowed from the body.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::model::{
    BillingUsageAggregate, BillingUsageMetadata, DateTimeInterval, NOT_APPLICABLE,
    QueryAggregateDataStatus, parse_decimal, parse_instant,
};
use crate::calendar::YearMonth;
use crate::ledger::{Amount, FactKey, Usage};

/// What a callback said.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub request_id: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(Usage),
    /// `status: FAILED` (or a status this client does not know, reference A9).
    Failed {
        message: String,
    },
}

/// Why a body could not be used; `reason()` is a bounded label value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("callback body is not valid JSON for BillingUsageResult: {0}")]
    Json(String),
    #[error("SUCCESS result has no `response`")]
    MissingResponse,
    #[error("result has no `{0}` column")]
    MissingColumn(&'static str),
    #[error("row {row} has {found} cells, but there are {expected} columns")]
    RowWidth {
        row: usize,
        found: usize,
        expected: usize,
    },
    #[error("row {row}, column {column}: {problem}")]
    Cell {
        row: usize,
        column: &'static str,
        problem: String,
    },
    #[error("billingPeriods month {0:?} is not yyyy-MM")]
    Month(String),
}

impl DecodeError {
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Json(_) => "malformed_json",
            _ => "schema",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResult<'a> {
    request_id: String,
    status: QueryAggregateDataStatus,
    #[serde(default)]
    failure_message: Option<String>,
    #[serde(default, borrow)]
    response: Option<WireResponse<'a>>,
    #[serde(default)]
    metadata: Option<BillingUsageMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse<'a> {
    requested_period: DateTimeInterval,
    total_rows: i64,
    columns: Vec<WireColumn<'a>>,
    #[serde(borrow)]
    rows: Vec<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireColumn<'a> {
    #[serde(borrow)]
    column_name: std::borrow::Cow<'a, str>,
}

/// Column names this exporter reads. The time column is `DAY`; `DATE` and `USAGE_DAY` are
/// accepted too, since no billing source shows its name (reference A5).
const DAY_COLUMNS: [&str; 3] = ["DAY", "DATE", "USAGE_DAY"];

struct Columns {
    day: usize,
    account: Option<usize>,
    account_key: Option<usize>,
    category: Option<usize>,
    unit: Option<usize>,
    quantity: Option<usize>,
    total: usize,
    currency: usize,
    /// The optional dimensions asked for, in config order; a missing column reads `N/A`.
    dimensions: Vec<(&'static str, Option<usize>)>,
}

impl Columns {
    fn find(
        columns: &[WireColumn<'_>],
        dimensions: &[BillingUsageAggregate],
    ) -> Result<Self, DecodeError> {
        let index: HashMap<&str, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.column_name.as_ref(), i))
            .collect();
        let get = |name: &str| index.get(name).copied();
        let day = DAY_COLUMNS.iter().find_map(|n| get(n));
        if let Some(alias) = DAY_COLUMNS[1..].iter().find(|n| get(n).is_some()) {
            if get("DAY").is_none() {
                tracing::warn!(
                    column = alias,
                    "time column is not named DAY; reading it as the day"
                );
            }
        }
        Ok(Self {
            day: day.ok_or(DecodeError::MissingColumn("DAY"))?,
            account: get("ACCOUNT_NAME"),
            account_key: get("ACCOUNT_KEY"),
            category: get("CATEGORY_CODE"),
            unit: get("UNIT_TYPE"),
            quantity: get("QUANTITY"),
            total: get("TOTAL_PER_UNIT").ok_or(DecodeError::MissingColumn("TOTAL_PER_UNIT"))?,
            currency: get("CURRENCY").ok_or(DecodeError::MissingColumn("CURRENCY"))?,
            dimensions: dimensions
                .iter()
                .map(|d| (d.as_str(), get(d.as_str())))
                .collect(),
        })
    }
}

/// Decodes and aggregates one callback body; `dimensions` are the optional dimensions that
/// become part of each fact's key.
pub fn decode(body: &[u8], dimensions: &[BillingUsageAggregate]) -> Result<Decoded, DecodeError> {
    let wire: WireResult<'_> =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    let outcome = match wire.status {
        QueryAggregateDataStatus::Success => {
            let response = wire.response.ok_or(DecodeError::MissingResponse)?;
            Outcome::Success(usage(response, wire.metadata, dimensions)?)
        }
        QueryAggregateDataStatus::Failed => Outcome::Failed {
            message: wire.failure_message.unwrap_or_default(),
        },
        QueryAggregateDataStatus::Unknown => Outcome::Failed {
            message: "result status is neither SUCCESS nor FAILED".into(),
        },
    };
    Ok(Decoded {
        request_id: wire.request_id,
        outcome,
    })
}

fn usage(
    response: WireResponse<'_>,
    metadata: Option<BillingUsageMetadata>,
    dimensions: &[BillingUsageAggregate],
) -> Result<Usage, DecodeError> {
    let columns = Columns::find(&response.columns, dimensions)?;
    if usize::try_from(response.total_rows).ok() != Some(response.rows.len()) {
        tracing::warn!(
            total_rows = response.total_rows,
            rows = response.rows.len(),
            "totalRows differs from the rows delivered; trusting the rows"
        );
    }
    // The effective period, not the one asked for, is what the result covers (reference A4).
    let covered = response.requested_period.covered_days();
    let mut facts: HashMap<(time::Date, FactKey), Amount> = HashMap::new();
    let mut outside = 0usize;
    for (row_no, row) in response.rows.iter().enumerate() {
        if row.len() != response.columns.len() {
            return Err(DecodeError::RowWidth {
                row: row_no,
                found: row.len(),
                expected: response.columns.len(),
            });
        }
        let cell = |column: &'static str, i: usize| RowCell {
            row: row_no,
            column,
            raw: row[i].get(),
        };
        let day_text = cell("DAY", columns.day).text()?;
        let day = parse_instant(&day_text)
            .ok_or_else(|| cell("DAY", columns.day).problem("not a date-time"))?
            .date();
        if !covered.contains(day) {
            outside += 1;
            continue;
        }
        let Some(cost) = cell("TOTAL_PER_UNIT", columns.total).number()? else {
            continue;
        };
        let quantity = match columns.quantity {
            Some(i) => cell("QUANTITY", i).number()?.unwrap_or_default(),
            None => Decimal::ZERO,
        };
        let text_or_na = |column: &'static str, i: Option<usize>| -> Result<String, DecodeError> {
            match i {
                Some(i) => cell(column, i).text().map(|t| t.into_owned()),
                None => Ok(NOT_APPLICABLE.to_owned()),
            }
        };
        let key = FactKey {
            account: text_or_na("ACCOUNT_NAME", columns.account)?,
            account_key: text_or_na("ACCOUNT_KEY", columns.account_key)?,
            category: text_or_na("CATEGORY_CODE", columns.category)?,
            currency: cell("CURRENCY", columns.currency).text()?.into_owned(),
            unit: text_or_na("UNIT_TYPE", columns.unit)?,
            dimensions: columns
                .dimensions
                .iter()
                .map(|&(name, i)| text_or_na(name, i))
                .collect::<Result<_, _>>()?,
        };
        *facts.entry((day, key)).or_default() += Amount { cost, quantity };
    }
    if outside > 0 {
        tracing::warn!(rows = outside, %covered.since, %covered.until, "rows outside requestedPeriod ignored");
    }
    let periods = match metadata {
        Some(m) => m
            .billing_periods
            .into_iter()
            .map(|p| {
                let month = p
                    .month
                    .parse::<YearMonth>()
                    .map_err(|_| DecodeError::Month(p.month))?;
                Ok((month, p.volume_finalized))
            })
            .collect::<Result<Vec<_>, DecodeError>>()?,
        // No metadata: finalization unknown, so provisional (reference A19).
        None => Vec::new(),
    };
    Ok(Usage {
        covered: Some(covered),
        periods,
        facts,
    })
}

struct RowCell<'a> {
    row: usize,
    column: &'static str,
    raw: &'a str,
}

impl<'a> RowCell<'a> {
    fn problem(&self, problem: &str) -> DecodeError {
        DecodeError::Cell {
            row: self.row,
            column: self.column,
            problem: format!("{problem}: {}", self.raw),
        }
    }

    /// A string cell (numbers are accepted as their text); `"N/A"` and `null` stay `"N/A"`.
    fn text(&self) -> Result<std::borrow::Cow<'a, str>, DecodeError> {
        let raw = self.raw;
        if raw == "null" {
            return Ok(NOT_APPLICABLE.into());
        }
        if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            if !inner.contains('\\') {
                return Ok(inner.into());
            }
            return serde_json::from_str::<String>(raw)
                .map(Into::into)
                .map_err(|e| self.problem(&e.to_string()));
        }
        if parse_decimal(raw).is_some() {
            return Ok(raw.into());
        }
        Err(self.problem("expected a string"))
    }

    /// A number cell, also a numeric string; `"N/A"` or `null` give `None`.
    fn number(&self) -> Result<Option<Decimal>, DecodeError> {
        let text = self.text()?;
        if text == NOT_APPLICABLE {
            return Ok(None);
        }
        parse_decimal(text.trim())
            .map(Some)
            .ok_or_else(|| self.problem("expected a decimal number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const EXAMPLE_15_1: &str = r#"{
      "requestId": "7C1E0B5A93D24F60A1B8E2F4C6D80917",
      "status": "SUCCESS",
      "response": {
        "requestedPeriod": { "sentSince": "2026-04-01T00:00:00.000+0000", "sentUntil": "2026-04-04T00:00:00.000+0000" },
        "totalRows": 5,
        "columns": [
          { "columnName": "DAY",            "columnDataType": "DATE_TIME" },
          { "columnName": "ACCOUNT_NAME",   "columnDataType": "STRING" },
          { "columnName": "CATEGORY_CODE",  "columnDataType": "STRING" },
          { "columnName": "TRAFFIC_TYPE",   "columnDataType": "STRING" },
          { "columnName": "UNIT_TYPE",      "columnDataType": "STRING" },
          { "columnName": "UNIT_PRICE",     "columnDataType": "NUMBER" },
          { "columnName": "QUANTITY",       "columnDataType": "NUMBER" },
          { "columnName": "TOTAL_PER_UNIT", "columnDataType": "NUMBER" },
          { "columnName": "CURRENCY",       "columnDataType": "STRING" }
        ],
        "rows": [
          ["2026-04-01T00:00:00.000+0000", "Acme Retail", "SMS",      "A2P",       "message part", 0.0072, 12040, 86.69, "EUR"],
          ["2026-04-01T00:00:00.000+0000", "Acme Retail", "WHATSAPP", "MARKETING", "message",      0.0512,   310, 15.87, "EUR"],
          ["2026-04-02T00:00:00.000+0000", "Acme Retail", "SMS",      "A2P",       "message part", 0.0072,  9875, 71.10, "EUR"],
          ["2026-04-02T00:00:00.000+0000", "Acme Retail", "WHATSAPP", "UTILITY",   "message",      0.0081,   144,  1.17, "EUR"],
          ["2026-04-03Z", "Acme Retail", "SMS",      "A2P",       "message part", 0.0072, 10502, 75.61, "EUR"]
        ]
      },
      "metadata": {
        "clientRequestedPeriod": { "sentSince": "2026-04-01T00:00:00.000+0000", "sentUntil": "2026-04-04T00:00:00.000+0000" },
        "billingPeriods": [ { "month": "2026-04", "volumeFinalized": false } ]
      }
    }"#;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn reference_example_decodes_by_column_name() {
        let body = EXAMPLE_15_1.replace("\"2026-04-03Z\"", "\"2026-04-03\"");
        let decoded = decode(body.as_bytes(), &[]).unwrap();
        let Outcome::Success(usage) = decoded.outcome else {
            panic!("expected success");
        };
        assert_eq!(usage.covered.unwrap().since, date!(2026 - 04 - 01));
        assert_eq!(usage.covered.unwrap().until, date!(2026 - 04 - 04));
        let total: Decimal = usage.facts.values().map(|a| a.cost).sum();
        assert_eq!(total, dec("250.44"));
        let key = FactKey {
            account: "Acme Retail".into(),
            account_key: "N/A".into(),
            category: "SMS".into(),
            currency: "EUR".into(),
            unit: "message part".into(),
            dimensions: Vec::new(),
        };
        assert_eq!(
            usage.facts[&(date!(2026 - 04 - 01), key)].quantity,
            dec("12040")
        );
        assert_eq!(usage.periods, vec![("2026-04".parse().unwrap(), false)]);
    }

    #[test]
    fn optional_dimensions_are_read_by_name_and_missing_ones_are_na() {
        let body = EXAMPLE_15_1.replace("\"2026-04-03Z\"", "\"2026-04-03\"");
        let dims = [
            BillingUsageAggregate::TRAFFIC_TYPE,
            BillingUsageAggregate::COUNTRY_CODE,
        ];
        let Outcome::Success(usage) = decode(body.as_bytes(), &dims).unwrap().outcome else {
            panic!("expected success");
        };
        let mut values: Vec<Vec<String>> = usage
            .facts
            .keys()
            .map(|(_, k)| k.dimensions.clone())
            .collect();
        values.sort();
        values.dedup();
        let expected: Vec<Vec<String>> = ["A2P", "MARKETING", "UTILITY"]
            .iter()
            .map(|t| vec![(*t).to_owned(), "N/A".to_owned()])
            .collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn bad_day_cell_names_row_and_column() {
        let err = decode(EXAMPLE_15_1.as_bytes(), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "row 4, column DAY: not a date-time: \"2026-04-03Z\""
        );
        assert_eq!(err.reason(), "schema");
    }

    #[test]
    fn na_and_numeric_strings_are_tolerated() {
        let body = r#"{"requestId":"R","status":"SUCCESS","response":{
          "requestedPeriod":{"sentSince":"2026-04-01T00:00:00Z","sentUntil":"2026-04-02T00:00:00Z"},
          "totalRows":2,
          "columns":[{"columnName":"CURRENCY","columnDataType":"STRING"},
                     {"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"},
                     {"columnName":"DAY","columnDataType":"DATE_TIME"}],
          "rows":[["USD","1.005","2026-04-01"],["USD","N/A","2026-04-01"]]}}"#;
        let Outcome::Success(usage) = decode(body.as_bytes(), &[]).unwrap().outcome else {
            panic!("expected success");
        };
        let total: Decimal = usage.facts.values().map(|a| a.cost).sum();
        assert_eq!(total, dec("1.005"));
        assert!(usage.periods.is_empty(), "no metadata: provisional");
    }

    #[test]
    fn failed_and_unknown_status_are_failures() {
        let failed = decode(
            br#"{"requestId":"R","status":"FAILED","failureMessage":"Could not load data"}"#,
            &[],
        )
        .unwrap();
        assert_eq!(
            failed.outcome,
            Outcome::Failed {
                message: "Could not load data".into()
            }
        );
        let odd = decode(br#"{"requestId":"R","status":"PARTIAL"}"#, &[]).unwrap();
        assert!(matches!(odd.outcome, Outcome::Failed { .. }));
    }

    #[test]
    fn malformed_json_and_missing_columns_are_errors() {
        assert_eq!(
            decode(b"{not json", &[]).unwrap_err().reason(),
            "malformed_json"
        );
        let body = r#"{"requestId":"R","status":"SUCCESS","response":{
          "requestedPeriod":{"sentSince":"2026-04-01","sentUntil":"2026-04-02"},
          "totalRows":0,"columns":[{"columnName":"DAY","columnDataType":"DATE_TIME"}],"rows":[]}}"#;
        assert_eq!(
            decode(body.as_bytes(), &[]).unwrap_err(),
            DecodeError::MissingColumn("TOTAL_PER_UNIT")
        );
    }
}
