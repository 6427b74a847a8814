//! The zero-config first run: the simulator and the exporter on loopback, wired together.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::{Clock, SystemClock};
use crate::config::{ApiKey, ApiKeySource, CallbackConfig, Config, TargetConfig, WebConfig};
use crate::daemon::{self, Running};
use crate::infobip::filters::UsageFilter;
use crate::simulator::{Simulator, SimulatorOptions};

/// The demo re-queries every minute so provisional figures visibly move.
const DEMO_INTERVAL: Duration = Duration::from_secs(60);

/// A started demo: the exporter and the simulator it queries.
#[derive(Debug)]
pub struct Demo {
    pub exporter: Running,
    pub simulator: Simulator,
    pub simulator_addr: SocketAddr,
    simulator_task: JoinHandle<std::io::Result<()>>,
}

impl Demo {
    /// Waits for both to stop after the shutdown token fired.
    pub async fn join(self) -> anyhow::Result<()> {
        self.exporter.join().await;
        self.simulator_task.await??;
        Ok(())
    }
}

/// Starts the simulator (default options, key `demo-key`) and an exporter querying it, both on
/// `clock`, with metrics on `listen` and state in `state_dir`.
pub async fn start(
    listen: SocketAddr,
    clock: Arc<dyn Clock>,
    state_dir: PathBuf,
    shutdown: CancellationToken,
) -> anyhow::Result<Demo> {
    start_with(
        listen,
        clock,
        state_dir,
        shutdown,
        SimulatorOptions::default(),
        |_| {},
    )
    .await
}

/// Like [`start`], with the simulator's `options` and a last say on the exporter's config (a
/// test's budgets, dimensions or OTLP endpoint).
pub async fn start_with(
    listen: SocketAddr,
    clock: Arc<dyn Clock>,
    state_dir: PathBuf,
    shutdown: CancellationToken,
    options: SimulatorOptions,
    configure: impl FnOnce(&mut Config),
) -> anyhow::Result<Demo> {
    let api_key = options.api_key.clone();
    let simulator = Simulator::new(options, clock.clone());
    let sim_listener = TcpListener::bind("127.0.0.1:0").await?;
    let simulator_addr = sim_listener.local_addr()?;
    let simulator_task = tokio::spawn(simulator.clone().serve(sim_listener, shutdown.clone()));

    let web = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen}; pass --listen ADDR to pick another")
    })?;
    let callback = TcpListener::bind("127.0.0.1:0").await?;
    let callback_addr = callback.local_addr()?;
    let mut config = Config {
        targets: vec![TargetConfig {
            name: "demo".into(),
            base_url: format!("http://{simulator_addr}"),
            // Never read: the demo hands the simulator's key over directly.
            api_key: ApiKeySource::Env("INFOBIP_API_KEY".into()),
            filter: UsageFilter::default(),
        }],
        interval: DEMO_INTERVAL,
        callback_timeout: crate::config::DEFAULT_CALLBACK_TIMEOUT,
        retry_backoff: crate::config::DEFAULT_RETRY_BACKOFF,
        callback: CallbackConfig {
            listen: callback_addr,
            public_url: format!("http://{callback_addr}"),
            max_body: crate::config::DEFAULT_MAX_BODY,
            allowed_cidrs: Vec::new(),
            tls: None,
            limits: crate::config::ListenerLimits::CALLBACK,
        },
        web: WebConfig::at(listen),
        state_dir,
        days: 35,
        metrics: crate::config::MetricsConfig::default(),
    };
    configure(&mut config);
    let exporter = daemon::start(
        &config,
        vec![ApiKey::new(api_key)],
        web,
        callback,
        clock,
        shutdown,
    )
    .await?;
    Ok(Demo {
        exporter,
        simulator,
        simulator_addr,
        simulator_task,
    })
}

/// `infobip-billing-exporter demo`: prints where everything is and runs until Ctrl-C.
pub async fn run(listen: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    // A fresh state per run: the simulator starts fresh too, and figures must not mix.
    let state_dir = std::env::temp_dir().join(format!(
        "infobip-billing-exporter-demo-{}",
        std::process::id()
    ));
    let demo = start(listen, Arc::new(SystemClock), state_dir.clone(), shutdown).await?;
    let web = demo.exporter.web_addr;
    let callback = demo.exporter.callback_addr;
    let mut out = std::io::stdout().lock();
    writeln!(out, "infobip-billing-exporter demo")?;
    writeln!(out, "  metrics:   http://{web}/metrics")?;
    writeln!(
        out,
        "  health:    http://{web}/-/healthy  http://{web}/-/ready"
    )?;
    writeln!(
        out,
        "  simulator: http://{}/billing/1/usage/query (key: demo-key)",
        demo.simulator_addr
    )?;
    writeln!(
        out,
        "  callbacks: http://{callback}/callback/<target>/<token>"
    )?;
    writeln!(out, "Cost series appear within seconds. Ctrl-C stops.")?;
    out.flush()?;
    drop(out);
    let result = demo.join().await;
    if let Err(err) = std::fs::remove_dir_all(&state_dir) {
        tracing::warn!(
            "cannot remove the demo's state dir {}: {err}",
            state_dir.display()
        );
    }
    result
}
