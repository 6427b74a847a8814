//! The `simulator` subcommand.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use super::{
    DateTimeFormat, Faults, MAX_REDELIVERIES, OutOfWindow, Scale, Simulator, SimulatorOptions,
    UnscopedStatus,
};
use crate::billing::calendar::{Clock, ManualClock, SystemClock};

/// Serve a simulated Infobip Billing Usage API.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "docs/simulator.md describes the data, the faults and every switch. \
    \"reference A5\" and the like name the ambiguities of §14 of the API reference; each switch \
    defaults to the handling recommended there."
)]
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
    /// A valid key without the billing:usage:view scope: answered 403 (see --unscoped-status).
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
    /// How DAY and MONTH cells are written; no billing source shows them, so a client must read
    /// every form (reference A5).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = DateTimeFormat::default())]
    pub datetime_format: DateTimeFormat,
    /// Deliver the callback before answering 201, so the receiver sees a requestId it has not
    /// recorded yet (reference A27). Off: 201 first.
    #[arg(long)]
    pub callback_before_response: bool,
    /// Re-deliver a callback up to N more times while the receiver answers non-2xx (or does not
    /// answer), --callback-delay apart. Infobip documents a single delivery, hence 0
    /// (reference A14).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_REDELIVERIES)))]
    pub redeliver_on_non_2xx: u32,
    /// What a query whose dates reach outside the retention window (the current UTC month and
    /// the two before it) gets (reference A3).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = OutOfWindow::default())]
    pub out_of_window: OutOfWindow,
    /// Take a bare value where a filter list is expected (e.g. "categories": "AI", as the
    /// spec's Postman collection sends) as a one-element list. Off: 400 (reference A7).
    #[arg(long)]
    pub lenient_filters: bool,
    /// Accept DAY and MONTH together and answer with the finer DAY column only. Off: 400
    /// (reference A11).
    #[arg(long)]
    pub allow_day_and_month: bool,
    /// Status for a valid key without the billing:usage:view scope: the spec's 403 or the
    /// query guide's 401 (reference A12).
    #[arg(long, value_enum, value_name = "STATUS", default_value_t = UnscopedStatus::default())]
    pub unscoped_status: UnscopedStatus,
    /// NOT AN INFOBIP ENDPOINT: also serve GET /billing/1/usage/requests/{id} (IN_PROGRESS,
    /// SUCCESS or FAILED) for tests. Infobip's Billing Usage API has no status endpoint
    /// (reference A26).
    #[arg(long)]
    pub status_endpoint: bool,
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
            datetime_format: self.datetime_format,
            callback_before_response: self.callback_before_response,
            redeliver_on_non_2xx: self.redeliver_on_non_2xx,
            out_of_window: self.out_of_window,
            lenient_filters: self.lenient_filters,
            allow_day_and_month: self.allow_day_and_month,
            unscoped_status: self.unscoped_status,
            status_endpoint: self.status_endpoint,
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
        datetime_format = ?options.datetime_format,
        callback_before_response = options.callback_before_response,
        redeliver_on_non_2xx = options.redeliver_on_non_2xx,
        out_of_window = ?options.out_of_window,
        lenient_filters = options.lenient_filters,
        allow_day_and_month = options.allow_day_and_month,
        unscoped_status = ?options.unscoped_status,
        status_endpoint = options.status_endpoint,
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
