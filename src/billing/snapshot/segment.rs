//! One segment's series: sized first (what it asks of the cap), then built with its share.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashSet};
use rust_decimal::Decimal;

use crate::billing::budget::BudgetConfig;
use crate::billing::calendar::YearMonth;
use crate::billing::facts::{ACCOUNT, ACCOUNT_KEY};
use crate::billing::labels::Tally;
use crate::billing::ledger::{Segment, SegmentKey};
use crate::billing::snapshot::cap::{cap, count_at_most};
use crate::billing::snapshot::names::{Names, series_key};
use crate::billing::snapshot::rows::{
    ACCOUNT_COL, CATEGORY_COL, CHANNEL_COL, CURRENCY_COL, Items, Layout, NO_STATUS, Rows,
};
use crate::billing::snapshot::{Kind, SegmentSnapshot, View, forecast};

/// A segment sized: its month rows summed, its series counted per kind.
pub(super) struct Prepared<'a> {
    key: &'a SegmentKey,
    segment: &'a Segment,
    view: &'a View,
    names: Names,
    dims: usize,
    months: Rows,
    forecasts: Rows,
    budget_used: Vec<Decimal>,
    accounts: Vec<(String, String)>,
    pub needs: [usize; 4],
}

pub(super) fn prepare<'a>(
    key: &'a SegmentKey,
    segment: &'a Segment,
    view: &'a View,
    dims: usize,
) -> Prepared<'a> {
    let names = Names::new(key, segment);
    let (months, forecasts, accounts) = month_rows(key, segment, view, &names, dims);
    let budget_used = if key.month == YearMonth::of(view.today) {
        view.budgets
            .iter()
            .map(|b| budget_used(b, &key.target, &months, &names))
            .collect()
    } else {
        Vec::new()
    };
    let mut p = Prepared {
        key,
        segment,
        view,
        names,
        dims,
        months,
        forecasts,
        budget_used,
        accounts,
        needs: [0; 4],
    };
    let bound = view.max_series;
    p.needs = [
        count_at_most(&p.facts(false), &[], bound, &p.names),
        p.months.len().min(bound + 1),
        count_at_most(&p.facts(true), &[], bound, &p.names),
        p.forecasts.len().min(bound + 1),
    ];
    p
}

impl Prepared<'_> {
    fn facts(&self, quantity: bool) -> Facts<'_> {
        Facts {
            prepared: self,
            quantity,
        }
    }

    /// The segment's series, each kind capped at its share of `max_series`.
    pub fn finish(self, shares: [usize; 4]) -> SegmentSnapshot {
        let capped = |source: &dyn Items, kind: Kind| {
            let (rows, folded) = cap(source, shares[kind.index()], &self.names);
            (rows.into_series(&self.names.labels), folded)
        };
        // The two metrics of every fact in the window are the large ones: built side by side.
        let (cost, months, quantity, forecast) = std::thread::scope(|scope| {
            let quantity = scope.spawn(|| capped(&self.facts(true), Kind::Quantity));
            let cost = capped(&self.facts(false), Kind::Cost);
            let months = capped(&self.months, Kind::MonthCost);
            let forecast = capped(&self.forecasts, Kind::Forecast);
            let quantity = quantity
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (cost, months, quantity, forecast)
        });
        let rolled_up = cost.1 + months.1 + quantity.1 + forecast.1;
        let series = [cost.0, months.0, quantity.0, forecast.0];
        SegmentSnapshot {
            key: self.key.clone(),
            finalized: self.segment.finalized,
            wants: self.segment.wants(),
            results_applied: self.segment.results_applied,
            last_result_at: self.segment.last_result_at,
            series,
            needs: self.needs,
            shares,
            rolled_up,
            budget_used: self.budget_used,
            accounts: self.accounts,
        }
    }
}

/// Every fact in the day window, as a cost or a quantity series item.
struct Facts<'a> {
    prepared: &'a Prepared<'a>,
    quantity: bool,
}

impl Items for Facts<'_> {
    /// Day costs are exported day by day (a day's series together), quantities series by series
    /// (a series' days together).
    fn layout(&self) -> Layout {
        Layout {
            unit: self.quantity,
            dims: self.prepared.dims,
            period_first: !self.quantity,
        }
    }

    fn each(&self, distinct: bool, f: &mut dyn FnMut(&[u32], Decimal, bool) -> bool) {
        let p = self.prepared;
        let names = &p.names;
        let hasher = DefaultHashBuilder::default();
        // The day is part of every row, so rows repeat only within a day: a set of one day's
        // rows is enough to tell the first of each.
        let mut seen: HashSet<u64> = HashSet::new();
        let (mut key, mut row) = (Vec::new(), Vec::new());
        let window = p.view.day_window;
        for (day, facts) in p.segment.days.range(window.since..window.until) {
            let period = names.day_ids.get(day).copied().unwrap_or(u32::MAX);
            seen.clear();
            for (ids, amount) in facts.iter() {
                series_key(ids, self.quantity, &mut key);
                names.row(&key, period, names.status, &mut row);
                let first = !distinct || seen.insert(hasher.hash_one(&row));
                let value = if self.quantity {
                    amount.quantity
                } else {
                    amount.cost
                };
                if !f(&row, value, first) {
                    return;
                }
            }
        }
    }
}

/// `infobip_billing_month_cost` (the segment's month) and `infobip_billing_month_forecast_cost`
/// (the same series, if the month is the current one), unordered, and the accounts, sorted.
fn month_rows(
    key: &SegmentKey,
    segment: &Segment,
    view: &View,
    names: &Names,
    dims: usize,
) -> (Rows, Rows, Vec<(String, String)>) {
    let layout = Layout {
        unit: false,
        dims,
        period_first: true,
    };
    let mut months = Rows::new(layout);
    let mut forecasts = Rows::new(Layout {
        period_first: false,
        ..layout
    });
    let today = view.today;
    let current = key.month == YearMonth::of(today);
    let elapsed = i64::from(today.day()) - 1;
    let mut sums: Tally<Decimal> = Tally::new(3 + dims);
    // Month-to-date of the current month over complete days (before today) only.
    let mut complete: Tally<Decimal> = Tally::new(3 + dims);
    let mut accounts: Tally<()> = Tally::new(2);
    let mut series = Vec::new();
    for (day, facts) in &segment.days {
        let is_complete = current && *day < today;
        for (ids, amount) in facts.iter() {
            series_key(ids, false, &mut series);
            if is_complete {
                *complete.entry(&series) += amount.cost;
            }
            *sums.entry(&series) += amount.cost;
            accounts.entry(&[ids[ACCOUNT], ids[ACCOUNT_KEY]]);
        }
    }
    let mut row = Vec::new();
    for (series, cost) in sums.iter() {
        names.row(series, names.month, names.status, &mut row);
        months.push(&row, *cost);
        if current {
            let done = complete.get(series).copied().unwrap_or_default();
            let value = forecast(*cost, done, elapsed, key.month);
            names.row(series, names.month, NO_STATUS, &mut row);
            forecasts.push(&row, value);
        }
    }
    let name = |id: u32| segment.labels.name(id).to_owned();
    let mut accounts: Vec<(String, String)> = accounts
        .iter()
        .map(|(ids, ())| (name(ids[0]), name(ids[1])))
        .collect();
    accounts.sort_unstable();
    (months, forecasts, accounts)
}

/// Month-to-date cost of the series a budget matches, in its currency, over all series before
/// any roll-up.
fn budget_used(config: &BudgetConfig, target: &str, months: &Rows, names: &Names) -> Decimal {
    let m = &config.matcher;
    if m.target.as_deref().is_some_and(|t| t != target) {
        return Decimal::ZERO;
    }
    let hit = |want: &Option<String>, have: u32| {
        want.as_deref().is_none_or(|w| names.labels.name(have) == w)
    };
    months
        .iter()
        .filter(|(row, _)| {
            names.labels.name(row[CURRENCY_COL]) == config.currency
                && hit(&m.account, row[ACCOUNT_COL])
                && hit(&m.category, row[CATEGORY_COL])
                && hit(&m.channel, row[CHANNEL_COL])
        })
        .map(|(_, value)| *value)
        .sum()
}
