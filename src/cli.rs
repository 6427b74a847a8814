//! The command line: `run` (the daemon), `demo`, `simulator`, `check-config`, the one-shot
//! `query` and `backfill`, and `completions`/`man` generated from these definitions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::billing::calendar::{Clock, SystemClock};
use crate::commands::backfill::BackfillArgs;
use crate::commands::query::QueryArgs;
use crate::commands::{backfill, demo, oneshot, query};
use crate::config::{ApiKey, Config, resolve_otlp};
use crate::logging::LogArgs;
use crate::simulator::SimulatorArgs;
use crate::{daemon, simulator};

/// Exports Infobip Billing Usage API costs as Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "infobip-billing-exporter", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter daemon.
    Run {
        /// The YAML configuration file.
        #[arg(long, env = "INFOBIP_EXPORTER_CONFIG", value_name = "FILE")]
        config: PathBuf,
        /// Where to serve /metrics; overrides web.listen.
        #[arg(long = "web.listen-address", value_name = "ADDR")]
        web_listen_address: Option<SocketAddr>,
        /// The Prometheus web configuration file (TLS, client certificates, basic auth,
        /// headers), as every official exporter reads it; overrides web.config_file.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
    },
    /// Zero-config demo: the simulator and the exporter on loopback.
    Demo {
        /// Where to serve /metrics.
        #[arg(long, default_value = "127.0.0.1:9477", value_name = "ADDR")]
        listen: SocketAddr,
    },
    /// Serve a simulated Infobip Billing Usage API.
    Simulator(SimulatorArgs),
    /// Validate a configuration file and reach every target (DNS, TLS, API key): exit 0 when
    /// all is well, else print every problem and exit 1.
    CheckConfig {
        /// The YAML configuration file.
        #[arg(long, env = "INFOBIP_EXPORTER_CONFIG", value_name = "FILE")]
        config: PathBuf,
        /// Only check the file; do not contact the targets.
        #[arg(long)]
        offline: bool,
    },
    /// Run one Billing Usage query and print the rows with per-currency totals, or write them
    /// as CSV, JSON, FOCUS or XLSX.
    Query(Box<QueryArgs>),
    /// Write every complete day in retention as OpenMetrics for
    /// `promtool tsdb create-blocks-from openmetrics`, or as FOCUS or XLSX.
    Backfill(Box<BackfillArgs>),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per subcommand into a directory.
    Man {
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// Runs a parsed command line until it finishes or `shutdown` fires.
pub async fn dispatch(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            config,
            web_listen_address,
            web_config_file,
        } => run(&config, (web_listen_address, web_config_file), shutdown)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Demo { listen } => demo::run(listen, shutdown)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Simulator(args) => simulator::run_simulator(args, shutdown)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::CheckConfig { config, offline } => Ok(check_config(&config, offline).await),
        Command::Query(args) => {
            let output = query::run(*args, &SystemClock, shutdown).await?;
            eprint!("{}", output.stderr);
            print_out(&output.stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill(args) => {
            let out = args.out.clone();
            let summary = backfill::run(*args, &SystemClock, shutdown).await?;
            let last = summary
                .days
                .until
                .previous_day()
                .unwrap_or(summary.days.until);
            eprintln!(
                "wrote {} {} for {} to {} to {}",
                summary.written,
                summary.unit,
                summary.days.since,
                last,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let name = cmd.get_name().to_owned();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut script);
            print_out(&script)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out_dir } => {
            match out_dir {
                Some(dir) => clap_mangen::generate_to(Cli::command(), &dir)
                    .with_context(|| format!("cannot write man pages to {}", dir.display()))?,
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(Cli::command())
                        .render(&mut page)
                        .context("cannot render the man page")?;
                    print_out(&page)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes to stdout; a reader that stops early (`| head`) ends the output quietly.
fn print_out(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

async fn run(
    path: &Path,
    (web_listen, web_config_file): (Option<SocketAddr>, Option<PathBuf>),
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // The flags override the file, at start and at every reload.
    let source = daemon::ConfigSource {
        path: path.to_owned(),
        overrides: Box::new(move |config: &mut Config| {
            if let Some(addr) = web_listen {
                config.web.listen = addr;
            }
            if let Some(file) = &web_config_file {
                config.web.config_file = Some(file.clone());
            }
        }),
    };
    let config = source
        .load()
        .map_err(|e| anyhow::anyhow!("{}", e.problems().join("\n")))?;
    daemon::raise_fd_limit();
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
        .with_context(|| {
            format!(
                "cannot listen on {} (web.listen or --web.listen-address)",
                config.web.listen
            )
        })?;
    let callback = TcpListener::bind(config.callback.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on callback.listen {}",
                config.callback.listen
            )
        })?;
    let running = daemon::start_reloadable(
        source,
        &config,
        keys,
        (web, callback),
        Arc::new(SystemClock),
        shutdown,
    )
    .await?;
    running.join().await;
    Ok(())
}

/// The web config file and the callback certificate, read as the listeners will read them.
fn listener_files(config: &Config) -> Vec<String> {
    let web = config
        .web
        .config_file
        .as_ref()
        .map(|file| daemon::server::Security::web_config(file.clone()).map(|_| ()));
    let callback = config
        .callback
        .tls
        .as_ref()
        .map(|files| daemon::server::Security::certificate(files.clone()).map(|_| ()));
    [web, callback]
        .into_iter()
        .flatten()
        .filter_map(Result::err)
        .map(|err| err.to_string())
        .collect()
}

async fn check_config(path: &Path, offline: bool) -> ExitCode {
    let loaded = Config::load(path);
    let (problems, absent_secrets): (Vec<String>, Vec<String>) = match &loaded {
        Ok(config) => {
            let env = |name: &str| std::env::var(name).ok();
            let otlp = resolve_otlp(config.metrics.otlp.as_ref(), &env).err();
            let otlp = otlp.into_iter().flatten().map(|p| p.to_string());
            let absent = config.missing_secrets().into_iter().map(|p| p.to_string());
            let otlp = otlp.chain(listener_files(config));
            // Offline checks often run where the secrets are not (CI, a laptop): the file is
            // valid, and the secrets are the deployment's to provide.
            if offline {
                (otlp.collect(), absent.collect())
            } else {
                (absent.chain(otlp).collect(), Vec::new())
            }
        }
        Err(err) => (err.problems(), Vec::new()),
    };
    for secret in &absent_secrets {
        eprintln!("warning: {secret}");
    }
    if !problems.is_empty() {
        eprintln!("{}: {} problem(s)", path.display(), problems.len());
        for problem in problems {
            eprintln!("  {problem}");
        }
        return ExitCode::FAILURE;
    }
    let Ok(config) = loaded else {
        return ExitCode::FAILURE;
    };
    println!("{}: valid", path.display());
    for target in &config.targets {
        // What every query of the target sends besides its dates.
        println!(
            "target {}: filterBy {}",
            target.name,
            target.filter.identity()
        );
    }
    if offline {
        return ExitCode::SUCCESS;
    }
    let mut failed = 0;
    for target in &config.targets {
        let result = match target.api_key.resolve() {
            Ok(key) => {
                let callback = format!(
                    "{}/callback/{}/check-config",
                    config.callback.public_url, target.name
                );
                oneshot::probe(&target.base_url, &key, &callback, SystemClock.today())
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(p) => println!(
                "target {}: reachable at {}{}, key accepted (the empty probe query got {})",
                target.name,
                p.address,
                if p.tls { " over TLS" } else { "" },
                p.status
            ),
            Err(e) => {
                failed += 1;
                eprintln!("target {}: FAILED: {e}", target.name);
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
