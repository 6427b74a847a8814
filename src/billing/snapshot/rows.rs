//! One data metric as rows of label ids: the columns of a row, and where rows come from.

use rust_decimal::Decimal;

use crate::billing::labels::{Labels, rows};
use crate::billing::ledger::Status;
use crate::billing::snapshot::CostSeries;

/// The columns of one data metric's rows of ids, in [`CostSeries`] field order so that rows
/// compare as their series would: target, account, category, channel, currency, unit
/// (quantities only), the dimensions, period, status. Status is a code, not a label id.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    pub unit: bool,
    pub dims: usize,
    /// Exported period by period (days, months): sorted by target and period first.
    pub period_first: bool,
}

pub(super) const TARGET_COL: usize = 0;
pub(super) const ACCOUNT_COL: usize = 1;
pub(super) const CATEGORY_COL: usize = 2;
pub(super) const CHANNEL_COL: usize = 3;
pub(super) const CURRENCY_COL: usize = 4;

impl Layout {
    pub fn width(self) -> usize {
        CURRENCY_COL + 1 + usize::from(self.unit) + self.dims + 2
    }

    pub fn unit_col(self) -> Option<usize> {
        self.unit.then_some(CURRENCY_COL + 1)
    }

    pub fn dim_col(self, i: usize) -> usize {
        CURRENCY_COL + 1 + usize::from(self.unit) + i
    }

    pub fn period_col(self) -> usize {
        self.width() - 2
    }

    pub fn status_col(self) -> usize {
        self.width() - 1
    }
}

/// `status` of a row: none (forecasts), provisional, final.
pub(super) const NO_STATUS: u32 = 0;

pub(super) fn status_code(status: Status) -> u32 {
    match status {
        Status::Provisional => 1,
        Status::Final => 2,
    }
}

fn status_of_code(code: u32) -> Option<Status> {
    match code {
        1 => Some(Status::Provisional),
        2 => Some(Status::Final),
        _ => None,
    }
}

/// Where a metric's series come from: items of a row of ids and a value, a series being the
/// sum of the items with its row. Read as often as the roll-up needs, so that a metric of a
/// million series is never held whole unless it is exported whole.
pub(super) trait Items {
    fn layout(&self) -> Layout;

    /// Calls `f(row, value, first)` for every item until it returns `false`; `first` says
    /// whether no earlier item had the same row (with `distinct`, which costs a set of rows;
    /// without, it is always `true`).
    fn each(&self, distinct: bool, f: &mut dyn FnMut(&[u32], Decimal, bool) -> bool);
}

/// One data metric as rows of ids and their values: series already summed.
#[derive(Debug)]
pub(super) struct Rows {
    pub layout: Layout,
    pub ids: Vec<u32>,
    pub values: Vec<Decimal>,
}

impl Rows {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            ids: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn push(&mut self, row: &[u32], value: Decimal) {
        debug_assert_eq!(row.len(), self.layout.width());
        self.ids.extend_from_slice(row);
        self.values.push(value);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn row(&self, i: usize) -> &[u32] {
        let w = self.layout.width();
        &self.ids[i * w..][..w]
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u32], &Decimal)> {
        rows(&self.ids, self.layout.width()).zip(&self.values)
    }

    pub fn into_series(self, labels: &Labels) -> Vec<CostSeries> {
        let l = self.layout;
        self.iter()
            .map(|(row, value)| {
                let name = |col: usize| labels.name(row[col]).to_owned();
                CostSeries {
                    target: name(TARGET_COL),
                    account: name(ACCOUNT_COL),
                    category: name(CATEGORY_COL),
                    channel: name(CHANNEL_COL),
                    currency: name(CURRENCY_COL),
                    unit: l.unit_col().map(name),
                    dimensions: (0..l.dims).map(|i| name(l.dim_col(i))).collect(),
                    period: name(l.period_col()),
                    status: status_of_code(row[l.status_col()]),
                    value: *value,
                }
            })
            .collect()
    }
}

impl Items for Rows {
    fn layout(&self) -> Layout {
        self.layout
    }

    fn each(&self, _distinct: bool, f: &mut dyn FnMut(&[u32], Decimal, bool) -> bool) {
        for (row, value) in self.iter() {
            if !f(row, *value, true) {
                return;
            }
        }
    }
}
