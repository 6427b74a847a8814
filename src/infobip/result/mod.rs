//! Decodes a callback body (`BillingUsageResult`) into ledger facts, as the body arrives.
//!
//! Bodies run to hundreds of MiB, so they are never held whole: a [`StreamDecoder`] is fed
//! chunks, splits the `response.rows` array into rows as it goes and aggregates each row
//! straight into the facts, while the small rest of the document (the "skeleton": requestId,
//! status, period, columns, metadata) is kept and read with serde at the end. Memory is the
//! facts plus a row or two, whatever the body size. Columns are found by `columnName`, never by
//! position (reference A10); cells are read from their raw JSON text so money is exact (A16).
//!
//! `stream` drives the decoding, `skeleton` follows the document around the rows, `row` finds
//! the cells of a row, `columns` says which cell holds what, `cell` reads a cell's value and
//! `aggregate` sums the rows into facts.

mod aggregate;
mod cell;
mod columns;
mod row;
mod skeleton;
mod stream;

pub use stream::{StreamDecoder, decode};

use crate::billing::facts::Usage;

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
    /// Cells line up with columns by position, so two columns of one name leave it open which
    /// holds the value (the spec makes `columns` `uniqueItems`).
    #[error("result names column {0:?} more than once, so it cannot be read unambiguously")]
    DuplicateColumn(String),
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
            DecodeError::DuplicateColumn(_) => "duplicate_column",
            _ => "schema",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::facts::FactKey;
    use crate::infobip::model::BillingUsageAggregate;
    use rust_decimal::Decimal;
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
        let total: Decimal = usage.facts().values().map(|a| a.cost).sum();
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
            usage.facts()[&(date!(2026 - 04 - 01), key)].quantity,
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
            .facts()
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
        let total: Decimal = usage.facts().values().map(|a| a.cost).sum();
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

    #[test]
    fn a_column_named_twice_is_refused() {
        // Two TOTAL_PER_UNIT columns: either could be the cost, so neither is read.
        let body = EXAMPLE_15_1
            .replace("\"2026-04-03Z\"", "\"2026-04-03\"")
            .replace("\"UNIT_PRICE\", ", "\"TOTAL_PER_UNIT\",");
        let err = decode(body.as_bytes(), &[]).unwrap_err();
        assert_eq!(err, DecodeError::DuplicateColumn("TOTAL_PER_UNIT".into()));
        assert_eq!(err.reason(), "duplicate_column");
        assert_eq!(
            err.to_string(),
            "result names column \"TOTAL_PER_UNIT\" more than once, so it cannot be read unambiguously"
        );
        // Also a column the exporter does not read, refused once the columns are in: while the
        // body is still being fed.
        let body = EXAMPLE_15_1.replace("\"TRAFFIC_TYPE\",  ", "\"UNIT_PRICE\",");
        let mut d = StreamDecoder::new(&[]);
        for chunk in body.as_bytes().chunks(7) {
            if let Err(err) = d.feed(chunk) {
                assert_eq!(err, DecodeError::DuplicateColumn("UNIT_PRICE".into()));
                return;
            }
        }
        panic!(
            "the duplicate was not refused while feeding: {:?}",
            d.finish()
        );
    }

    #[test]
    fn any_chunking_gives_the_same_result() {
        let body = EXAMPLE_15_1.replace("\"2026-04-03Z\"", "\"2026-04-03\"");
        let whole = decode(body.as_bytes(), &[]).unwrap();
        for split in 1..body.len() {
            let mut d = StreamDecoder::new(&[]);
            let (a, b) = body.as_bytes().split_at(split);
            d.feed(a).unwrap();
            d.feed(b).unwrap();
            assert_eq!(d.finish().unwrap(), whole, "split at {split}");
        }
        let mut d = StreamDecoder::new(&[]);
        for byte in body.as_bytes().chunks(1) {
            d.feed(byte).unwrap();
        }
        assert_eq!(d.finish().unwrap(), whole, "byte by byte");
    }

    #[test]
    fn tricky_strings_and_rows_before_columns() {
        // Brackets, commas, quotes and the word "rows" inside strings; rows before columns.
        let body = r#"{"status":"SUCCESS","requestId":"a \"rows\": [x]","response":{
          "requestedPeriod":{"sentSince":"2026-04-01","sentUntil":"2026-04-02"},
          "totalRows":2,
          "rows":[["2026-04-01","Acme ]\"[, Inc.","EUR",1.5],["2026-04-01","Acme ]\"[, Inc.","EUR",2]],
          "columns":[{"columnName":"DAY","columnDataType":"DATE_TIME"},
                     {"columnName":"ACCOUNT_NAME","columnDataType":"STRING"},
                     {"columnName":"CURRENCY","columnDataType":"STRING"},
                     {"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}]}}"#;
        let decoded = decode(body.as_bytes(), &[]).unwrap();
        assert_eq!(decoded.request_id, "a \"rows\": [x]");
        let Outcome::Success(usage) = decoded.outcome else {
            panic!("expected success");
        };
        let facts = usage.facts();
        let (key, amount) = facts.iter().next().unwrap();
        assert_eq!(facts.len(), 1);
        assert_eq!(key.1.account, "Acme ]\"[, Inc.");
        assert_eq!(amount.cost, dec("3.5"));
    }

    #[test]
    fn spellings_of_one_value_are_one_fact_and_whitespace_is_ignored() {
        // "Café" sent raw, escaped and in pieces; the day in two forms; cells spread over lines.
        let body = "{\"requestId\":\"R\",\"status\":\"SUCCESS\",\"response\":{
          \"requestedPeriod\":{\"sentSince\":\"2026-04-01\",\"sentUntil\":\"2026-04-02\"},
          \"totalRows\":3,
          \"columns\":[{\"columnName\":\"DAY\",\"columnDataType\":\"DATE_TIME\"},
                     {\"columnName\":\"ACCOUNT_NAME\",\"columnDataType\":\"STRING\"},
                     {\"columnName\":\"CURRENCY\",\"columnDataType\":\"STRING\"},
                     {\"columnName\":\"TOTAL_PER_UNIT\",\"columnDataType\":\"NUMBER\"}],
          \"rows\":[ [\"2026-04-01\", \"Caf\u{e9}\", \"EUR\", 0.10] ,
            [ \"2026-04-01T00:00:00.000+0000\" ,\"Caf\\u00e9\",\"EUR\",\t\"0.20\"\t],
            [\r\n\"2026-04-01T00:00:00Z\",\r\n\"Ca\\u0066\\u00E9\",\r\n\"EUR\",\r\n3e-1\r\n]
          ]}}";
        let Outcome::Success(usage) = decode(body.as_bytes(), &[]).unwrap().outcome else {
            panic!("expected success");
        };
        let facts = usage.facts();
        assert_eq!(facts.len(), 1, "{facts:?}");
        let ((day, key), amount) = facts.iter().next().unwrap();
        assert_eq!(*day, date!(2026 - 04 - 01));
        assert_eq!(key.account, "Caf\u{e9}");
        assert_eq!(amount.cost, dec("0.6"));
    }

    #[test]
    fn rows_that_begin_like_the_row_before_are_read_whole() {
        // Each row begins like the one before it up to somewhere tricky: inside a string after
        // a comma or an escaped quote, in the whitespace after a cell, inside a number. Rows
        // without a cost are not summed, so the row after one is not like the row summed last;
        // the day changes under an account seen before.
        let rows = [
            r#"["2026-04-01","A,B","EUR",1]"#,
            r#"["2026-04-01","A,C","EUR",2]"#,
            r#"["2026-04-01","A\"","EUR",4]"#,
            r#"["2026-04-01","A\"x","EUR",8]"#,
            r#"["2026-04-01","A\"x" ,"EUR",16]"#,
            r#"["2026-04-01","A\"x","EUR","N/A"]"#,
            r#"["2026-04-01","A\"x","EUR",32.5]"#,
            r#"["2026-04-01","A\"x","EUR",3]"#,
            r#"["2026-04-01","Z","EUR","N/A"]"#,
            r#"["2026-04-01","Z","EUR",0.25]"#,
            r#"["2026-04-02","A\"x","EUR",64]"#,
            r#"["2026-04-02", "A,B","EUR",128]"#,
        ];
        let body = |rows: &[&str]| {
            format!(
                r#"{{"requestId":"R","status":"SUCCESS","response":{{
                  "requestedPeriod":{{"sentSince":"2026-04-01","sentUntil":"2026-04-03"}},
                  "totalRows":{},
                  "columns":[{{"columnName":"DAY","columnDataType":"DATE_TIME"}},
                             {{"columnName":"ACCOUNT_NAME","columnDataType":"STRING"}},
                             {{"columnName":"CURRENCY","columnDataType":"STRING"}},
                             {{"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}}],
                  "rows":[{}]}}}}"#,
                rows.len(),
                rows.join(",")
            )
        };
        let costs = |decoded: Decoded| {
            let Outcome::Success(usage) = decoded.outcome else {
                panic!("expected success");
            };
            usage
                .facts()
                .into_iter()
                .map(|((day, key), amount)| ((day, key.account), amount.cost))
                .collect::<Vec<_>>()
        };
        let whole = body(&rows);
        let expected = vec![
            ((date!(2026 - 04 - 01), "A\"".to_owned()), dec("4")),
            ((date!(2026 - 04 - 01), "A\"x".to_owned()), dec("59.5")),
            ((date!(2026 - 04 - 01), "A,B".to_owned()), dec("1")),
            ((date!(2026 - 04 - 01), "A,C".to_owned()), dec("2")),
            ((date!(2026 - 04 - 01), "Z".to_owned()), dec("0.25")),
            ((date!(2026 - 04 - 02), "A\"x".to_owned()), dec("64")),
            ((date!(2026 - 04 - 02), "A,B".to_owned()), dec("128")),
        ];
        assert_eq!(costs(decode(whole.as_bytes(), &[]).unwrap()), expected);
        for split in 1..whole.len() {
            let mut d = StreamDecoder::new(&[]);
            let (a, b) = whole.as_bytes().split_at(split);
            d.feed(a).unwrap();
            d.feed(b).unwrap();
            assert_eq!(costs(d.finish().unwrap()), expected, "split at {split}");
        }
        let mut rows = rows.to_vec();
        rows.push(r#"["2026-04-02", "A,B","EUR",1,2]"#);
        assert_eq!(
            decode(body(&rows).as_bytes(), &[]).unwrap_err(),
            DecodeError::RowWidth {
                row: 12,
                found: 5,
                expected: 4
            }
        );
    }

    #[test]
    fn truncated_and_nested_bodies_are_refused() {
        let body = EXAMPLE_15_1.replace("\"2026-04-03Z\"", "\"2026-04-03\"");
        let cut = body.find("\"Acme Retail\", \"WHATSAPP\"").unwrap();
        let err = decode(&body.as_bytes()[..cut], &[]).unwrap_err();
        assert_eq!(err.reason(), "malformed_json", "{err}");
        let nested = body.replacen("86.69", "[86.69]", 1);
        assert_eq!(
            decode(nested.as_bytes(), &[]).unwrap_err().reason(),
            "schema"
        );
    }
}
