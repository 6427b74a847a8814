//! The segment file format: one file per (target, month) in the state directory, so a result
//! writes only its own month. A file is the magic `IBXSEG01`, the segment in postcard (serde's
//! compact binary format: varints, no field names), and a CRC-32 of everything before it. The
//! I/O (atomic replace, set-aside, the lock) is the store's; this module only encodes and
//! checks. `legacy` reads the single `state.json` of earlier versions, for its migration.

pub mod legacy;

use std::io::{BufWriter, Write};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime};

use crate::billing::calendar::YearMonth;
use crate::billing::facts::{Amount, DayFacts, FIRST_DIMENSION};
use crate::billing::labels::Labels;
use crate::billing::ledger::{Segment, SegmentKey};

const MAGIC: &[u8; 8] = b"IBXSEG01";

/// Why a segment file cannot be used: it is set aside and the month asked for again.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a segment file of this format (no IBXSEG01 header)")]
    Magic,
    #[error("checksum mismatch: the file is damaged or truncated")]
    Checksum,
    #[error("cannot decode it: {0}")]
    Decode(postcard::Error),
    #[error("it holds {0}")]
    Invalid(&'static str),
}

/// A segment as it is written: borrowed from the ledger, so writing a million facts copies none.
#[derive(Serialize)]
struct FileRef<'a> {
    target: &'a str,
    year: i32,
    month: u8,
    dimensions: &'a [String],
    finalized: bool,
    reshaped: bool,
    results_applied: u64,
    last_result_at: Option<i128>,
    labels: Vec<&'a str>,
    days: Vec<DayRef<'a>>,
}

#[derive(Serialize)]
struct DayRef<'a> {
    day: i32,
    width: u32,
    keys: &'a [u32],
    amounts: AmountsRef<'a>,
}

/// Amounts as (cost mantissa, cost scale, quantity mantissa, quantity scale): exact, and a few
/// bytes each as varints.
struct AmountsRef<'a>(&'a [Amount]);

impl Serialize for AmountsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|a| {
            (
                a.cost.mantissa(),
                a.cost.scale(),
                a.quantity.mantissa(),
                a.quantity.scale(),
            )
        }))
    }
}

#[derive(Deserialize)]
struct FileOwned {
    target: String,
    year: i32,
    month: u8,
    dimensions: Vec<String>,
    finalized: bool,
    reshaped: bool,
    results_applied: u64,
    last_result_at: Option<i128>,
    labels: Vec<String>,
    days: Vec<DayOwned>,
}

#[derive(Deserialize)]
struct DayOwned {
    day: i32,
    width: u32,
    keys: Vec<u32>,
    amounts: Amounts,
}

struct Amounts(Vec<Amount>);

impl<'de> Deserialize<'de> for Amounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Amounts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of amounts")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Amounts, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                let decimal = |m: i128, s: u32| {
                    Decimal::try_from_i128_with_scale(m, s)
                        .map_err(|_| serde::de::Error::custom("an amount out of range"))
                };
                while let Some((cm, cs, qm, qs)) = seq.next_element::<(i128, u32, i128, u32)>()? {
                    out.push(Amount {
                        cost: decimal(cm, cs)?,
                        quantity: decimal(qm, qs)?,
                    });
                }
                Ok(Amounts(out))
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// Writes a segment of a ledger with `dimensions` to `out`, checksum last.
pub fn write(
    mut out: impl Write,
    key: &SegmentKey,
    segment: &Segment,
    dimensions: &[String],
) -> std::io::Result<()> {
    let file = FileRef {
        target: &key.target,
        year: key.month.year,
        month: key.month.month as u8,
        dimensions,
        finalized: segment.finalized,
        reshaped: segment.reshaped,
        results_applied: segment.results_applied,
        last_result_at: segment
            .last_result_at
            .map(OffsetDateTime::unix_timestamp_nanos),
        labels: segment.labels.names().collect(),
        days: segment
            .days
            .iter()
            .map(|(day, facts)| DayRef {
                day: day.to_julian_day(),
                width: u32::try_from(facts.width()).unwrap_or(u32::MAX),
                keys: facts.keys(),
                amounts: AmountsRef(facts.amounts()),
            })
            .collect(),
    };
    // Streamed, never held whole; buffered before the checksum, so that it sees large writes
    // rather than postcard's byte-sized ones.
    let mut buffered = BufWriter::with_capacity(
        1 << 16,
        Checksummed {
            inner: &mut out,
            crc: crc32fast::Hasher::new(),
        },
    );
    buffered.write_all(MAGIC)?;
    let buffered = postcard::to_io(&file, buffered).map_err(std::io::Error::other)?;
    let checksummed = buffered.into_inner().map_err(|e| e.into_error())?;
    let crc = checksummed.crc.finalize();
    out.write_all(&crc.to_le_bytes())?;
    out.flush()
}

/// A writer that keeps a CRC-32 of what went through it.
struct Checksummed<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a segment file back: its key, the segment, and the dimensions its facts carry.
pub fn read(bytes: &[u8]) -> Result<(SegmentKey, Segment, Vec<String>), FormatError> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(FormatError::Magic)?;
    let split = body.len().checked_sub(4).ok_or(FormatError::Checksum)?;
    let (payload, crc) = body.split_at(split);
    if crc32fast::hash(&bytes[..bytes.len() - 4]).to_le_bytes() != crc {
        return Err(FormatError::Checksum);
    }
    let file: FileOwned = postcard::from_bytes(payload).map_err(FormatError::Decode)?;
    let month =
        Month::try_from(file.month).map_err(|_| FormatError::Invalid("a month out of range"))?;
    let key = SegmentKey {
        target: file.target,
        month: YearMonth {
            year: file.year,
            month,
        },
    };
    let mut labels = Labels::default();
    for name in &file.labels {
        labels.intern(name);
    }
    if labels.len() != file.labels.len() {
        return Err(FormatError::Invalid("a label twice"));
    }
    let width = FIRST_DIMENSION + file.dimensions.len();
    let mut segment = Segment {
        labels,
        finalized: file.finalized,
        reshaped: file.reshaped,
        results_applied: file.results_applied,
        last_result_at: file
            .last_result_at
            .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok()),
        ..Segment::default()
    };
    for day in file.days {
        let date = Date::from_julian_day(day.day)
            .ok()
            .filter(|d| key.month.contains(*d))
            .ok_or(FormatError::Invalid("a day outside its month"))?;
        if day.width as usize != width
            || day.keys.iter().any(|&id| id as usize >= file.labels.len())
        {
            return Err(FormatError::Invalid("facts that do not match its labels"));
        }
        let facts = DayFacts::from_parts(width, day.keys, day.amounts.0).ok_or(
            FormatError::Invalid("facts that do not match their amounts"),
        )?;
        segment.days.insert(date, facts);
    }
    Ok((key, segment, file.dimensions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::ledger::Ledger;
    use crate::billing::ledger::tests::{NOV, apply, eu_nov, key, usage};
    use time::macros::date;

    fn sample() -> Ledger {
        let mut ledger = Ledger::new(vec!["TRAFFIC_TYPE".into()]);
        let mut a = key("Acme \"EU\"", "SMS", "EUR");
        a.dimensions = vec!["A2P".into()];
        let d1 = date!(2026 - 11 - 01);
        apply(
            &mut ledger,
            usage(
                NOV,
                &[
                    (d1, a.clone(), "0.000000001"),
                    (date!(2026 - 11 - 02), a, "-12345678901234.5"),
                ],
                true,
            ),
        );
        ledger
    }

    fn encoded(ledger: &Ledger) -> Vec<u8> {
        let mut out = Vec::new();
        write(
            &mut out,
            &eu_nov(),
            &ledger.segments[&eu_nov()],
            &ledger.dimensions,
        )
        .unwrap();
        out
    }

    #[test]
    fn a_segment_reads_back_exactly() {
        let ledger = sample();
        let (key, segment, dims) = read(&encoded(&ledger)).unwrap();
        assert_eq!((key, dims), (eu_nov(), ledger.dimensions.clone()));
        assert_eq!(segment, *ledger.segments[&eu_nov()]);
    }

    #[test]
    fn damage_anywhere_is_caught() {
        let bytes = encoded(&sample());
        for at in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(read(&bad).is_err(), "flipped byte {at}");
        }
        assert!(matches!(
            read(&bytes[..bytes.len() - 3]),
            Err(FormatError::Checksum)
        ));
        assert!(matches!(read(b"{\"version\":1}"), Err(FormatError::Magic)));
    }
}
