//! Label values (account names, keys, categories, currencies, units, dimension values) held once
//! and referred to by `u32` ids, and sums keyed by rows of such ids.
//!
//! A million-row result has about a million distinct facts but only thousands of distinct
//! strings. Keyed by ids, a fact costs a few words and no allocation of its own, which is what
//! lets ingestion run at hundreds of MB/s and the ledger stay small (see BENCHMARKS.md).

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

/// The value Infobip gives a dimension that does not apply to a row, and that facts restored with
/// fewer dimensions read for the missing ones.
pub const NOT_APPLICABLE: &str = "N/A";

/// Interned strings: equal strings get equal ids, ids count up from 0.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Labels {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.next_id();
        let name: Arc<str> = name.into();
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }

    /// The id of `name`, if it was interned.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The string of an id handed out by this table; an unknown id reads as empty rather than
    /// panicking, since ids of another table would be a bug, not bad input.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every string, in id order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// Each id's position when the strings are sorted, so rows of ids can be ordered as their
    /// strings would be without comparing strings.
    pub fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.next_id()).collect();
        order.sort_unstable_by(|&a, &b| self.name(a).cmp(self.name(b)));
        let mut ranks = vec![0; order.len()];
        for (rank, id) in order.into_iter().enumerate() {
            ranks[id as usize] = u32::try_from(rank).unwrap_or(u32::MAX);
        }
        ranks
    }

    fn next_id(&self) -> u32 {
        // Four billion distinct label values do not fit in memory long before this saturates.
        u32::try_from(self.names.len()).unwrap_or(u32::MAX)
    }
}

/// Values keyed by rows of `width` ids, the rows kept in one flat vector: adding to an existing
/// key allocates nothing, and a new key costs `width` ids plus its value.
#[derive(Debug, Clone)]
pub struct Tally<V> {
    width: usize,
    keys: Vec<u32>,
    values: Vec<V>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<V: Default> Tally<V> {
    pub fn new(width: usize) -> Self {
        Self {
            width,
            keys: Vec::new(),
            values: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The value of `key` (of `width` ids), inserted as the default if new.
    pub fn entry(&mut self, key: &[u32]) -> &mut V {
        debug_assert_eq!(key.len(), self.width);
        let Self {
            width,
            keys,
            values,
            index,
            hasher,
        } = self;
        let w = *width;
        let hash = hasher.hash_one(key);
        let found = index
            .find(hash, |&i| &keys[i as usize * w..][..w] == key)
            .copied();
        let i = match found {
            Some(i) => i as usize,
            None => {
                let i = values.len();
                keys.extend_from_slice(key);
                values.push(V::default());
                let id = u32::try_from(i).unwrap_or(u32::MAX);
                index.insert_unique(hash, id, |&j| hasher.hash_one(&keys[j as usize * w..][..w]));
                i
            }
        };
        &mut values[i]
    }
}

impl<V> Tally<V> {
    /// The value of `key`, if it is there.
    pub fn get(&self, key: &[u32]) -> Option<&V> {
        let w = self.width;
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&i| &self.keys[i as usize * w..][..w] == key)
            .map(|&i| &self.values[i as usize])
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Keys and values in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u32], &V)> {
        rows(&self.keys, self.width).zip(&self.values)
    }

    /// The keys (flat, `width` ids each) and values, in insertion order, without the index.
    pub fn into_parts(self) -> (Vec<u32>, Vec<V>) {
        let (mut keys, mut values) = (self.keys, self.values);
        keys.shrink_to_fit();
        values.shrink_to_fit();
        (keys, values)
    }
}

/// The rows of a flat vector of `width` ids each; a width of 0 gives as many empty rows as the
/// values beside it need, which `zip` takes care of.
pub fn rows(keys: &[u32], width: usize) -> impl Iterator<Item = &[u32]> {
    let empty: &[u32] = &[];
    let chunks = (width > 0).then(|| keys.chunks_exact(width));
    chunks
        .into_iter()
        .flatten()
        .chain(std::iter::repeat(empty).take_while(move |_| width == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_gives_one_id_per_string_and_ranks_sort_them() {
        let mut labels = Labels::default();
        let b = labels.intern("b");
        let a = labels.intern("a");
        assert_eq!(labels.intern("b"), b);
        assert_eq!((labels.name(a), labels.name(b)), ("a", "b"));
        assert_eq!(labels.id("a"), Some(a));
        assert_eq!(labels.id("c"), None);
        assert_eq!(labels.ranks(), [1, 0]);
        assert_eq!(labels.name(99), "");
    }

    #[test]
    fn tally_sums_per_key_in_insertion_order() {
        let mut tally: Tally<u64> = Tally::new(2);
        for (key, n) in [([1, 2], 1), ([3, 4], 10), ([1, 2], 100), ([2, 1], 1000)] {
            *tally.entry(&key) += n;
        }
        let got: Vec<(Vec<u32>, u64)> = tally.iter().map(|(k, v)| (k.to_vec(), *v)).collect();
        assert_eq!(
            got,
            [(vec![1, 2], 101), (vec![3, 4], 10), (vec![2, 1], 1000)]
        );
        let (keys, values) = tally.into_parts();
        assert_eq!((keys.len(), values.len()), (6, 3));
    }

    #[test]
    fn a_tally_of_width_zero_has_one_key() {
        let mut tally: Tally<u64> = Tally::new(0);
        *tally.entry(&[]) += 1;
        *tally.entry(&[]) += 2;
        assert_eq!(tally.len(), 1);
        assert_eq!(tally.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [3]);
    }
}
