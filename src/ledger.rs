//! The billing facts. A result replaces the rows of the days it covers (late records, discounts
//! and price adjustments restate provisional data; adding would double-count). Money stays in
//! `Decimal` and per currency; the snapshot handed to scrapes is immutable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rust_decimal::Decimal;
use time::Date;

use crate::calendar::{DayRange, YearMonth, retention_months};
use crate::collector;
use crate::config::BudgetConfig;
use crate::infobip::model::NOT_APPLICABLE;

/// What distinguishes one billed figure within a day of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FactKey {
    pub account: String,
    pub account_key: String,
    pub category: String,
    pub currency: String,
    pub unit: String,
    /// Values of the optional dimensions, in [`Ledger::dimensions`] order; `N/A` stays `N/A`.
    pub dimensions: Vec<String>,
}

/// Summed `TOTAL_PER_UNIT` (as billed, never recomputed: reference A17) and `QUANTITY`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amount {
    pub cost: Decimal,
    pub quantity: Decimal,
}

impl std::ops::AddAssign for Amount {
    fn add_assign(&mut self, other: Self) {
        self.cost += other.cost;
        self.quantity += other.quantity;
    }
}

/// One decoded result: the days it covers, the months' finalization, and the summed facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub covered: Option<DayRange>,
    pub periods: Vec<(YearMonth, bool)>,
    pub facts: HashMap<(Date, FactKey), Amount>,
}

/// Whether a day's or month's figures can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Provisional,
    Final,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Provisional => "provisional",
            Status::Final => "final",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetLedger {
    pub days: BTreeMap<Date, BTreeMap<FactKey, Amount>>,
    /// Months a result spoke about, `true` once `volumeFinalized` said so.
    pub months: BTreeMap<YearMonth, bool>,
    pub results_applied: u64,
}

impl TargetLedger {
    pub fn month_final(&self, month: YearMonth) -> bool {
        self.months.get(&month).copied().unwrap_or(false)
    }

    pub fn status_of(&self, month: YearMonth) -> Status {
        if self.month_final(month) {
            Status::Final
        } else {
            Status::Provisional
        }
    }
}

/// What applying a result changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub days_replaced: usize,
    /// Figures of days already stored that the result changed.
    pub restatements: Vec<Restatement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restatement {
    pub day: Date,
    pub currency: String,
    pub old: Decimal,
    pub new: Decimal,
    pub was_final: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// Column names of the optional dimensions every fact carries (`TRAFFIC_TYPE`, …).
    pub dimensions: Vec<String>,
    pub targets: BTreeMap<String, TargetLedger>,
}

impl Ledger {
    /// Replaces the covered days of `target` with the result's facts. Months keep their final flag
    /// once set: `volumeFinalized: true` means the figures will not change again.
    pub fn apply(&mut self, target: &str, usage: Usage) -> ApplyReport {
        let ledger = self.targets.entry(target.to_owned()).or_default();
        let mut report = ApplyReport::default();
        let mut incoming: BTreeMap<Date, BTreeMap<FactKey, Amount>> = BTreeMap::new();
        for ((day, key), amount) in usage.facts {
            *incoming.entry(day).or_default().entry(key).or_default() += amount;
        }
        if let Some(covered) = usage.covered {
            for day in covered.days() {
                let new = incoming.remove(&day).unwrap_or_default();
                let old = if new.is_empty() {
                    ledger.days.remove(&day)
                } else {
                    ledger.days.insert(day, new.clone())
                };
                let was_final = ledger.month_final(YearMonth::of(day));
                report
                    .restatements
                    .extend(restatements(day, old.as_ref(), &new, was_final));
                report.days_replaced += 1;
            }
        }
        for (month, finalized) in usage.periods {
            let flag = ledger.months.entry(month).or_insert(false);
            *flag |= finalized;
        }
        ledger.results_applied += 1;
        report
    }

    /// Drops what Infobip no longer holds, so the ledger stays bounded.
    pub fn prune_before(&mut self, first_kept: Date) {
        for ledger in self.targets.values_mut() {
            ledger.days = ledger.days.split_off(&first_kept);
            let first_month = YearMonth::of(first_kept);
            ledger.months = ledger.months.split_off(&first_month);
        }
    }
}

impl Ledger {
    /// Re-keys every fact to `dimensions`, for a config whose dimensions changed since the state
    /// was saved: values of dropped dimensions are summed away, added ones read `N/A` until the
    /// days are fetched again.
    pub fn reshape(&mut self, dimensions: &[String]) {
        if self.dimensions == dimensions {
            return;
        }
        let from: Vec<Option<usize>> = dimensions
            .iter()
            .map(|d| self.dimensions.iter().position(|old| old == d))
            .collect();
        for tl in self.targets.values_mut() {
            for facts in tl.days.values_mut() {
                for (mut key, amount) in std::mem::take(facts) {
                    let values = from
                        .iter()
                        .map(|i| i.and_then(|i| key.dimensions.get(i).cloned()))
                        .map(|v| v.unwrap_or_else(|| NOT_APPLICABLE.to_owned()))
                        .collect();
                    key.dimensions = values;
                    *facts.entry(key).or_default() += amount;
                }
            }
        }
        self.dimensions = dimensions.to_vec();
    }
}

/// Per-currency day totals that moved. Only stored days count: a first fetch is no restatement.
fn restatements(
    day: Date,
    old: Option<&BTreeMap<FactKey, Amount>>,
    new: &BTreeMap<FactKey, Amount>,
    was_final: bool,
) -> Vec<Restatement> {
    let Some(old) = old else {
        return Vec::new();
    };
    let totals = |facts: &BTreeMap<FactKey, Amount>| {
        let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
        for (key, amount) in facts {
            *sums.entry(key.currency.clone()).or_default() += amount.cost;
        }
        sums
    };
    let (old, new) = (totals(old), totals(new));
    let currencies: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    currencies
        .into_iter()
        .filter_map(|currency| {
            let before = old.get(currency).copied().unwrap_or_default();
            let after = new.get(currency).copied().unwrap_or_default();
            (before != after).then(|| Restatement {
                day,
                currency: currency.clone(),
                old: before,
                new: after,
                was_final,
            })
        })
        .collect()
}

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

/// What a snapshot shows besides the facts: derived from the config and from today's date.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub today: Date,
    /// Days `infobip_billing_cost` and `infobip_billing_quantity` export.
    pub day_window: DayRange,
    /// Most series one data metric may have; see [`cap_series`].
    pub max_series: usize,
    pub budgets: &'a [BudgetConfig],
}

/// The figures a scrape encodes, computed once per applied result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Label names of the optional dimensions (snake_case), in config order.
    pub dimension_labels: Vec<String>,
    /// `infobip_billing_cost`: one series per day in the window.
    pub days: Vec<CostSeries>,
    /// `infobip_billing_month_cost`: month-to-date per month in retention.
    pub months: Vec<CostSeries>,
    /// `infobip_billing_quantity`: like `days`, with `unit` set.
    pub quantities: Vec<CostSeries>,
    /// `infobip_billing_month_forecast_cost`: the current month only, `status` unset.
    pub forecasts: Vec<CostSeries>,
    pub budgets: Vec<BudgetSeries>,
    /// `infobip_billing_month_finalized`: (target, month, finalized).
    pub finalized: Vec<(String, YearMonth, bool)>,
    /// `infobip_billing_account_info`: (target, account, account_key).
    pub accounts: Vec<(String, String, String)>,
    /// Targets that have had at least one result applied.
    pub targets_with_data: Vec<String>,
    /// Results applied over all targets since start.
    pub results_applied: u64,
    /// Series the `max_series` cap folded into `other` while building this snapshot.
    pub rolled_up: u64,
    /// The data metrics as exposition text, encoded once here by [`collector::encode`] so that
    /// a scrape only copies it.
    pub exposition: String,
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

/// The label value the roll-up gives up a label for.
pub const OTHER: &str = "other";

/// Series key within one target and period: (account, category, currency, unit, dimensions).
type SeriesKey = (String, String, String, Option<String>, Vec<String>);

impl Snapshot {
    /// Daily series for the days in the window, monthly series for the months in retention, the
    /// forecast and budgets for the current month, each data metric capped at `max_series`.
    pub fn build(ledger: &Ledger, view: View<'_>) -> Arc<Self> {
        let mut s = Snapshot {
            dimension_labels: ledger
                .dimensions
                .iter()
                .map(|d| dimension_label(d))
                .collect(),
            ..Snapshot::default()
        };
        let retained = retention_months(view.today);
        let current = YearMonth::of(view.today);
        for (target, tl) in &ledger.targets {
            if tl.results_applied > 0 {
                s.targets_with_data.push(target.clone());
            }
            s.results_applied += tl.results_applied;
            let mut months: BTreeMap<YearMonth, BTreeMap<SeriesKey, Decimal>> = BTreeMap::new();
            // Month-to-date of the current month over complete days (before today) only.
            let mut complete: BTreeMap<SeriesKey, Decimal> = BTreeMap::new();
            // Keyed without account_key, so facts that differ only in it share a series, and in
            // the order the series are exported (day last).
            let mut quantities: BTreeMap<(SeriesKey, Date), Decimal> = BTreeMap::new();
            let mut accounts = std::collections::BTreeSet::new();
            for (day, facts) in &tl.days {
                let month = YearMonth::of(*day);
                if !retained.contains(&month) {
                    continue;
                }
                let status = Some(tl.status_of(month));
                let in_window = view.day_window.contains(*day);
                let mut per_day: BTreeMap<SeriesKey, Decimal> = BTreeMap::new();
                for (key, amount) in facts {
                    accounts.insert((key.account.clone(), key.account_key.clone()));
                    let cost_key = (
                        key.account.clone(),
                        key.category.clone(),
                        key.currency.clone(),
                        None,
                        key.dimensions.clone(),
                    );
                    *per_day.entry(cost_key.clone()).or_default() += amount.cost;
                    if month == current && *day < view.today {
                        *complete.entry(cost_key.clone()).or_default() += amount.cost;
                    }
                    *months
                        .entry(month)
                        .or_default()
                        .entry(cost_key)
                        .or_default() += amount.cost;
                    if in_window {
                        let quantity_key = (
                            key.account.clone(),
                            key.category.clone(),
                            key.currency.clone(),
                            Some(key.unit.clone()),
                            key.dimensions.clone(),
                        );
                        *quantities.entry((quantity_key, *day)).or_default() += amount.quantity;
                    }
                }
                if in_window {
                    s.days.extend(
                        per_day
                            .into_iter()
                            .map(|(k, cost)| series(target, k, day, status, cost)),
                    );
                }
            }
            s.quantities
                .extend(quantities.into_iter().map(|((k, day), q)| {
                    let status = Some(tl.status_of(YearMonth::of(day)));
                    series(target, k, &day, status, q)
                }));
            if let Some(mtd) = months.get(&current) {
                let elapsed = i64::from(view.today.day()) - 1;
                s.forecasts.extend(mtd.iter().map(|(k, cost)| {
                    let done = complete.get(k).copied().unwrap_or_default();
                    let value = forecast(*cost, done, elapsed, current);
                    series(target, k.clone(), &current, None, value)
                }));
            }
            for (month, sums) in months {
                let status = Some(tl.status_of(month));
                s.months.extend(
                    sums.into_iter()
                        .map(|(k, cost)| series(target, k, &month, status, cost)),
                );
            }
            s.finalized.extend(
                tl.months
                    .iter()
                    .filter(|(m, _)| retained.contains(m))
                    .map(|(m, f)| (target.clone(), *m, *f)),
            );
            s.accounts.extend(
                accounts
                    .into_iter()
                    .map(|(name, key)| (target.clone(), name, key)),
            );
        }
        // Budgets see every series, before any roll-up.
        s.budgets = view
            .budgets
            .iter()
            .map(|b| budget(b, &s.months, &current.to_string()))
            .collect();
        let max = view.max_series;
        for family in [
            &mut s.days,
            &mut s.months,
            &mut s.quantities,
            &mut s.forecasts,
        ] {
            let (capped, rolled) = cap_series(std::mem::take(family), max);
            *family = capped;
            s.rolled_up += rolled;
        }
        s.exposition = collector::encode(&s);
        Arc::new(s)
    }
}

/// The label name of an optional dimension: its code in lower case (`TRAFFIC_TYPE` →
/// `traffic_type`).
pub fn dimension_label(code: &str) -> String {
    code.to_ascii_lowercase()
}

fn series(
    target: &str,
    key: SeriesKey,
    period: &impl std::fmt::Display,
    status: Option<Status>,
    value: Decimal,
) -> CostSeries {
    let (account, category, currency, unit, dimensions) = key;
    CostSeries {
        target: target.to_owned(),
        channel: channel_of(&category),
        account,
        category,
        currency,
        unit,
        dimensions,
        period: period.to_string(),
        status,
        value,
    }
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

fn budget(config: &BudgetConfig, months: &[CostSeries], current: &str) -> BudgetSeries {
    let m = &config.matcher;
    let hit = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let used = months
        .iter()
        .filter(|s| {
            s.period == current
                && s.currency == config.currency
                && hit(&m.target, &s.target)
                && hit(&m.account, &s.account)
                && hit(&m.category, &s.category)
                && hit(&m.channel, &s.channel)
        })
        .map(|s| s.value)
        .sum();
    BudgetSeries {
        name: config.name.clone(),
        currency: config.currency.clone(),
        matcher: m
            .labels()
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect(),
        monthly: config.monthly,
        used,
    }
}

/// The labels the roll-up gives up, first to last.
#[derive(Debug, Clone, Copy)]
enum Level {
    Dimension(usize),
    Category,
    Account,
    Channel,
}

impl Level {
    fn label(self, s: &mut CostSeries) -> &mut String {
        match self {
            Level::Dimension(i) => &mut s.dimensions[i],
            Level::Category => &mut s.category,
            Level::Account => &mut s.account,
            Level::Channel => &mut s.channel,
        }
    }
}

/// Keeps one metric at `max` series at most, returning the series and how many of the input
/// series were folded into `other`.
///
/// Labels are given up one at a time: the optional dimensions, last configured first, then
/// `category`, `account` and `channel`. For the label being given up, series move to `other`
/// smallest absolute value first (ties in label order), merging with series that already have
/// `other` there, until the metric fits; only when every series has `other` for that label does
/// the next label start. Values are summed, so totals per currency (and per target, period,
/// status and unit, which are never rolled up) stay exact. When even that floor exceeds `max`
/// the floor is exported and a warning logged.
pub fn cap_series(series: Vec<CostSeries>, max: usize) -> (Vec<CostSeries>, u64) {
    if series.len() <= max {
        return (series, 0);
    }
    let dims = series.first().map_or(0, |s| s.dimensions.len());
    let levels = (0..dims).rev().map(Level::Dimension).chain([
        Level::Category,
        Level::Account,
        Level::Channel,
    ]);
    // (series, input series it stands for, whether any of its labels was rolled up)
    let mut items: Vec<(CostSeries, u64, bool)> =
        series.into_iter().map(|s| (s, 1, false)).collect();
    for level in levels {
        if items.len() <= max {
            break;
        }
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&items[a].0, &items[b].0);
            x.value.abs().cmp(&y.value.abs()).then_with(|| x.cmp(y))
        });
        let mut keys: HashSet<u64> = items.iter_mut().map(|(s, _, _)| label_hash(s)).collect();
        let mut count = items.len();
        for i in order {
            if count <= max {
                break;
            }
            let item = &mut items[i];
            let label = level.label(&mut item.0);
            if label == OTHER {
                continue;
            }
            *label = OTHER.to_owned();
            item.2 = true;
            // The series leaves its own labels; it adds a series only if that `other` is new.
            count -= 1;
            if keys.insert(label_hash(&mut item.0)) {
                count += 1;
            }
        }
        let mut merged: BTreeMap<CostSeries, (Decimal, u64, bool)> = BTreeMap::new();
        for (mut s, members, rolled) in items {
            // Keyed by labels alone: the value goes into the sum.
            let value = std::mem::take(&mut s.value);
            let e = merged.entry(s).or_default();
            e.0 += value;
            e.1 += members;
            e.2 |= rolled;
        }
        items = merged
            .into_iter()
            .map(|(mut s, (value, members, rolled))| {
                s.value = value;
                (s, members, rolled)
            })
            .collect();
    }
    if items.len() > max {
        tracing::warn!(
            series = items.len(),
            max_series = max,
            "max_series is below what target, currency, period and unit alone need; exporting that floor"
        );
    }
    let rolled = items.iter().filter(|(_, _, r)| *r).map(|(_, m, _)| m).sum();
    (items.into_iter().map(|(s, _, _)| s).collect(), rolled)
}

/// A hash of a series' labels (its value left out), to count distinct label sets without
/// copying them; a 64-bit collision could only end the roll-up one series early.
fn label_hash(s: &mut CostSeries) -> u64 {
    use std::hash::{Hash, Hasher};
    let value = std::mem::take(&mut s.value);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut hasher);
    s.value = value;
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn key(account: &str, category: &str, currency: &str) -> FactKey {
        FactKey {
            account: account.into(),
            account_key: format!("{account}-key"),
            category: category.into(),
            currency: currency.into(),
            unit: "message".into(),
            dimensions: Vec::new(),
        }
    }

    fn usage(covered: DayRange, facts: &[(Date, FactKey, &str)], final_: bool) -> Usage {
        let mut map = HashMap::new();
        for (day, k, cost) in facts {
            *map.entry((*day, k.clone())).or_insert_with(Amount::default) += Amount {
                cost: cost.parse().unwrap(),
                quantity: Decimal::ONE,
            };
        }
        Usage {
            covered: Some(covered),
            periods: vec![(YearMonth::of(covered.since), final_)],
            facts: map,
        }
    }

    fn view(today: Date, day_window: DayRange, budgets: &[BudgetConfig]) -> View<'_> {
        View {
            today,
            day_window,
            max_series: 10_000,
            budgets,
        }
    }

    const NOV: DayRange = DayRange {
        since: date!(2026 - 11 - 01),
        until: date!(2026 - 11 - 04),
    };

    #[test]
    fn a_changed_final_day_is_flagged_as_such() {
        let mut ledger = Ledger::default();
        let d1 = date!(2026 - 11 - 01);
        ledger.apply(
            "eu",
            usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1.10")], true),
        );
        let report = ledger.apply(
            "eu",
            usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1.20")], true),
        );
        assert_eq!(report.restatements.len(), 1);
        let r = &report.restatements[0];
        assert!(r.was_final);
        assert_eq!(
            (r.old.to_string(), r.new.to_string()),
            ("1.10".into(), "1.20".into())
        );
    }

    #[test]
    fn a_result_replaces_covered_days_and_never_adds() {
        let mut ledger = Ledger::default();
        let d1 = date!(2026 - 11 - 01);
        let d2 = date!(2026 - 11 - 02);
        ledger.apply(
            "eu",
            usage(
                NOV,
                &[
                    (d1, key("A", "SMS", "EUR"), "1.10"),
                    (d2, key("A", "SMS", "EUR"), "2.00"),
                ],
                false,
            ),
        );
        let report = ledger.apply(
            "eu",
            usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1.15")], false),
        );
        let tl = &ledger.targets["eu"];
        assert_eq!(
            tl.days[&d1][&key("A", "SMS", "EUR")].cost,
            "1.15".parse().unwrap()
        );
        assert!(
            !tl.days.contains_key(&d2),
            "a covered day without rows is emptied"
        );
        assert_eq!(report.restatements.len(), 2);
        assert_eq!(report.days_replaced, 3);
    }

    #[test]
    fn finalized_month_stays_final_and_snapshot_sums_per_currency() {
        let mut ledger = Ledger::default();
        let d1 = date!(2026 - 11 - 01);
        ledger.apply(
            "eu",
            usage(
                NOV,
                &[
                    (d1, key("A", "SMS", "EUR"), "1.10"),
                    (d1, key("A", "SMS", "USD"), "3.00"),
                    (d1, key("A", "SMS_OPERATOR_FEE", "USD"), "0.25"),
                ],
                true,
            ),
        );
        ledger.apply(
            "eu",
            usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1.10")], false),
        );
        assert!(ledger.targets["eu"].month_final(YearMonth::of(d1)));

        ledger.apply(
            "eu",
            usage(
                NOV,
                &[
                    (d1, key("A", "SMS", "EUR"), "1.10"),
                    (d1, key("A", "SMS", "USD"), "3.00"),
                ],
                true,
            ),
        );
        let snap = Snapshot::build(&ledger, view(date!(2026 - 11 - 03), NOV, &[]));
        assert_eq!(snap.days.len(), 2);
        assert!(
            snap.days
                .iter()
                .all(|s| s.status == Some(Status::Final) && s.channel == "sms")
        );
        let usd: Decimal = snap
            .months
            .iter()
            .filter(|s| s.currency == "USD")
            .map(|s| s.value)
            .sum();
        assert_eq!(usd, "3.00".parse().unwrap());
    }

    #[test]
    fn forecast_projects_complete_days_and_never_drops_below_month_to_date() {
        let nov: YearMonth = "2026-11".parse().unwrap();
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        // 10 complete days costing 100 → 10 a day → 300 for 30 days.
        assert_eq!(forecast(dec("150"), dec("100"), 10, nov), dec("300"));
        // A heavy today: never below month-to-date.
        assert_eq!(forecast(dec("400"), dec("100"), 10, nov), dec("400"));
        // The 1st: no complete day, the month-to-date is the forecast.
        assert_eq!(forecast(dec("7.5"), dec("0"), 0, nov), dec("7.5"));
        // Rounded to cents: 1 / 3 × 31.
        let oct: YearMonth = "2026-10".parse().unwrap();
        assert_eq!(forecast(dec("1"), dec("1"), 3, oct), dec("10.33"));
    }

    #[test]
    fn snapshot_has_forecast_budgets_finalized_and_accounts() {
        let mut ledger = Ledger::default();
        let (d1, d2, d3) = (
            date!(2026 - 11 - 01),
            date!(2026 - 11 - 02),
            date!(2026 - 11 - 03),
        );
        ledger.apply(
            "eu",
            usage(
                NOV,
                &[
                    (d1, key("A", "WHATSAPP", "EUR"), "10"),
                    (d2, key("A", "WHATSAPP", "EUR"), "20"),
                    (d3, key("A", "WHATSAPP", "EUR"), "1"),
                    (d1, key("B", "SMS", "EUR"), "5"),
                    (d1, key("B", "SMS", "USD"), "7"),
                ],
                false,
            ),
        );
        let budgets = [
            BudgetConfig {
                name: "wa".into(),
                monthly: "100".parse().unwrap(),
                currency: "EUR".into(),
                matcher: crate::config::BudgetMatch {
                    channel: Some("whatsapp".into()),
                    ..Default::default()
                },
            },
            BudgetConfig {
                name: "eur".into(),
                monthly: "72".parse().unwrap(),
                currency: "EUR".into(),
                matcher: Default::default(),
            },
        ];
        let snap = Snapshot::build(&ledger, view(d3, NOV, &budgets));
        let wa = snap
            .forecasts
            .iter()
            .find(|s| s.category == "WHATSAPP")
            .unwrap();
        // Two complete days of 30 → 15 a day × 30 days.
        assert_eq!(wa.value, "450".parse().unwrap());
        assert_eq!(wa.status, None);
        assert_eq!(snap.budgets[0].used, "31".parse().unwrap());
        assert_eq!(snap.budgets[1].used_ratio(), "0.5".parse().unwrap());
        assert_eq!(
            snap.finalized,
            [("eu".to_owned(), YearMonth::of(d1), false)]
        );
        let accounts: Vec<&str> = snap.accounts.iter().map(|a| a.2.as_str()).collect();
        assert_eq!(accounts, ["A-key", "B-key"]);
        assert_eq!(snap.quantities.len(), 5);
        assert!(
            snap.quantities
                .iter()
                .all(|q| q.unit.as_deref() == Some("message"))
        );
    }

    #[test]
    fn cap_rolls_the_smallest_series_into_other_and_keeps_totals() {
        let mut series = Vec::new();
        for i in 0..200u32 {
            series.push(CostSeries {
                target: "eu".into(),
                account: format!("acct-{}", i % 5),
                category: if i % 2 == 0 { "SMS" } else { "WHATSAPP" }.into(),
                channel: if i % 2 == 0 { "sms" } else { "whatsapp" }.into(),
                currency: if i % 3 == 0 { "USD" } else { "EUR" }.into(),
                unit: None,
                dimensions: vec![format!("country-{i}")],
                period: "2026-11".into(),
                status: Some(Status::Provisional),
                value: Decimal::from(i),
            });
        }
        let totals = |s: &[CostSeries]| {
            let mut t: BTreeMap<String, Decimal> = BTreeMap::new();
            for x in s {
                *t.entry(x.currency.clone()).or_default() += x.value;
            }
            t
        };
        let before = totals(&series);
        let (capped, rolled) = cap_series(series, 50);
        assert!(capped.len() <= 50, "{} series", capped.len());
        assert_eq!(totals(&capped), before);
        assert!(rolled > 150, "rolled {rolled}");
        // The largest series keeps its own country; small ones are `other`.
        assert!(capped.iter().any(|s| s.dimensions[0] == "country-199"));
        assert!(capped.iter().any(|s| s.dimensions[0] == OTHER));
        assert!(capped.iter().all(|s| s.account != OTHER), "accounts kept");
        // Under the cap nothing changes.
        let (same, none) = cap_series(capped.clone(), 50);
        assert_eq!((same, none), (capped, 0));
    }

    #[test]
    fn reshape_follows_a_changed_dimension_list() {
        let mut ledger = Ledger {
            dimensions: vec!["TRAFFIC_TYPE".into()],
            ..Ledger::default()
        };
        let d1 = date!(2026 - 11 - 01);
        let mut a = key("A", "SMS", "EUR");
        a.dimensions = vec!["A2P".into()];
        let mut b = a.clone();
        b.dimensions = vec!["P2P".into()];
        ledger.apply("eu", usage(NOV, &[(d1, a, "1"), (d1, b, "2")], false));
        ledger.reshape(&["COUNTRY_CODE".into()]);
        let facts = &ledger.targets["eu"].days[&d1];
        assert_eq!(facts.len(), 1);
        let (k, amount) = facts.iter().next().unwrap();
        assert_eq!(k.dimensions, ["N/A"]);
        assert_eq!(amount.cost, Decimal::from(3));
    }

    #[test]
    fn channel_mapping_passes_unknown_categories_through() {
        assert_eq!(channel_of("SMS_OPERATOR_FEE"), "sms");
        assert_eq!(channel_of("CARRIER_LOOKUP"), "lookup");
        assert_eq!(channel_of("VOICE_VIDEO"), "voice_video");
    }

    #[test]
    fn prune_drops_days_out_of_retention() {
        let mut ledger = Ledger::default();
        ledger.apply(
            "eu",
            usage(
                NOV,
                &[(date!(2026 - 11 - 01), key("A", "SMS", "EUR"), "1")],
                false,
            ),
        );
        ledger.prune_before(date!(2026 - 12 - 01));
        assert!(ledger.targets["eu"].days.is_empty());
        assert!(ledger.targets["eu"].months.is_empty());
    }
}
