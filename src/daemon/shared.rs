//! What the query loops, the callback receiver and the scrape handler share. It sits below them
//! and knows none of them: the tasks are handed an `Arc<Shared>`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::{Notify, watch};

use crate::billing::calendar::Clock;
use crate::config::MetricsConfig;
use crate::daemon::pending::PendingTable;
use crate::daemon::server::security::Security;
use crate::daemon::store::Store;
use crate::export::selfmetrics::SelfMetrics;
use crate::infobip::model::BillingUsageAggregate;

#[derive(Debug)]
pub struct Shared {
    pub clock: Arc<dyn Clock>,
    pub interval: Duration,
    pub callback_timeout: Duration,
    /// First wait before a failed query is sent again; it doubles up to `interval`.
    pub retry_backoff: Duration,
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
    /// The ledger, its snapshot and the state files, behind their writer thread.
    pub store: Store,
    pub(super) pending: Mutex<PendingTable>,
    /// Bumped whenever a query settles, so the query loops look for failures to retry.
    pub settled: watch::Sender<u64>,
    /// Signalled when a `requestId` is recorded, for callbacks that beat the `201` (A27).
    pub request_id_recorded: Notify,
    /// TLS, basic auth and headers of the two listeners; `reload()` re-reads their files.
    pub web_security: Arc<Security>,
    pub callback_security: Arc<Security>,
}

impl Shared {
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
