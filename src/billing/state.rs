//! The state files in `state_dir`: the ledger (`state.json`) and the pending table
//! (`pending.json`), so a restart serves the stored figures at once and still accepts callbacks
//! for queries sent before it. Each is written atomically (temp file, fsync, rename, fsync of the
//! directory): a crash leaves the old file or the new one, never half of either.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::billing::calendar::YearMonth;
use crate::billing::labels::Labels;
use crate::billing::ledger::{
    ACCOUNT, ACCOUNT_KEY, Amount, CATEGORY, CURRENCY, FIRST_DIMENSION, FactKey, Ledger,
    TargetLedger, UNIT, Usage, UsageBuilder,
};
use crate::daemon::scheduler::PendingQuery;

const FILE_NAME: &str = "state.json";
/// The pending table, in a file of its own: it changes with every query, and rewriting a ledger
/// of a million facts (hundreds of MB) each time would be waste.
const PENDING_FILE_NAME: &str = "pending.json";
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

/// `pending.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingFile<P> {
    version: u32,
    pending: P,
}

impl<'a> OnDiskRef<'a> {
    /// The ledger; its `pending` stays empty, the table lives in `pending.json` (files written
    /// before that have it here, and are still read).
    fn of(ledger: &'a Ledger) -> Self {
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
            pending: &[],
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

/// The state files of one `state_dir`: `state.json` (the ledger) and `pending.json` (the
/// pending table).
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
    pending_path: PathBuf,
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
            pending_path: dir.join(PENDING_FILE_NAME),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the stored state. A file that does not decode is moved aside with a timestamp,
    /// not deleted, so nothing is silently lost.
    pub fn load(&self, now: OffsetDateTime) -> Result<Loaded, StateError> {
        let loaded = self.load_ledger(now)?;
        let Some(pending) = self.load_pending(now)? else {
            return Ok(loaded);
        };
        Ok(match loaded {
            Loaded::Restored(stored) => Loaded::Restored(Stored { pending, ..stored }),
            // Queries sent before the first result: no ledger yet.
            Loaded::Fresh => Loaded::Restored(Stored {
                ledger: Ledger::default(),
                pending,
            }),
            set_aside @ Loaded::SetAside { .. } => set_aside,
        })
    }

    fn load_ledger(&self, now: OffsetDateTime) -> Result<Loaded, StateError> {
        // Read as it is parsed: the file of a large ledger runs to hundreds of MB.
        let problem = match read_json::<OnDisk>(&self.path) {
            Ok(Some(disk)) if disk.version == VERSION => {
                return Ok(Loaded::Restored(disk.into_state()));
            }
            Ok(Some(disk)) => format!(
                "unsupported state version {} (this build reads {VERSION})",
                disk.version
            ),
            Ok(None) => return Ok(Loaded::Fresh),
            Err(problem) => problem,
        };
        let moved_to = set_aside(&self.path, &problem, now)?;
        Ok(Loaded::SetAside { problem, moved_to })
    }

    /// The pending table of `pending.json`, `None` without one. A file that does not decode is
    /// set aside with a warning: its queries are sent again.
    fn load_pending(&self, now: OffsetDateTime) -> Result<Option<Vec<PendingQuery>>, StateError> {
        let problem = match read_json::<PendingFile<Vec<PendingQuery>>>(&self.pending_path) {
            Ok(Some(file)) if file.version == VERSION => return Ok(Some(file.pending)),
            Ok(Some(file)) => format!(
                "unsupported pending table version {} (this build reads {VERSION})",
                file.version
            ),
            Ok(None) => return Ok(None),
            Err(problem) => problem,
        };
        let moved_to = set_aside(&self.pending_path, &problem, now)?;
        tracing::warn!(problem = %problem, moved_to = %moved_to.display(), "pending table set aside; its queries will be sent again");
        Ok(None)
    }

    /// Replaces both files atomically, the ledger first.
    pub fn save(&self, state: &Stored) -> Result<(), StateError> {
        self.save_ledger(&state.ledger)?;
        self.save_pending(&state.pending)
    }

    /// Replaces `state.json` atomically.
    pub fn save_ledger(&self, ledger: &Ledger) -> Result<(), StateError> {
        write_atomically(&self.path, &OnDiskRef::of(ledger))
    }

    /// Replaces `pending.json` atomically.
    pub fn save_pending(&self, pending: &[PendingQuery]) -> Result<(), StateError> {
        let file = PendingFile {
            version: VERSION,
            pending,
        };
        write_atomically(&self.pending_path, &file)
    }
}

/// The file at `path` decoded as it is read; `Ok(None)` when there is none, `Err` saying why
/// it cannot be used.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match File::open(path) {
        Ok(file) => match serde_json::from_reader(BufReader::new(file)) {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_io() => Err(format!("cannot read it: {e}")),
            Err(e) => Err(e.to_string()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // Unreadable (a directory, bad permissions, an I/O error): set aside like a corrupt
        // file, so the exporter can start and the file is kept for inspection.
        Err(e) => Err(format!("cannot read it: {e}")),
    }
}

/// Moves an unusable file to `<name>.corrupt-<unix time>` beside it.
fn set_aside(path: &Path, problem: &str, now: OffsetDateTime) -> Result<PathBuf, StateError> {
    let moved_to = beside(path, &format!(".corrupt-{}", now.unix_timestamp()));
    fs::rename(path, &moved_to).map_err(|source| StateError::SetAside {
        path: path.to_owned(),
        problem: problem.to_owned(),
        source,
    })?;
    Ok(moved_to)
}

/// `path` with `suffix` added to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Replaces `path` with `value` as JSON: temp file, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, value: &impl Serialize) -> Result<(), StateError> {
    let tmp = beside(path, ".tmp");
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| StateError::Write { path, source }
    };
    // The files hold callback tokens: readable by the exporter's user only.
    let file = private_file(&tmp).map_err(write_err(&tmp))?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    serde_json::to_writer(&mut out, value).map_err(|e| {
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
    fs::rename(&tmp, path).map_err(write_err(path))?;
    // The rename is only durable once the directory entry is.
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err(dir))?;
    }
    Ok(())
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
    use crate::billing::calendar::{DayRange, YearMonth};
    use crate::billing::ledger::{Amount, FactKey, Usage};
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
        let mut table = crate::daemon::scheduler::PendingTable::default();
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
    fn the_pending_table_is_its_own_file_and_old_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        let state = sample();
        file.save(&state).unwrap();
        let ledger_text = fs::read_to_string(file.path()).unwrap();
        assert!(ledger_text.ends_with(r#""pending":[]}"#), "{ledger_text}");
        // A file of the layout before pending.json: the table inside state.json.
        let table: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("pending.json")).unwrap()).unwrap();
        let old = ledger_text.replace(
            r#""pending":[]"#,
            &format!(r#""pending":{}"#, table["pending"]),
        );
        fs::write(file.path(), old).unwrap();
        fs::remove_file(dir.path().join("pending.json")).unwrap();
        let Loaded::Restored(back) = file.load(datetime!(2026-11-27 11:00 UTC)).unwrap() else {
            panic!("expected the saved state");
        };
        assert_eq!(back, state);
    }

    #[test]
    fn queries_sent_before_any_result_are_restored() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        let state = sample();
        file.save_pending(&state.pending).unwrap();
        let Loaded::Restored(back) = file.load(datetime!(2026-11-27 11:00 UTC)).unwrap() else {
            panic!("expected the pending table");
        };
        assert_eq!(
            (back.ledger, back.pending),
            (Ledger::default(), state.pending)
        );
    }

    #[test]
    fn a_corrupt_pending_table_is_set_aside_and_the_ledger_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        let state = sample();
        file.save(&state).unwrap();
        fs::write(dir.path().join("pending.json"), b"{\"version\":1,\"pend").unwrap();
        let Loaded::Restored(back) = file.load(datetime!(2026-11-27 11:00 UTC)).unwrap() else {
            panic!("expected the ledger");
        };
        assert_eq!((&back.ledger, back.pending.len()), (&state.ledger, 0));
        assert!(dir.path().join("pending.json.corrupt-1795777200").exists());
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
