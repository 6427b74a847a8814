//! How the segments share each data metric's `max_series` cap.
//!
//! Every configured target has a place for each retained month, with data or not (and a
//! segment of a target no longer configured has one too). A place asks for its segment's series
//! count rounded up to a step of `max_series / (4 × places)`, and at least one step: what a
//! place asks for moves only when its count crosses a step. When all asks fit, each segment gets
//! what it asks, so none is capped; otherwise the cap is filled like water: every place gets its
//! ask up to one level, the largest that keeps the sum within `max_series`, so small months keep
//! all their series and the large ones share the rest equally.
//!
//! The steps are what keeps a result cheap: a one-row result for the open month changes what
//! that month asks for only when it crosses a step, so a large capped month beside it keeps its
//! share and is not rebuilt. A share depends only on the counts, never on the order results
//! came in.

use std::collections::{BTreeMap, BTreeSet};

use crate::billing::ledger::SegmentKey;

/// Each segment's share per kind.
pub(super) fn allot(
    places: &BTreeSet<SegmentKey>,
    needs: &BTreeMap<SegmentKey, [usize; 4]>,
    max: usize,
) -> BTreeMap<SegmentKey, [usize; 4]> {
    let step = (max / (4 * places.len().max(1))).max(1);
    let mut shares: BTreeMap<SegmentKey, [usize; 4]> =
        needs.keys().map(|k| (k.clone(), [max; 4])).collect();
    for kind in 0..4 {
        let asks: Vec<(Option<&SegmentKey>, usize)> = places
            .iter()
            .map(|place| {
                let need = needs.get(place).map_or(0, |n| n[kind]);
                let ask = need.div_ceil(step).max(1).saturating_mul(step).min(max);
                (needs.contains_key(place).then_some(place), ask)
            })
            .collect();
        let level = level(asks.iter().map(|(_, ask)| *ask), max);
        for (place, ask) in asks {
            if let Some(share) = place.and_then(|p| shares.get_mut(p)) {
                share[kind] = ask.min(level).max(1);
            }
        }
    }
    shares
}

/// The largest level at which the asks, each cut to it, still fit in `max`.
fn level(asks: impl Iterator<Item = usize> + Clone, max: usize) -> usize {
    let fill = |level: usize| -> usize { asks.clone().map(|a| a.min(level)).sum() };
    if fill(max) <= max {
        return max;
    }
    let (mut low, mut high) = (0, max);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if fill(mid) <= max {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}

/// Whether a segment built with `old` shares would come out otherwise with `new`: only if a kind
/// whose share moved is capped under either.
pub(super) fn moved(need: &[usize; 4], old: &[usize; 4], new: &[usize; 4]) -> bool {
    (0..4).any(|k| old[k] != new[k] && (need[k] > old[k] || need[k] > new[k]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::calendar::YearMonth;

    fn key(month: &str) -> SegmentKey {
        SegmentKey::new("eu", month.parse::<YearMonth>().unwrap())
    }

    #[test]
    fn small_months_keep_their_series_and_large_ones_share_the_rest() {
        let places: BTreeSet<SegmentKey> = ["2026-10", "2026-11", "2026-12"].map(key).into();
        let needs: BTreeMap<_, _> =
            [(key("2026-11"), [10_001; 4]), (key("2026-12"), [1; 4])].into();
        let shares = allot(&places, &needs, 10_000);
        // A step is 10,000 / 12 = 833: December and the empty October ask one step each.
        assert_eq!(shares[&key("2026-12")], [833; 4]);
        assert_eq!(shares[&key("2026-11")], [10_000 - 2 * 833; 4]);
        let grown: BTreeMap<_, _> =
            [(key("2026-11"), [10_001; 4]), (key("2026-12"), [800; 4])].into();
        assert_eq!(
            allot(&places, &grown, 10_000),
            shares,
            "within a step nothing moves"
        );
    }

    #[test]
    fn asks_that_fit_are_granted_whole() {
        let places: BTreeSet<SegmentKey> = ["2026-11", "2026-12"].map(key).into();
        let needs: BTreeMap<_, _> = [(key("2026-11"), [40; 4]), (key("2026-12"), [3; 4])].into();
        let shares = allot(&places, &needs, 100);
        assert!(shares.values().flatten().sum::<usize>() <= 4 * 100);
        assert!(shares[&key("2026-11")].iter().all(|s| *s >= 40));
        assert!(shares[&key("2026-12")].iter().all(|s| *s >= 3));
    }

    #[test]
    fn only_a_capped_kind_whose_share_moved_needs_a_rebuild() {
        assert!(!moved(&[5; 4], &[10; 4], &[8; 4]), "uncapped either way");
        assert!(moved(&[50, 5, 5, 5], &[10; 4], &[8; 4]));
        assert!(!moved(&[50; 4], &[10; 4], &[10; 4]));
    }
}
