//! The daemon wired together: shared state, one query loop per target, the two listeners.

pub mod callback;
pub mod scheduler;
pub mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::{Clock, DayRange, retention_start};
use crate::billing::ledger::{ApplyReport, Ledger, Usage};
use crate::billing::snapshot::{Snapshot, View};
use crate::billing::state::{Loaded, StateError, StateFile, Stored};
use crate::config::{ApiKey, Config, MetricsConfig};
use crate::export::selfmetrics::SelfMetrics;
use crate::infobip::client::Client;
use crate::infobip::model::BillingUsageAggregate;
use scheduler::PendingTable;

/// State shared by the query loops, the callback receiver and the scrape handler.
#[derive(Debug)]
pub struct Shared {
    pub clock: Arc<dyn Clock>,
    pub interval: Duration,
    pub callback_timeout: Duration,
    /// First wait before a failed query is sent again; it doubles up to `interval`.
    pub retry_backoff: Duration,
    pub days: u32,
    pub public_url: String,
    /// Largest callback body accepted.
    pub callback_max_body: usize,
    /// Source networks allowed to post callbacks; empty allows any.
    pub callback_cidrs: Vec<ipnet::IpNet>,
    /// Dimensions every query asks for.
    pub aggregate_by: Vec<BillingUsageAggregate>,
    /// Optional dimensions, series cap and budgets: what the data metrics look like.
    pub metric_model: MetricsConfig,
    pub metrics: SelfMetrics,
    pub registry: Registry,
    pending: Mutex<PendingTable>,
    ledger: Mutex<Ledger>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    /// Bumped whenever a query settles, so the query loops look for failures to retry.
    pub settled: watch::Sender<u64>,
    /// Signalled when a `requestId` is recorded, for callbacks that beat the `201` (A27).
    pub request_id_recorded: Notify,
    state_file: StateFile,
    state_lock: Mutex<()>,
    /// Whether the ledger changed since `state.json` was last written.
    ledger_dirty: AtomicBool,
}

impl Shared {
    pub fn lock_pending(&self) -> MutexGuard<'_, PendingTable> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn lock_ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.borrow())
    }

    /// Follows every snapshot published from now on.
    pub fn subscribe_snapshot(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    /// Applies a result to the ledger, publishes the new snapshot and saves the state.
    pub fn apply(&self, target: &str, usage: Usage) -> ApplyReport {
        let report = {
            let mut ledger = self.lock_ledger();
            let report = ledger.apply(target, usage);
            ledger.prune_before(retention_start(self.clock.today()));
            self.ledger_dirty.store(true, Ordering::SeqCst);
            self.publish(&ledger);
            report
        };
        self.persist();
        report
    }

    fn publish(&self, ledger: &Ledger) {
        let today = self.clock.today();
        let window = DayRange {
            since: today - time::Duration::days(i64::from(self.days) - 1),
            until: today.next_day().unwrap_or(today),
        };
        let snapshot = Snapshot::build(
            ledger,
            View {
                today,
                day_window: window,
                max_series: self.metric_model.max_series,
                budgets: &self.metric_model.budgets,
            },
        );
        self.metrics.series_rolled_up(snapshot.rolled_up);
        self.snapshot.send_replace(snapshot);
    }

    /// Saves the ledger, if it changed since it was last saved, and the pending table. A
    /// failure (full disk, read-only `state_dir`) is logged and counted; the exporter keeps
    /// serving from memory and tries again next time. Writes are serialised and block their
    /// worker for the fsync.
    pub fn persist(&self) {
        let _writing = self
            .state_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.ledger_dirty.swap(false, Ordering::SeqCst) {
            // Cheap: days are shared, not copied.
            let ledger = self.lock_ledger().clone();
            let saved = self.state_file.save_ledger(&ledger);
            if saved.is_err() {
                self.ledger_dirty.store(true, Ordering::SeqCst);
            }
            self.count_write(saved);
        }
        self.save_pending();
    }

    /// Saves the pending table alone: after a query was sent or settled without a result.
    pub fn persist_pending(&self) {
        let _writing = self
            .state_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.save_pending();
    }

    fn save_pending(&self) {
        let pending = self.lock_pending().queries().to_vec();
        self.count_write(self.state_file.save_pending(&pending));
    }

    fn count_write(&self, written: Result<(), StateError>) {
        match written {
            Ok(()) => self.metrics.state_written(),
            Err(err) => {
                tracing::error!("{err}");
                self.metrics.state_write_failed(err.reason());
            }
        }
    }

    pub fn query_settled(&self) {
        self.settled.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A running exporter: where it listens and how to wait for it.
#[derive(Debug)]
pub struct Running {
    pub web_addr: std::net::SocketAddr,
    pub callback_addr: std::net::SocketAddr,
    pub shared: Arc<Shared>,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

/// How long in-flight work may take once shutdown begins; within the 10 s a supervisor
/// usually grants between SIGTERM and SIGKILL.
const DRAIN: Duration = Duration::from_secs(8);

impl Running {
    /// Waits until every task has stopped after the shutdown token fired, giving in-flight
    /// callbacks up to [`DRAIN`] to finish, then saves the state.
    pub async fn join(mut self) {
        let drain = async {
            self.shutdown.cancelled().await;
            tokio::time::sleep(DRAIN).await;
        };
        tokio::pin!(drain);
        let mut drained = false;
        loop {
            tokio::select! {
                next = self.tasks.join_next() => match next {
                    None => break,
                    Some(Err(err)) if !err.is_cancelled() => tracing::error!("exporter task failed: {err}"),
                    Some(_) => {}
                },
                () = &mut drain, if !drained => {
                    tracing::warn!("in-flight requests did not finish within {}; stopping them", humantime::format_duration(DRAIN));
                    self.tasks.abort_all();
                    drained = true;
                }
            }
        }
        self.shared.persist();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("target {target}: cannot build the HTTP client: {source}")]
    Client {
        target: String,
        source: reqwest::Error,
    },
    #[error("cannot read a listener's address: {0}")]
    Address(#[from] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Otlp(#[from] crate::export::otlp::OtlpError),
}

/// Starts the exporter on listeners the caller bound (so tests and the demo can use port 0).
/// `keys` holds one resolved key per configured target, in order.
pub fn start(
    config: &Config,
    keys: Vec<ApiKey>,
    web: TcpListener,
    callback: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let target_names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let state_file = StateFile::open(&config.state_dir)?;
    let stored = match state_file.load(clock.now())? {
        Loaded::Fresh => Stored::default(),
        Loaded::Restored(stored) => {
            tracing::info!(path = %state_file.path().display(), pending = stored.pending.len(), "state restored");
            stored
        }
        Loaded::SetAside { problem, moved_to } => {
            tracing::error!(
                path = %state_file.path().display(),
                moved_to = %moved_to.display(),
                "the state file is unreadable ({problem}); it was set aside and the exporter starts fresh"
            );
            Stored::default()
        }
    };
    let metrics = SelfMetrics::default();
    let (snapshot_tx, _) = watch::channel(Arc::new(Snapshot::default()));
    let mut registry = Registry::default();
    metrics.register(&mut registry, &target_names);
    let shared = Arc::new(Shared {
        clock,
        interval: config.interval,
        callback_timeout: config.callback_timeout,
        retry_backoff: config.retry_backoff,
        days: config.days,
        public_url: config.callback.public_url.clone(),
        callback_max_body: usize::try_from(config.callback.max_body).unwrap_or(usize::MAX),
        callback_cidrs: config.callback.allowed_cidrs.clone(),
        aggregate_by: scheduler::AGGREGATE_BY
            .iter()
            .chain(&config.metrics.dimensions)
            .copied()
            .collect(),
        metric_model: config.metrics.clone(),
        metrics,
        registry,
        pending: Mutex::new(PendingTable::restore(stored.pending)),
        ledger: Mutex::new(Ledger::default()),
        snapshot: snapshot_tx,
        settled: watch::channel(0).0,
        request_id_recorded: Notify::new(),
        state_file,
        state_lock: Mutex::new(()),
        ledger_dirty: AtomicBool::new(false),
    });
    {
        // Serve the stored figures at once, before any query is answered.
        let mut ledger = shared.lock_ledger();
        *ledger = stored.ledger;
        let dimensions: Vec<String> = config
            .metrics
            .dimensions
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect();
        let reshaped = ledger.reshape(&dimensions);
        let pruned = ledger.prune_before(retention_start(shared.clock.today()));
        shared
            .ledger_dirty
            .store(reshaped || pruned, Ordering::SeqCst);
        shared.publish(&ledger);
    }
    let (web_addr, callback_addr) = (web.local_addr()?, callback.local_addr()?);
    let mut tasks = JoinSet::new();
    if let Some(otlp) = &config.metrics.otlp {
        let pusher = crate::export::otlp::start(
            otlp,
            shared.subscribe_snapshot(),
            config.metrics.max_series,
        )?;
        tracing::info!(endpoint = %otlp.endpoint, "pushing metrics over OTLP");
        tasks.spawn(pusher.run(shutdown.clone()));
    }
    for (target, key) in config.targets.iter().zip(keys) {
        let client = Client::new(&target.base_url, &key).map_err(|source| StartError::Client {
            target: target.name.clone(),
            source,
        })?;
        tasks.spawn(scheduler::run_target(
            Arc::clone(&shared),
            target.name.clone(),
            client,
            shutdown.clone(),
        ));
    }
    tasks.spawn(server::serve(
        web,
        server::web_router(Arc::clone(&shared)),
        shutdown.clone(),
        "web",
    ));
    tasks.spawn(server::serve(
        callback,
        server::callback_router(Arc::clone(&shared)),
        shutdown.clone(),
        "callback",
    ));
    tracing::info!(%web_addr, %callback_addr, targets = target_names.len(), "exporter started");
    Ok(Running {
        web_addr,
        callback_addr,
        shared,
        tasks,
        shutdown,
    })
}
