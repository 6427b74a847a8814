//! What the query loops, the callback receiver and the scrape handler share. It sits below them
//! and knows none of them: the tasks are handed an `Arc<Shared>`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::billing::calendar::Clock;
use crate::config::{Config, MetricsConfig};
use crate::daemon::pending::PendingTable;
use crate::daemon::server::security::Security;
use crate::daemon::store::Store;
use crate::export::selfmetrics::SelfMetrics;
use crate::infobip::model::BillingUsageAggregate;

/// Dimensions every query asks for, before configured extras: the labels of the cost metrics.
pub const AGGREGATE_BY: [BillingUsageAggregate; 4] = [
    BillingUsageAggregate::DAY,
    BillingUsageAggregate::ACCOUNT_NAME,
    BillingUsageAggregate::ACCOUNT_KEY,
    BillingUsageAggregate::CATEGORY_CODE,
];

/// What a config reload may change while the daemon runs: read afresh by each query and each
/// callback, so a reload applies from the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub interval: Duration,
    pub callback_timeout: Duration,
    /// First wait before a failed query is sent again; it doubles up to `interval`.
    pub retry_backoff: Duration,
    pub public_url: String,
    /// The path of `public_url` without its trailing `/`, e.g. `/billing`; empty for none.
    pub callback_prefix: String,
    /// Largest callback body accepted.
    pub callback_max_body: usize,
    /// Source networks allowed to post callbacks; empty allows any.
    pub callback_cidrs: Vec<ipnet::IpNet>,
    /// Dimensions every query asks for.
    pub aggregate_by: Vec<BillingUsageAggregate>,
    /// Optional dimensions, series cap and budgets: what the data metrics look like.
    pub metric_model: MetricsConfig,
}

impl Settings {
    pub fn of(config: &Config) -> Self {
        Settings {
            interval: config.interval,
            callback_timeout: config.callback_timeout,
            retry_backoff: config.retry_backoff,
            public_url: config.callback.public_url.clone(),
            callback_prefix: reqwest::Url::parse(&config.callback.public_url)
                .map(|url| url.path().trim_end_matches('/').to_owned())
                .unwrap_or_default(),
            callback_max_body: usize::try_from(config.callback.max_body).unwrap_or(usize::MAX),
            callback_cidrs: config.callback.allowed_cidrs.clone(),
            aggregate_by: AGGREGATE_BY
                .iter()
                .chain(&config.metrics.dimensions)
                .copied()
                .collect(),
            metric_model: config.metrics.clone(),
        }
    }

    /// Whether queries sent under `self` and under `other` differ: when they do, the query
    /// loops start over, as after a restart.
    pub fn queries_differ(&self, other: &Settings) -> bool {
        (
            self.interval,
            self.callback_timeout,
            self.retry_backoff,
            &self.public_url,
            &self.aggregate_by,
        ) != (
            other.interval,
            other.callback_timeout,
            other.retry_backoff,
            &other.public_url,
            &other.aggregate_by,
        )
    }
}

#[derive(Debug)]
pub struct Shared {
    pub clock: Arc<dyn Clock>,
    settings: watch::Sender<Arc<Settings>>,
    pub metrics: SelfMetrics,
    pub registry: Registry,
    /// The ledger, its snapshot and the state files, behind their writer thread.
    pub store: Store,
    pub(super) pending: Mutex<PendingTable>,
    /// Bumped whenever a query settles, so the query loops look for failures to retry.
    pub settled: watch::Sender<u64>,
    /// Signalled when a `requestId` is recorded, for callbacks that beat the `201` (A27).
    pub request_id_recorded: Notify,
    /// Where `POST /-/reload` asks for a reload.
    pub(super) reloads: mpsc::Sender<ReloadRequest>,
    /// TLS, basic auth and headers of the two listeners; `reload()` re-reads their files.
    pub web_security: Arc<Security>,
    pub callback_security: Arc<Security>,
}

/// A reload asked for over HTTP, answered with what came of it.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

impl Shared {
    pub(super) fn new(
        clock: Arc<dyn Clock>,
        settings: Settings,
        (metrics, registry): (SelfMetrics, Registry),
        store: Store,
        pending: PendingTable,
        reloads: mpsc::Sender<ReloadRequest>,
        (web_security, callback_security): (Arc<Security>, Arc<Security>),
    ) -> Self {
        Shared {
            clock,
            settings: watch::channel(Arc::new(settings)).0,
            metrics,
            registry,
            store,
            pending: Mutex::new(pending),
            settled: watch::channel(0).0,
            request_id_recorded: Notify::new(),
            reloads,
            web_security,
            callback_security,
        }
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.borrow())
    }

    pub(super) fn replace_settings(&self, settings: Settings) {
        self.settings.send_replace(Arc::new(settings));
    }

    /// Asks the daemon to re-read its config file, and waits for the outcome.
    pub async fn reload(&self) -> Result<(), String> {
        let (reply, outcome) = oneshot::channel();
        self.reloads
            .send(reply)
            .await
            .map_err(|_| "the exporter is shutting down".to_owned())?;
        outcome
            .await
            .unwrap_or_else(|_| Err("the exporter is shutting down".to_owned()))
    }

    pub fn lock_pending(&self) -> MutexGuard<'_, PendingTable> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Saves the pending table and waits until it is durable. The table is handed to the
    /// writer under its lock, so writes land in the order the table changed.
    pub async fn persist_pending(&self) {
        let written = {
            let pending = self.lock_pending();
            self.store.save_pending(pending.queries().to_vec())
        };
        written.await;
    }

    pub fn query_settled(&self) {
        self.settled.send_modify(|n| *n = n.wrapping_add(1));
    }
}
