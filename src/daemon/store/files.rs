//! The state directory on disk: one file per segment under `segments/`, the pending table in
//! `pending.json`, and `lock`, held by the running instance. Every file is replaced atomically
//! (temp file, fsync, rename, fsync of the directory): a crash leaves the old file or the new
//! one, never half of either. A file that cannot be read is moved aside, alone, and kept.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::billing::ledger::{Segment, SegmentKey};
use crate::billing::state::{self, legacy};
use crate::daemon::pending::PendingQuery;

const SEGMENTS: &str = "segments";
const SEGMENT_EXT: &str = "seg";
const PENDING: &str = "pending.json";
const FILTERS: &str = "filters.json";
const LEGACY: &str = "state.json";
const LOCK: &str = "lock";
const PENDING_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create state_dir {path}: {cause}; create it or make it writable for the exporter's user"
    )]
    CreateDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "state_dir {} is in use by another exporter ({holder}); stop that instance, or give this one a state_dir of its own",
        path.display()
    )]
    Locked { path: PathBuf, holder: String },
    #[error("cannot lock {path}: {cause}; state_dir must be on a file system that supports locks")]
    Lock {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "state file {path} is unusable ({problem}) and cannot be moved aside: {cause}; move or delete it by hand"
    )]
    SetAside {
        path: PathBuf,
        problem: String,
        cause: std::io::Error,
    },
    #[error(
        "cannot write state file {path}: {cause}; check free space and that state_dir is writable"
    )]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the state writer stopped")]
    Stopped,
}

impl StoreError {
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::CreateDir { .. } => "create_dir",
            StoreError::Locked { .. } => "locked",
            StoreError::Lock { .. } => "lock",
            StoreError::SetAside { .. } => "set_aside",
            StoreError::Write { cause, .. } => match cause.raw_os_error() {
                Some(28) => "disk_full",
                Some(30) => "read_only",
                _ if cause.kind() == std::io::ErrorKind::PermissionDenied => "permission",
                _ => "io",
            },
            StoreError::Stopped => "stopped",
        }
    }
}

/// A file that could not be used and was moved aside.
#[derive(Debug)]
pub struct SetAside {
    pub path: PathBuf,
    pub problem: String,
    pub moved_to: PathBuf,
}

/// A segment file as found: read, or moved aside.
type Found = Result<(SegmentKey, Segment, Vec<String>), SetAside>;

/// `pending.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingFile<P> {
    version: u32,
    pending: P,
}

/// An open, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    segments: PathBuf,
    /// Held for the life of the process: the lock goes with the descriptor.
    _lock: File,
}

impl StateDir {
    /// Creates `dir` if needed and locks it, before anything is read or sent.
    pub fn open(dir: &Path, now: OffsetDateTime) -> Result<Self, StoreError> {
        let segments = dir.join(SEGMENTS);
        fs::create_dir_all(&segments).map_err(|cause| StoreError::CreateDir {
            path: segments.clone(),
            cause,
        })?;
        let path = dir.join(LOCK);
        let lock_err = |cause| StoreError::Lock {
            path: path.clone(),
            cause,
        };
        let mut lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = match holder.trim() {
                    "" => "holder unknown".to_owned(),
                    h => h.to_owned(),
                };
                return Err(StoreError::Locked {
                    path: dir.to_owned(),
                    holder,
                });
            }
            Err(fs::TryLockError::Error(cause)) => return Err(lock_err(cause)),
        }
        let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let holder = format!(
            "pid {} on {}, since {}",
            std::process::id(),
            host.trim(),
            now.unix_timestamp()
        );
        lock.set_len(0)
            .and_then(|()| lock.write_all(holder.as_bytes()))
            .map_err(lock_err)?;
        Ok(Self {
            dir: dir.to_owned(),
            segments,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn segment_path(&self, key: &SegmentKey) -> PathBuf {
        // Target names are a-z, 0-9, '_' and '-' (config validation): safe in a file name.
        self.segments
            .join(format!("{}.{}.{SEGMENT_EXT}", key.target, key.month))
    }

    /// Replaces the segment's file.
    pub fn write_segment(
        &self,
        key: &SegmentKey,
        segment: &Segment,
        dimensions: &[String],
    ) -> Result<(), StoreError> {
        write_atomically(&self.segment_path(key), |out| {
            state::write(out, key, segment, dimensions)
        })
    }

    /// Deletes the file of a segment gone from retention.
    pub fn remove_segment(&self, key: &SegmentKey) -> Result<(), StoreError> {
        let path = self.segment_path(key);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::Write { path, cause: e })
            }
            _ => Ok(()),
        }
    }

    /// Every segment file, each read or moved aside on its own.
    pub fn load_segments(&self, now: OffsetDateTime) -> Result<Vec<Found>, StoreError> {
        let entries = fs::read_dir(&self.segments).map_err(|cause| StoreError::CreateDir {
            path: self.segments.clone(),
            cause,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == SEGMENT_EXT))
            .collect();
        paths.sort();
        let mut found = Vec::with_capacity(paths.len());
        for path in paths {
            let read = fs::read(&path)
                .map_err(|e| format!("cannot read it: {e}"))
                .and_then(|bytes| state::read(&bytes).map_err(|e| e.to_string()))
                .and_then(|(key, segment, dims)| {
                    // A file renamed by hand would load into another month.
                    (path == self.segment_path(&key))
                        .then_some((key, segment, dims))
                        .ok_or_else(|| "it holds another target or month than its name".to_owned())
                });
            found.push(match read {
                Ok(segment) => Ok(segment),
                Err(problem) => Err(set_aside(&path, problem, now)?),
            });
        }
        Ok(found)
    }

    /// `state.json` of an earlier version, if there is one to migrate.
    pub fn load_legacy(
        &self,
        now: OffsetDateTime,
    ) -> Result<Option<Result<legacy::Legacy, SetAside>>, StoreError> {
        let path = self.dir.join(LEGACY);
        let read = match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => Err(format!("cannot read it: {e}")),
            Ok(file) => legacy::read(BufReader::new(file)),
        };
        Ok(Some(match read {
            Ok(legacy) => Ok(legacy),
            Err(problem) => Err(set_aside(&path, problem, now)?),
        }))
    }

    /// Deletes `state.json` once its segments are durable.
    pub fn finish_migration(&self) -> Result<(), StoreError> {
        let path = self.dir.join(LEGACY);
        fs::remove_file(&path).map_err(|cause| StoreError::Write { path, cause })?;
        sync_dir(&self.dir)
    }

    /// The pending table; a file that does not decode is moved aside (its queries are sent
    /// again).
    pub fn load_pending(
        &self,
        now: OffsetDateTime,
    ) -> Result<Result<Vec<PendingQuery>, SetAside>, StoreError> {
        let path = self.dir.join(PENDING);
        let read = match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(Vec::new())),
            Err(e) => Err(format!("cannot read it: {e}")),
            Ok(file) => {
                serde_json::from_reader::<_, PendingFile<Vec<PendingQuery>>>(BufReader::new(file))
                    .map_err(|e| e.to_string())
                    .and_then(|f| {
                        (f.version == PENDING_VERSION).then_some(f.pending).ok_or_else(|| {
                    format!(
                        "unsupported pending table version {} (this build reads {PENDING_VERSION})",
                        f.version
                    )
                })
                    })
            }
        };
        Ok(match read {
            Ok(pending) => Ok(pending),
            Err(problem) => Err(set_aside(&path, problem, now)?),
        })
    }

    /// The filter each target's stored months were fetched under, as
    /// `UsageFilter::identity` writes it; a target not listed had none. A file that cannot be
    /// read counts as listing none: the filtered targets are then asked for again, which loses
    /// nothing.
    pub fn load_filters(&self) -> BTreeMap<String, String> {
        read_filters(&self.dir).unwrap_or_else(|problem| {
            let path = self.dir.join(FILTERS);
            tracing::warn!(path = %path.display(), "{problem}; the filtered targets are asked for again");
            BTreeMap::new()
        })
    }

    pub fn save_filters(&self, filters: &BTreeMap<String, String>) -> Result<(), StoreError> {
        write_atomically(&self.dir.join(FILTERS), |out| {
            serde_json::to_writer(out, filters).map_err(std::io::Error::other)
        })
    }

    pub fn save_pending(&self, pending: &[PendingQuery]) -> Result<(), StoreError> {
        let file = PendingFile {
            version: PENDING_VERSION,
            pending,
        };
        write_atomically(&self.dir.join(PENDING), |out| {
            serde_json::to_writer(out, &file).map_err(std::io::Error::other)
        })
    }
}

/// The segment files under `dir` as they are, for a one-shot command beside a running daemon:
/// read without the lock, and a file that does not read is skipped, not moved aside (it is not
/// this process's to move). Every file is replaced whole, so a read sees the old or the new one.
pub fn read_segments(dir: &Path) -> Vec<(SegmentKey, Segment, Vec<String>)> {
    let Ok(entries) = fs::read_dir(dir.join(SEGMENTS)) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == SEGMENT_EXT))
        .filter_map(|p| fs::read(p).ok())
        .filter_map(|bytes| state::read(&bytes).ok())
        .collect()
}

/// The filters each target's stored months were fetched under (see `StateDir::load_filters`).
pub fn read_filters(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    match fs::read(dir.join(FILTERS)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        read => read
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string())),
    }
}

/// Moves an unusable file to `<name>.corrupt-<unix time>` beside it.
fn set_aside(path: &Path, problem: String, now: OffsetDateTime) -> Result<SetAside, StoreError> {
    let moved_to = beside(path, &format!(".corrupt-{}", now.unix_timestamp()));
    match fs::rename(path, &moved_to) {
        Ok(()) => Ok(SetAside {
            path: path.to_owned(),
            problem,
            moved_to,
        }),
        Err(cause) => Err(StoreError::SetAside {
            path: path.to_owned(),
            problem,
            cause,
        }),
    }
}

/// `path` with `suffix` added to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Replaces `path` with what `write` writes: temp file, fsync, rename, fsync of the directory.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let tmp = beside(path, ".tmp");
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |cause| StoreError::Write { path, cause }
    };
    // The files hold callback tokens and billing data: readable by the exporter's user only.
    let file = private_file(&tmp).map_err(write_err(&tmp))?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    write(&mut out).map_err(write_err(&tmp))?;
    let file = out
        .into_inner()
        .map_err(|e| write_err(&tmp)(e.into_error()))?;
    file.sync_all().map_err(write_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(write_err(path))?;
    // The rename is only durable once the directory entry is.
    path.parent().map_or(Ok(()), sync_dir)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|cause| StoreError::Write {
            path: dir.to_owned(),
            cause,
        })
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
