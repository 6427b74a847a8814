//! The command line: `run` (the daemon), `demo`, `simulator`, `check-config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::calendar::SystemClock;
use crate::config::{ApiKey, Config};
use crate::simulator::SimulatorArgs;
use crate::{demo, exporter, simulator};

/// Exports Infobip Billing Usage API costs as Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "infobip-billing-exporter", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter daemon.
    Run {
        /// The YAML configuration file.
        #[arg(long, env = "INFOBIP_EXPORTER_CONFIG", value_name = "FILE")]
        config: PathBuf,
    },
    /// Zero-config demo: the simulator and the exporter on loopback.
    Demo {
        /// Where to serve /metrics.
        #[arg(long, default_value = "127.0.0.1:9477", value_name = "ADDR")]
        listen: SocketAddr,
    },
    /// Serve a simulated Infobip Billing Usage API.
    Simulator(SimulatorArgs),
    /// Validate a configuration file: exit 0 when valid, else print every problem and exit 1.
    CheckConfig {
        /// The YAML configuration file.
        #[arg(long, env = "INFOBIP_EXPORTER_CONFIG", value_name = "FILE")]
        config: PathBuf,
    },
}

/// Runs a parsed command line until it finishes or `shutdown` fires.
pub async fn dispatch(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => run(&config, shutdown).await.map(|()| ExitCode::SUCCESS),
        Command::Demo { listen } => demo::run(listen, shutdown)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Simulator(args) => simulator::run_simulator(args, shutdown)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::CheckConfig { config } => Ok(check_config(&config)),
    }
}

async fn run(path: &Path, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Config::load(path).map_err(|e| anyhow::anyhow!("{}", e.problems().join("\n")))?;
    let keys = config
        .targets
        .iter()
        .map(|t| {
            t.api_key.resolve().with_context(|| {
                format!("target {}: API key from {}", t.name, t.api_key.describe())
            })
        })
        .collect::<anyhow::Result<Vec<ApiKey>>>()?;
    let web = TcpListener::bind(config.web.listen)
        .await
        .with_context(|| format!("cannot listen on web.listen {}", config.web.listen))?;
    let callback = TcpListener::bind(config.callback.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on callback.listen {}",
                config.callback.listen
            )
        })?;
    let running = exporter::start(
        &config,
        keys,
        web,
        callback,
        Arc::new(SystemClock),
        shutdown,
    )?;
    running.join().await;
    Ok(())
}

fn check_config(path: &Path) -> ExitCode {
    let problems: Vec<String> = match Config::load(path) {
        Ok(config) => config
            .missing_secrets()
            .iter()
            .map(ToString::to_string)
            .collect(),
        Err(err) => err.problems(),
    };
    if problems.is_empty() {
        println!("{}: valid", path.display());
        return ExitCode::SUCCESS;
    }
    eprintln!("{}: {} problem(s)", path.display(), problems.len());
    for problem in problems {
        eprintln!("  {problem}");
    }
    ExitCode::FAILURE
}
