//! The state file in `state_dir`: the ledger and the pending table, so a restart serves the
//! stored figures at once and still accepts callbacks for queries sent before it. Written
//! atomically (temp file, fsync, rename, fsync of the directory): a crash leaves the old file
//! or the new one, never half of either.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::calendar::YearMonth;
use crate::labels::Labels;
use crate::ledger::{
    ACCOUNT, ACCOUNT_KEY, Amount, CATEGORY, CURRENCY, FIRST_DIMENSION, FactKey, Ledger,
    TargetLedger, UNIT, Usage, UsageBuilder,
};
use crate::scheduler::PendingQuery;

const FILE_NAME: &str = "state.json";
/// Bumped when the layout changes incompatibly; an unknown version is set aside like a corrupt file.
const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub ledger: Ledger,
    pub pending: Vec<PendingQuery>,
}

/// The file's layout: explicit and flat, so it stays readable and independent of in-memory maps.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    /// Optional dimension columns of every fact (absent in files written before they existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dimensions: Vec<String>,
    targets: std::collections::BTreeMap<String, DiskTarget>,
    pending: Vec<PendingQuery>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskTarget {
    months: std::collections::BTreeMap<YearMonth, bool>,
    /// Absent in files written before it existed, and when empty.
    #[serde(default)]
    reshaped: std::collections::BTreeSet<YearMonth>,
    results_applied: u64,
    facts: DiskFacts,
}

/// A target's facts, summed into a [`Usage`] as they are read: a state file of a million facts
/// is never held as a million sets of strings.
struct DiskFacts(Usage);

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
                let mut usage = UsageBuilder::default();
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
                    usage.add(f.day, &key, amount);
                }
                Ok(DiskFacts(usage.finish(None, Vec::new())))
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dimensions: Vec<String>,
}

/// What [`StateFile::save`] writes: the [`OnDisk`] layout, serialised straight from the ledger
/// so that saving a million facts does not first copy them all as strings.
#[derive(Serialize)]
struct OnDiskRef<'a> {
    version: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    dimensions: &'a [String],
    targets: std::collections::BTreeMap<&'a str, DiskTargetRef<'a>>,
    pending: &'a [PendingQuery],
}

#[derive(Serialize)]
struct DiskTargetRef<'a> {
    months: &'a std::collections::BTreeMap<YearMonth, bool>,
    #[serde(skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    reshaped: &'a std::collections::BTreeSet<YearMonth>,
    results_applied: u64,
    facts: FactsRef<'a>,
}

struct FactsRef<'a> {
    target: &'a TargetLedger,
    labels: &'a Labels,
}

impl Serialize for FactsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let labels = self.labels;
        s.collect_seq(self.target.days.iter().flat_map(|(day, facts)| {
            facts.iter().map(move |(ids, amount)| DiskFactRef {
                day: *day,
                account: labels.name(ids[ACCOUNT]),
                account_key: labels.name(ids[ACCOUNT_KEY]),
                category: labels.name(ids[CATEGORY]),
                currency: labels.name(ids[CURRENCY]),
                unit: labels.name(ids[UNIT]),
                cost: amount.cost,
                quantity: amount.quantity,
                dimensions: NamesRef {
                    ids: &ids[FIRST_DIMENSION..],
                    labels,
                },
            })
        }))
    }
}

#[derive(Serialize)]
struct DiskFactRef<'a> {
    day: Date,
    account: &'a str,
    account_key: &'a str,
    category: &'a str,
    currency: &'a str,
    unit: &'a str,
    cost: Decimal,
    quantity: Decimal,
    #[serde(skip_serializing_if = "NamesRef::is_empty")]
    dimensions: NamesRef<'a>,
}

struct NamesRef<'a> {
    ids: &'a [u32],
    labels: &'a Labels,
}

impl NamesRef<'_> {
    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Serialize for NamesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.ids.iter().map(|&id| self.labels.name(id)))
    }
}

impl<'a> OnDiskRef<'a> {
    fn of(state: &'a Stored) -> Self {
        let ledger = &state.ledger;
        let targets = ledger
            .targets
            .iter()
            .map(|(name, tl)| {
                let target = DiskTargetRef {
                    months: &tl.months,
                    reshaped: &tl.reshaped,
                    results_applied: tl.results_applied,
                    facts: FactsRef {
                        target: tl,
                        labels: &ledger.labels,
                    },
                };
                (name.as_str(), target)
            })
            .collect();
        Self {
            version: VERSION,
            dimensions: &ledger.dimensions,
            targets,
            pending: &state.pending,
        }
    }
}

impl OnDisk {
    fn into_state(self) -> Stored {
        let mut ledger = Ledger {
            dimensions: self.dimensions,
            ..Ledger::default()
        };
        for (name, target) in self.targets {
            let restored = TargetLedger {
                months: target.months,
                reshaped: target.reshaped,
                results_applied: target.results_applied,
                ..TargetLedger::default()
            };
            ledger.restore(&name, target.facts.0, restored);
        }
        Stored {
            ledger,
            pending: self.pending,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "cannot create state_dir {path}: {source}; create it or make it writable for the exporter's user"
    )]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state file {path} is unusable ({problem}) and cannot be moved aside: {source}; move or delete it by hand"
    )]
    SetAside {
        path: PathBuf,
        problem: String,
        source: std::io::Error,
    },
    #[error(
        "cannot write state file {path}: {source}; check free space and that state_dir is writable"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the state: {0}")]
    Encode(#[from] serde_json::Error),
}

impl StateError {
    pub fn reason(&self) -> &'static str {
        match self {
            StateError::CreateDir { .. } => "create_dir",
            StateError::SetAside { .. } => "set_aside",
            StateError::Write { source, .. } => match source.raw_os_error() {
                Some(28) => "disk_full",
                Some(30) => "read_only",
                _ if source.kind() == std::io::ErrorKind::PermissionDenied => "permission",
                _ => "io",
            },
            StateError::Encode(_) => "encode",
        }
    }
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    Fresh,
    Restored(Stored),
    /// The file could not be decoded; it was moved to `moved_to` and the exporter starts fresh.
    SetAside {
        problem: String,
        moved_to: PathBuf,
    },
}

/// The state file of one `state_dir`.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// Creates `dir` if needed.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Self {
            path: dir.join(FILE_NAME),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the stored state. A file that does not decode is moved aside with a timestamp,
    /// not deleted, so nothing is silently lost.
    pub fn load(&self, now: OffsetDateTime) -> Result<Loaded, StateError> {
        // Read as it is parsed: the file of a large ledger runs to hundreds of MB.
        let problem = match File::open(&self.path) {
            Ok(file) => match serde_json::from_reader::<_, OnDisk>(BufReader::new(file)) {
                Ok(disk) if disk.version == VERSION => {
                    return Ok(Loaded::Restored(disk.into_state()));
                }
                Ok(disk) => format!(
                    "unsupported state version {} (this build reads {VERSION})",
                    disk.version
                ),
                Err(e) if e.is_io() => format!("cannot read it: {e}"),
                Err(e) => e.to_string(),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Fresh),
            // Unreadable (a directory, bad permissions, an I/O error): set aside like a corrupt
            // file, so the exporter can start and the file is kept for inspection.
            Err(e) => format!("cannot read it: {e}"),
        };
        let moved_to = self
            .path
            .with_file_name(format!("{FILE_NAME}.corrupt-{}", now.unix_timestamp()));
        fs::rename(&self.path, &moved_to).map_err(|source| StateError::SetAside {
            path: self.path.clone(),
            problem: problem.clone(),
            source,
        })?;
        Ok(Loaded::SetAside { problem, moved_to })
    }

    /// Replaces the state file atomically.
    pub fn save(&self, state: &Stored) -> Result<(), StateError> {
        let tmp = self.path.with_file_name(format!("{FILE_NAME}.tmp"));
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| StateError::Write { path, source }
        };
        // The file holds callback tokens: readable by the exporter's user only.
        let file = private_file(&tmp).map_err(write_err(&tmp))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        serde_json::to_writer(&mut out, &OnDiskRef::of(state)).map_err(|e| {
            if e.is_io() {
                write_err(&tmp)(e.into())
            } else {
                StateError::Encode(e)
            }
        })?;
        let file = out
            .into_inner()
            .map_err(|e| write_err(&tmp)(e.into_error()))?;
        file.sync_all().map_err(write_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(write_err(&self.path))?;
        // The rename is only durable once the directory entry is.
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(write_err(dir))?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<File> {
    File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{DayRange, YearMonth};
    use crate::ledger::{Amount, FactKey, Usage};
    use time::macros::{date, datetime};

    fn sample() -> Stored {
        let mut ledger = Ledger {
            dimensions: vec!["TRAFFIC_TYPE".into()],
            ..Ledger::default()
        };
        let key = FactKey {
            account: "Acme \"Retail\"".into(),
            account_key: "K".into(),
            category: "SMS".into(),
            currency: "EUR".into(),
            unit: "message part".into(),
            dimensions: vec!["A2P".into()],
        };
        let day = date!(2026 - 11 - 02);
        ledger.apply(
            "eu",
            Usage::from_facts(
                Some(DayRange {
                    since: date!(2026 - 11 - 01),
                    until: date!(2026 - 11 - 03),
                }),
                vec![(YearMonth::of(day), false)],
                [(
                    (day, key),
                    Amount {
                        cost: "86.69".parse().unwrap(),
                        quantity: "12040".parse().unwrap(),
                    },
                )],
            ),
        );
        let target = ledger.targets.get_mut("eu").unwrap();
        target.reshaped.insert(YearMonth::of(day));
        let mut table = crate::scheduler::PendingTable::default();
        let r = DayRange {
            since: date!(2026 - 11 - 01),
            until: date!(2026 - 11 - 28),
        };
        table.register("eu", YearMonth::of(day), r, datetime!(2026-11-27 10:00 UTC));
        Stored {
            ledger,
            pending: table.queries().to_vec(),
        }
    }

    #[test]
    fn save_then_load_round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(&dir.path().join("nested")).unwrap();
        let state = sample();
        file.save(&state).unwrap();
        let Loaded::Restored(back) = file.load(datetime!(2026-11-27 11:00 UTC)).unwrap() else {
            panic!("expected the saved state");
        };
        assert_eq!(back, state);
        assert!(!file.path().with_file_name("state.json.tmp").exists());
    }

    #[test]
    fn missing_file_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        assert!(matches!(
            file.load(datetime!(2026-11-27 11:00 UTC)).unwrap(),
            Loaded::Fresh
        ));
    }

    #[test]
    fn corrupt_file_is_set_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        fs::write(file.path(), b"{\"version\":1,\"targets\":").unwrap();
        let loaded = file.load(datetime!(2026-11-27 11:00 UTC)).unwrap();
        let Loaded::SetAside { moved_to, .. } = loaded else {
            panic!("expected the file set aside, got {loaded:?}");
        };
        assert!(moved_to.ends_with("state.json.corrupt-1795777200"));
        assert_eq!(fs::read(&moved_to).unwrap(), b"{\"version\":1,\"targets\":");
        assert!(!file.path().exists());
    }

    #[test]
    fn unreadable_file_is_set_aside_too() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        // A directory in its place cannot be read as a file, even by root.
        fs::create_dir(file.path()).unwrap();
        let loaded = file.load(datetime!(2026-11-27 11:00 UTC)).unwrap();
        let Loaded::SetAside { problem, moved_to } = loaded else {
            panic!("expected the file set aside, got {loaded:?}");
        };
        assert!(problem.starts_with("cannot read it"), "{problem}");
        assert!(moved_to.is_dir());
        file.save(&sample()).unwrap();
    }

    #[test]
    fn unwritable_dir_is_an_error_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        // A directory where the temp file should go makes the write fail even as root.
        fs::create_dir(file.path().with_file_name("state.json.tmp")).unwrap();
        let err = file.save(&sample()).unwrap_err();
        assert!(err.to_string().contains("state.json.tmp"), "{err}");
        assert_eq!(err.reason(), "io");
    }
}
