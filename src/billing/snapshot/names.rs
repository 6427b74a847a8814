//! The strings one segment's rows can hold, and their sort order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use time::Date;

use crate::billing::facts::{ACCOUNT, CATEGORY, CURRENCY, FIRST_DIMENSION, UNIT};
use crate::billing::labels::Labels;
use crate::billing::ledger::{Segment, SegmentKey};
use crate::billing::snapshot::rows::{Layout, TARGET_COL, status_code};
use crate::billing::snapshot::{OTHER, channel_of};

pub(super) struct Names {
    pub labels: Labels,
    /// `ranks[id]`: the id's place in string order.
    ranks: Vec<u32>,
    /// The `channel` id of each category id of the segment, `u32::MAX` for ids never a category.
    channels: Vec<u32>,
    pub other: u32,
    pub target: u32,
    pub day_ids: BTreeMap<Date, u32>,
    pub month: u32,
    /// The status code of the segment's days and month.
    pub status: u32,
}

impl Names {
    /// Interns everything a row can hold (target, channels, periods, `other`) before the ranks
    /// are taken, so every id has one.
    pub fn new(key: &SegmentKey, segment: &Segment) -> Self {
        let mut labels = segment.labels.clone();
        let other = labels.intern(OTHER);
        let target = labels.intern(&key.target);
        let month = labels.intern(&key.month.to_string());
        let mut channels = vec![u32::MAX; segment.labels.len()];
        let mut day_ids = BTreeMap::new();
        for (day, facts) in &segment.days {
            day_ids.insert(*day, labels.intern(&day.to_string()));
            for (ids, _) in facts.iter() {
                let category = ids[CATEGORY];
                if let Some(c) = channels.get_mut(category as usize)
                    && *c == u32::MAX
                {
                    *c = labels.intern(&channel_of(segment.labels.name(category)));
                }
            }
        }
        Self {
            ranks: labels.ranks(),
            labels,
            channels,
            other,
            target,
            day_ids,
            month,
            status: status_code(segment.status()),
        }
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
    pub fn cmp_rows(&self, a: &[u32], b: &[u32]) -> Ordering {
        let (a_labels, a_status) = a.split_at(a.len().saturating_sub(1));
        let (b_labels, b_status) = b.split_at(b.len().saturating_sub(1));
        self.cmp_ids(a_labels, b_labels)
            .then_with(|| a_status.cmp(b_status))
    }

    /// Metric rows in export order: [`Names::cmp_rows`], but by target and period first for
    /// metrics exported period by period.
    pub fn cmp_export(&self, layout: Layout, a: &[u32], b: &[u32]) -> Ordering {
        if !layout.period_first {
            return self.cmp_rows(a, b);
        }
        let p = layout.period_col();
        let first = |r: &[u32]| [self.rank(r[TARGET_COL]), self.rank(r[p])];
        first(a).cmp(&first(b)).then_with(|| self.cmp_rows(a, b))
    }

    /// A metric row from a series key (see [`series_key`]), a period and a status.
    pub fn row(&self, key: &[u32], period: u32, status: u32, row: &mut Vec<u32>) {
        row.clear();
        row.extend_from_slice(&[self.target, key[0], key[1], self.channel(key[1]), key[2]]);
        row.extend_from_slice(&key[3..]);
        row.extend_from_slice(&[period, status]);
    }
}

/// A fact's series key within a segment: account, category, currency, then the dimensions;
/// with `unit`, the unit goes after the currency.
pub(super) fn series_key(ids: &[u32], unit: bool, key: &mut Vec<u32>) {
    key.clear();
    key.extend_from_slice(&[ids[ACCOUNT], ids[CATEGORY], ids[CURRENCY]]);
    if unit {
        key.push(ids[UNIT]);
    }
    key.extend_from_slice(&ids[FIRST_DIMENSION..]);
}
