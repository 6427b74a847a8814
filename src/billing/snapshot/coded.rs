//! The cap for a metric built from facts, with each row coded as one integer.
//!
//! Within a segment every column holds few distinct values (accounts, categories, countries, the
//! days of one month), so a row fits in a `u64` as mixed-radix digits. The digits are ordered by
//! the roll-up: the first label given up is the least significant digit, then the next, and the
//! columns never given up (currency, unit, day) are the most significant. Giving up the `l`
//! first labels is then dividing by a place value, which keeps sorted codes sorted: every count
//! the cap needs is one scan over the sorted codes, and summing a level is grouping neighbours.
//! No hash table is built over a million facts. When the digits do not fit in 64 bits the cap
//! falls back to counting label sets by hash (see `cap`).

use rust_decimal::Decimal;

use crate::billing::snapshot::names::Names;
use crate::billing::snapshot::rollup::{self, Members, in_export_order};
use crate::billing::snapshot::rows::{
    ACCOUNT_COL, CATEGORY_COL, CHANNEL_COL, CURRENCY_COL, Items, Layout, Rows,
};

/// The digits of one metric's rows: which column each is, and its values.
struct Digits {
    /// Row column of each digit, least significant first.
    cols: Vec<usize>,
    /// How many leading digits can be given up (the roll-up levels).
    rollable: usize,
    /// Per digit: label id → digit value (`u32::MAX`: not seen).
    dense: Vec<Vec<u32>>,
    /// Per digit: digit value → label id.
    ids: Vec<Vec<u32>>,
    /// Per digit: its place value, and past the last digit the product of all radices.
    place: Vec<u64>,
    /// `other_low[l]`: the `l` least significant digits all `other`.
    other_low: Vec<u64>,
}

impl Digits {
    /// Learns the values of every column from the items; `None` when the codes would not fit
    /// in 64 bits.
    fn learn(source: &dyn Items, names: &Names) -> Option<Self> {
        let layout = source.layout();
        let mut cols: Vec<usize> = (0..layout.dims).rev().map(|i| layout.dim_col(i)).collect();
        cols.extend([CATEGORY_COL, ACCOUNT_COL, CHANNEL_COL]);
        let rollable = cols.len();
        cols.push(CURRENCY_COL);
        cols.extend(layout.unit_col());
        cols.push(layout.period_col());
        let size = names.labels.len();
        let mut digits = Self {
            dense: vec![vec![u32::MAX; size]; cols.len()],
            ids: vec![Vec::new(); cols.len()],
            place: Vec::with_capacity(cols.len() + 1),
            other_low: vec![0],
            cols,
            rollable,
        };
        source.each(false, &mut |row, _, _| {
            for (d, &col) in digits.cols.iter().enumerate() {
                let id = row[col];
                if let Some(slot) = digits.dense[d].get_mut(id as usize)
                    && *slot == u32::MAX
                {
                    *slot = u32::try_from(digits.ids[d].len()).unwrap_or(u32::MAX);
                    digits.ids[d].push(id);
                }
            }
            true
        });
        // A rollable column gets one more value, `other`, unless it already holds that label.
        let other = names.other as usize;
        if other >= size {
            return None;
        }
        for d in 0..digits.rollable {
            if digits.dense[d][other] == u32::MAX {
                digits.dense[d][other] = u32::try_from(digits.ids[d].len()).unwrap_or(u32::MAX);
                digits.ids[d].push(names.other);
            }
        }
        let mut place = 1u64;
        for ids in &digits.ids {
            digits.place.push(place);
            place = place.checked_mul(u64::try_from(ids.len().max(1)).ok()?)?;
        }
        digits.place.push(place);
        for d in 0..digits.rollable {
            let other = u64::from(digits.dense[d][names.other as usize]);
            let below = digits.other_low[d];
            digits.other_low.push(below + other * digits.place[d]);
        }
        Some(digits)
    }

    fn code(&self, row: &[u32]) -> u64 {
        self.cols
            .iter()
            .zip(&self.dense)
            .zip(&self.place)
            .map(|((&col, dense), place)| {
                u64::from(dense.get(row[col] as usize).copied().unwrap_or(0)) * place
            })
            .sum()
    }

    /// The code with its `level` least significant digits set to `other`.
    fn rolled(&self, code: u64, level: usize) -> u64 {
        code / self.place[level] * self.place[level] + self.other_low[level]
    }

    /// A code's row of label ids (target and status from the template row).
    fn row(&self, code: u64, template: &[u32], out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(template);
        for (d, &col) in self.cols.iter().enumerate() {
            let radix = self.place[d + 1] / self.place[d];
            let digit = (code / self.place[d]) % radix;
            out[col] = self.ids[d][digit as usize];
        }
    }
}

/// The capped series and the count folded, as the hash-counting cap returns them, for items
/// coded as integers; `None` when they do not fit.
pub(super) fn cap(source: &dyn Items, max: usize, names: &Names) -> Option<(Rows, u64)> {
    let digits = Digits::learn(source, names)?;
    let layout = source.layout();
    let mut template = Vec::new();
    let mut coded: Vec<(u64, Decimal)> = Vec::new();
    let mut day_starts = vec![0];
    let mut period = None;
    source.each(false, &mut |row, value, _| {
        let p = row[layout.period_col()];
        if period.is_some_and(|q| q != p) {
            day_starts.push(coded.len());
        }
        period = Some(p);
        if template.is_empty() {
            template = row.to_vec();
        }
        coded.push((digits.code(row), value));
        true
    });
    day_starts.push(coded.len());
    // The day is the most significant digit and items come day by day: sorting each day sorts
    // them all, a day at a time in cache.
    for bounds in day_starts.windows(2) {
        coded[bounds[0]..bounds[1]].sort_unstable_by_key(|(code, _)| *code);
    }
    // Codes are sorted: a new group starts where a code reaches the end of the last one, so
    // only group starts pay for a division.
    let distinct = |level: usize| {
        let place = digits.place[level];
        let mut n = 0;
        let mut end = 0u64;
        for (code, _) in &coded {
            if n == 0 || *code >= end {
                n += 1;
                end = (code / place + 1).saturating_mul(place);
            }
        }
        n
    };
    if distinct(0) <= max {
        let (rows, _) = grouped(&coded, &digits, 0, &template, layout);
        return Some((in_export_order(rows, None, names).0, 0));
    }
    let partial = (0..digits.rollable).find(|&l| distinct(l + 1) <= max);
    let whole = partial.unwrap_or(digits.rollable);
    let (rows, members) = grouped(&coded, &digits, whole, &template, layout);
    drop(coded);
    let col = partial.map(|l| digits.cols[l]);
    Some(rollup::finish(rows, members, col, max, names))
}

/// The sorted items summed per code with its `level` least significant digits given up: the
/// rows, and per row its distinct input series and whether any of them lost a label.
fn grouped(
    coded: &[(u64, Decimal)],
    digits: &Digits,
    level: usize,
    template: &[u32],
    layout: Layout,
) -> (Rows, Members) {
    let place = digits.place[level];
    let mut rows = Rows::new(layout);
    let mut members: Members = Vec::new();
    let mut row = Vec::with_capacity(template.len());
    let mut i = 0;
    while i < coded.len() {
        let group = coded[i].0 / place;
        let end = (group + 1).saturating_mul(place);
        let (mut sum, mut inputs, mut rolled) = (Decimal::ZERO, 0, false);
        let mut last = None;
        while i < coded.len() && coded[i].0 < end {
            let (code, value) = coded[i];
            sum += value;
            if last != Some(code) {
                inputs += 1;
                rolled |= digits.rolled(code, level) != code;
                last = Some(code);
            }
            i += 1;
        }
        digits.row(digits.rolled(group * place, level), template, &mut row);
        rows.push(&row, sum);
        members.push((inputs, rolled));
    }
    (rows, members)
}
