//! The billing facts. A result replaces the rows of the days it covers (late records, discounts
//! and price adjustments restate provisional data; adding would double-count). Money stays in
//! `Decimal` and per currency; the snapshot handed to scrapes is immutable.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rust_decimal::Decimal;
use time::Date;

use crate::calendar::{DayRange, YearMonth};

/// What distinguishes one billed figure within a day of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FactKey {
    pub account: String,
    pub account_key: String,
    pub category: String,
    pub currency: String,
    pub unit: String,
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

/// The figures a scrape encodes, computed once per applied result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub days: Vec<CostSeries>,
    pub months: Vec<CostSeries>,
    /// Targets that have had at least one result applied.
    pub targets_with_data: Vec<String>,
    /// Results applied over all targets since start.
    pub results_applied: u64,
}

/// One exported series: `period` is a day (`2026-11-26`) or a month (`2026-11`).
#[derive(Debug, Clone, PartialEq)]
pub struct CostSeries {
    pub target: String,
    pub account: String,
    pub category: String,
    pub channel: String,
    pub currency: String,
    pub period: String,
    pub status: Status,
    pub cost: Decimal,
}

/// (account, category, currency)
type SeriesKey = (String, String, String);

impl Snapshot {
    /// Daily series for the days in `day_window`, monthly series for every stored month.
    /// Units are summed within (account, category, currency): cost carries no unit label.
    pub fn build(ledger: &Ledger, day_window: DayRange) -> Arc<Self> {
        let mut snapshot = Snapshot::default();
        for (target, tl) in &ledger.targets {
            if tl.results_applied > 0 {
                snapshot.targets_with_data.push(target.clone());
            }
            snapshot.results_applied += tl.results_applied;
            let mut months: BTreeMap<YearMonth, BTreeMap<SeriesKey, Decimal>> = BTreeMap::new();
            for (day, facts) in &tl.days {
                let month = YearMonth::of(*day);
                let mut per_day: BTreeMap<SeriesKey, Decimal> = BTreeMap::new();
                for (key, amount) in facts {
                    let series = (
                        key.account.clone(),
                        key.category.clone(),
                        key.currency.clone(),
                    );
                    *per_day.entry(series.clone()).or_default() += amount.cost;
                    *months.entry(month).or_default().entry(series).or_default() += amount.cost;
                }
                if day_window.contains(*day) {
                    let status = tl.status_of(month);
                    let period = day.to_string();
                    snapshot.days.extend(
                        per_day
                            .into_iter()
                            .map(|(k, cost)| series(target, k, period.clone(), status, cost)),
                    );
                }
            }
            for (month, sums) in months {
                let status = tl.status_of(month);
                let period = month.to_string();
                snapshot.months.extend(
                    sums.into_iter()
                        .map(|(k, cost)| series(target, k, period.clone(), status, cost)),
                );
            }
        }
        Arc::new(snapshot)
    }
}

fn series(
    target: &str,
    key: SeriesKey,
    period: String,
    status: Status,
    cost: Decimal,
) -> CostSeries {
    let (account, category, currency) = key;
    CostSeries {
        target: target.to_owned(),
        channel: channel_of(&category),
        account,
        category,
        currency,
        period,
        status,
        cost,
    }
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

    const NOV: DayRange = DayRange {
        since: date!(2026 - 11 - 01),
        until: date!(2026 - 11 - 04),
    };

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
        let snap = Snapshot::build(&ledger, NOV);
        assert_eq!(snap.days.len(), 2);
        assert!(
            snap.days
                .iter()
                .all(|s| s.status == Status::Final && s.channel == "sms")
        );
        let usd: Decimal = snap
            .months
            .iter()
            .filter(|s| s.currency == "USD")
            .map(|s| s.cost)
            .sum();
        assert_eq!(usd, "3.00".parse().unwrap());
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
