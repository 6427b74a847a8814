//! The billing facts. A result replaces the rows of the days it covers (late records, discounts
//! and price adjustments restate provisional data; adding would double-count). Money stays in
//! `Decimal` and per currency; the snapshot handed to scrapes is immutable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rust_decimal::Decimal;
use time::Date;

use crate::billing::calendar::{DayRange, YearMonth};

use crate::billing::labels::{Labels, NOT_APPLICABLE, Tally, rows};

/// Where each part of a fact's key sits in its row of label ids: account, account key,
/// category, currency, unit, then the optional dimensions in [`Ledger::dimensions`] order.
pub const ACCOUNT: usize = 0;
pub const ACCOUNT_KEY: usize = 1;
pub const CATEGORY: usize = 2;
pub const CURRENCY: usize = 3;
pub const UNIT: usize = 4;
pub const FIRST_DIMENSION: usize = 5;

/// What distinguishes one billed figure within a day of a target, as strings: the readable
/// form of a fact's row of label ids, for the state file, tests and tools.
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

impl FactKey {
    fn from_ids(labels: &Labels, ids: &[u32]) -> Self {
        let name = |at: usize| labels.name(ids[at]).to_owned();
        Self {
            account: name(ACCOUNT),
            account_key: name(ACCOUNT_KEY),
            category: name(CATEGORY),
            currency: name(CURRENCY),
            unit: name(UNIT),
            dimensions: ids[FIRST_DIMENSION..]
                .iter()
                .map(|&id| labels.name(id).to_owned())
                .collect(),
        }
    }

    /// The key as `width` ids in `ids`; dimensions it lacks read `N/A`, extra ones are left out.
    fn to_ids(&self, labels: &mut Labels, width: usize, ids: &mut Vec<u32>) {
        ids.clear();
        for part in [
            &self.account,
            &self.account_key,
            &self.category,
            &self.currency,
            &self.unit,
        ] {
            ids.push(labels.intern(part));
        }
        for i in 0..width.saturating_sub(FIRST_DIMENSION) {
            let value = self
                .dimensions
                .get(i)
                .map_or(NOT_APPLICABLE, String::as_str);
            ids.push(labels.intern(value));
        }
    }
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

/// One day's facts of a target: distinct keys, each a row of label ids laid out as [`ACCOUNT`]
/// and the constants after it, with its amount. Flat vectors: a fact costs its ids and its
/// amount, about 60 bytes with two dimensions, and no allocation of its own.
#[derive(Debug, Clone, Default)]
pub struct DayFacts {
    width: usize,
    keys: Vec<u32>,
    amounts: Vec<Amount>,
}

impl DayFacts {
    /// The facts of a tally whose keys are fact rows.
    pub fn from_tally(tally: Tally<Amount>) -> Self {
        let width = tally.width();
        let (keys, amounts) = tally.into_parts();
        Self {
            width,
            keys,
            amounts,
        }
    }

    pub fn len(&self) -> usize {
        self.amounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.amounts.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u32], &Amount)> {
        rows(&self.keys, self.width).zip(&self.amounts)
    }

    /// The facts with the dimensions `from` names (by index into the current ones; `None` reads
    /// `not_applicable`), summing facts that become equal.
    fn rekey(&self, from: &[Option<usize>], not_applicable: u32) -> Self {
        let mut tally = Tally::new(FIRST_DIMENSION + from.len());
        let mut key = Vec::with_capacity(FIRST_DIMENSION + from.len());
        for (ids, amount) in self.iter() {
            key.clear();
            key.extend_from_slice(&ids[..FIRST_DIMENSION]);
            key.extend(from.iter().map(|i| {
                i.and_then(|i| ids.get(FIRST_DIMENSION + i).copied())
                    .unwrap_or(not_applicable)
            }));
            *tally.entry(&key) += *amount;
        }
        Self::from_tally(tally)
    }

    /// Every label id the facts use.
    fn ids(&self) -> &[u32] {
        &self.keys
    }

    /// Points every id at another table: `map[old] = new`.
    fn remap(&mut self, map: &[u32]) {
        for id in &mut self.keys {
            *id = map.get(*id as usize).copied().unwrap_or(u32::MAX);
        }
    }

    fn resolve(&self, labels: &Labels) -> BTreeMap<FactKey, Amount> {
        let mut out = BTreeMap::new();
        for (ids, amount) in self.iter() {
            *out.entry(FactKey::from_ids(labels, ids)).or_default() += *amount;
        }
        out
    }
}

/// One decoded result: the days it covers, the months' finalization, and the summed facts per
/// day, whose label ids refer to its own `labels`.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub covered: Option<DayRange>,
    pub periods: Vec<(YearMonth, bool)>,
    pub labels: Labels,
    pub days: BTreeMap<Date, DayFacts>,
}

impl Usage {
    /// A result from facts given as strings (tests, tools); see [`UsageBuilder`].
    pub fn from_facts(
        covered: Option<DayRange>,
        periods: Vec<(YearMonth, bool)>,
        facts: impl IntoIterator<Item = ((Date, FactKey), Amount)>,
    ) -> Self {
        let mut builder = UsageBuilder::default();
        for ((day, key), amount) in facts {
            builder.add(day, &key, amount);
        }
        builder.finish(covered, periods)
    }

    /// Every fact, as strings.
    pub fn facts(&self) -> BTreeMap<(Date, FactKey), Amount> {
        self.days
            .iter()
            .flat_map(|(day, facts)| {
                facts
                    .resolve(&self.labels)
                    .into_iter()
                    .map(move |(key, amount)| ((*day, key), amount))
            })
            .collect()
    }

    /// How many facts the result has.
    pub fn len(&self) -> usize {
        self.days.values().map(DayFacts::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds a [`Usage`] one fact at a time, so facts read from a file are never all held as
/// strings. Facts with equal keys are summed; every fact gets the dimension count of the first
/// one (missing values read `N/A`, extra ones are left out).
#[derive(Debug, Default)]
pub struct UsageBuilder {
    width: Option<usize>,
    labels: Labels,
    days: BTreeMap<Date, Tally<Amount>>,
    ids: Vec<u32>,
}

impl UsageBuilder {
    pub fn add(&mut self, day: Date, key: &FactKey, amount: Amount) {
        let width = *self
            .width
            .get_or_insert(FIRST_DIMENSION + key.dimensions.len());
        key.to_ids(&mut self.labels, width, &mut self.ids);
        *self
            .days
            .entry(day)
            .or_insert_with(|| Tally::new(width))
            .entry(&self.ids) += amount;
    }

    pub fn finish(self, covered: Option<DayRange>, periods: Vec<(YearMonth, bool)>) -> Usage {
        Usage {
            covered,
            periods,
            labels: self.labels,
            days: self
                .days
                .into_iter()
                .map(|(day, t)| (day, DayFacts::from_tally(t)))
                .collect(),
        }
    }
}

/// Equal when they say the same, whatever ids their labels got.
impl PartialEq for Usage {
    fn eq(&self, other: &Self) -> bool {
        self.covered == other.covered
            && self.periods == other.periods
            && self.facts() == other.facts()
    }
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

#[derive(Debug, Clone, Default)]
pub struct TargetLedger {
    /// Label ids refer to [`Ledger::labels`]. A day is replaced whole, never edited, so it is
    /// shared: cloning the ledger to save it copies no facts.
    pub days: BTreeMap<Date, Arc<DayFacts>>,
    /// Months a result spoke about, `true` once `volumeFinalized` said so.
    pub months: BTreeMap<YearMonth, bool>,
    /// Months whose facts were re-keyed to a dimension list with a dimension they have no values
    /// for (it reads `N/A`): asked for again, even when final, until a result covers them.
    pub reshaped: BTreeSet<YearMonth>,
    pub results_applied: u64,
}

impl TargetLedger {
    pub fn month_final(&self, month: YearMonth) -> bool {
        self.months.get(&month).copied().unwrap_or(false)
    }

    /// Whether a query for `month` can still change what is stored: not final yet, or lacking
    /// the values of a dimension added since it was fetched.
    pub fn wants(&self, month: YearMonth) -> bool {
        !self.month_final(month) || self.reshaped.contains(&month)
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

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Column names of the optional dimensions every fact carries (`TRAFFIC_TYPE`, …).
    pub dimensions: Vec<String>,
    /// The strings behind the label ids of every target's facts.
    pub labels: Labels,
    pub targets: BTreeMap<String, TargetLedger>,
}

impl Ledger {
    /// Replaces the covered days of `target` with the result's facts. Months keep their final flag
    /// once set: `volumeFinalized: true` means the figures will not change again.
    pub fn apply(&mut self, target: &str, mut usage: Usage) -> ApplyReport {
        self.adopt(&mut usage);
        let ledger = self.targets.entry(target.to_owned()).or_default();
        let mut report = ApplyReport::default();
        if let Some(covered) = usage.covered {
            for month in covered.days().map(YearMonth::of) {
                ledger.reshaped.remove(&month);
            }
            for day in covered.days() {
                let new = usage.days.remove(&day).unwrap_or_default();
                let old = ledger.days.remove(&day);
                let was_final = ledger.month_final(YearMonth::of(day));
                report.restatements.extend(restatements(
                    &self.labels,
                    day,
                    old.as_deref(),
                    &new,
                    was_final,
                ));
                // The old facts go before the next day's are looked at, so at most one day is
                // held twice.
                drop(old);
                if !new.is_empty() {
                    ledger.days.insert(day, Arc::new(new));
                }
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

    /// Puts back a target as the state file had it: every day of `usage`, and the months and
    /// counter of `restored` (whose days are ignored).
    pub fn restore(&mut self, target: &str, mut usage: Usage, restored: TargetLedger) {
        self.adopt(&mut usage);
        let ledger = self.targets.entry(target.to_owned()).or_default();
        ledger
            .days
            .extend(usage.days.into_iter().map(|(day, f)| (day, Arc::new(f))));
        ledger.months = restored.months;
        ledger.reshaped = restored.reshaped;
        ledger.results_applied = restored.results_applied;
    }

    /// Points a result's label ids at this ledger's labels and gives its facts this ledger's
    /// dimension count (a result always has it; facts restored from an edited file may not).
    fn adopt(&mut self, usage: &mut Usage) {
        let map: Vec<u32> = usage
            .labels
            .names()
            .map(|name| self.labels.intern(name))
            .collect();
        let width = self.width();
        let not_applicable = self.labels.intern(NOT_APPLICABLE);
        for facts in usage.days.values_mut() {
            facts.remap(&map);
            if facts.width != width && !facts.is_empty() {
                let have = facts.width - FIRST_DIMENSION;
                let from: Vec<Option<usize>> = (0..self.dimensions.len())
                    .map(|i| (i < have).then_some(i))
                    .collect();
                *facts = facts.rekey(&from, not_applicable);
            }
        }
    }

    /// Label ids per fact.
    fn width(&self) -> usize {
        FIRST_DIMENSION + self.dimensions.len()
    }

    /// Drops what Infobip no longer holds, so the ledger stays bounded. Returns whether a day
    /// was dropped.
    pub fn prune_before(&mut self, first_kept: Date) -> bool {
        let mut dropped = false;
        for ledger in self.targets.values_mut() {
            let kept = ledger.days.split_off(&first_kept);
            dropped |= !ledger.days.is_empty();
            ledger.days = kept;
            let first_month = YearMonth::of(first_kept);
            ledger.months = ledger.months.split_off(&first_month);
            ledger.reshaped = ledger.reshaped.split_off(&first_month);
        }
        if dropped {
            self.compact_labels();
        }
        dropped
    }

    /// A target's facts of one day, as strings.
    pub fn facts(&self, target: &str, day: Date) -> BTreeMap<FactKey, Amount> {
        self.targets
            .get(target)
            .and_then(|t| t.days.get(&day))
            .map(|facts| facts.resolve(&self.labels))
            .unwrap_or_default()
    }

    /// Every fact of every target, as strings, with the months and counters: what two ledgers
    /// must share to be equal.
    fn resolved(&self) -> impl Iterator<Item = ResolvedTarget<'_>> {
        self.targets.iter().map(|(name, t)| {
            let days = t
                .days
                .iter()
                .map(|(day, facts)| (*day, facts.resolve(&self.labels)))
                .collect();
            (
                name.as_str(),
                &t.months,
                &t.reshaped,
                t.results_applied,
                days,
            )
        })
    }

    /// Forgets the strings no fact uses any more (accounts gone from the retention window,
    /// dimensions dropped), renumbering the ids.
    fn compact_labels(&mut self) {
        let mut used = vec![false; self.labels.len()];
        let all_facts = || self.targets.values().flat_map(|t| t.days.values());
        for facts in all_facts() {
            for &id in facts.ids() {
                if let Some(u) = used.get_mut(id as usize) {
                    *u = true;
                }
            }
        }
        if used.iter().all(|u| *u) {
            return;
        }
        let mut fresh = Labels::default();
        let map: Vec<u32> = used
            .iter()
            .enumerate()
            .map(|(id, &u)| {
                let id = u32::try_from(id).unwrap_or(u32::MAX);
                if u {
                    fresh.intern(self.labels.name(id))
                } else {
                    u32::MAX
                }
            })
            .collect();
        for t in self.targets.values_mut() {
            for facts in t.days.values_mut() {
                Arc::make_mut(facts).remap(&map);
            }
        }
        self.labels = fresh;
    }
}

type ResolvedTarget<'a> = (
    &'a str,
    &'a BTreeMap<YearMonth, bool>,
    &'a BTreeSet<YearMonth>,
    u64,
    BTreeMap<Date, BTreeMap<FactKey, Amount>>,
);

/// Equal when they hold the same facts, whatever ids their labels got.
impl PartialEq for Ledger {
    fn eq(&self, other: &Self) -> bool {
        self.dimensions == other.dimensions
            && self.targets.len() == other.targets.len()
            && self.resolved().eq(other.resolved())
    }
}

impl Ledger {
    /// Re-keys every fact to `dimensions`, for a config whose dimensions changed since the state
    /// was saved: values of dropped dimensions are summed away, added ones read `N/A` until the
    /// days are fetched again, which [`TargetLedger::reshaped`] asks for, final months included.
    /// Returns whether anything changed.
    pub fn reshape(&mut self, dimensions: &[String]) -> bool {
        if self.dimensions == dimensions {
            return false;
        }
        let from: Vec<Option<usize>> = dimensions
            .iter()
            .map(|d| self.dimensions.iter().position(|old| old == d))
            .collect();
        let not_applicable = self.labels.intern(NOT_APPLICABLE);
        let added = from.contains(&None);
        for tl in self.targets.values_mut() {
            for facts in tl.days.values_mut() {
                *facts = Arc::new(facts.rekey(&from, not_applicable));
            }
            if added {
                let stored = tl.days.keys().map(|day| YearMonth::of(*day));
                tl.reshaped.extend(stored.chain(tl.months.keys().copied()));
            }
        }
        self.dimensions = dimensions.to_vec();
        self.compact_labels();
        true
    }
}

/// Per-currency day totals that moved. Only stored days count: a first fetch is no restatement.
fn restatements(
    labels: &Labels,
    day: Date,
    old: Option<&DayFacts>,
    new: &DayFacts,
    was_final: bool,
) -> Vec<Restatement> {
    let Some(old) = old else {
        return Vec::new();
    };
    let totals = |facts: &DayFacts| {
        let mut sums: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (ids, amount) in facts.iter() {
            *sums.entry(labels.name(ids[CURRENCY])).or_default() += amount.cost;
        }
        sums
    };
    let (old, new) = (totals(old), totals(new));
    let currencies: std::collections::BTreeSet<&str> =
        old.keys().chain(new.keys()).copied().collect();
    currencies
        .into_iter()
        .filter_map(|currency| {
            let before = old.get(currency).copied().unwrap_or_default();
            let after = new.get(currency).copied().unwrap_or_default();
            (before != after).then(|| Restatement {
                day,
                currency: currency.to_owned(),
                old: before,
                new: after,
                was_final,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::date;

    pub(crate) fn key(account: &str, category: &str, currency: &str) -> FactKey {
        FactKey {
            account: account.into(),
            account_key: format!("{account}-key"),
            category: category.into(),
            currency: currency.into(),
            unit: "message".into(),
            dimensions: Vec::new(),
        }
    }

    pub(crate) fn usage(covered: DayRange, facts: &[(Date, FactKey, &str)], final_: bool) -> Usage {
        Usage::from_facts(
            Some(covered),
            vec![(YearMonth::of(covered.since), final_)],
            facts.iter().map(|(day, k, cost)| {
                let amount = Amount {
                    cost: cost.parse().unwrap(),
                    quantity: Decimal::ONE,
                };
                ((*day, k.clone()), amount)
            }),
        )
    }

    pub(crate) const NOV: DayRange = DayRange {
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
            ledger.facts("eu", d1)[&key("A", "SMS", "EUR")].cost,
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
        let facts = ledger.facts("eu", d1);
        assert_eq!(facts.len(), 1);
        let (k, amount) = facts.iter().next().unwrap();
        assert_eq!(k.dimensions, ["N/A"]);
        assert_eq!(amount.cost, Decimal::from(3));
        assert_eq!(
            ledger.labels.id("A2P"),
            None,
            "values of a dropped dimension are forgotten"
        );
    }

    #[test]
    fn a_final_month_is_wanted_again_only_after_a_dimension_is_added() {
        let mut ledger = Ledger {
            dimensions: vec!["TRAFFIC_TYPE".into()],
            ..Ledger::default()
        };
        let d1 = date!(2026 - 11 - 01);
        let nov = YearMonth::of(d1);
        ledger.apply("eu", usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1")], true));
        assert!(!ledger.targets["eu"].wants(nov), "final");
        ledger.reshape(&[]);
        assert!(
            !ledger.targets["eu"].wants(nov),
            "a dropped dimension is summed away"
        );
        ledger.reshape(&["COUNTRY_CODE".into()]);
        assert!(ledger.targets["eu"].wants(nov), "country codes are missing");
        assert_eq!(ledger.targets["eu"].status_of(nov), Status::Final);
        ledger.apply("eu", usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1")], true));
        assert!(!ledger.targets["eu"].wants(nov), "fetched again");
    }

    #[test]
    fn equality_and_results_do_not_depend_on_label_ids() {
        let d1 = date!(2026 - 11 - 01);
        let (a, b) = (key("A", "SMS", "EUR"), key("B", "MMS", "USD"));
        let mut one = Ledger::default();
        one.apply("eu", usage(NOV, &[(d1, a.clone(), "1")], false));
        one.apply("eu", usage(NOV, &[(d1, b.clone(), "2")], false));
        let mut two = Ledger::default();
        for _ in 0..2 {
            two.apply("eu", usage(NOV, &[(d1, b.clone(), "2")], false));
        }
        assert_ne!(one.labels.id("B"), two.labels.id("B"));
        assert_eq!(one, two);
        assert_eq!(one.facts("eu", d1).keys().collect::<Vec<_>>(), [&b]);
    }

    #[test]
    fn facts_of_another_width_read_na_for_missing_dimensions() {
        let mut ledger = Ledger {
            dimensions: vec!["TRAFFIC_TYPE".into(), "COUNTRY_CODE".into()],
            ..Ledger::default()
        };
        let d1 = date!(2026 - 11 - 01);
        let mut a = key("A", "SMS", "EUR");
        a.dimensions = vec!["A2P".into()];
        ledger.restore(
            "eu",
            usage(NOV, &[(d1, a, "1")], false),
            TargetLedger::default(),
        );
        let facts = ledger.facts("eu", d1);
        let (k, _) = facts.iter().next().unwrap();
        assert_eq!(k.dimensions, ["A2P", "N/A"]);
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
