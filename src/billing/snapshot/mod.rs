//! The figures a scrape encodes, kept per ledger segment (target and month) and immutable once
//! built. A result rebuilds its own segment's series and the small parts that depend on every
//! segment (budgets, `month_finalized`, `account_info`); the other segments are shared by `Arc`.
//! Series are summed, ordered and rolled up as rows of label ids; only the series that are
//! exported become strings (see BENCHMARKS.md).

mod cap;
mod coded;
mod names;
mod rollup;
mod rows;
mod segment;
mod shares;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::billing::budget::BudgetConfig;
use crate::billing::calendar::{DayRange, YearMonth, retention_months};
use crate::billing::ledger::{Ledger, SegmentKey, Status};

/// The billing channel a category belongs to: the `channel` label. Unknown future categories
/// pass through lower-cased rather than being dropped.
pub fn channel_of(category: &str) -> String {
    match category {
        "SMS" | "SMS_OPERATOR_FEE" => "sms",
        "MMS" | "MMS_OPERATOR_FEE" => "mms",
        "EMAIL" | "EMAIL_VALIDATION" => "email",
        "RCS" => "rcs",
        "WHATSAPP" => "whatsapp",
        "VIBER" => "viber",
        "APPLE_MB" => "apple_messages",
        "MOBILE_PUSH" => "mobile_push",
        "NUMBER_LOOKUP" | "CARRIER_LOOKUP" => "lookup",
        "AGENTOS" => "agentos",
        "AI" => "ai",
        other => return other.to_lowercase(),
    }
    .to_owned()
}

/// The label value the roll-up gives up a label for.
pub const OTHER: &str = "other";

/// The label name of an optional dimension: its code in lower case (`TRAFFIC_TYPE` →
/// `traffic_type`).
pub fn dimension_label(code: &str) -> String {
    code.to_ascii_lowercase()
}

/// Projected month-end cost: the average of the complete days (every day before today, days
/// without traffic counting as zero) times the days in the month, rounded to cents and never
/// below the month-to-date cost. On the 1st there is no complete day: the forecast is the
/// month-to-date cost.
pub fn forecast(
    month_to_date: Decimal,
    complete: Decimal,
    elapsed_days: i64,
    month: YearMonth,
) -> Decimal {
    if elapsed_days <= 0 {
        return month_to_date;
    }
    let days_in_month = i64::from(month.month.length(month.year));
    let projected = complete
        .checked_mul(Decimal::from(days_in_month))
        .and_then(|total| total.checked_div(Decimal::from(elapsed_days)))
        .unwrap_or(month_to_date)
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    projected.max(month_to_date)
}

/// What a snapshot shows besides the facts: derived from the config and from today's date.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub today: Date,
    /// Days `infobip_billing_cost` and `infobip_billing_quantity` export.
    pub day_window: DayRange,
    /// Most series one data metric may have; beyond it, series are rolled up into `other`
    /// (see `cap`), the cap shared between segments (see `shares`).
    pub max_series: usize,
    pub budgets: Vec<BudgetConfig>,
}

/// The four data metrics built from facts, each capped at `max_series`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `infobip_billing_cost`: one series per day in the window.
    Cost,
    /// `infobip_billing_month_cost`: month-to-date per month in retention.
    MonthCost,
    /// `infobip_billing_quantity`: like `Cost`, with `unit` set.
    Quantity,
    /// `infobip_billing_month_forecast_cost`: the current month only, `status` unset.
    Forecast,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Cost, Kind::MonthCost, Kind::Quantity, Kind::Forecast];

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One exported series: `period` is a day (`2026-11-26`) or a month (`2026-11`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CostSeries {
    pub target: String,
    pub account: String,
    pub category: String,
    pub channel: String,
    pub currency: String,
    /// Set on quantity series only.
    pub unit: Option<String>,
    /// Values of the optional dimensions, in [`Snapshot::dimension_labels`] order.
    pub dimensions: Vec<String>,
    pub period: String,
    /// Unset on forecasts, which are never final.
    pub status: Option<Status>,
    pub value: Decimal,
}

/// One configured budget and how much of it the current month has used.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSeries {
    pub name: String,
    pub currency: String,
    /// The budget's match as (label, value), exported with `infobip_billing_budget`.
    pub matcher: Vec<(&'static str, String)>,
    pub monthly: Decimal,
    /// Month-to-date cost of the matching series in the budget's currency.
    pub used: Decimal,
}

impl BudgetSeries {
    pub fn used_ratio(&self) -> Decimal {
        self.used.checked_div(self.monthly).unwrap_or_default()
    }
}

/// One segment's series and what the parts built from every segment need of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSnapshot {
    pub key: SegmentKey,
    pub finalized: bool,
    /// Whether a query for the month can still change it (see `Segment::wants`).
    pub wants: bool,
    pub results_applied: u64,
    pub last_result_at: Option<OffsetDateTime>,
    /// Capped series per [`Kind`], in export order.
    pub series: [Vec<CostSeries>; 4],
    /// Series per kind before the cap, counted up to `max_series + 1`: what the segment asks of
    /// the cap.
    pub needs: [usize; 4],
    /// The share of the cap per kind this segment was built with.
    pub shares: [usize; 4],
    /// Series the cap folded into `other` while building it.
    pub rolled_up: u64,
    /// Month-to-date cost per configured budget, in its currency (current month only).
    pub budget_used: Vec<Decimal>,
    /// (account, account key), sorted.
    pub accounts: Vec<(String, String)>,
}

impl SegmentSnapshot {
    pub fn series(&self, kind: Kind) -> &[CostSeries] {
        &self.series[kind.index()]
    }
}

/// The figures a scrape encodes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Label names of the optional dimensions (snake_case), in config order.
    pub dimension_labels: Vec<String>,
    /// What the segments were built for; `None` before anything was built.
    pub view: Option<View>,
    /// In (target, month) order: a family's series come segment by segment.
    pub segments: Vec<Arc<SegmentSnapshot>>,
    pub budgets: Vec<BudgetSeries>,
    /// `infobip_billing_month_finalized`: (target, month, finalized).
    pub finalized: Vec<(String, YearMonth, bool)>,
    /// `infobip_billing_account_info`: (target, account, account_key).
    pub accounts: Vec<(String, String, String)>,
    /// Targets that have had at least one result applied.
    pub targets_with_data: Vec<String>,
    /// Results applied over all targets.
    pub results_applied: u64,
}

impl Snapshot {
    /// Every segment built from scratch. `targets` are the configured ones: each has a place
    /// in the cap for every retained month, with data or not (see `shares`).
    pub fn build(ledger: &Ledger, view: &View, targets: &[String]) -> Self {
        Self::default().update(ledger, &BTreeSet::new(), view, targets)
    }

    /// The snapshot after the segments in `changed` were replaced: those, and those whose share
    /// of the cap moved while they are capped, are built again; the rest are shared. A new day
    /// or another view builds every segment.
    pub fn update(
        &self,
        ledger: &Ledger,
        changed: &BTreeSet<SegmentKey>,
        view: &View,
        targets: &[String],
    ) -> Self {
        let retained = retention_months(view.today);
        let dims = ledger.dimensions.len();
        let same_view = self.view.as_ref() == Some(view) && self.dimension_labels.len() == dims;
        let previous: BTreeMap<&SegmentKey, &Arc<SegmentSnapshot>> =
            self.segments.iter().map(|s| (&s.key, s)).collect();
        let mut prepared = BTreeMap::new();
        let mut needs = BTreeMap::new();
        for (key, segment) in &ledger.segments {
            if !retained.contains(&key.month) {
                continue;
            }
            match previous.get(key) {
                Some(old) if same_view && !changed.contains(key) => {
                    needs.insert(key.clone(), old.needs);
                }
                _ => {
                    let p = segment::prepare(key, segment, view, dims);
                    needs.insert(key.clone(), p.needs);
                    prepared.insert(key.clone(), p);
                }
            }
        }
        let slots: BTreeSet<SegmentKey> = targets
            .iter()
            .flat_map(|t| retained.iter().map(|m| SegmentKey::new(t, *m)))
            .chain(needs.keys().cloned())
            .collect();
        let shares = shares::allot(&slots, &needs, view.max_series);
        let mut segments = Vec::with_capacity(needs.len());
        for (key, need) in &needs {
            let share = shares.get(key).copied().unwrap_or([view.max_series; 4]);
            let built = match (prepared.remove(key), previous.get(key)) {
                (Some(p), _) => Arc::new(p.finish(share)),
                (None, Some(old)) if !shares::moved(need, &old.shares, &share) => Arc::clone(old),
                _ => {
                    let segment = &ledger.segments[key];
                    Arc::new(segment::prepare(key, segment, view, dims).finish(share))
                }
            };
            segments.push(built);
        }
        Self::assemble(ledger, view, segments)
    }

    /// The parts built from every segment: budgets, finalization, accounts, counters.
    fn assemble(ledger: &Ledger, view: &View, segments: Vec<Arc<SegmentSnapshot>>) -> Self {
        let current = YearMonth::of(view.today);
        let budgets = view
            .budgets
            .iter()
            .enumerate()
            .map(|(i, config)| BudgetSeries {
                name: config.name.clone(),
                currency: config.currency.clone(),
                matcher: config
                    .matcher
                    .labels()
                    .into_iter()
                    .map(|(k, v)| (k, v.to_owned()))
                    .collect(),
                monthly: config.monthly,
                used: segments
                    .iter()
                    .filter(|s| s.key.month == current)
                    .filter_map(|s| s.budget_used.get(i))
                    .sum(),
            })
            .collect();
        let mut accounts: BTreeSet<(String, String, String)> = BTreeSet::new();
        let mut with_data: BTreeSet<String> = BTreeSet::new();
        for s in &segments {
            accounts.extend(
                s.accounts
                    .iter()
                    .map(|(a, k)| (s.key.target.clone(), a.clone(), k.clone())),
            );
            if s.results_applied > 0 {
                with_data.insert(s.key.target.clone());
            }
        }
        Self {
            dimension_labels: ledger
                .dimensions
                .iter()
                .map(|d| dimension_label(d))
                .collect(),
            view: Some(view.clone()),
            budgets,
            finalized: segments
                .iter()
                .map(|s| (s.key.target.clone(), s.key.month, s.finalized))
                .collect(),
            accounts: accounts.into_iter().collect(),
            targets_with_data: with_data.into_iter().collect(),
            results_applied: segments.iter().map(|s| s.results_applied).sum(),
            segments,
        }
    }

    /// Every series of one kind, segment by segment.
    pub fn series(&self, kind: Kind) -> impl Iterator<Item = &CostSeries> {
        self.segments.iter().flat_map(move |s| s.series(kind))
    }
}

#[cfg(test)]
mod tests;
