//! `state.json`, the single state file of versions before segment files: read once, as it is
//! parsed, and turned into segments for the store to write (see docs/state.md). A file of a
//! million facts runs to hundreds of MB, so facts are summed into per-month builders one by one
//! and never held as strings.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::Date;

use crate::billing::calendar::YearMonth;
use crate::billing::facts::{Amount, FactKey, UsageBuilder};
use crate::billing::ledger::{Segment, SegmentKey};

/// The only version of `state.json` there was.
const VERSION: u32 = 1;

/// What `state.json` held, as segments.
#[derive(Debug, Default)]
pub struct Legacy {
    /// Optional dimension columns of every fact.
    pub dimensions: Vec<String>,
    pub segments: Vec<(SegmentKey, Segment)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    #[serde(default)]
    dimensions: Vec<String>,
    targets: BTreeMap<String, DiskTarget>,
    /// Queries of versions that kept the pending table here; they are sent again.
    #[serde(rename = "pending")]
    _pending: serde::de::IgnoredAny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskTarget {
    months: BTreeMap<YearMonth, bool>,
    #[serde(default)]
    reshaped: BTreeSet<YearMonth>,
    results_applied: u64,
    facts: DiskFacts,
}

/// A target's facts, summed per month as they are read.
struct DiskFacts(BTreeMap<YearMonth, UsageBuilder>);

impl<'de> Deserialize<'de> for DiskFacts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Facts;
        impl<'de> serde::de::Visitor<'de> for Facts {
            type Value = DiskFacts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of facts")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DiskFacts, A::Error> {
                let mut months: BTreeMap<YearMonth, UsageBuilder> = BTreeMap::new();
                while let Some(f) = seq.next_element::<DiskFact>()? {
                    let key = FactKey {
                        account: f.account,
                        account_key: f.account_key,
                        category: f.category,
                        currency: f.currency,
                        unit: f.unit,
                        dimensions: f.dimensions,
                    };
                    let amount = Amount {
                        cost: f.cost,
                        quantity: f.quantity,
                    };
                    months
                        .entry(YearMonth::of(f.day))
                        .or_default()
                        .add(f.day, &key, amount);
                }
                Ok(DiskFacts(months))
            }
        }
        d.deserialize_seq(Facts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskFact {
    day: Date,
    account: String,
    account_key: String,
    category: String,
    currency: String,
    unit: String,
    cost: Decimal,
    quantity: Decimal,
    #[serde(default)]
    dimensions: Vec<String>,
}

/// Reads `state.json` from `source`; the error says why the file cannot be used.
pub fn read(source: impl Read) -> Result<Legacy, String> {
    let disk: OnDisk = serde_json::from_reader(source).map_err(|e| {
        if e.is_io() {
            format!("cannot read it: {e}")
        } else {
            e.to_string()
        }
    })?;
    if disk.version != VERSION {
        return Err(format!(
            "unsupported state version {} (this build reads {VERSION})",
            disk.version
        ));
    }
    let mut legacy = Legacy {
        dimensions: disk.dimensions,
        segments: Vec::new(),
    };
    for (target, t) in disk.targets {
        let mut facts = t.facts.0;
        let months: BTreeSet<YearMonth> = t.months.keys().chain(facts.keys()).copied().collect();
        let newest = months.last().copied();
        for month in months {
            let usage = facts
                .remove(&month)
                .unwrap_or_default()
                .finish(None, Vec::new());
            let segment = Segment {
                labels: usage.labels,
                days: usage.days,
                finalized: t.months.get(&month).copied().unwrap_or(false),
                reshaped: t.reshaped.contains(&month),
                // The file counted results per target: they go to its newest month.
                results_applied: if Some(month) == newest {
                    t.results_applied
                } else {
                    0
                },
                // Unknown: the month is asked for again on start, as it was before.
                last_result_at: None,
            };
            legacy
                .segments
                .push((SegmentKey::new(&target, month), segment));
        }
    }
    Ok(legacy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const FILE: &str = r#"{"version":1,"dimensions":["TRAFFIC_TYPE"],"targets":{"eu":{
        "months":{"2026-10":true,"2026-11":false},"reshaped":["2026-10"],"results_applied":4,
        "facts":[
          {"day":"2026-10-31","account":"A","account_key":"K","category":"SMS","currency":"EUR","unit":"message","cost":"1.10","quantity":"2","dimensions":["A2P"]},
          {"day":"2026-11-01","account":"A","account_key":"K","category":"SMS","currency":"EUR","unit":"message","cost":"0.000000001","quantity":"1","dimensions":["A2P"]}
        ]}},"pending":[]}"#;

    #[test]
    fn a_state_file_becomes_one_segment_per_month() {
        let legacy = read(FILE.as_bytes()).unwrap();
        assert_eq!(legacy.dimensions, ["TRAFFIC_TYPE"]);
        let [(oct_key, oct), (nov_key, nov)] = &legacy.segments[..] else {
            panic!("two months: {:?}", legacy.segments);
        };
        assert_eq!(
            (oct_key.month.to_string(), nov_key.month.to_string()),
            ("2026-10".into(), "2026-11".into())
        );
        assert!(oct.finalized && oct.reshaped && !nov.finalized);
        assert_eq!((oct.results_applied, nov.results_applied), (0, 4));
        let day = nov.facts(date!(2026 - 11 - 01));
        assert_eq!(
            day.values().next().unwrap().cost,
            "0.000000001".parse::<Decimal>().unwrap()
        );
        assert_eq!(day.keys().next().unwrap().dimensions, ["A2P"]);
    }

    #[test]
    fn a_damaged_or_unknown_file_says_why() {
        assert!(read(&b"{\"version\":1,\"targets\":"[..]).is_err());
        let v2 = read(&br#"{"version":2,"targets":{},"pending":[]}"#[..]).unwrap_err();
        assert!(v2.contains("unsupported state version 2"), "{v2}");
    }
}
