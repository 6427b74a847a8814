//! The store: the ledger, its snapshot and the state files, behind one writer thread. Async
//! handlers hand it a decoded result and await its reply, which comes once the result's segment
//! is durable; the segment's series are built on a second thread meanwhile, and published when
//! both are done. Readers (scrapes, the OTLP pusher, the query loops) take an `Arc` of what was
//! published last and never wait for the writer.

mod files;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};

pub use files::StoreError;
use files::{SetAside, StateDir};
pub use files::{read_filters, read_segments};

use crate::billing::budget::BudgetConfig;
use crate::billing::calendar::{Clock, DayRange, retention_start};
use crate::billing::facts::Usage;
use crate::billing::ledger::{ApplyReport, Ledger, SegmentKey};
use crate::billing::snapshot::{Snapshot, View};
use crate::config::Config;
use crate::daemon::pending::PendingQuery;
use crate::export::exposition::Exposition;
use crate::export::selfmetrics::SelfMetrics;

/// What the data metrics look like: from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    pub dir: PathBuf,
    /// Optional dimension column names (`TRAFFIC_TYPE`, …).
    pub dimensions: Vec<String>,
    /// Days `infobip_billing_cost` exports, up to today.
    pub days: u32,
    pub max_series: usize,
    pub budgets: Vec<BudgetConfig>,
    /// The configured targets: each has a place in the cap for every retained month.
    pub targets: Vec<String>,
    /// Each target's filters (`UsageFilter::identity`): months fetched under others are asked
    /// for again.
    pub filters: BTreeMap<String, String>,
}

impl StoreConfig {
    pub fn of(config: &Config) -> Self {
        StoreConfig {
            dir: config.state_dir.clone(),
            dimensions: config
                .metrics
                .dimensions
                .iter()
                .map(|d| d.as_str().to_owned())
                .collect(),
            days: config.days,
            max_series: config.metrics.max_series,
            budgets: config.metrics.budgets.clone(),
            targets: config.targets.iter().map(|t| t.name.clone()).collect(),
            filters: config
                .targets
                .iter()
                .map(|t| (t.name.clone(), t.filter.identity()))
                .collect(),
        }
    }
}

/// What the query loops need of a stored month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMeta {
    /// A query can still change it (see `Segment::wants`).
    pub wants: bool,
    /// Its facts lack a dimension added to the config: asked for at once, however recent.
    pub reshaped: bool,
    pub last_result_at: Option<OffsetDateTime>,
}

pub type Meta = BTreeMap<SegmentKey, SegmentMeta>;

/// The answer to a result handed to the store.
#[derive(Debug)]
pub struct Applied {
    pub report: ApplyReport,
    /// Whether the segment reached the disk; when not (the error is logged and counted), it is
    /// served from memory and written again with the next command.
    pub durable: bool,
}

enum Command {
    Apply {
        key: SegmentKey,
        asked: DayRange,
        usage: Box<Usage>,
        at: OffsetDateTime,
        reply: oneshot::Sender<Applied>,
    },
    SavePending {
        queries: Vec<PendingQuery>,
        reply: oneshot::Sender<()>,
    },
    Reconfigure {
        config: StoreConfig,
        reply: oneshot::Sender<()>,
    },
}

/// The handle the daemon's tasks share.
#[derive(Debug)]
pub struct Store {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    exposition: watch::Receiver<Arc<Exposition>>,
    meta: watch::Receiver<Arc<Meta>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A store opened, with the pending table it found.
#[derive(Debug)]
pub struct Opened {
    pub store: Store,
    pub pending: Vec<PendingQuery>,
}

impl Store {
    /// Locks the state directory, loads it (migrating a `state.json`, setting aside what cannot
    /// be read) and builds the first snapshot, all on the writer thread, which then waits for
    /// commands.
    pub async fn open(
        config: StoreConfig,
        clock: Arc<dyn Clock>,
        metrics: SelfMetrics,
    ) -> Result<Opened, StoreError> {
        let (ready_tx, ready) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || match Writer::load(config, clock, metrics) {
                Ok((writer, pending, commands, exposition, meta)) => {
                    let _ = ready_tx.send(Ok((pending, commands, exposition, meta)));
                    writer.run();
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                }
            })
            .map_err(|cause| StoreError::Write {
                path: PathBuf::from("<state-writer thread>"),
                cause,
            })?;
        let (pending, commands, exposition, meta) =
            ready.await.map_err(|_| StoreError::Stopped)??;
        Ok(Opened {
            store: Store {
                commands: Mutex::new(Some(commands)),
                exposition,
                meta,
                thread: Mutex::new(Some(thread)),
            },
            pending,
        })
    }

    fn send(&self, command: Command) {
        let commands = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = &*commands {
            let _ = tx.send(command);
        }
    }

    /// Applies a result of the query for `key` that asked for `asked`; the answer comes once
    /// the segment is durable.
    pub async fn apply(
        &self,
        key: SegmentKey,
        asked: DayRange,
        usage: Usage,
        at: OffsetDateTime,
    ) -> Applied {
        let (reply, answer) = oneshot::channel();
        let report = ApplyReport::default();
        self.send(Command::Apply {
            key,
            asked,
            usage: Box::new(usage),
            at,
            reply,
        });
        answer.await.unwrap_or(Applied {
            report,
            durable: false,
        })
    }

    /// Hands the pending table to the writer at once (so that writes keep the order of calls)
    /// and returns a future that is ready once it is durable.
    pub fn save_pending(&self, queries: Vec<PendingQuery>) -> impl Future<Output = ()> + use<> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::SavePending { queries, reply });
        async move {
            let _ = answer.await;
        }
    }

    /// Takes a reloaded config's dimensions, budgets, cap, day window and targets (not its
    /// state directory): the figures are re-keyed and rebuilt, and the answer comes once the
    /// re-keyed segments are durable.
    pub async fn reconfigure(&self, config: StoreConfig) {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Reconfigure { config, reply });
        let _ = answer.await;
    }

    /// What a scrape serves.
    pub fn exposition(&self) -> Arc<Exposition> {
        Arc::clone(&self.exposition.borrow())
    }

    /// Follows every exposition published from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Exposition>> {
        self.exposition.clone()
    }

    /// What the query loops need of the stored months; up to date as soon as a result is
    /// applied, before it is durable.
    pub fn meta(&self) -> Arc<Meta> {
        Arc::clone(&self.meta.borrow())
    }

    /// Lets the writer finish what it was handed and waits for it to stop.
    pub async fn close(&self) {
        drop(
            self.commands
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

type Loaded = (
    Writer,
    Vec<PendingQuery>,
    mpsc::Sender<Command>,
    watch::Receiver<Arc<Exposition>>,
    watch::Receiver<Arc<Meta>>,
);

/// The writer thread's state.
struct Writer {
    dir: StateDir,
    config: StoreConfig,
    clock: Arc<dyn Clock>,
    metrics: SelfMetrics,
    ledger: Ledger,
    commands: mpsc::Receiver<Command>,
    exposition: watch::Sender<Arc<Exposition>>,
    meta: watch::Sender<Arc<Meta>>,
    /// Segments that failed to reach the disk, written again with the next command.
    unsaved: BTreeSet<SegmentKey>,
}

impl Writer {
    fn load(
        config: StoreConfig,
        clock: Arc<dyn Clock>,
        metrics: SelfMetrics,
    ) -> Result<Loaded, StoreError> {
        let now = clock.now();
        let dir = StateDir::open(&config.dir, now)?;
        let mut ledger = Ledger::new(config.dimensions.clone());
        let mut rewrite = BTreeSet::new();
        let legacy = dir.load_legacy(now)?;
        if let Some(Ok(legacy)) = &legacy {
            tracing::info!(
                path = %dir.path().join("state.json").display(),
                segments = legacy.segments.len(),
                "migrating state.json to one file per target and month"
            );
        }
        let migrated = matches!(legacy, Some(Ok(_)));
        match legacy {
            Some(Ok(legacy)) => {
                for (key, segment) in legacy.segments {
                    ledger.restore(key.clone(), segment, &legacy.dimensions);
                    rewrite.insert(key);
                }
            }
            Some(Err(aside)) => log_set_aside(&aside),
            None => {}
        }
        for found in dir.load_segments(now)? {
            match found {
                Ok((key, segment, dimensions)) => {
                    if ledger.restore(key.clone(), segment, &dimensions) {
                        rewrite.insert(key);
                    }
                }
                Err(aside) => log_set_aside(&aside),
            }
        }
        let pending = match dir.load_pending(now)? {
            Ok(pending) => pending,
            Err(aside) => {
                tracing::warn!(path = %aside.path.display(), moved_to = %aside.moved_to.display(), problem = %aside.problem, "pending table set aside; its queries will be sent again");
                Vec::new()
            }
        };
        let (commands_tx, commands) = mpsc::channel();
        let (exposition, exposition_rx) = watch::channel(Arc::new(Exposition::default()));
        let (meta, meta_rx) = watch::channel(Arc::new(Meta::new()));
        let mut writer = Writer {
            dir,
            config,
            clock,
            metrics,
            ledger,
            commands,
            exposition,
            meta,
            unsaved: rewrite,
        };
        writer.prune();
        let fetched_under = writer.dir.load_filters();
        writer.refilter(&fetched_under);
        writer.save_unsaved();
        if migrated && writer.unsaved.is_empty() {
            let done = writer.dir.finish_migration();
            writer.count_write(&done);
        }
        if !writer.ledger.segments.is_empty() {
            tracing::info!(path = %writer.dir.path().display(), segments = writer.ledger.segments.len(), pending = pending.len(), "state restored");
        }
        writer.publish_meta();
        let snapshot = Snapshot::build(&writer.ledger, &writer.view(), &writer.config.targets);
        writer.publish(snapshot);
        Ok((writer, pending, commands_tx, exposition_rx, meta_rx))
    }

    /// Serves commands until every handle is gone. A new UTC day rebuilds the snapshot (the day
    /// window and the forecast move) without waiting for a result.
    fn run(mut self) {
        loop {
            match self
                .commands
                .recv_timeout(until_next_day(OffsetDateTime::now_utc()))
            {
                Ok(Command::Apply {
                    key,
                    asked,
                    usage,
                    at,
                    reply,
                }) => self.apply(key, asked, *usage, at, reply),
                Ok(Command::SavePending { queries, reply }) => {
                    let saved = self.dir.save_pending(&queries);
                    self.count_write(&saved);
                    let _ = reply.send(());
                }
                Ok(Command::Reconfigure { config, reply }) => {
                    self.reconfigure(config);
                    let _ = reply.send(());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let view = self.view();
                    let prev = self.exposition.borrow().snapshot.clone();
                    if prev.view.as_ref() != Some(&view) {
                        self.prune();
                        self.publish_meta();
                        let snapshot = prev.update(
                            &self.ledger,
                            &BTreeSet::new(),
                            &view,
                            &self.config.targets,
                        );
                        self.publish(snapshot);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            self.save_unsaved();
        }
        self.save_unsaved();
    }

    /// The view of today.
    fn view(&self) -> View {
        let today = self.clock.today();
        View {
            today,
            day_window: DayRange {
                since: today - time::Duration::days(i64::from(self.config.days) - 1),
                until: today.next_day().unwrap_or(today),
            },
            max_series: self.config.max_series,
            budgets: self.config.budgets.clone(),
        }
    }

    fn apply(
        &mut self,
        key: SegmentKey,
        asked: DayRange,
        usage: Usage,
        at: OffsetDateTime,
        reply: oneshot::Sender<Applied>,
    ) {
        let report = self.ledger.apply(&key, asked, usage, at);
        // Counted before the figures are published, so a scrape that shows them shows these.
        self.metrics.restated(report.restatements.len());
        self.metrics
            .success_at(&key.target, at.unix_timestamp_nanos() as f64 / 1e9);
        if report.reached_outside {
            self.metrics.result_outside_period(&key.target);
        }
        self.prune();
        self.publish_meta();
        let view = self.view();
        let changed = BTreeSet::from([key.clone()]);
        let previous = self.exposition.borrow().snapshot.clone();
        // The snapshot is built on a second thread while this one writes the segment: the
        // answer waits only for the disk, the figures only for the build.
        let (durable, snapshot) = std::thread::scope(|scope| {
            let ledger = &self.ledger;
            let targets = &self.config.targets;
            let build = scope.spawn(move || previous.update(ledger, &changed, &view, targets));
            let durable = match ledger.segment(&key) {
                Some(segment) => self.dir.write_segment(&key, segment, &ledger.dimensions),
                None => Ok(()),
            };
            self.count_write(&durable);
            let durable = durable.is_ok();
            let _ = reply.send(Applied { report, durable });
            (durable, build.join())
        });
        if !durable {
            self.unsaved.insert(key);
        }
        match snapshot {
            Ok(snapshot) => self.publish(snapshot),
            Err(_) => tracing::error!("building the snapshot failed; the previous figures stay"),
        }
    }

    fn reconfigure(&mut self, config: StoreConfig) {
        let reshaped = self.ledger.reshape(&config.dimensions);
        if !reshaped.is_empty() {
            tracing::info!(
                segments = reshaped.len(),
                dimensions = ?config.dimensions,
                "dimensions changed: the stored months are re-keyed and will be asked for again"
            );
        }
        self.unsaved.extend(reshaped);
        let fetched_under = std::mem::take(&mut self.config.filters);
        self.config = StoreConfig {
            dir: self.config.dir.clone(),
            ..config
        };
        self.refilter(&fetched_under);
        self.prune();
        self.publish_meta();
        let snapshot = Snapshot::build(&self.ledger, &self.view(), &self.config.targets);
        self.publish(snapshot);
        self.save_unsaved();
    }

    /// Marks the months of every target whose filters are no longer those they were fetched
    /// under, then records the config's filters, once the marks are on disk.
    fn refilter(&mut self, fetched_under: &BTreeMap<String, String>) {
        let unfiltered = crate::infobip::filters::UsageFilter::default().identity();
        let changed: Vec<String> = self
            .config
            .filters
            .iter()
            .filter(|(target, now)| fetched_under.get(*target).unwrap_or(&unfiltered) != *now)
            .map(|(target, _)| target.clone())
            .collect();
        for target in &changed {
            let marked = self.ledger.mark_stale(target);
            if !marked.is_empty() {
                tracing::info!(target = %target, segments = marked.len(), "filters changed: the stored months will be asked for again");
            }
            self.unsaved.extend(marked);
        }
        self.save_unsaved();
        if self.unsaved.is_empty() && fetched_under != &self.config.filters {
            let saved = self.dir.save_filters(&self.config.filters);
            self.count_write(&saved);
        }
    }

    /// Drops the months out of retention, and their files.
    fn prune(&mut self) {
        for key in self
            .ledger
            .prune_before(retention_start(self.clock.today()))
        {
            self.unsaved.remove(&key);
            let removed = self.dir.remove_segment(&key);
            self.count_write(&removed);
        }
    }

    fn save_unsaved(&mut self) {
        for key in std::mem::take(&mut self.unsaved) {
            let Some(segment) = self.ledger.segment(&key) else {
                continue;
            };
            let saved = self
                .dir
                .write_segment(&key, segment, &self.ledger.dimensions);
            self.count_write(&saved);
            if saved.is_err() {
                self.unsaved.insert(key);
            }
        }
    }

    fn publish_meta(&self) {
        let meta = self
            .ledger
            .segments
            .iter()
            .map(|(key, s)| {
                let meta = SegmentMeta {
                    wants: s.wants(),
                    reshaped: s.reshaped,
                    last_result_at: s.last_result_at,
                };
                (key.clone(), meta)
            })
            .collect();
        self.meta.send_replace(Arc::new(meta));
    }

    /// Encodes what is new in `snapshot` and publishes it.
    fn publish(&self, snapshot: Snapshot) {
        let previous = self.exposition.borrow().clone();
        let rolled_up: u64 = snapshot
            .segments
            .iter()
            .filter(|s| !previous.snapshot.segments.iter().any(|p| Arc::ptr_eq(p, s)))
            .map(|s| s.rolled_up)
            .sum();
        self.metrics.series_rolled_up(rolled_up);
        let exposition = Exposition::new(snapshot, &previous);
        self.exposition.send_replace(Arc::new(exposition));
    }

    fn count_write(&self, written: &Result<(), StoreError>) {
        match written {
            Ok(()) => self.metrics.state_written(),
            Err(err) => {
                tracing::error!("{err}");
                self.metrics.state_write_failed(err.reason());
            }
        }
    }
}

fn log_set_aside(aside: &SetAside) {
    tracing::error!(
        path = %aside.path.display(),
        moved_to = %aside.moved_to.display(),
        "a state file is unreadable ({}); it was set aside and its month will be fetched again",
        aside.problem
    );
}

/// Time until a second past the next UTC midnight.
fn until_next_day(now: OffsetDateTime) -> Duration {
    let midnight = now
        .date()
        .next_day()
        .map_or(now, |d| d.midnight().assume_utc());
    (midnight - now).unsigned_abs() + Duration::from_secs(1)
}

#[cfg(test)]
mod tests;
