//! One query's answer, compact, and its [`BillingUsageResult`] form.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::value::RawValue;

use super::dataset::Dataset;
use super::symbols::{Atom, NA, Sym};
use crate::billing::calendar::DayRange;
use crate::infobip::model::{
    AggregateDataResponse, BillingUsageMetadata, BillingUsageMetadataPeriod, BillingUsageResult,
    Cell, ColumnInfo, DateTimeInterval, QueryAggregateDataStatus,
};

/// Places of `TOTAL_PER_UNIT` (A17).
const TOTAL_PLACES: u32 = 2;

/// Where a column's cells come from.
#[derive(Clone, Copy)]
pub(super) enum Source {
    Time,
    /// Position in a group's values.
    Dim(usize),
    Unit,
    Price,
    Quantity,
    Total,
    Currency,
}

/// One answer row, as indices into its [`Table`].
pub(super) struct Row {
    pub(super) bucket: u32,
    pub(super) group: u32,
    pub(super) price: u32,
    pub(super) quantity: u64,
}

/// One query's answer, compact: rows point into groups, buckets and prices.
pub(in crate::simulator) struct Table<'a> {
    pub(super) data: &'a Dataset,
    pub(super) requested_period: DayRange,
    pub(super) client_period: DayRange,
    pub(super) billing_periods: Vec<BillingUsageMetadataPeriod>,
    pub(super) columns: Vec<ColumnInfo>,
    pub(super) sources: Vec<Source>,
    pub(super) buckets: Vec<String>,
    /// Per group: its dimension values, then unit and currency.
    pub(super) group_width: usize,
    pub(super) group_values: Vec<Sym>,
    pub(super) prices: Vec<Decimal>,
    /// `prices` as JSON number text, rendered once rather than per row.
    pub(super) price_cells: Vec<Box<RawValue>>,
    pub(super) rows: Vec<Row>,
}

/// A cell before it becomes JSON or a [`Cell`].
pub(super) enum CellRef<'t> {
    Text(&'t str),
    Int(i64),
    Count(u64),
    Price(Decimal, &'t RawValue),
    Decimal(Decimal),
    NotApplicable,
}

/// A decimal as JSON number text, the same text `Cell::Number` writes.
pub(super) fn number_text(d: Decimal) -> Box<RawValue> {
    RawValue::from_string(d.normalize().to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

impl Table<'_> {
    fn group(&self, g: u32) -> &[Sym] {
        let start = g as usize * self.group_width;
        self.group_values
            .get(start..start + self.group_width)
            .unwrap_or(&[])
    }

    fn sym_cell(&self, sym: Sym) -> CellRef<'_> {
        match self.data.atom(sym) {
            Some(Atom::Text(t)) => CellRef::Text(t),
            Some(Atom::Int(i)) => CellRef::Int(*i),
            None => CellRef::NotApplicable,
        }
    }

    pub(super) fn cell(&self, row: &Row, source: Source) -> CellRef<'_> {
        let group = self.group(row.group);
        let price = self
            .prices
            .get(row.price as usize)
            .copied()
            .unwrap_or_default();
        let price_cell = self
            .price_cells
            .get(row.price as usize)
            .map_or(RawValue::NULL, |p| &**p);
        let at = |i: usize| group.get(i).copied().unwrap_or(NA);
        match source {
            Source::Time => self
                .buckets
                .get(row.bucket as usize)
                .map_or(CellRef::NotApplicable, |b| CellRef::Text(b)),
            Source::Dim(i) => self.sym_cell(at(i)),
            Source::Unit => self.sym_cell(at(self.group_width - 2)),
            Source::Currency => self.sym_cell(at(self.group_width - 1)),
            Source::Price => CellRef::Price(price, price_cell),
            Source::Quantity => CellRef::Count(row.quantity),
            Source::Total => CellRef::Decimal(
                (price * Decimal::from(row.quantity))
                    .round_dp_with_strategy(TOTAL_PLACES, RoundingStrategy::MidpointAwayFromZero),
            ),
        }
    }

    pub(super) fn metadata(&self) -> BillingUsageMetadata {
        BillingUsageMetadata {
            client_requested_period: DateTimeInterval::from_days(self.client_period),
            billing_periods: self.billing_periods.clone(),
        }
    }

    pub(in crate::simulator) fn to_result(&self, request_id: &str) -> BillingUsageResult {
        let rows = self
            .rows
            .iter()
            .map(|row| {
                self.sources
                    .iter()
                    .map(|s| match self.cell(row, *s) {
                        CellRef::Text(t) => Cell::Text(t.to_owned()),
                        CellRef::Int(i) => Cell::Number(Decimal::from(i)),
                        CellRef::Count(n) => Cell::Number(Decimal::from(n)),
                        CellRef::Price(d, _) | CellRef::Decimal(d) => Cell::Number(d),
                        CellRef::NotApplicable => Cell::NotApplicable,
                    })
                    .collect()
            })
            .collect();
        BillingUsageResult {
            request_id: request_id.to_owned(),
            status: QueryAggregateDataStatus::Success,
            failure_message: None,
            response: Some(AggregateDataResponse {
                requested_period: DateTimeInterval::from_days(self.requested_period),
                total_rows: self.total_rows(),
                columns: self.columns.clone(),
                rows,
            }),
            metadata: Some(self.metadata()),
        }
    }

    pub(super) fn total_rows(&self) -> i32 {
        i32::try_from(self.rows.len()).unwrap_or(i32::MAX)
    }
}
