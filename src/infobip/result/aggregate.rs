//! Sums rows into one [`Tally`] of facts per day.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use rust_decimal::Decimal;
use time::Date;

use super::DecodeError;
use super::cell::RowCell;
use super::columns::Columns;
use super::row::Cell;
use crate::billing::calendar::YearMonth;
use crate::billing::facts::{Amount, DayFacts, Usage};
use crate::billing::labels::{Labels, NOT_APPLICABLE, Tally};
use crate::infobip::model::{BillingUsageMetadata, DateTimeInterval, parse_instant};

/// A cell's raw text maps straight to its label id, so a row whose values were seen before
/// costs a few lookups and allocates nothing.
pub(super) struct Aggregate {
    labels: Labels,
    /// Raw cell text (quotes and escapes as sent) → label id.
    raw: HashMap<Box<[u8]>, u32>,
    /// Raw day cell → index into `days`.
    raw_days: HashMap<Box<[u8]>, usize>,
    /// The last cell read for each part of a fact's key, and for the day.
    recent: Vec<Recent<u32>>,
    recent_day: Recent<usize>,
    /// The id of `N/A`, once a key part without a column needed it.
    not_applicable: Option<u32>,
    /// One tally per distinct date: `2026-04-01` and `2026-04-01T00:00:00Z` are one day.
    days: Vec<(Date, Tally<Amount>)>,
    /// Label ids per fact: account, account key, category, currency, unit, dimensions.
    width: usize,
    key: Vec<u32>,
}

/// The last raw text read in one place, from which row, and what it gave. Rows come grouped
/// (by day, account, category...), so most cells repeat the one above them, which costs a
/// comparison at most instead of a hash lookup.
#[derive(Debug, Clone, Default)]
struct Recent<T> {
    raw: Vec<u8>,
    row: usize,
    value: Option<T>,
}

impl<T: Copy> Recent<T> {
    /// The value of `raw`, the cell of row `row`, if it is the text last read here; no need to
    /// compare when the cell is `repeated` from the row above and that row was read here.
    fn get(&mut self, raw: &[u8], row: usize, repeated: bool) -> Option<T> {
        let value = self.value?;
        let same = repeated && row.checked_sub(1) == Some(self.row) || self.raw == raw;
        same.then(|| {
            self.row = row;
            value
        })
    }

    fn set(&mut self, raw: &[u8], row: usize, value: T) {
        self.raw.clear();
        self.raw.extend_from_slice(raw);
        self.row = row;
        self.value = Some(value);
    }
}

impl Aggregate {
    pub(super) fn new(width: usize) -> Self {
        Self {
            labels: Labels::default(),
            raw: HashMap::new(),
            raw_days: HashMap::new(),
            recent: vec![Recent::default(); width],
            recent_day: Recent::default(),
            not_applicable: None,
            days: Vec::new(),
            width,
            key: Vec::with_capacity(width),
        }
    }

    /// The label id of a key cell.
    fn label(
        labels: &mut Labels,
        raw: &mut HashMap<Box<[u8]>, u32>,
        recent: &mut Recent<u32>,
        cell: RowCell<'_>,
        repeated: bool,
    ) -> Result<u32, DecodeError> {
        if let Some(id) = recent.get(cell.raw, cell.row, repeated) {
            return Ok(id);
        }
        let id = match raw.get(cell.raw) {
            Some(&id) => id,
            None => {
                let id = labels.intern(&cell.text()?);
                raw.insert(cell.raw.into(), id);
                id
            }
        };
        recent.set(cell.raw, cell.row, id);
        Ok(id)
    }

    /// The index of a day cell's tally.
    fn day(&mut self, cell: RowCell<'_>, repeated: bool) -> Result<usize, DecodeError> {
        if let Some(at) = self.recent_day.get(cell.raw, cell.row, repeated) {
            return Ok(at);
        }
        let at = match self.raw_days.get(cell.raw) {
            Some(&at) => at,
            None => {
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
                at
            }
        };
        self.recent_day.set(cell.raw, cell.row, at);
        Ok(at)
    }

    /// Adds one row, `cells` being the (start, end) of each cell in `row`, of which the first
    /// `shared` are those of the row before it.
    pub(super) fn row(
        &mut self,
        columns: &Columns,
        row: &[u8],
        cells: &[Cell],
        row_no: usize,
        shared: usize,
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
        let day = self.day(cell("DAY", columns.day), columns.day < shared)?;
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        for (&(name, at), recent) in columns.key.iter().zip(&mut self.recent) {
            key.push(match at {
                Some(i) => Self::label(
                    &mut self.labels,
                    &mut self.raw,
                    recent,
                    cell(name, i),
                    i < shared,
                )?,
                None => *self
                    .not_applicable
                    .get_or_insert_with(|| self.labels.intern(NOT_APPLICABLE)),
            });
        }
        *self.days[day].1.entry(&key) += Amount { cost, quantity };
        self.key = key;
        Ok(())
    }

    pub(super) fn into_usage(
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
