//! `query`'s output: a result in each format (`--format`), and the notes for stderr: what
//! `--final-only` left out, and the totals with `--totals`.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;

use crate::billing::calendar::DayRange;
use crate::commands::output::{self, RowsError};
use crate::export::focus::{self, Billing, FocusError};
use crate::export::sheet::{Sheet, Value, totals_text};
use crate::export::xlsx::{self, WorkbookError};
use crate::infobip::model::BillingUsageResult;

/// Output formats of `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, then one TOTAL line per currency.
    Table,
    /// RFC 4180 CSV: a header row, then the data rows only (totals with --totals, on stderr).
    Csv,
    /// One JSON document: columns, rows as objects, totals per currency apart.
    Json,
    /// FOCUS 1.2 CSV for FinOps tools, one charge per day and sub-account (docs/focus.md).
    Focus,
    /// An XLSX workbook (needs --out): the rows as typed cells, and a totals sheet.
    Xlsx,
}

/// Why a result cannot be written in a format; `reason()` is a bounded label.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Rows(#[from] RowsError),
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write the JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Focus(#[from] FocusError),
    #[error(transparent)]
    Xlsx(#[from] WorkbookError),
}

impl RenderError {
    pub fn reason(&self) -> &'static str {
        match self {
            RenderError::Rows(RowsError::Failed(_)) => "failed_result",
            RenderError::Rows(RowsError::Unusable(_)) => "unusable_result",
            RenderError::Csv(_)
            | RenderError::Json(_)
            | RenderError::Focus(_)
            | RenderError::Xlsx(_) => "export",
        }
    }
}

/// What `query` prints: the rows on stdout (nothing with `--out`), notes on stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// What rendering needs beyond the result.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The days asked for, `until` exclusive.
    pub asked: DayRange,
    pub final_only: bool,
    /// Print the totals per currency on stderr too (`--totals`).
    pub totals: bool,
    /// The target's name, FOCUS `BillingAccountName`.
    pub target: &'a str,
    /// FOCUS `BillingAccountId`: see [`output::billing_account_id`].
    pub account_id: &'a str,
}

/// A result in one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    /// Data rows written.
    pub rows: usize,
    /// For stderr: what `--final-only` left out, and the totals with `--totals`.
    pub notes: String,
}

/// The printed form of a result.
pub fn render(
    result: &BillingUsageResult,
    format: OutputFormat,
    context: &Context<'_>,
) -> Result<Rendered, RenderError> {
    let mut sheet = output::sheet_of(result)?;
    // Stable output: rows ordered by their dimension values.
    sheet.sort();
    let covered = result
        .response
        .as_ref()
        .map(|r| r.requested_period.covered_days());
    let mut notes = String::new();
    if context.final_only {
        notes.push_str(&final_only_note(context.asked, covered));
    }
    let totals = sheet.totals();
    if context.totals {
        notes.push_str(&totals_text(&totals));
    }
    let mut rows = sheet.rows.len();
    let bytes = match format {
        OutputFormat::Table => sheet.text_table().into_bytes(),
        OutputFormat::Csv => sheet.csv()?,
        OutputFormat::Json => render_json(result, &sheet, &totals, covered)?.into_bytes(),
        OutputFormat::Focus => {
            let final_months = output::final_months(result);
            let billing = Billing {
                account_id: context.account_id,
                account_name: context.target,
                final_months: &final_months,
                // One query has no earlier figures to compare with.
                corrections: &BTreeSet::new(),
            };
            rows = focus::charges(&sheet);
            focus::csv(&sheet, &billing)?
        }
        OutputFormat::Xlsx => xlsx::workbook(&sheet)?,
    };
    Ok(Rendered { bytes, rows, notes })
}

/// What `--final-only` left out: every day, or the days after the last final month.
fn final_only_note(asked: DayRange, covered: Option<DayRange>) -> String {
    let last = |r: DayRange| r.until.previous_day().unwrap_or(r.until);
    match covered {
        Some(c) if c.is_empty() => format!(
            "no month from {} to {} is final yet: --final-only gives no rows\n",
            asked.since,
            last(asked)
        ),
        Some(c) if c.until < asked.until => format!(
            "only {} to {} is final: --final-only leaves out the days after\n",
            c.since,
            last(c)
        ),
        _ => String::new(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonOutput<'a> {
    request_id: &'a str,
    /// The period Infobip used, `until` inclusive like the command line; `null` when it holds
    /// no day (with `--final-only`, when no month in range is final).
    period: Option<JsonPeriod>,
    billing_periods: Vec<JsonBillingPeriod<'a>>,
    columns: &'a [String],
    rows: Vec<BTreeMap<&'a str, Exact<'a>>>,
    totals: Vec<JsonTotal<'a>>,
}

#[derive(Serialize)]
struct JsonPeriod {
    from: String,
    until: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonBillingPeriod<'a> {
    month: &'a str,
    volume_finalized: bool,
}

#[derive(Serialize)]
struct JsonTotal<'a> {
    currency: &'a str,
    total: Exact<'a>,
}

/// A value in JSON with the digits Infobip sent: numbers as JSON numbers, never through a
/// float; days, months and `N/A` as strings.
struct Exact<'a>(&'a Value);

impl Serialize for Exact<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => serde_json::value::RawValue::from_string(n.to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            other => s.serialize_str(&other.text()),
        }
    }
}

fn render_json(
    result: &BillingUsageResult,
    sheet: &Sheet,
    totals: &BTreeMap<String, Decimal>,
    covered: Option<DayRange>,
) -> Result<String, serde_json::Error> {
    let period = covered.filter(|c| !c.is_empty()).map(|days| JsonPeriod {
        from: days.since.to_string(),
        until: days.until.previous_day().unwrap_or(days.until).to_string(),
    });
    let totals: Vec<(&String, Value)> = totals
        .iter()
        .map(|(currency, total)| (currency, Value::Number(*total)))
        .collect();
    let out = JsonOutput {
        request_id: &result.request_id,
        period,
        billing_periods: result
            .metadata
            .iter()
            .flat_map(|m| &m.billing_periods)
            .map(|p| JsonBillingPeriod {
                month: &p.month,
                volume_finalized: p.volume_finalized,
            })
            .collect(),
        columns: &sheet.columns,
        rows: sheet
            .rows
            .iter()
            .map(|r| {
                sheet
                    .columns
                    .iter()
                    .map(String::as_str)
                    .zip(r.iter().map(Exact))
                    .collect()
            })
            .collect(),
        totals: totals
            .iter()
            .map(|(currency, total)| JsonTotal {
                currency,
                total: Exact(total),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&out)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn result(rows: &str) -> BillingUsageResult {
        serde_json::from_str(&format!(
            r#"{{"requestId":"R1","status":"SUCCESS","response":{{
                "requestedPeriod":{{"sentSince":"2026-11-01T00:00:00.000+0000","sentUntil":"2026-11-03T00:00:00.000+0000"}},
                "totalRows":3,
                "columns":[{{"columnName":"DAY","columnDataType":"DATE_TIME"}},{{"columnName":"ACCOUNT_NAME","columnDataType":"STRING"}},
                  {{"columnName":"UNIT_TYPE","columnDataType":"STRING"}},{{"columnName":"QUANTITY","columnDataType":"NUMBER"}},
                  {{"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}},{{"columnName":"CURRENCY","columnDataType":"STRING"}}],
                "rows":{rows}}},
              "metadata":{{"clientRequestedPeriod":{{"sentSince":"2026-11-01","sentUntil":"2026-11-03"}},
                "billingPeriods":[{{"month":"2026-11","volumeFinalized":false}}]}}}}"#
        ))
        .unwrap()
    }

    const ROWS: &str = r#"[["2026-11-02T00:00:00.000+0000","Acme, Inc","message",3,0.10,"EUR"],
        ["2026-11-01T00:00:00.000+0000","Acme, Inc","message",1200,12.05,"EUR"],
        ["2026-11-01T00:00:00.000+0000","Beta","N/A",7,1.5,"USD"]]"#;

    const CONTEXT: Context<'static> = Context {
        asked: DayRange {
            since: date!(2026 - 11 - 01),
            until: date!(2026 - 11 - 03),
        },
        final_only: false,
        totals: false,
        target: "eu",
        account_id: "xxxxx.api.infobip.com",
    };

    fn rendered(rows: &str, format: OutputFormat) -> String {
        let r = render(&result(rows), format, &CONTEXT).unwrap();
        assert_eq!(r.notes, "");
        String::from_utf8(r.bytes).unwrap()
    }

    #[test]
    fn table_is_aligned_with_totals_per_currency() {
        assert_eq!(
            rendered(ROWS, OutputFormat::Table),
            "DAY         ACCOUNT_NAME  UNIT_TYPE  QUANTITY  TOTAL_PER_UNIT  CURRENCY\n\
             2026-11-01  Acme, Inc     message        1200           12.05  EUR\n\
             2026-11-01  Beta          N/A               7             1.5  USD\n\
             2026-11-02  Acme, Inc     message           3            0.10  EUR\n\
             \n\
             TOTAL EUR 12.15\n\
             TOTAL USD   1.5\n"
        );
    }

    #[test]
    fn csv_quotes_and_has_data_rows_only() {
        let text = rendered(ROWS, OutputFormat::Csv);
        assert_eq!(
            text,
            "DAY,ACCOUNT_NAME,UNIT_TYPE,QUANTITY,TOTAL_PER_UNIT,CURRENCY\r\n\
             2026-11-01,\"Acme, Inc\",message,1200,12.05,EUR\r\n\
             2026-11-01,Beta,N/A,7,1.5,USD\r\n\
             2026-11-02,\"Acme, Inc\",message,3,0.10,EUR\r\n"
        );
        let with_totals = Context {
            totals: true,
            ..CONTEXT
        };
        let r = render(&result(ROWS), OutputFormat::Csv, &with_totals).unwrap();
        assert_eq!(r.notes, "TOTAL EUR 12.15\nTOTAL USD   1.5\n", "on stderr");
        assert_eq!(String::from_utf8(r.bytes).unwrap(), text, "not in the CSV");
    }

    #[test]
    fn json_keeps_exact_numbers() {
        let text = rendered(ROWS, OutputFormat::Json);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["period"],
            serde_json::json!({"from": "2026-11-01", "until": "2026-11-02"})
        );
        assert_eq!(v["rows"][0]["DAY"], "2026-11-01");
        assert!(text.contains("\"total\": 12.15"), "{text}");
        assert!(text.contains("\"TOTAL_PER_UNIT\": 0.10"), "as sent: {text}");
        assert_eq!(v["billingPeriods"][0]["volumeFinalized"], false);
    }

    #[test]
    fn final_only_says_when_no_month_is_final() {
        let empty = r#"{"requestId":"R1","status":"SUCCESS","response":{
            "requestedPeriod":{"sentSince":"2026-11-01T00:00:00.000+0000","sentUntil":"2026-11-01T00:00:00.000+0000"},
            "totalRows":0,"columns":[{"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}],"rows":[]},
          "metadata":{"clientRequestedPeriod":{"sentSince":"2026-11-01","sentUntil":"2026-11-27"},"billingPeriods":[]}}"#;
        let result: BillingUsageResult = serde_json::from_str(empty).unwrap();
        let context = Context {
            asked: DayRange {
                since: date!(2026 - 11 - 01),
                until: date!(2026 - 11 - 27),
            },
            final_only: true,
            ..CONTEXT
        };
        let r = render(&result, OutputFormat::Json, &context).unwrap();
        assert_eq!(
            r.notes,
            "no month from 2026-11-01 to 2026-11-26 is final yet: --final-only gives no rows\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&r.bytes).unwrap();
        assert_eq!(v["period"], serde_json::Value::Null, "no backwards period");
        // A range cut at the first provisional month says where.
        let asked = DayRange {
            since: date!(2026 - 09 - 01),
            until: date!(2026 - 11 - 27),
        };
        let october = DayRange {
            since: date!(2026 - 09 - 01),
            until: date!(2026 - 10 - 01),
        };
        assert_eq!(
            final_only_note(asked, Some(october)),
            "only 2026-09-01 to 2026-09-30 is final: --final-only leaves out the days after\n"
        );
        assert_eq!(final_only_note(asked, Some(asked)), "");
    }

    #[test]
    fn failed_result_is_an_error() {
        let failed: BillingUsageResult = serde_json::from_str(
            r#"{"requestId":"R","status":"FAILED","failureMessage":"Could not load data"}"#,
        )
        .unwrap();
        let err = render(&failed, OutputFormat::Table, &CONTEXT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Infobip could not run the query: Could not load data"
        );
    }
}
