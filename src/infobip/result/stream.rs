//! The incremental decoder: the skeleton's bytes are kept, the rows are cut out of
//! `response.rows` and summed as they pass.

use super::aggregate::Aggregate;
use super::columns::{Columns, WireColumn};
use super::row::{Cell, PreviousRow, RowScan};
use super::skeleton::{SkeletonScan, Step};
use super::{DecodeError, Decoded, Outcome};
use crate::billing::facts::FIRST_DIMENSION;
use crate::infobip::model::{BillingUsageAggregate, QueryAggregateDataStatus};

/// Decodes and aggregates one whole callback body; `dimensions` are the optional dimensions
/// that become part of each fact's key.
pub fn decode(body: &[u8], dimensions: &[BillingUsageAggregate]) -> Result<Decoded, DecodeError> {
    let mut decoder = StreamDecoder::new(dimensions);
    decoder.feed(body)?;
    decoder.finish()
}

/// Where the decoder is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Outside `response.rows`: bytes go to the skeleton.
    Skeleton,
    /// Inside `response.rows`, between rows.
    BetweenRows,
    /// Inside one row.
    InRow,
}

/// An incremental decoder: [`feed`](Self::feed) it the body in chunks of any size, then
/// [`finish`](Self::finish).
pub struct StreamDecoder {
    dimensions: Vec<BillingUsageAggregate>,
    mode: Mode,
    skeleton: SkeletonScan,
    columns: Option<Columns>,
    /// A row that spans chunks: its bytes so far and where its scan stopped.
    row: Vec<u8>,
    scan: RowScan,
    previous: PreviousRow,
    /// The (start, end) of each cell of the row being read.
    cells: Vec<Cell>,
    /// How many of them begin the row as they began the one before it.
    shared: usize,
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
            skeleton: SkeletonScan::new(),
            columns: None,
            row: Vec::with_capacity(512),
            scan: RowScan::default(),
            previous: PreviousRow::default(),
            cells: Vec::with_capacity(16),
            shared: 0,
            rows_seen: 0,
            deferred: Vec::new(),
            aggregate: Aggregate::new(FIRST_DIMENSION + dimensions.len()),
        }
    }

    /// Consumes the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let mut i = 0;
        while let Some(&b) = chunk.get(i) {
            i += match self.mode {
                Mode::Skeleton => {
                    match self.skeleton.byte(b) {
                        Step::Continue => {}
                        Step::RowsOpened => self.mode = Mode::BetweenRows,
                        Step::ColumnsClosed => self.read_columns()?,
                    }
                    1
                }
                Mode::BetweenRows => self.between_rows(&chunk[i..])?,
                Mode::InRow => self.row_continues(&chunk[i..])?,
            };
        }
        Ok(())
    }

    /// Columns are small and come before the rows in every known result: read them at once so
    /// rows can be aggregated as they stream by.
    fn read_columns(&mut self) -> Result<(), DecodeError> {
        let columns: Vec<WireColumn> = serde_json::from_slice(self.skeleton.columns())
            .map_err(|e| DecodeError::Json(e.to_string()))?;
        let columns = Columns::find(&columns, &self.dimensions)?;
        for (row_no, (row, cells)) in std::mem::take(&mut self.deferred).iter().enumerate() {
            self.aggregate.row(&columns, row, cells, row_no, 0)?;
        }
        self.columns = Some(columns);
        Ok(())
    }

    /// Reads rows between `[` and `]` of `response.rows`. A row wholly inside the chunk is read
    /// where it lies; only a row cut by the chunk's end is copied.
    fn between_rows(&mut self, rest: &[u8]) -> Result<usize, DecodeError> {
        // The last row read whole from `rest`: the next row is compared with it where it lies,
        // and its text is copied only once the chunk is done, for the first row of the next.
        let mut last = None;
        let mut i = 0;
        let consumed = loop {
            let Some(&b) = rest.get(i) else {
                break rest.len();
            };
            match b {
                b'[' => {
                    let row = &rest[i + 1..];
                    let previous =
                        last.map_or(self.previous.text(), |(start, end)| &rest[start..end]);
                    self.cells.clear();
                    (self.shared, self.scan) = self.previous.start(previous, row, &mut self.cells);
                    match self.scan.scan(row, &mut self.cells, self.rows_seen)? {
                        Some(end) => {
                            self.end_row(&row[..end])?;
                            last = Some((i + 1, i + 1 + end));
                            i += 1 + end + 1;
                        }
                        None => {
                            self.row.clear();
                            self.row.extend_from_slice(row);
                            self.mode = Mode::InRow;
                            break rest.len();
                        }
                    }
                }
                b']' => {
                    self.skeleton.close_rows();
                    self.mode = Mode::Skeleton;
                    break i + 1;
                }
                b',' | b' ' | b'\n' | b'\r' | b'\t' => i += 1,
                other => {
                    return Err(DecodeError::Json(format!(
                        "expected a row array in response.rows, found {:?}",
                        char::from(other)
                    )));
                }
            }
        };
        if let Some((start, end)) = last {
            self.previous.keep_text(&rest[start..end]);
        }
        Ok(consumed)
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
                self.previous.keep_text(&row[..end]);
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
            Some(columns) => {
                self.aggregate
                    .row(columns, row, &self.cells, self.rows_seen, self.shared)?;
            }
            None => self.deferred.push((row.to_vec(), self.cells.clone())),
        }
        self.previous.swap_cells(&mut self.cells);
        self.rows_seen += 1;
        Ok(())
    }

    /// Reads the skeleton and turns the aggregated rows into the result.
    pub fn finish(self) -> Result<Decoded, DecodeError> {
        if self.mode != Mode::Skeleton || self.skeleton.in_string() {
            return Err(DecodeError::Json(
                "the body ends inside the document".into(),
            ));
        }
        let skeleton = self.skeleton.read()?;
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
