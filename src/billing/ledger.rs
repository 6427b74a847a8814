//! The ledger: billing facts in segments, one per target and month. A result replaces exactly one
//! segment, and within it the days its period covers (late records, discounts and price
//! adjustments restate provisional data; adding would double-count), never a day outside the
//! period its own query asked for. A segment is immutable once built and shared by `Arc`, so the
//! snapshot and the state file read it while the next result builds its successor.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::billing::calendar::{DayRange, YearMonth};
use crate::billing::facts::{Amount, CURRENCY, DayFacts, FIRST_DIMENSION, FactKey, Usage};
use crate::billing::labels::{Labels, NOT_APPLICABLE};

/// What a segment holds: one target's facts of one calendar month.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentKey {
    pub target: String,
    pub month: YearMonth,
}

impl SegmentKey {
    pub fn new(target: &str, month: YearMonth) -> Self {
        Self {
            target: target.to_owned(),
            month,
        }
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

/// One target's facts of one month, with what the scheduler and the self-metrics derive from
/// its results. Its label ids refer to its own `labels`: a segment replaced takes its strings
/// with it, and no other segment is touched.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    pub labels: Labels,
    pub days: BTreeMap<Date, DayFacts>,
    /// Set once a result said `volumeFinalized: true` for the month.
    pub finalized: bool,
    /// The facts were fetched under another query than the config's now: re-keyed to a
    /// dimension they have no values for (it reads `N/A`), or under other filters. Asked for
    /// again, even when final, until a result covers them.
    pub reshaped: bool,
    pub results_applied: u64,
    /// Wall time the last result was applied: a restart inside `interval` asks nothing.
    pub last_result_at: Option<OffsetDateTime>,
}

impl Segment {
    pub fn status(&self) -> Status {
        if self.finalized {
            Status::Final
        } else {
            Status::Provisional
        }
    }

    /// Whether a query for the month can still change what is stored: not final yet, or lacking
    /// the values of a dimension added since it was fetched.
    pub fn wants(&self) -> bool {
        !self.finalized || self.reshaped
    }

    /// The facts of one day, as strings.
    pub fn facts(&self, day: Date) -> BTreeMap<FactKey, Amount> {
        self.days
            .get(&day)
            .map(|facts| facts.resolve(&self.labels))
            .unwrap_or_default()
    }

    /// Every fact, as strings: what two segments must share to hold the same figures.
    pub fn all_facts(&self) -> BTreeMap<(Date, FactKey), Amount> {
        self.days
            .keys()
            .flat_map(|day| self.facts(*day).into_iter().map(|(k, a)| ((*day, k), a)))
            .collect()
    }

    /// The segment with its facts re-keyed: `from[i]` is the index of the new dimension `i`
    /// among the current ones, `None` for one they lack. Strings no fact uses any more go.
    fn rekey(&self, from: &[Option<usize>]) -> Self {
        let mut labels = self.labels.clone();
        let not_applicable = labels.intern(NOT_APPLICABLE);
        let days: BTreeMap<Date, DayFacts> = self
            .days
            .iter()
            .map(|(day, facts)| (*day, facts.rekey(from, not_applicable)))
            .collect();
        let mut segment = Self {
            labels: Labels::default(),
            days: BTreeMap::new(),
            finalized: self.finalized,
            reshaped: self.reshaped || from.contains(&None),
            results_applied: self.results_applied,
            last_result_at: self.last_result_at,
        };
        let mut map = vec![u32::MAX; labels.len()];
        for (day, mut facts) in days {
            intern_into(&labels, &mut segment.labels, &mut map, &facts);
            facts.remap(&map);
            segment.days.insert(day, facts);
        }
        segment
    }
}

/// Interns into `to` every string of `from` that `facts` use, recording `map[old] = new`.
fn intern_into(from: &Labels, to: &mut Labels, map: &mut [u32], facts: &DayFacts) {
    for &id in facts.keys() {
        if let Some(slot) = map.get_mut(id as usize)
            && *slot == u32::MAX
        {
            *slot = to.intern(from.name(id));
        }
    }
}

/// What applying a result changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub days_replaced: usize,
    /// Figures of days already stored that the result changed.
    pub restatements: Vec<Restatement>,
    /// The result's period reached outside the month its query asked for: only the days inside
    /// were applied.
    pub reached_outside: bool,
    /// Facts of days outside the asked period, left out.
    pub facts_outside: usize,
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
    pub segments: BTreeMap<SegmentKey, Arc<Segment>>,
}

impl Ledger {
    pub fn new(dimensions: Vec<String>) -> Self {
        Self {
            dimensions,
            segments: BTreeMap::new(),
        }
    }

    pub fn segment(&self, key: &SegmentKey) -> Option<&Arc<Segment>> {
        self.segments.get(key)
    }

    /// Applies a result of the query for `key`'s month that asked for `asked`: the days of its
    /// period within `asked` and the month are replaced; facts outside are left out and
    /// reported, so a body that reaches into another month cannot wipe it.
    pub fn apply(
        &mut self,
        key: &SegmentKey,
        asked: DayRange,
        mut usage: Usage,
        at: OffsetDateTime,
    ) -> ApplyReport {
        self.adopt(&mut usage);
        let month = DayRange {
            since: key.month.first_day(),
            until: key.month.end_exclusive(),
        };
        let allowed = intersect(asked, month);
        let covered = usage.covered.map(|c| intersect(c, allowed));
        let mut report = ApplyReport {
            reached_outside: usage
                .covered
                .is_some_and(|c| c.since < allowed.since || c.until > allowed.until),
            ..ApplyReport::default()
        };
        let inside = |day: &Date| covered.is_some_and(|c| c.contains(*day));
        usage.days.retain(|day, facts| {
            let keep = inside(day);
            if !keep {
                report.facts_outside += facts.len();
            }
            keep
        });
        report.reached_outside |= report.facts_outside > 0;
        let finalized = usage
            .periods
            .iter()
            .any(|(m, done)| *m == key.month && *done);
        let mut segment = Segment {
            labels: usage.labels,
            days: usage.days,
            finalized,
            last_result_at: Some(at),
            results_applied: 1,
            reshaped: false,
        };
        if let Some(old) = self.segments.remove(key) {
            segment.finalized |= old.finalized;
            segment.results_applied += old.results_applied;
            segment.reshaped = old.reshaped && covered.is_none_or(|c| c.is_empty());
            let mut map = vec![u32::MAX; old.labels.len()];
            for (day, facts) in &old.days {
                if inside(day) {
                    if !was_complete(*day, old.last_result_at) {
                        continue;
                    }
                    report.restatements.extend(restatements(
                        *day,
                        (&old.labels, facts),
                        (&segment.labels, segment.days.get(day)),
                        old.finalized,
                    ));
                } else {
                    let mut kept = facts.clone();
                    intern_into(&old.labels, &mut segment.labels, &mut map, &kept);
                    kept.remap(&map);
                    segment.days.insert(*day, kept);
                }
            }
        }
        segment.days.retain(|_, facts| !facts.is_empty());
        report.days_replaced = covered.map_or(0, |c| c.days().count());
        self.segments.insert(key.clone(), Arc::new(segment));
        report
    }

    /// Puts back a segment as a state file had it, its facts carrying `dimensions`; re-keyed to
    /// this ledger's dimensions when they differ. Returns whether it was re-keyed.
    pub fn restore(&mut self, key: SegmentKey, segment: Segment, dimensions: &[String]) -> bool {
        let from = self.positions(dimensions);
        let same = dimensions == self.dimensions.as_slice();
        let segment = if same { segment } else { segment.rekey(&from) };
        self.segments.insert(key, Arc::new(segment));
        !same
    }

    /// Re-keys every fact to `dimensions`, for a config whose dimensions changed since the state
    /// was saved: values of dropped dimensions are summed away, added ones read `N/A` until the
    /// month is fetched again, which [`Segment::reshaped`] asks for, final months included.
    /// Returns the segments that changed.
    pub fn reshape(&mut self, dimensions: &[String]) -> Vec<SegmentKey> {
        if self.dimensions == dimensions {
            return Vec::new();
        }
        let old = std::mem::replace(&mut self.dimensions, dimensions.to_vec());
        let from: Vec<Option<usize>> = dimensions
            .iter()
            .map(|d| old.iter().position(|o| o == d))
            .collect();
        for segment in self.segments.values_mut() {
            *segment = Arc::new(segment.rekey(&from));
        }
        self.segments.keys().cloned().collect()
    }

    /// Marks every month of `target` as fetched under another query (its filters changed), so
    /// each is asked for again, final ones included; its figures are served until then.
    /// Returns the segments marked.
    pub fn mark_stale(&mut self, target: &str) -> Vec<SegmentKey> {
        let mut marked = Vec::new();
        for (key, segment) in self.segments.iter_mut().filter(|(k, _)| k.target == target) {
            if !segment.reshaped {
                Arc::make_mut(segment).reshaped = true;
                marked.push(key.clone());
            }
        }
        marked
    }

    /// Drops the months Infobip no longer holds, so the ledger stays bounded. Returns them.
    pub fn prune_before(&mut self, first_kept: Date) -> Vec<SegmentKey> {
        let first = YearMonth::of(first_kept);
        let gone: Vec<SegmentKey> = self
            .segments
            .keys()
            .filter(|k| k.month < first)
            .cloned()
            .collect();
        for key in &gone {
            self.segments.remove(key);
        }
        gone
    }

    /// A target's facts of one day, as strings.
    pub fn facts(&self, target: &str, day: Date) -> BTreeMap<FactKey, Amount> {
        self.segments
            .get(&SegmentKey::new(target, YearMonth::of(day)))
            .map(|s| s.facts(day))
            .unwrap_or_default()
    }

    /// Where each of this ledger's dimensions sits among `dimensions`.
    fn positions(&self, dimensions: &[String]) -> Vec<Option<usize>> {
        self.dimensions
            .iter()
            .map(|d| dimensions.iter().position(|o| o == d))
            .collect()
    }

    /// Gives a result's facts this ledger's dimension count (a decoded result always has it;
    /// facts built by hand may not): missing dimensions read `N/A`.
    fn adopt(&self, usage: &mut Usage) {
        let width = FIRST_DIMENSION + self.dimensions.len();
        let not_applicable = usage.labels.intern(NOT_APPLICABLE);
        for facts in usage.days.values_mut() {
            if facts.width() != width && !facts.is_empty() {
                let have = facts.width() - FIRST_DIMENSION;
                let from: Vec<Option<usize>> = (0..self.dimensions.len())
                    .map(|i| (i < have).then_some(i))
                    .collect();
                *facts = facts.rekey(&from, not_applicable);
            }
        }
    }
}

/// Equal when they hold the same facts and months, whatever ids their labels got.
impl PartialEq for Ledger {
    fn eq(&self, other: &Self) -> bool {
        self.dimensions == other.dimensions
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|((ka, a), (kb, b))| ka == kb && **a == **b)
    }
}

/// Equal when they say the same, whatever ids their labels got.
impl PartialEq for Segment {
    fn eq(&self, other: &Self) -> bool {
        (
            self.finalized,
            self.reshaped,
            self.results_applied,
            self.last_result_at,
        ) == (
            other.finalized,
            other.reshaped,
            other.results_applied,
            other.last_result_at,
        ) && self.all_facts() == other.all_facts()
    }
}

/// The days both ranges hold (an empty range when none).
fn intersect(a: DayRange, b: DayRange) -> DayRange {
    let since = a.since.max(b.since);
    DayRange {
        since,
        until: a.until.min(b.until).max(since),
    }
}

/// Whether `day` had ended when its stored figures were fetched: the figures of a day still
/// running grow by themselves, and that growth is no restatement. Segments of old state files
/// do not say when: their days count as complete.
fn was_complete(day: Date, fetched_at: Option<OffsetDateTime>) -> bool {
    fetched_at.is_none_or(|at| at.to_offset(time::UtcOffset::UTC).date() > day)
}

/// Per-currency day totals that moved. Only stored days count: a first fetch is no restatement.
fn restatements(
    day: Date,
    (old_labels, old): (&Labels, &DayFacts),
    (new_labels, new): (&Labels, Option<&DayFacts>),
    was_final: bool,
) -> Vec<Restatement> {
    let totals = |labels: &Labels, facts: Option<&DayFacts>| {
        let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
        for (ids, amount) in facts.into_iter().flat_map(DayFacts::iter) {
            *sums
                .entry(labels.name(ids[CURRENCY]).to_owned())
                .or_default() += amount.cost;
        }
        sums
    };
    let (old, new) = (totals(old_labels, Some(old)), totals(new_labels, new));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::{date, datetime};

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

    pub(crate) const AT: OffsetDateTime = datetime!(2026-11-03 10:00 UTC);

    pub(crate) fn eu_nov() -> SegmentKey {
        SegmentKey::new("eu", YearMonth::of(NOV.since))
    }

    /// Applies a result of a query that asked for the covered days.
    pub(crate) fn apply(ledger: &mut Ledger, usage: Usage) -> ApplyReport {
        let covered = usage.covered.unwrap();
        let key = SegmentKey::new("eu", YearMonth::of(covered.since));
        ledger.apply(&key, covered, usage, AT)
    }

    #[test]
    fn a_changed_final_day_is_flagged_as_such() {
        let mut ledger = Ledger::default();
        let d1 = date!(2026 - 11 - 01);
        apply(
            &mut ledger,
            usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1.10")], true),
        );
        let report = apply(
            &mut ledger,
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
    fn the_growth_of_a_day_still_running_is_no_restatement() {
        let mut ledger = Ledger::default();
        let today = AT.date();
        let yesterday = today.previous_day().unwrap();
        let facts = |cost: &'static str| {
            [
                (yesterday, key("A", "SMS", "EUR"), cost),
                (today, key("A", "SMS", "EUR"), cost),
            ]
        };
        apply(&mut ledger, usage(NOV, &facts("1.00"), false));
        let report = apply(&mut ledger, usage(NOV, &facts("2.00"), false));
        let days: Vec<Date> = report.restatements.iter().map(|r| r.day).collect();
        assert_eq!(days, [yesterday], "only the day that had ended when stored");
    }

    #[test]
    fn a_result_replaces_covered_days_and_never_adds() {
        let mut ledger = Ledger::default();
        let d1 = date!(2026 - 11 - 01);
        let d2 = date!(2026 - 11 - 02);
        apply(
            &mut ledger,
            usage(
                NOV,
                &[
                    (d1, key("A", "SMS", "EUR"), "1.10"),
                    (d2, key("A", "SMS", "EUR"), "2.00"),
                ],
                false,
            ),
        );
        let report = apply(
            &mut ledger,
            usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1.15")], false),
        );
        assert_eq!(
            ledger.facts("eu", d1)[&key("A", "SMS", "EUR")].cost,
            "1.15".parse().unwrap()
        );
        assert!(
            !ledger.segments[&eu_nov()].days.contains_key(&d2),
            "a covered day without rows is emptied"
        );
        assert_eq!(report.restatements.len(), 2);
        assert_eq!(report.days_replaced, 3);
    }

    #[test]
    fn a_result_reaching_into_another_month_changes_only_its_own() {
        let mut ledger = Ledger::default();
        let oct31 = date!(2026 - 10 - 31);
        let oct = DayRange {
            since: date!(2026 - 10 - 01),
            until: date!(2026 - 11 - 01),
        };
        apply(
            &mut ledger,
            usage(oct, &[(oct31, key("A", "SMS", "EUR"), "5")], true),
        );
        let wide = DayRange {
            since: oct31,
            until: NOV.until,
        };
        let d1 = date!(2026 - 11 - 01);
        let body = usage(
            wide,
            &[
                (oct31, key("A", "SMS", "EUR"), "9"),
                (d1, key("A", "SMS", "EUR"), "1"),
            ],
            false,
        );
        let report = ledger.apply(&eu_nov(), NOV, body, AT);
        assert!(report.reached_outside);
        assert_eq!(report.facts_outside, 1);
        assert_eq!(
            ledger.facts("eu", oct31)[&key("A", "SMS", "EUR")].cost,
            Decimal::from(5),
            "October untouched"
        );
        assert_eq!(ledger.facts("eu", d1).len(), 1);
    }

    #[test]
    fn days_outside_the_covered_period_are_kept() {
        let mut ledger = Ledger::default();
        let (d1, d3) = (date!(2026 - 11 - 01), date!(2026 - 11 - 03));
        apply(
            &mut ledger,
            usage(
                NOV,
                &[
                    (d1, key("A", "SMS", "EUR"), "1"),
                    (d3, key("B", "SMS", "USD"), "3"),
                ],
                false,
            ),
        );
        let only_d1 = DayRange {
            since: d1,
            until: date!(2026 - 11 - 02),
        };
        ledger.apply(
            &eu_nov(),
            NOV,
            usage(only_d1, &[(d1, key("C", "MMS", "EUR"), "2")], false),
            AT,
        );
        assert_eq!(
            ledger.facts("eu", d1).keys().collect::<Vec<_>>(),
            [&key("C", "MMS", "EUR")]
        );
        assert_eq!(
            ledger.facts("eu", d3)[&key("B", "SMS", "USD")].cost,
            Decimal::from(3)
        );
    }

    #[test]
    fn reshape_follows_a_changed_dimension_list() {
        let mut ledger = Ledger::new(vec!["TRAFFIC_TYPE".into()]);
        let d1 = date!(2026 - 11 - 01);
        let mut a = key("A", "SMS", "EUR");
        a.dimensions = vec!["A2P".into()];
        let mut b = a.clone();
        b.dimensions = vec!["P2P".into()];
        apply(
            &mut ledger,
            usage(NOV, &[(d1, a, "1"), (d1, b, "2")], false),
        );
        assert_eq!(ledger.reshape(&["COUNTRY_CODE".into()]), [eu_nov()]);
        let facts = ledger.facts("eu", d1);
        assert_eq!(facts.len(), 1);
        let (k, amount) = facts.iter().next().unwrap();
        assert_eq!(k.dimensions, ["N/A"]);
        assert_eq!(amount.cost, Decimal::from(3));
        assert_eq!(
            ledger.segments[&eu_nov()].labels.id("A2P"),
            None,
            "values of a dropped dimension are forgotten"
        );
    }

    #[test]
    fn a_final_month_is_wanted_again_only_after_a_dimension_is_added() {
        let mut ledger = Ledger::new(vec!["TRAFFIC_TYPE".into()]);
        let d1 = date!(2026 - 11 - 01);
        apply(
            &mut ledger,
            usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1")], true),
        );
        let wants = |l: &Ledger| l.segments[&eu_nov()].wants();
        assert!(!wants(&ledger), "final");
        ledger.reshape(&[]);
        assert!(!wants(&ledger), "a dropped dimension is summed away");
        ledger.reshape(&["COUNTRY_CODE".into()]);
        assert!(wants(&ledger), "country codes are missing");
        assert_eq!(ledger.segments[&eu_nov()].status(), Status::Final);
        apply(
            &mut ledger,
            usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1")], true),
        );
        assert!(!wants(&ledger), "fetched again");
    }

    #[test]
    fn equality_and_results_do_not_depend_on_label_ids() {
        let d1 = date!(2026 - 11 - 01);
        let (a, b) = (key("A", "SMS", "EUR"), key("B", "MMS", "USD"));
        let mut one = Ledger::default();
        apply(&mut one, usage(NOV, &[(d1, a.clone(), "1")], false));
        apply(&mut one, usage(NOV, &[(d1, b.clone(), "2")], false));
        let mut two = Ledger::default();
        apply(
            &mut two,
            usage(NOV, &[(d1, a, "1"), (d1, b.clone(), "2")], false),
        );
        apply(&mut two, usage(NOV, &[(d1, b.clone(), "2")], false));
        assert_eq!(one, two);
        assert_eq!(one.facts("eu", d1).keys().collect::<Vec<_>>(), [&b]);
    }

    #[test]
    fn facts_of_another_width_read_na_for_missing_dimensions() {
        let mut ledger = Ledger::new(vec!["TRAFFIC_TYPE".into(), "COUNTRY_CODE".into()]);
        let d1 = date!(2026 - 11 - 01);
        let mut a = key("A", "SMS", "EUR");
        a.dimensions = vec!["A2P".into()];
        apply(&mut ledger, usage(NOV, &[(d1, a, "1")], false));
        let facts = ledger.facts("eu", d1);
        let (k, _) = facts.iter().next().unwrap();
        assert_eq!(k.dimensions, ["A2P", "N/A"]);
    }

    #[test]
    fn prune_drops_months_out_of_retention() {
        let mut ledger = Ledger::default();
        apply(
            &mut ledger,
            usage(
                NOV,
                &[(date!(2026 - 11 - 01), key("A", "SMS", "EUR"), "1")],
                false,
            ),
        );
        assert_eq!(ledger.prune_before(date!(2026 - 12 - 01)), [eu_nov()]);
        assert!(ledger.segments.is_empty());
    }
}
