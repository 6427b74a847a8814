//! The figures a scrape encodes, built from the ledger once per applied result and immutable
//! after. Series are summed, ordered and rolled up as rows of label ids; only the series that
//! are exported become strings, so a ledger of a million facts costs ids here, not a million
//! sets of strings (see BENCHMARKS.md).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashSet};
use rust_decimal::Decimal;
use time::Date;

use crate::billing::budget::BudgetConfig;
use crate::billing::calendar::{DayRange, YearMonth, retention_months};
use crate::billing::labels::{Labels, Tally, rows};
use crate::billing::ledger::{
    ACCOUNT, ACCOUNT_KEY, CATEGORY, CURRENCY, DayFacts, FIRST_DIMENSION, Ledger, Status,
    TargetLedger, UNIT,
};
use crate::export::exposition;

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
    /// Most series one data metric may have; beyond it, series are rolled up into `other`
    /// (see `cap` in this module).
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
    /// The data metrics as exposition text, encoded once here by [`exposition::encode`] so that
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

/// The columns of one data metric's rows of ids, in [`CostSeries`] field order so that rows
/// compare as their series would: target, account, category, channel, currency, unit
/// (quantities only), the dimensions, period, status. Status is a code, not a label id.
#[derive(Debug, Clone, Copy)]
struct Layout {
    unit: bool,
    dims: usize,
    /// Exported period by period (days, months): sorted by target and period first.
    period_first: bool,
}

const TARGET_COL: usize = 0;
const ACCOUNT_COL: usize = 1;
const CATEGORY_COL: usize = 2;
const CHANNEL_COL: usize = 3;
const CURRENCY_COL: usize = 4;

impl Layout {
    fn width(self) -> usize {
        CURRENCY_COL + 1 + usize::from(self.unit) + self.dims + 2
    }

    fn unit_col(self) -> Option<usize> {
        self.unit.then_some(CURRENCY_COL + 1)
    }

    fn dim_col(self, i: usize) -> usize {
        CURRENCY_COL + 1 + usize::from(self.unit) + i
    }

    fn period_col(self) -> usize {
        self.width() - 2
    }

    fn status_col(self) -> usize {
        self.width() - 1
    }
}

/// `status` of a row: none (forecasts), provisional, final.
const NO_STATUS: u32 = 0;

fn status_code(status: Status) -> u32 {
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

/// One data metric as rows of ids and their values.
#[derive(Debug)]
struct Rows {
    layout: Layout,
    ids: Vec<u32>,
    values: Vec<Decimal>,
}

impl Rows {
    fn new(layout: Layout) -> Self {
        Self {
            layout,
            ids: Vec::new(),
            values: Vec::new(),
        }
    }

    fn push(&mut self, row: &[u32], value: Decimal) {
        debug_assert_eq!(row.len(), self.layout.width());
        self.ids.extend_from_slice(row);
        self.values.push(value);
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn row(&self, i: usize) -> &[u32] {
        let w = self.layout.width();
        &self.ids[i * w..][..w]
    }

    fn iter(&self) -> impl Iterator<Item = (&[u32], &Decimal)> {
        rows(&self.ids, self.layout.width()).zip(&self.values)
    }

    fn into_series(self, labels: &Labels) -> Vec<CostSeries> {
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

/// The strings a snapshot's rows can hold, and their sort order.
struct Names {
    labels: Labels,
    /// `ranks[id]`: the id's place in string order.
    ranks: Vec<u32>,
    /// The `channel` id of each category id of the ledger, `u32::MAX` for ids never a category.
    channels: Vec<u32>,
    other: u32,
    day_ids: BTreeMap<Date, u32>,
    month_ids: BTreeMap<YearMonth, u32>,
    /// The month of each day or month period id.
    month_of: HashMap<u32, YearMonth>,
}

impl Names {
    /// Interns everything a row can hold (targets, channels, periods, `other`) before the ranks
    /// are taken, so every id has one.
    fn new(ledger: &Ledger, retained: &[YearMonth]) -> Self {
        let mut labels = ledger.labels.clone();
        let other = labels.intern(OTHER);
        let mut channels = vec![u32::MAX; ledger.labels.len()];
        let (mut day_ids, mut month_ids) = (BTreeMap::new(), BTreeMap::new());
        let mut month_of = HashMap::new();
        for (target, tl) in &ledger.targets {
            labels.intern(target);
            for (day, facts) in retained_days(tl, retained) {
                let month = YearMonth::of(*day);
                let id = *day_ids
                    .entry(*day)
                    .or_insert_with(|| labels.intern(&day.to_string()));
                month_of.insert(id, month);
                let id = *month_ids
                    .entry(month)
                    .or_insert_with(|| labels.intern(&month.to_string()));
                month_of.insert(id, month);
                for (ids, _) in facts.iter() {
                    let category = ids[CATEGORY];
                    if let Some(c) = channels.get_mut(category as usize) {
                        if *c == u32::MAX {
                            *c = labels.intern(&channel_of(ledger.labels.name(category)));
                        }
                    }
                }
            }
        }
        Self {
            ranks: labels.ranks(),
            labels,
            channels,
            other,
            day_ids,
            month_ids,
            month_of,
        }
    }

    fn id(&self, name: &str) -> u32 {
        self.labels.id(name).unwrap_or(u32::MAX)
    }

    fn channel(&self, category: u32) -> u32 {
        self.channels
            .get(category as usize)
            .copied()
            .unwrap_or(u32::MAX)
    }

    fn rank(&self, id: u32) -> u32 {
        self.ranks.get(id as usize).copied().unwrap_or(u32::MAX)
    }

    /// Rows of label ids in string order.
    fn cmp_ids(&self, a: &[u32], b: &[u32]) -> Ordering {
        let rank = |&id: &u32| self.rank(id);
        a.iter().map(rank).cmp(b.iter().map(rank))
    }

    /// Metric rows in series order: labels as strings, then the status code.
    fn cmp_rows(&self, a: &[u32], b: &[u32]) -> Ordering {
        let (a_labels, a_status) = a.split_at(a.len().saturating_sub(1));
        let (b_labels, b_status) = b.split_at(b.len().saturating_sub(1));
        self.cmp_ids(a_labels, b_labels)
            .then_with(|| a_status.cmp(b_status))
    }

    /// Metric rows in export order: [`Names::cmp_rows`], but by target and period first for
    /// metrics exported period by period.
    fn cmp_export(&self, layout: Layout, a: &[u32], b: &[u32]) -> Ordering {
        if !layout.period_first {
            return self.cmp_rows(a, b);
        }
        let p = layout.period_col();
        let first = |r: &[u32]| [self.rank(r[TARGET_COL]), self.rank(r[p])];
        first(a).cmp(&first(b)).then_with(|| self.cmp_rows(a, b))
    }

    /// A tally's entries in string order of their keys.
    fn sorted<'t, V>(&self, tally: &'t Tally<V>) -> Vec<(&'t [u32], &'t V)> {
        let mut entries: Vec<_> = tally.iter().collect();
        entries.sort_unstable_by(|a, b| self.cmp_ids(a.0, b.0));
        entries
    }

    /// A metric row from a target, a series key (see [`series_key`]), a period and a status.
    fn row(&self, target: u32, key: &[u32], period: u32, status: u32, row: &mut Vec<u32>) {
        row.clear();
        row.extend_from_slice(&[target, key[0], key[1], self.channel(key[1]), key[2]]);
        row.extend_from_slice(&key[3..]);
        row.extend_from_slice(&[period, status]);
    }

    /// The status code of a period of a target.
    fn status(&self, tl: &TargetLedger, period: u32) -> u32 {
        self.month_of
            .get(&period)
            .map_or(NO_STATUS, |m| status_code(tl.status_of(*m)))
    }
}

/// A fact's series key within a target: account, category, currency, then the dimensions; with
/// `unit`, the unit goes after the currency.
fn series_key(ids: &[u32], unit: bool, key: &mut Vec<u32>) {
    key.clear();
    key.extend_from_slice(&[ids[ACCOUNT], ids[CATEGORY], ids[CURRENCY]]);
    if unit {
        key.push(ids[UNIT]);
    }
    key.extend_from_slice(&ids[FIRST_DIMENSION..]);
}

fn retained_days<'a>(
    tl: &'a TargetLedger,
    retained: &'a [YearMonth],
) -> impl Iterator<Item = (&'a Date, &'a DayFacts)> {
    tl.days
        .iter()
        .filter(|(day, _)| retained.contains(&YearMonth::of(**day)))
        .map(|(day, facts)| (day, &**facts))
}

/// What building a snapshot reads.
struct Build<'a> {
    ledger: &'a Ledger,
    view: View<'a>,
    names: Names,
    retained: Vec<YearMonth>,
    dims: usize,
}

impl Snapshot {
    /// Daily series for the days in the window, monthly series for the months in retention, the
    /// forecast and budgets for the current month, each data metric capped at `max_series`.
    /// One metric is built, capped and turned into strings before the next, so only one is
    /// ever held as uncapped rows.
    pub fn build(ledger: &Ledger, view: View<'_>) -> Arc<Self> {
        let retained = retention_months(view.today).to_vec();
        let b = Build {
            names: Names::new(ledger, &retained),
            ledger,
            view,
            retained,
            dims: ledger.dimensions.len(),
        };
        let mut s = Snapshot {
            dimension_labels: ledger
                .dimensions
                .iter()
                .map(|d| dimension_label(d))
                .collect(),
            ..Snapshot::default()
        };
        let (months, forecasts) = b.month_rows();
        // Budgets see every series, before any roll-up.
        s.budgets = view
            .budgets
            .iter()
            .map(|config| budget(config, &months, &b.names, YearMonth::of(view.today)))
            .collect();
        let mut capped = |source: Source<'_>| {
            let (rows, rolled) = cap(&source, view.max_series, &b.names);
            s.rolled_up += rolled;
            rows.into_series(&b.names.labels)
        };
        let facts = |quantity| Source::Facts {
            build: &b,
            quantity,
        };
        let days = capped(facts(false));
        let months_series = capped(Source::Rows(&months));
        let quantities = capped(facts(true));
        let forecasts = capped(Source::Rows(&forecasts));
        (s.days, s.months, s.quantities, s.forecasts) =
            (days, months_series, quantities, forecasts);
        for (target, tl) in &ledger.targets {
            if tl.results_applied > 0 {
                s.targets_with_data.push(target.clone());
            }
            s.results_applied += tl.results_applied;
            s.finalized.extend(
                tl.months
                    .iter()
                    .filter(|(m, _)| b.retained.contains(m))
                    .map(|(m, f)| (target.clone(), *m, *f)),
            );
            let mut accounts: Tally<()> = Tally::new(2);
            for (_, facts) in retained_days(tl, &b.retained) {
                for (ids, _) in facts.iter() {
                    accounts.entry(&[ids[ACCOUNT], ids[ACCOUNT_KEY]]);
                }
            }
            let name = |id: u32| b.names.labels.name(id).to_owned();
            s.accounts.extend(
                b.names
                    .sorted(&accounts)
                    .into_iter()
                    .map(|(ids, ())| (target.clone(), name(ids[0]), name(ids[1]))),
            );
        }
        s.exposition = exposition::encode(&s);
        Arc::new(s)
    }
}

impl Build<'_> {
    /// The retained days of a target in the day window.
    fn window<'t>(
        &'t self,
        tl: &'t TargetLedger,
    ) -> impl Iterator<Item = (&'t Date, &'t DayFacts)> {
        retained_days(tl, &self.retained).filter(|(day, _)| self.view.day_window.contains(**day))
    }

    /// `infobip_billing_month_cost` (per target, month by month, series in label order) and
    /// `infobip_billing_month_forecast_cost` (the current month's series).
    fn month_rows(&self) -> (Rows, Rows) {
        let names = &self.names;
        let layout = Layout {
            unit: false,
            dims: self.dims,
            period_first: true,
        };
        let (mut months, mut forecasts) = (
            Rows::new(layout),
            Rows::new(Layout {
                period_first: false,
                ..layout
            }),
        );
        let (mut key, mut row) = (Vec::new(), Vec::new());
        let today = self.view.today;
        let current = YearMonth::of(today);
        let elapsed = i64::from(today.day()) - 1;
        for (target, tl) in &self.ledger.targets {
            let target = names.id(target);
            // Keyed by the month first: sorted, months come in time order.
            let mut sums: Tally<Decimal> = Tally::new(1 + 3 + self.dims);
            // Month-to-date of the current month over complete days (before today) only.
            let mut complete: Tally<Decimal> = Tally::new(3 + self.dims);
            for (day, facts) in retained_days(tl, &self.retained) {
                let month = YearMonth::of(*day);
                let period = names.month_ids.get(&month).copied().unwrap_or(u32::MAX);
                let is_complete = month == current && *day < today;
                for (ids, amount) in facts.iter() {
                    series_key(ids, false, &mut key);
                    if is_complete {
                        *complete.entry(&key) += amount.cost;
                    }
                    key.insert(0, period);
                    *sums.entry(&key) += amount.cost;
                }
            }
            for (key, cost) in names.sorted(&sums) {
                let (period, key) = (key[0], &key[1..]);
                names.row(target, key, period, names.status(tl, period), &mut row);
                months.push(&row, *cost);
                if names.month_of.get(&period) == Some(&current) {
                    let done = complete.get(key).copied().unwrap_or_default();
                    let value = forecast(*cost, done, elapsed, current);
                    names.row(target, key, period, NO_STATUS, &mut row);
                    forecasts.push(&row, value);
                }
            }
        }
        (months, forecasts)
    }
}

/// Month-to-date cost of the current month's series that a budget matches, in its currency.
fn budget(config: &BudgetConfig, months: &Rows, names: &Names, current: YearMonth) -> BudgetSeries {
    let m = &config.matcher;
    let period = names.month_ids.get(&current).copied();
    let l = months.layout;
    let hit = |want: &Option<String>, have: u32| {
        want.as_deref().is_none_or(|w| names.labels.name(have) == w)
    };
    let used = months
        .iter()
        .filter(|(row, _)| {
            Some(row[l.period_col()]) == period
                && names.labels.name(row[CURRENCY_COL]) == config.currency
                && hit(&m.target, row[TARGET_COL])
                && hit(&m.account, row[ACCOUNT_COL])
                && hit(&m.category, row[CATEGORY_COL])
                && hit(&m.channel, row[CHANNEL_COL])
        })
        .map(|(_, value)| *value)
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

/// Where a metric's series come from: items of a row of ids and a value, a series being the
/// sum of the items with its row. Read as often as the roll-up needs, so that a metric of a
/// million series is never held whole unless it is exported whole.
enum Source<'a> {
    /// Every fact in the day window, as a cost or a quantity series item.
    Facts {
        build: &'a Build<'a>,
        quantity: bool,
    },
    /// Series already summed.
    Rows(&'a Rows),
}

impl Source<'_> {
    /// Day costs are exported day by day (a day's series together), quantities series by series
    /// (a series' days together).
    fn layout(&self) -> Layout {
        match self {
            Source::Rows(rows) => rows.layout,
            Source::Facts { build, quantity } => Layout {
                unit: *quantity,
                dims: build.dims,
                period_first: !*quantity,
            },
        }
    }

    fn each(&self, f: &mut impl FnMut(&[u32], Decimal)) {
        match self {
            Source::Rows(rows) => {
                for (row, value) in rows.iter() {
                    f(row, *value);
                }
            }
            Source::Facts { build, quantity } => {
                let names = &build.names;
                let (mut key, mut row) = (Vec::new(), Vec::new());
                for (target, tl) in &build.ledger.targets {
                    let target = names.id(target);
                    for (day, facts) in build.window(tl) {
                        let period = names.day_ids.get(day).copied().unwrap_or(u32::MAX);
                        let status = names.status(tl, period);
                        for (ids, amount) in facts.iter() {
                            series_key(ids, *quantity, &mut key);
                            names.row(target, &key, period, status, &mut row);
                            f(
                                &row,
                                if *quantity {
                                    amount.quantity
                                } else {
                                    amount.cost
                                },
                            );
                        }
                    }
                }
            }
        }
    }
}

/// One metric's series, at most `max` of them, in export order, and how many of its series
/// were folded into `other`.
///
/// Labels are given up one at a time: the optional dimensions, last configured first, then
/// `category`, `account` and `channel`. For the label being given up, series move to `other`
/// smallest absolute value first (ties in label order), merging with series that already have
/// `other` there, until the metric fits; only when every series has `other` for that label does
/// the next label start. Values are summed, so totals per currency (and per target, period,
/// status and unit, which are never rolled up) stay exact. When even that floor exceeds `max`
/// the floor is exported and a warning logged.
///
/// Labels that must go for every series are found by counting, one pass over the source per
/// label, before any series is held: only the series left after them are built.
fn cap(source: &Source<'_>, max: usize, names: &Names) -> (Rows, u64) {
    let layout = source.layout();
    let hasher = DefaultHashBuilder::default();
    // Label sets are counted by 64-bit hash: a collision could only miscount by one.
    let distinct = |give_up: &[usize]| {
        let mut seen: HashSet<u64> = HashSet::new();
        let mut rolled = Vec::new();
        source.each(&mut |row, _| {
            seen.insert(hasher.hash_one(roll_up(row, give_up, names.other, &mut rolled)));
        });
        seen.len()
    };
    if distinct(&[]) <= max {
        return (summed(source, layout, None, names).0, 0);
    }
    let levels: Vec<usize> = (0..layout.dims)
        .rev()
        .map(|i| layout.dim_col(i))
        .chain([CATEGORY_COL, ACCOUNT_COL, CHANNEL_COL])
        .collect();
    let partial = (0..levels.len()).find(|&l| distinct(&levels[..=l]) <= max);
    let whole = &levels[..partial.unwrap_or(levels.len())];
    let (mut rows, mut members) = summed(source, layout, Some(whole), names);
    match partial {
        Some(l) => {
            (rows, members) = roll_up_smallest(rows, members, levels[l], max, names);
        }
        None => tracing::warn!(
            series = rows.len(),
            max_series = max,
            "max_series is below what target, currency, period and unit alone need; exporting that floor"
        ),
    }
    let folded = members.iter().filter(|m| m.1).map(|m| m.0).sum();
    (rows, folded)
}

/// `row` with the labels in the columns `give_up` set to `other`, in `out`.
fn roll_up<'o>(row: &[u32], give_up: &[usize], other: u32, out: &'o mut Vec<u32>) -> &'o [u32] {
    out.clear();
    out.extend_from_slice(row);
    for &col in give_up {
        out[col] = other;
    }
    out
}

/// Per row: the input series it stands for, and whether any of them lost a label to `other`.
type Members = Vec<(u64, bool)>;

/// The source's series with the columns `give_up` rolled up, in export order. Members are
/// counted only with `give_up`, even an empty one.
fn summed(
    source: &Source<'_>,
    layout: Layout,
    give_up: Option<&[usize]>,
    names: &Names,
) -> (Rows, Members) {
    let hasher = DefaultHashBuilder::default();
    let mut tally: Tally<(Decimal, u64, bool)> = Tally::new(layout.width());
    // The input series seen so far: several items (facts) can make one series.
    let mut inputs: HashSet<u64> = HashSet::new();
    let mut rolled = Vec::new();
    source.each(&mut |row, value| {
        let out = roll_up(row, give_up.unwrap_or_default(), names.other, &mut rolled);
        let e = tally.entry(out);
        e.0 += value;
        if give_up.is_some() && inputs.insert(hasher.hash_one(row)) {
            e.1 += 1;
            e.2 |= out != row;
        }
    });
    drop(inputs);
    in_export_order(&tally, layout, names)
}

fn in_export_order(
    tally: &Tally<(Decimal, u64, bool)>,
    layout: Layout,
    names: &Names,
) -> (Rows, Members) {
    let mut entries: Vec<_> = tally.iter().collect();
    entries.sort_unstable_by(|a, b| names.cmp_export(layout, a.0, b.0));
    let mut rows = Rows::new(layout);
    let mut members = Vec::with_capacity(entries.len());
    for (row, (value, m, r)) in entries {
        rows.push(row, *value);
        members.push((*m, *r));
    }
    (rows, members)
}

/// The partial step of [`cap`]: series give up the label in `col` smallest first until at most
/// `max` are left.
fn roll_up_smallest(
    mut rows: Rows,
    members: Members,
    col: usize,
    max: usize,
    names: &Names,
) -> (Rows, Members) {
    let width = rows.layout.width();
    let hasher = DefaultHashBuilder::default();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (rows.values[a].abs(), rows.values[b].abs());
        x.cmp(&y)
            .then_with(|| names.cmp_rows(rows.row(a), rows.row(b)))
    });
    let mut seen: HashSet<u64> = rows.iter().map(|(r, _)| hasher.hash_one(r)).collect();
    let mut rolled = vec![false; rows.len()];
    let mut count = rows.len();
    for i in order {
        if count <= max {
            break;
        }
        let row = &mut rows.ids[i * width..][..width];
        if row[col] == names.other {
            continue;
        }
        row[col] = names.other;
        rolled[i] = true;
        // The series leaves its own labels; it adds a series only if that `other` is new.
        count -= 1;
        if seen.insert(hasher.hash_one(&*row)) {
            count += 1;
        }
    }
    let mut merged: Tally<(Decimal, u64, bool)> = Tally::new(width);
    for (i, (row, value)) in rows.iter().enumerate() {
        let e = merged.entry(row);
        e.0 += *value;
        e.1 += members[i].0;
        e.2 |= members[i].1 || rolled[i];
    }
    in_export_order(&merged, rows.layout, names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::ledger::tests::{NOV, key, usage};
    use time::macros::date;

    fn view(today: Date, day_window: DayRange, budgets: &[BudgetConfig]) -> View<'_> {
        View {
            today,
            day_window,
            max_series: 10_000,
            budgets,
        }
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
                matcher: crate::billing::budget::BudgetMatch {
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
        let d1 = date!(2026 - 11 - 01);
        let facts: Vec<_> = (0..200u32)
            .map(|i| {
                let category = if i % 2 == 0 { "SMS" } else { "WHATSAPP" };
                let currency = if i % 3 == 0 { "USD" } else { "EUR" };
                let mut k = key(&format!("acct-{}", i % 5), category, currency);
                k.dimensions = vec![format!("country-{i}")];
                (d1, k, i.to_string())
            })
            .collect();
        let facts: Vec<_> = facts
            .iter()
            .map(|(d, k, c)| (*d, k.clone(), c.as_str()))
            .collect();
        let mut ledger = Ledger {
            dimensions: vec!["COUNTRY_CODE".into()],
            ..Ledger::default()
        };
        ledger.apply("eu", usage(NOV, &facts, false));
        let totals = |s: &[CostSeries]| {
            let mut t: BTreeMap<String, Decimal> = BTreeMap::new();
            for x in s {
                *t.entry(x.currency.clone()).or_default() += x.value;
            }
            t
        };
        let build = |max_series| {
            let view = View {
                max_series,
                ..view(date!(2026 - 11 - 03), NOV, &[])
            };
            Snapshot::build(&ledger, view)
        };
        let all = build(10_000);
        assert_eq!((all.months.len(), all.rolled_up), (200, 0));
        let capped = build(50);
        for family in [
            &capped.days,
            &capped.months,
            &capped.quantities,
            &capped.forecasts,
        ] {
            assert!(family.len() <= 50, "{} series", family.len());
        }
        assert_eq!(totals(&capped.months), totals(&all.months));
        assert_eq!(totals(&capped.days), totals(&all.days));
        // Four metrics of 200 series each, most of them folded.
        assert!(capped.rolled_up > 4 * 150, "rolled {}", capped.rolled_up);
        // The largest series keeps its own country; small ones are `other`.
        let months = &capped.months;
        assert!(months.iter().any(|s| s.dimensions[0] == "country-199"));
        assert!(months.iter().any(|s| s.dimensions[0] == OTHER));
        assert!(months.iter().all(|s| s.account != OTHER), "accounts kept");
        // Series stay in label order after the roll-up.
        assert!(months.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn channel_mapping_passes_unknown_categories_through() {
        assert_eq!(channel_of("SMS_OPERATOR_FEE"), "sms");
        assert_eq!(channel_of("CARRIER_LOOKUP"), "lookup");
        assert_eq!(channel_of("VOICE_VIDEO"), "voice_video");
    }
}
