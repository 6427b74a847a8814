//! The `max_series` cap of one data metric within one segment.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashSet};
use rust_decimal::Decimal;

use crate::billing::labels::Tally;
use crate::billing::snapshot::coded;
use crate::billing::snapshot::names::Names;
use crate::billing::snapshot::rollup::{self, Members, in_export_order, into_rows};
use crate::billing::snapshot::rows::{ACCOUNT_COL, CATEGORY_COL, CHANNEL_COL, Items, Layout, Rows};

/// How many distinct series `source` has with the columns `give_up` rolled up, counted until
/// there are more than `bound`: a metric of a million series costs as much to size as `bound`.
pub(super) fn count_at_most(
    source: &dyn Items,
    give_up: &[usize],
    bound: usize,
    names: &Names,
) -> usize {
    let hasher = DefaultHashBuilder::default();
    // Label sets are counted by 64-bit hash: a collision could only miscount by one.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut rolled = Vec::new();
    source.each(false, &mut |row, _, _| {
        seen.insert(hasher.hash_one(roll_up(row, give_up, names.other, &mut rolled)));
        seen.len() <= bound
    });
    seen.len()
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
/// Labels that must go for every series are found by counting, which stops once a count passes
/// `max`; only the series left after them are built, and only what is exported is sorted.
pub(super) fn cap(source: &dyn Items, max: usize, names: &Names) -> (Rows, u64) {
    if let Some(capped) = coded::cap(source, max, names) {
        return capped;
    }
    let layout = source.layout();
    if count_at_most(source, &[], max, names) <= max {
        let (rows, _) = summed(source, layout, None, names);
        return (in_export_order(rows, None, names).0, 0);
    }
    let levels: Vec<usize> = (0..layout.dims)
        .rev()
        .map(|i| layout.dim_col(i))
        .chain([CATEGORY_COL, ACCOUNT_COL, CHANNEL_COL])
        .collect();
    let partial =
        (0..levels.len()).find(|&l| count_at_most(source, &levels[..=l], max, names) <= max);
    let whole = &levels[..partial.unwrap_or(levels.len())];
    let (rows, members) = summed(source, layout, Some(whole), names);
    rollup::finish(rows, members, partial.map(|l| levels[l]), max, names)
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

/// The source's series with the columns `give_up` rolled up, unordered. Members are counted
/// only with `give_up`, even an empty one.
fn summed(
    source: &dyn Items,
    layout: Layout,
    give_up: Option<&[usize]>,
    names: &Names,
) -> (Rows, Members) {
    let mut tally: Tally<(Decimal, u64, bool)> = Tally::new(layout.width());
    let mut rolled = Vec::new();
    source.each(give_up.is_some(), &mut |row, value, first| {
        let out = roll_up(row, give_up.unwrap_or_default(), names.other, &mut rolled);
        let e = tally.entry(out);
        e.0 += value;
        if give_up.is_some() && first {
            e.1 += 1;
            e.2 |= out != row;
        }
        true
    });
    into_rows(&tally, layout)
}
