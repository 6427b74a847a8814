//! Billing facts: what one result or one segment holds, as rows of label ids with their amounts.
//! Money stays in `Decimal` and per currency.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use time::Date;

use crate::billing::calendar::{DayRange, YearMonth};
use crate::billing::labels::{Labels, NOT_APPLICABLE, Tally, rows};

/// Where each part of a fact's key sits in its row of label ids: account, account key,
/// category, currency, unit, then the optional dimensions in the ledger's `dimensions` order.
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
    /// Values of the optional dimensions, in the ledger's `dimensions` order; `N/A` stays `N/A`.
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

    /// Facts read back from a file: `keys` holds `width` ids per amount.
    pub fn from_parts(width: usize, keys: Vec<u32>, amounts: Vec<Amount>) -> Option<Self> {
        (keys.len() == width * amounts.len()).then_some(Self {
            width,
            keys,
            amounts,
        })
    }

    /// Label ids per fact.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Every fact's ids, `width` each, in fact order.
    pub fn keys(&self) -> &[u32] {
        &self.keys
    }

    pub fn amounts(&self) -> &[Amount] {
        &self.amounts
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
    pub fn rekey(&self, from: &[Option<usize>], not_applicable: u32) -> Self {
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

    /// Points every id at another table: `map[old] = new`.
    pub fn remap(&mut self, map: &[u32]) {
        for id in &mut self.keys {
            *id = map.get(*id as usize).copied().unwrap_or(u32::MAX);
        }
    }

    pub fn resolve(&self, labels: &Labels) -> BTreeMap<FactKey, Amount> {
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
