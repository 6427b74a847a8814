//! The `simulator` subcommand.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use super::{Faults, Scale, Simulator, SimulatorOptions};
use crate::calendar::{Clock, ManualClock, SystemClock};

/// Serve a simulated Infobip Billing Usage API.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulatorArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9480")]
    pub listen: SocketAddr,
    /// Key accepted in `Authorization: App <KEY>`.
    #[arg(
        long,
        value_name = "KEY",
        env = "INFOBIP_SIMULATOR_API_KEY",
        default_value = "demo-key",
        hide_env_values = true
    )]
    pub api_key: String,
    /// A valid key without the billing:usage:view scope: answered 403.
    #[arg(
        long,
        value_name = "KEY",
        env = "INFOBIP_SIMULATOR_UNSCOPED_API_KEY",
        hide_env_values = true
    )]
    pub unscoped_api_key: Option<String>,
    /// Seed of the synthetic data and of the fault decisions.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Pin the simulated time (RFC 3339, e.g. 2026-04-10T12:00:00Z); real time without it.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<OffsetDateTime>,
    /// Time between the 201 answer and the callback.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub callback_delay: Duration,
    /// Fraction of callbacks never delivered.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub drop_callback_ratio: f64,
    /// Fraction of callbacks delivered twice.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub duplicate_callback_ratio: f64,
    /// Fraction of queries answered with `status: FAILED`.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub failed_ratio: f64,
    /// Fraction of submits answered 500.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub server_error_ratio: f64,
    /// Fraction of callbacks whose body is not valid JSON.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub malformed_callback_ratio: f64,
    /// Requests per second allowed per credential before 429.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub requests_per_second: u32,
    /// Accounts in the hierarchy, the parent included.
    #[arg(long, value_name = "N", default_value_t = Scale::default().accounts)]
    pub accounts: usize,
    /// Destination countries.
    #[arg(long, value_name = "N", default_value_t = Scale::default().countries)]
    pub countries: usize,
    /// Senders per account and channel.
    #[arg(long, value_name = "N", default_value_t = Scale::default().senders)]
    pub senders: usize,
    /// Users per account.
    #[arg(long, value_name = "N", default_value_t = Scale::default().users)]
    pub users: usize,
    /// Broadcast/Flow campaigns per account.
    #[arg(long, value_name = "N", default_value_t = Scale::default().campaigns)]
    pub campaigns: usize,
    /// WhatsApp templates per account.
    #[arg(long, value_name = "N", default_value_t = Scale::default().templates)]
    pub templates: usize,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; expected a fraction from 0 to 1"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is outside 0..=1; a ratio is the fraction of queries affected, 0 never, 1 always"
        ))
    }
}

fn parse_now(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|e| {
        format!("{s:?} is not an RFC 3339 date-time such as 2026-04-10T12:00:00Z: {e}")
    })
}

impl SimulatorArgs {
    pub fn options(&self) -> SimulatorOptions {
        SimulatorOptions {
            api_key: self.api_key.clone(),
            unscoped_api_key: self.unscoped_api_key.clone(),
            seed: self.seed,
            callback_delay: self.callback_delay,
            requests_per_second: self.requests_per_second,
            faults: Faults {
                drop_callback_ratio: self.drop_callback_ratio,
                duplicate_callback_ratio: self.duplicate_callback_ratio,
                failed_ratio: self.failed_ratio,
                server_error_ratio: self.server_error_ratio,
                malformed_callback_ratio: self.malformed_callback_ratio,
            },
            scale: Scale {
                accounts: self.accounts,
                countries: self.countries,
                senders: self.senders,
                users: self.users,
                campaigns: self.campaigns,
                templates: self.templates,
            },
        }
    }

    /// A pinned clock with `--now`, the system clock otherwise.
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self.now {
            Some(at) => Arc::new(ManualClock::new(at)),
            None => Arc::new(SystemClock),
        }
    }
}

/// Binds, prints `simulator listening on http://ADDR`, and serves until `shutdown`.
pub async fn run_simulator(args: SimulatorArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let options = args.options();
    options.validate().context("invalid simulator options")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(
        seed = options.seed,
        now = ?args.now,
        faults = ?options.faults,
        scale = ?options.scale,
        "starting the Billing Usage API simulator"
    );
    let simulator = Simulator::new(options, args.clock());
    {
        // Scoped: the stdout lock must not live across the await below.
        let mut out = std::io::stdout().lock();
        writeln!(out, "simulator listening on http://{addr}")
            .and_then(|()| out.flush())
            .context("cannot write to stdout")?;
    }
    simulator
        .serve(listener, shutdown)
        .await
        .context("the simulator server failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulatorArgs,
    }

    #[test]
    fn ratios_outside_zero_to_one_are_refused() {
        let err = Cli::try_parse_from(["sim", "--failed-ratio", "1.5"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("outside 0..=1"), "{err}");
        let err = Cli::try_parse_from(["sim", "--drop-callback-ratio", "lots"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a number"), "{err}");
        let ok = Cli::try_parse_from([
            "sim",
            "--duplicate-callback-ratio",
            "0.25",
            "--now",
            "2026-04-10T12:00:00Z",
        ])
        .unwrap();
        assert_eq!(ok.args.duplicate_callback_ratio, 0.25);
        assert_eq!(ok.args.options().faults.duplicate_callback_ratio, 0.25);
    }
}
