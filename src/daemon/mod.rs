//! The daemon wired together: the store, one query loop per target, the two listeners.

pub mod callback;
pub mod pending;
pub mod reload;
pub mod scheduler;
pub mod server;
pub mod shared;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::Clock;
use crate::config::{ApiKey, Config};
use crate::export::selfmetrics::SelfMetrics;
use pending::PendingTable;
use reload::Supervisor;
pub use reload::{ConfigSource, ReloadError};
use shared::{Settings, Shared};
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
    #[error("cannot read a listener's address: {0}")]
    Address(std::io::Error),
    #[error(transparent)]
    State(#[from] StoreError),
    /// A target's HTTP client or the OTLP pusher could not be set up.
    #[error(transparent)]
    Setup(#[from] ReloadError),
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
/// and loaded before anything is sent: a second instance on it stops here. The OpenTelemetry
/// variables come from the process environment; without a [`ConfigSource`], a reload is refused.
pub async fn start(
    config: &Config,
    keys: Vec<ApiKey>,
    web: TcpListener,
    callback: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    start_from(
        None,
        config,
        keys,
        (web, callback),
        clock,
        shutdown,
        process_env(),
    )
    .await
}

/// Where the OpenTelemetry variables are read from: the process environment, or one a test
/// injects.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

fn process_env() -> Env {
    Arc::new(|name: &str| std::env::var(name).ok())
}

/// Like [`start`], with the environment the OpenTelemetry variables are read from injected.
pub async fn start_with_env(
    config: &Config,
    keys: Vec<ApiKey>,
    (web, callback): (TcpListener, TcpListener),
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    env: Env,
) -> Result<Running, StartError> {
    start_from(None, config, keys, (web, callback), clock, shutdown, env).await
}

/// Like [`start`], with the file `config` was read from, for reloads.
pub async fn start_reloadable(
    source: ConfigSource,
    config: &Config,
    keys: Vec<ApiKey>,
    listeners: (TcpListener, TcpListener),
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    start_from(
        Some(source),
        config,
        keys,
        listeners,
        clock,
        shutdown,
        process_env(),
    )
    .await
}

async fn start_from(
    source: Option<ConfigSource>,
    config: &Config,
    keys: Vec<ApiKey>,
    (web, callback): (TcpListener, TcpListener),
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    env: Env,
) -> Result<Running, StartError> {
    let target_names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let metrics = SelfMetrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry, &target_names);
    // Before the state directory is locked: a wrong certificate or web config file stops here.
    let web_security = Arc::new(match &config.web.config_file {
        Some(path) => server::Security::web_config(path.clone())?,
        None => server::Security::plain(),
    });
    let callback_security = Arc::new(match &config.callback.tls {
        Some(files) => server::Security::certificate(files.clone())?,
        None => server::Security::plain(),
    });
    let opened = Store::open(StoreConfig::of(config), Arc::clone(&clock), metrics.clone()).await?;
    // How old the figures are survives a restart: the stale alert can fire with Infobip down.
    for (key, segment) in opened.store.meta().iter() {
        if let Some(at) = segment.last_result_at {
            metrics.success_at(&key.target, at.unix_timestamp_nanos() as f64 / 1e9);
        }
    }
    let (reloads, reload_requests) = mpsc::channel(4);
    let shared = Arc::new(Shared::new(
        clock,
        Settings::of(config),
        (metrics, registry),
        opened.store,
        PendingTable::restore(opened.pending),
        reloads,
        (Arc::clone(&web_security), Arc::clone(&callback_security)),
    ));
    let (web_addr, callback_addr) = (
        web.local_addr().map_err(StartError::Address)?,
        callback.local_addr().map_err(StartError::Address)?,
    );
    let mut tasks = JoinSet::new();
    let supervisor = Supervisor::start(
        Arc::clone(&shared),
        config,
        keys,
        (source, env),
        shutdown.clone(),
    )?;
    tasks.spawn(supervisor.run(reload_requests));
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
