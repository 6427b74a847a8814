//! Decodes a callback body (`BillingUsageResult`) into ledger facts, as the body arrives.
//!
//! Bodies run to hundreds of MiB, so they are never held whole: a [`StreamDecoder`] is fed
//! chunks, splits the `response.rows` array into rows as it goes and aggregates each row
//! straight into the facts, while the small rest of the document (the "skeleton": requestId,
//! status, period, columns, metadata) is kept and read with serde at the end. Memory is the
//! facts plus one row, whatever the body size. Columns are found by `columnName`, never by
//! position (reference A10); cells are read from their raw JSON text so money is exact (A16).

use std::borrow::Cow;
use std::collections::BTreeMap;

use hashbrown::HashMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::Date;

use super::model::{
    BillingUsageAggregate, BillingUsageMetadata, DateTimeInterval, QueryAggregateDataStatus,
    parse_decimal, parse_instant,
};
use crate::billing::calendar::YearMonth;
use crate::billing::facts::{Amount, DayFacts, FIRST_DIMENSION, Usage};
use crate::billing::labels::{Labels, NOT_APPLICABLE, Tally};

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

/// The document without its rows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Skeleton {
    request_id: String,
    status: QueryAggregateDataStatus,
    #[serde(default)]
    failure_message: Option<String>,
    #[serde(default)]
    response: Option<SkeletonResponse>,
    #[serde(default)]
    metadata: Option<BillingUsageMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkeletonResponse {
    requested_period: DateTimeInterval,
    total_rows: i64,
    columns: Vec<WireColumn>,
    /// Always empty here: the decoder took the rows out.
    #[serde(rename = "rows")]
    _rows: [(); 0],
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireColumn {
    column_name: String,
}

/// Column names this exporter reads. The time column is `DAY`; `DATE` and `USAGE_DAY` are
/// accepted too, since no billing source shows its name (reference A5).
const DAY_COLUMNS: [&str; 3] = ["DAY", "DATE", "USAGE_DAY"];

/// Where each needed value sits in a row, found once per result.
struct Columns {
    width: usize,
    day: usize,
    total: usize,
    quantity: Option<usize>,
    /// The parts of a fact's key after the day: account, account key, category, currency,
    /// unit, then the optional dimensions in config order; `None` reads `N/A`.
    key: Vec<(&'static str, Option<usize>)>,
}

const CURRENCY_AT: usize = 3;

impl Columns {
    fn find(
        columns: &[WireColumn],
        dimensions: &[BillingUsageAggregate],
    ) -> Result<Self, DecodeError> {
        let index: HashMap<&str, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.column_name.as_str(), i))
            .collect();
        let get = |name: &str| index.get(name).copied();
        let day = DAY_COLUMNS.iter().find_map(|n| get(n));
        if let Some(alias) = DAY_COLUMNS[1..].iter().find(|n| get(n).is_some())
            && get("DAY").is_none()
        {
            tracing::warn!(
                column = alias,
                "time column is not named DAY; reading it as the day"
            );
        }
        let day = day.ok_or(DecodeError::MissingColumn("DAY"))?;
        let total = get("TOTAL_PER_UNIT").ok_or(DecodeError::MissingColumn("TOTAL_PER_UNIT"))?;
        let currency = get("CURRENCY").ok_or(DecodeError::MissingColumn("CURRENCY"))?;
        let mut key = vec![
            ("ACCOUNT_NAME", get("ACCOUNT_NAME")),
            ("ACCOUNT_KEY", get("ACCOUNT_KEY")),
            ("CATEGORY_CODE", get("CATEGORY_CODE")),
            ("CURRENCY", Some(currency)),
            ("UNIT_TYPE", get("UNIT_TYPE")),
        ];
        key.extend(dimensions.iter().map(|d| (d.as_str(), get(d.as_str()))));
        debug_assert_eq!(key[CURRENCY_AT].0, "CURRENCY");
        Ok(Self {
            width: columns.len(),
            day,
            total,
            quantity: get("QUANTITY"),
            key,
        })
    }
}

/// Decodes and aggregates one whole callback body; `dimensions` are the optional dimensions
/// that become part of each fact's key.
pub fn decode(body: &[u8], dimensions: &[BillingUsageAggregate]) -> Result<Decoded, DecodeError> {
    let mut decoder = StreamDecoder::new(dimensions);
    decoder.feed(body)?;
    decoder.finish()
}

/// Where the scanner is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Outside `response.rows`: bytes go to the skeleton.
    Skeleton,
    /// Inside `response.rows`, between rows.
    BetweenRows,
    /// Inside one row.
    InRow,
}

/// Which object a container is, as far as the decoder cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Top,
    Response,
    ColumnsArray,
    Other,
}

/// An incremental decoder: [`feed`](Self::feed) it the body in chunks of any size, then
/// [`finish`](Self::finish).
pub struct StreamDecoder {
    dimensions: Vec<BillingUsageAggregate>,
    mode: Mode,
    skeleton: Vec<u8>,
    /// Open containers in the skeleton: which, whether an object, whether a key comes next.
    stack: Vec<(Container, bool, bool)>,
    in_string: bool,
    escaped: bool,
    /// The last object key read, while it may still be the key of the next value.
    key: Vec<u8>,
    capturing_key: bool,
    columns_start: usize,
    columns: Option<Columns>,
    /// A row that spans chunks: its bytes so far and where its scan stopped.
    row: Vec<u8>,
    scan: RowScan,
    /// The (start, end) of each cell of the row being read.
    cells: Vec<Cell>,
    rows_seen: usize,
    /// Rows that came before `columns` (never seen from Infobip, but JSON allows it).
    deferred: Vec<(Vec<u8>, Vec<Cell>)>,
    aggregate: Aggregate,
}

impl StreamDecoder {
    pub fn new(dimensions: &[BillingUsageAggregate]) -> Self {
        Self {
            dimensions: dimensions.to_vec(),
            mode: Mode::Skeleton,
            skeleton: Vec::with_capacity(4096),
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            key: Vec::new(),
            capturing_key: false,
            columns_start: 0,
            columns: None,
            row: Vec::with_capacity(512),
            scan: RowScan::default(),
            cells: Vec::with_capacity(16),
            rows_seen: 0,
            deferred: Vec::new(),
            aggregate: Aggregate::new(FIRST_DIMENSION + dimensions.len()),
        }
    }

    /// Consumes the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let mut i = 0;
        while i < chunk.len() {
            i += match self.mode {
                Mode::Skeleton => self.skeleton_byte(chunk[i])?,
                Mode::BetweenRows => self.between_rows(&chunk[i..])?,
                Mode::InRow => self.row_continues(&chunk[i..])?,
            };
        }
        Ok(())
    }

    fn skeleton_byte(&mut self, b: u8) -> Result<usize, DecodeError> {
        self.skeleton.push(b);
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                return Ok(1);
            }
            if self.capturing_key && self.key.len() < 32 {
                self.key.push(b);
            }
            return Ok(1);
        }
        match b {
            b'"' => {
                self.in_string = true;
                let expecting_key = self.stack.last().is_some_and(|&(_, _, k)| k);
                self.capturing_key = expecting_key;
                if expecting_key {
                    self.key.clear();
                }
            }
            b':' => {
                if let Some(top) = self.stack.last_mut() {
                    top.2 = false;
                }
            }
            b',' => {
                if let Some(top) = self.stack.last_mut() {
                    top.2 = top.1;
                }
                self.key.clear();
            }
            b'{' | b'[' => {
                let parent = self.stack.last().map(|&(c, _, _)| c);
                let kind = match (parent, b, self.key.as_slice()) {
                    (None, b'{', _) => Container::Top,
                    (Some(Container::Top), b'{', b"response") => Container::Response,
                    (Some(Container::Response), b'[', b"rows") => {
                        self.mode = Mode::BetweenRows;
                        return Ok(1);
                    }
                    (Some(Container::Response), b'[', b"columns") => {
                        self.columns_start = self.skeleton.len() - 1;
                        Container::ColumnsArray
                    }
                    _ => Container::Other,
                };
                self.stack.push((kind, b == b'{', b == b'{'));
                self.key.clear();
            }
            b'}' | b']' => {
                if let Some((Container::ColumnsArray, _, _)) = self.stack.pop() {
                    self.read_columns()?;
                }
            }
            _ => {}
        }
        Ok(1)
    }

    /// Columns are small and come before the rows in every known result: read them at once so
    /// rows can be aggregated as they stream by.
    fn read_columns(&mut self) -> Result<(), DecodeError> {
        let raw = &self.skeleton[self.columns_start..];
        let columns: Vec<WireColumn> =
            serde_json::from_slice(raw).map_err(|e| DecodeError::Json(e.to_string()))?;
        let columns = Columns::find(&columns, &self.dimensions)?;
        for (row_no, (row, cells)) in std::mem::take(&mut self.deferred).iter().enumerate() {
            self.aggregate.row(&columns, row, cells, row_no)?;
        }
        self.columns = Some(columns);
        Ok(())
    }

    /// Reads rows between `[` and `]` of `response.rows`. A row wholly inside the chunk is read
    /// where it lies; only a row cut by the chunk's end is copied.
    fn between_rows(&mut self, rest: &[u8]) -> Result<usize, DecodeError> {
        let mut i = 0;
        while let Some(&b) = rest.get(i) {
            match b {
                b'[' => {
                    let row = &rest[i + 1..];
                    self.cells.clear();
                    self.scan = RowScan::default();
                    match self.scan.scan(row, &mut self.cells, self.rows_seen)? {
                        Some(end) => {
                            self.end_row(&row[..end])?;
                            i += 1 + end + 1;
                        }
                        None => {
                            self.row.clear();
                            self.row.extend_from_slice(row);
                            self.mode = Mode::InRow;
                            return Ok(rest.len());
                        }
                    }
                }
                b']' => {
                    // The rows array ends; the skeleton has its `[` already and gets the `]`.
                    self.skeleton.push(b']');
                    self.mode = Mode::Skeleton;
                    return Ok(i + 1);
                }
                b',' | b' ' | b'\n' | b'\r' | b'\t' => i += 1,
                other => {
                    return Err(DecodeError::Json(format!(
                        "expected a row array in response.rows, found {:?}",
                        char::from(other)
                    )));
                }
            }
        }
        Ok(rest.len())
    }

    /// Goes on with a row cut by the end of the previous chunk.
    fn row_continues(&mut self, chunk: &[u8]) -> Result<usize, DecodeError> {
        let before = self.row.len();
        self.row.extend_from_slice(chunk);
        let mut row = std::mem::take(&mut self.row);
        let found = self.scan.scan(&row, &mut self.cells, self.rows_seen);
        let consumed = match found {
            Ok(Some(end)) => {
                self.mode = Mode::BetweenRows;
                let ended = self.end_row(&row[..end]);
                row.truncate(before);
                ended.map(|()| end + 1 - before)
            }
            Ok(None) => Ok(chunk.len()),
            Err(e) => Err(e),
        };
        self.row = row;
        consumed
    }

    /// `row` is the text between a row's brackets; `self.cells` holds its cells.
    fn end_row(&mut self, row: &[u8]) -> Result<(), DecodeError> {
        // `[]` has one empty "cell" by the comma count: it has none.
        if let [(start, end)] = self.cells[..]
            && row[start..end].trim_ascii().is_empty()
        {
            self.cells.clear();
        }
        match &self.columns {
            Some(columns) => self
                .aggregate
                .row(columns, row, &self.cells, self.rows_seen)?,
            None => self.deferred.push((row.to_vec(), self.cells.clone())),
        }
        self.rows_seen += 1;
        Ok(())
    }

    /// Reads the skeleton and turns the aggregated rows into the result.
    pub fn finish(self) -> Result<Decoded, DecodeError> {
        if self.mode != Mode::Skeleton || self.in_string {
            return Err(DecodeError::Json(
                "the body ends inside the document".into(),
            ));
        }
        let skeleton: Skeleton =
            serde_json::from_slice(&self.skeleton).map_err(|e| DecodeError::Json(e.to_string()))?;
        let outcome = match skeleton.status {
            QueryAggregateDataStatus::Success => {
                let response = skeleton.response.ok_or(DecodeError::MissingResponse)?;
                if !self.deferred.is_empty() || self.columns.is_none() {
                    // Rows without columns, or columns never read: find out which.
                    Columns::find(&response.columns, &self.dimensions)?;
                }
                if usize::try_from(response.total_rows).ok() != Some(self.rows_seen) {
                    tracing::warn!(
                        total_rows = response.total_rows,
                        rows = self.rows_seen,
                        "totalRows differs from the rows delivered; trusting the rows"
                    );
                }
                Outcome::Success(
                    self.aggregate
                        .into_usage(response.requested_period, skeleton.metadata)?,
                )
            }
            QueryAggregateDataStatus::Failed => Outcome::Failed {
                message: skeleton.failure_message.unwrap_or_default(),
            },
            QueryAggregateDataStatus::Unknown => Outcome::Failed {
                message: "result status is neither SUCCESS nor FAILED".into(),
            },
        };
        Ok(Decoded {
            request_id: skeleton.request_id,
            outcome,
        })
    }
}

/// A cell's (start, end) in its row's text.
type Cell = (usize, usize);

/// Where the scan of a row stopped, so a row cut by a chunk's end is not scanned twice.
#[derive(Debug, Default)]
struct RowScan {
    pos: usize,
    cell_start: usize,
    in_string: bool,
    escaped: bool,
}

impl RowScan {
    /// Scans `row` (a row's text after its `[`) from where the last call stopped, pushing each
    /// cell's (start, end). Returns the index of the closing `]` once it is found.
    fn scan(
        &mut self,
        row: &[u8],
        cells: &mut Vec<Cell>,
        row_no: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let mut i = self.pos;
        while i < row.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else {
                    // Most of a row is string text: skip to the next quote or backslash.
                    while i < row.len() && row[i] != b'"' && row[i] != b'\\' {
                        i += 1;
                    }
                    match row.get(i) {
                        Some(b'"') => self.in_string = false,
                        Some(_) => self.escaped = true,
                        None => break,
                    }
                }
                i += 1;
                continue;
            }
            match row[i] {
                b'"' => self.in_string = true,
                b',' => {
                    cells.push((self.cell_start, i));
                    self.cell_start = i + 1;
                }
                b']' => {
                    cells.push((self.cell_start, i));
                    self.pos = i;
                    return Ok(Some(i));
                }
                b'[' | b'{' => {
                    return Err(DecodeError::Cell {
                        row: row_no,
                        column: "?",
                        problem: "a cell is an array or object; expected a string, number or null"
                            .into(),
                    });
                }
                _ => {}
            }
            i += 1;
        }
        self.pos = i;
        Ok(None)
    }
}

/// Sums rows into one [`Tally`] of facts per day. A cell's raw text maps straight to its label
/// id, so a row whose values were seen before costs a few lookups and allocates nothing.
struct Aggregate {
    labels: Labels,
    /// Raw cell text (quotes and escapes as sent) → label id.
    raw: HashMap<Box<[u8]>, u32>,
    /// Raw day cell → index into `days`.
    raw_days: HashMap<Box<[u8]>, usize>,
    /// One tally per distinct date: `2026-04-01` and `2026-04-01T00:00:00Z` are one day.
    days: Vec<(Date, Tally<Amount>)>,
    /// Label ids per fact: account, account key, category, currency, unit, dimensions.
    width: usize,
    key: Vec<u32>,
}

impl Aggregate {
    fn new(width: usize) -> Self {
        Self {
            labels: Labels::default(),
            raw: HashMap::new(),
            raw_days: HashMap::new(),
            days: Vec::new(),
            width,
            key: Vec::with_capacity(width),
        }
    }

    /// The label id of a key cell.
    fn label(&mut self, cell: RowCell<'_>) -> Result<u32, DecodeError> {
        if let Some(&id) = self.raw.get(cell.raw) {
            return Ok(id);
        }
        let id = self.labels.intern(&cell.text()?);
        self.raw.insert(cell.raw.into(), id);
        Ok(id)
    }

    /// The index of a day cell's tally.
    fn day(&mut self, cell: RowCell<'_>) -> Result<usize, DecodeError> {
        if let Some(&at) = self.raw_days.get(cell.raw) {
            return Ok(at);
        }
        let day = parse_instant(&cell.text()?)
            .ok_or_else(|| cell.problem("not a date-time"))?
            .date();
        let at = match self.days.iter().position(|(d, _)| *d == day) {
            Some(at) => at,
            None => {
                self.days.push((day, Tally::new(self.width)));
                self.days.len() - 1
            }
        };
        self.raw_days.insert(cell.raw.into(), at);
        Ok(at)
    }

    fn row(
        &mut self,
        columns: &Columns,
        row: &[u8],
        cells: &[Cell],
        row_no: usize,
    ) -> Result<(), DecodeError> {
        if cells.len() != columns.width {
            return Err(DecodeError::RowWidth {
                row: row_no,
                found: cells.len(),
                expected: columns.width,
            });
        }
        let cell = |column: &'static str, i: usize| {
            let (start, end) = cells[i];
            RowCell {
                row: row_no,
                column,
                raw: row[start..end].trim_ascii(),
            }
        };
        let Some(cost) = cell("TOTAL_PER_UNIT", columns.total).number()? else {
            return Ok(());
        };
        let quantity = match columns.quantity {
            Some(i) => cell("QUANTITY", i).number()?.unwrap_or_default(),
            None => Decimal::ZERO,
        };
        let day = self.day(cell("DAY", columns.day))?;
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        for &(name, at) in &columns.key {
            key.push(match at {
                Some(i) => self.label(cell(name, i))?,
                None => self.labels.intern(NOT_APPLICABLE),
            });
        }
        *self.days[day].1.entry(&key) += Amount { cost, quantity };
        self.key = key;
        Ok(())
    }

    fn into_usage(
        self,
        period: DateTimeInterval,
        metadata: Option<BillingUsageMetadata>,
    ) -> Result<Usage, DecodeError> {
        // The effective period, not the one asked for, is what the result covers (A4).
        let covered = period.covered_days();
        let mut days = BTreeMap::new();
        let mut outside = 0usize;
        for (day, tally) in self.days {
            if covered.contains(day) {
                days.insert(day, DayFacts::from_tally(tally));
            } else {
                outside += tally.len();
            }
        }
        if outside > 0 {
            tracing::warn!(facts = outside, %covered.since, %covered.until, "rows outside requestedPeriod ignored");
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
            labels: self.labels,
            days,
        })
    }
}

#[derive(Clone, Copy)]
struct RowCell<'a> {
    row: usize,
    column: &'static str,
    /// The cell's JSON text, without surrounding whitespace.
    raw: &'a [u8],
}

impl<'a> RowCell<'a> {
    fn problem(&self, problem: &str) -> DecodeError {
        DecodeError::Cell {
            row: self.row,
            column: self.column,
            problem: format!("{problem}: {}", String::from_utf8_lossy(self.raw)),
        }
    }

    fn utf8(&self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.raw).map_err(|e| DecodeError::Json(e.to_string()))
    }

    /// A string cell (numbers are accepted as their text); `"N/A"` and `null` stay `"N/A"`.
    fn text(&self) -> Result<Cow<'a, str>, DecodeError> {
        let raw = self.utf8()?;
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
        // The usual case, a bare JSON number, without going through `text`.
        if let Some(value) = self
            .raw
            .first()
            .filter(|b| b.is_ascii_digit() || **b == b'-')
            .and_then(|_| parse_decimal(self.utf8().ok()?))
        {
            return Ok(Some(value));
        }
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
    use crate::billing::facts::FactKey;
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
