//! The daemon wired together: the store, one query loop per target, the two listeners.

pub mod callback;
pub mod pending;
pub mod scheduler;
pub mod server;
pub mod shared;
pub mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::Clock;
use crate::config::{ApiKey, Config};
use crate::export::selfmetrics::SelfMetrics;
use crate::infobip::client::Client;
use pending::PendingTable;
use shared::Shared;
use store::{Store, StoreConfig, StoreError};

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
        self.shared.persist_pending().await;
        self.shared.store.close().await;
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
    State(#[from] StoreError),
    #[error(transparent)]
    Otlp(#[from] crate::export::otlp::OtlpError),
    #[error(transparent)]
    Listener(#[from] server::SecurityError),
}

/// Raises the soft limit on open files to the hard one, as Go programs (hence the official
/// exporters) do at start: each connection takes a descriptor, and the listeners' bounds are
/// meant to be what limits them.
pub fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(err) => tracing::debug!("cannot raise the open file limit: {err}"),
    }
}

/// Starts the exporter on listeners the caller bound (so tests and the demo can use port 0).
/// `keys` holds one resolved key per configured target, in order. The state directory is locked
/// and loaded before anything is sent: a second instance on it stops here.
pub async fn start(
    config: &Config,
    keys: Vec<ApiKey>,
    web: TcpListener,
    callback: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    let target_names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let metrics = SelfMetrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry, &target_names);
    let store_config = StoreConfig {
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
        targets: target_names.clone(),
    };
    // Before the state directory is locked: a wrong certificate or web config file stops here.
    let web_security = Arc::new(match &config.web.config_file {
        Some(path) => server::Security::web_config(path.clone())?,
        None => server::Security::plain(),
    });
    let callback_security = Arc::new(match &config.callback.tls {
        Some(files) => server::Security::certificate(files.clone())?,
        None => server::Security::plain(),
    });
    let opened = Store::open(store_config, Arc::clone(&clock), metrics.clone()).await?;
    // How old the figures are survives a restart: the stale alert can fire with Infobip down.
    for (key, segment) in opened.store.meta().iter() {
        if let Some(at) = segment.last_result_at {
            metrics.success_at(&key.target, at.unix_timestamp_nanos() as f64 / 1e9);
        }
    }
    let shared = Arc::new(Shared {
        clock,
        interval: config.interval,
        callback_timeout: config.callback_timeout,
        retry_backoff: config.retry_backoff,
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
        store: opened.store,
        pending: Mutex::new(PendingTable::restore(opened.pending)),
        settled: watch::channel(0).0,
        request_id_recorded: Notify::new(),
        web_security: Arc::clone(&web_security),
        callback_security: Arc::clone(&callback_security),
    });
    let (web_addr, callback_addr) = (web.local_addr()?, callback.local_addr()?);
    let mut tasks = JoinSet::new();
    if let Some(otlp) = &config.metrics.otlp {
        let pusher =
            crate::export::otlp::start(otlp, shared.store.subscribe(), config.metrics.max_series)?;
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
    let (web_tls, callback_tls) = (web_security.is_tls(), callback_security.is_tls());
    tasks.spawn(server::serve(
        web,
        server::Listening {
            listener: server::Listener::Web,
            router: server::web_router(Arc::clone(&shared)),
            limits: config.web.limits,
            security: web_security,
            metrics: shared.metrics.clone(),
        },
        shutdown.clone(),
    ));
    tasks.spawn(server::serve(
        callback,
        server::Listening {
            listener: server::Listener::Callback,
            router: server::callback_router(Arc::clone(&shared)),
            limits: config.callback.limits,
            security: callback_security,
            metrics: shared.metrics.clone(),
        },
        shutdown.clone(),
    ));
    tracing::info!(%web_addr, web_tls, %callback_addr, callback_tls, targets = target_names.len(), "exporter started");
    Ok(Running {
        web_addr,
        callback_addr,
        shared,
        tasks,
        shutdown,
    })
}
