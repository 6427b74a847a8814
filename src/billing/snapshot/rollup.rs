//! What every cap ends with: series giving up one label smallest first, and the export order.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashSet};
use rust_decimal::Decimal;

use crate::billing::labels::Tally;
use crate::billing::snapshot::names::Names;
use crate::billing::snapshot::rows::{Layout, Rows};

/// Per row: the input series it stands for, and whether any of them lost a label to `other`.
pub(super) type Members = Vec<(u64, bool)>;

/// A tally of (value, members, rolled) per row as rows and their members.
pub(super) fn into_rows(tally: &Tally<(Decimal, u64, bool)>, layout: Layout) -> (Rows, Members) {
    let mut rows = Rows::new(layout);
    let mut members = Vec::with_capacity(tally.len());
    for (row, (value, m, r)) in tally.iter() {
        rows.push(row, *value);
        members.push((*m, *r));
    }
    (rows, members)
}

/// The rows (and their members) sorted for export: the one sort, of what is exported.
pub(super) fn in_export_order(
    rows: Rows,
    members: Option<Members>,
    names: &Names,
) -> (Rows, Members) {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by(|&a, &b| names.cmp_export(rows.layout, rows.row(a), rows.row(b)));
    let mut sorted = Rows::new(rows.layout);
    let mut kept = Vec::with_capacity(order.len());
    for i in order {
        sorted.push(rows.row(i), rows.values[i]);
        if let Some(m) = &members {
            kept.push(m[i]);
        }
    }
    (sorted, kept)
}

/// The partial step of a cap: series give up the label in `col` smallest first until at most
/// `max` are left.
///
/// Each series given up lowers the count by at most one, so the `len - max` smallest always
/// go: they are found by selection, not by sorting, and only the rest (at most `max`) is sorted
/// to find where to stop.
fn roll_up_smallest(
    mut rows: Rows,
    members: Members,
    col: usize,
    max: usize,
    names: &Names,
) -> (Rows, Members) {
    let width = rows.layout.width();
    let hasher = DefaultHashBuilder::default();
    let smaller = |a: usize, b: usize| {
        let (x, y) = (rows.values[a].abs(), rows.values[b].abs());
        x.cmp(&y)
            .then_with(|| names.cmp_rows(rows.row(a), rows.row(b)))
    };
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let surely = rows.len().saturating_sub(max);
    if surely > 0 && surely < order.len() {
        order.select_nth_unstable_by(surely, |&a, &b| smaller(a, b));
    }
    order[surely..].sort_unstable_by(|&a, &b| smaller(a, b));
    let mut seen: HashSet<u64> = rows.iter().map(|(r, _)| hasher.hash_one(r)).collect();
    let mut rolled = vec![false; rows.len()];
    let mut count = rows.len();
    for (n, i) in order.into_iter().enumerate() {
        if n >= surely && count <= max {
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
    into_rows(&merged, rows.layout)
}

/// The last step of every cap: series give up the label in `partial` smallest first (none: the
/// floor is exported, with a warning), then go in export order; with how many were folded.
pub(super) fn finish(
    rows: Rows,
    members: Members,
    partial: Option<usize>,
    max: usize,
    names: &Names,
) -> (Rows, u64) {
    let (rows, members) = match partial {
        Some(col) => roll_up_smallest(rows, members, col, max, names),
        None => {
            tracing::warn!(
                series = rows.len(),
                max_series = max,
                "max_series is below what target, currency, period and unit alone need; exporting that floor"
            );
            (rows, members)
        }
    };
    let (rows, members) = in_export_order(rows, Some(members), names);
    let folded = members.iter().filter(|m| m.1).map(|m| m.0).sum();
    (rows, folded)
}
