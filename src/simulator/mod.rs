//! A simulator of Infobip's Billing Usage API (reference `billing-usage-api.md`), faithful to the
//! contract and to §14's simulator handling, with fault injection for the exporter's tests.
//!
//! - [`validate`]: the request checks, one violation per problem.
//! - [`data`]: the synthetic customer and the query engine (filter, group, sum).
//! - [`server`]: auth, throttling, the query endpoint and callback delivery.
//! - [`cli`]: the `simulator` subcommand.
//!
//! `docs/simulator.md` describes the flags, the data model and the §14 choices.

mod cli;
mod data;
mod server;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::billing::calendar::Clock;
use crate::infobip::model::{BillingUsageResult, QueryBillingUsageApiRequest};

pub use cli::{SimulatorArgs, run_simulator};
pub use data::{AccountInfo, MAX_ACCOUNTS, MAX_COUNTRIES, MAX_SENDERS};
pub use server::{QUERY_PATH, STATUS_PATH};

/// How many delivered callbacks [`Simulator::deliveries`] keeps (with their bodies) for tests.
pub const KEPT_DELIVERIES: usize = 64;

/// The most re-deliveries `--redeliver-on-non-2xx` takes: enough for any retry test, and a
/// typo cannot turn one query into an endless stream of POSTs.
pub const MAX_REDELIVERIES: u32 = 100;

/// Everything that shapes a simulator; the defaults are a realistic small customer with no faults.
#[derive(Clone)]
pub struct SimulatorOptions {
    /// The key that carries the `billing:usage:view` scope.
    pub api_key: String,
    /// A valid key lacking the scope: answered with 403 (reference A12).
    pub unscoped_api_key: Option<String>,
    /// Drives the data and the fault decisions.
    pub seed: u64,
    /// Time between the 201 and the callback.
    pub callback_delay: Duration,
    /// Token bucket per credential, refilled at this rate with a burst of the same size (A13).
    pub requests_per_second: u32,
    pub faults: Faults,
    pub scale: Scale,
    /// How DAY and MONTH cells are written (A5).
    pub datetime_format: DateTimeFormat,
    /// Deliver the callback before answering 201 (A27).
    pub callback_before_response: bool,
    /// Extra deliveries while the receiver answers non-2xx or not at all (A14); 0 = once only.
    pub redeliver_on_non_2xx: u32,
    /// What a query reaching outside the retention window gets (A3).
    pub out_of_window: OutOfWindow,
    /// Take a bare value where a filter list is expected as a one-element list (A7).
    pub lenient_filters: bool,
    /// Accept `DAY` and `MONTH` together; only the finer `DAY` column is returned (A11).
    pub allow_day_and_month: bool,
    /// The answer to a valid key without the `billing:usage:view` scope (A12).
    pub unscoped_status: UnscopedStatus,
    /// Serve the non-Infobip `GET /billing/1/usage/requests/{id}` (A26).
    pub status_endpoint: bool,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            api_key: "demo-key".to_owned(),
            unscoped_api_key: None,
            seed: 1,
            callback_delay: Duration::from_millis(200),
            requests_per_second: 60,
            faults: Faults::default(),
            scale: Scale::default(),
            datetime_format: DateTimeFormat::default(),
            callback_before_response: false,
            redeliver_on_non_2xx: 0,
            out_of_window: OutOfWindow::default(),
            lenient_filters: false,
            allow_day_and_month: false,
            unscoped_status: UnscopedStatus::default(),
            status_endpoint: false,
        }
    }
}

// Keys are secrets: never print them.
impl fmt::Debug for SimulatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorOptions")
            .field("api_key", &"<redacted>")
            .field(
                "unscoped_api_key",
                &self.unscoped_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("seed", &self.seed)
            .field("callback_delay", &self.callback_delay)
            .field("requests_per_second", &self.requests_per_second)
            .field("faults", &self.faults)
            .field("scale", &self.scale)
            .field("datetime_format", &self.datetime_format)
            .field("callback_before_response", &self.callback_before_response)
            .field("redeliver_on_non_2xx", &self.redeliver_on_non_2xx)
            .field("out_of_window", &self.out_of_window)
            .field("lenient_filters", &self.lenient_filters)
            .field("allow_day_and_month", &self.allow_day_and_month)
            .field("unscoped_status", &self.unscoped_status)
            .field("status_endpoint", &self.status_endpoint)
            .finish()
    }
}

impl SimulatorOptions {
    /// Every problem with the options, so a CLI can refuse them with a clear message.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.api_key.trim().is_empty() {
            return Err(OptionsError::EmptyApiKey);
        }
        if self.unscoped_api_key.as_deref() == Some(self.api_key.as_str()) {
            return Err(OptionsError::SameKeys);
        }
        if self.requests_per_second == 0 {
            return Err(OptionsError::ZeroRate);
        }
        if self.redeliver_on_non_2xx > MAX_REDELIVERIES {
            return Err(OptionsError::Redeliveries(self.redeliver_on_non_2xx));
        }
        self.faults.validate()?;
        self.scale.validate()
    }
}

/// How `DAY` and `MONTH` cells are written (reference A5). No billing source shows them, so a
/// client must read all of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DateTimeFormat {
    /// `2026-04-01T00:00:00.000+0000`, the Metrics API precedent.
    #[default]
    #[value(name = "datetime_ms_offset")]
    DatetimeMsOffset,
    /// `2026-04-01T00:00:00Z`.
    #[value(name = "rfc3339")]
    Rfc3339,
    /// `2026-04-01` (MONTH: the first of the month).
    #[value(name = "date_only")]
    DateOnly,
}

/// What a query whose dates reach outside the retention window gets (reference A3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutOfWindow {
    /// 400 with a violation on the offending date.
    #[default]
    #[value(name = "reject")]
    Reject,
    /// 201; the result covers only the part inside the window, as `requestedPeriod` says.
    #[value(name = "trim")]
    Trim,
    /// 201; the result has no rows and echoes the requested period.
    #[value(name = "empty")]
    Empty,
}

/// The answer to a valid key that lacks the `billing:usage:view` scope (reference A12).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UnscopedStatus {
    /// 401 `E401`, as the query guide words it.
    #[value(name = "401")]
    Unauthorized,
    /// 403 `E403`, as the spec's example has it.
    #[default]
    #[value(name = "403")]
    Forbidden,
}

/// Fractions of queries (0 = never, 1 = always) that meet each fault; decided per query by a
/// seeded hash, so a given seed and query order always give the same faults.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// The callback is never delivered.
    pub drop_callback_ratio: f64,
    /// The callback is delivered twice.
    pub duplicate_callback_ratio: f64,
    /// The callback says `status: FAILED`.
    pub failed_ratio: f64,
    /// The submit is answered 500 `E500`.
    pub server_error_ratio: f64,
    /// The callback body is not valid JSON.
    pub malformed_callback_ratio: f64,
}

impl Faults {
    pub fn validate(&self) -> Result<(), OptionsError> {
        for (name, value) in [
            ("drop-callback-ratio", self.drop_callback_ratio),
            ("duplicate-callback-ratio", self.duplicate_callback_ratio),
            ("failed-ratio", self.failed_ratio),
            ("server-error-ratio", self.server_error_ratio),
            ("malformed-callback-ratio", self.malformed_callback_ratio),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(OptionsError::Ratio { name, value });
            }
        }
        Ok(())
    }
}

/// Size of the simulated customer. Traffic streams multiply: accounts × channels × countries ×
/// networks × senders, so a few knobs reach a million-row callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Accounts in the hierarchy, the parent included.
    pub accounts: usize,
    /// Destination countries (the first N of a fixed list, United States first).
    pub countries: usize,
    /// Senders per account and channel.
    pub senders: usize,
    /// Users per account.
    pub users: usize,
    /// Broadcast/Flow campaigns per account.
    pub campaigns: usize,
    /// WhatsApp templates per account.
    pub templates: usize,
}

impl Default for Scale {
    fn default() -> Self {
        Self {
            accounts: 4,
            countries: 6,
            senders: 2,
            users: 3,
            campaigns: 3,
            templates: 3,
        }
    }
}

impl Scale {
    pub fn validate(&self) -> Result<(), OptionsError> {
        for (name, value, max) in [
            ("accounts", self.accounts, MAX_ACCOUNTS),
            ("countries", self.countries, MAX_COUNTRIES),
            ("senders", self.senders, MAX_SENDERS),
            ("users", self.users, MAX_SENDERS),
            ("campaigns", self.campaigns, MAX_SENDERS),
            ("templates", self.templates, MAX_SENDERS),
        ] {
            if !(1..=max).contains(&value) {
                return Err(OptionsError::Size { name, value, max });
            }
        }
        Ok(())
    }

    /// The nearest valid scale: the simulator never refuses to start over a size.
    fn clamped(self) -> Self {
        Self {
            accounts: self.accounts.clamp(1, MAX_ACCOUNTS),
            countries: self.countries.clamp(1, MAX_COUNTRIES),
            senders: self.senders.clamp(1, MAX_SENDERS),
            users: self.users.clamp(1, MAX_SENDERS),
            campaigns: self.campaigns.clamp(1, MAX_SENDERS),
            templates: self.templates.clamp(1, MAX_SENDERS),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionsError {
    #[error("--{name} must be a number from 0 to 1, got {value}")]
    Ratio { name: &'static str, value: f64 },
    #[error("--{name} must be from 1 to {max}, got {value}")]
    Size {
        name: &'static str,
        value: usize,
        max: usize,
    },
    #[error("the API key must not be empty")]
    EmptyApiKey,
    #[error("the unscoped API key must differ from the API key")]
    SameKeys,
    #[error("--requests-per-second must be at least 1")]
    ZeroRate,
    #[error("--redeliver-on-non-2xx must be at most {MAX_REDELIVERIES}, got {0}")]
    Redeliveries(u32),
}

/// One callback POST the simulator made (or tried to make).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub request_id: String,
    pub callback_url: String,
    pub body: Bytes,
    /// The receiver's HTTP status; `None` when the connection failed.
    pub status: Option<u16>,
    /// The body was deliberately broken (malformed-callback fault).
    pub malformed: bool,
}

impl Delivery {
    /// The body as a result, `None` for a malformed one.
    pub fn result(&self) -> Option<BillingUsageResult> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What the simulator did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulatorStats {
    /// Queries answered 201.
    pub queries_accepted: u64,
    /// Queries answered otherwise, by HTTP status (400, 401, 403, 429, 500).
    pub rejected: BTreeMap<u16, u64>,
    /// Callback POSTs answered 2xx.
    pub callbacks_delivered: u64,
    /// Callback POSTs answered with another status.
    pub callbacks_rejected: u64,
    /// Callback POSTs that got no answer (connection error, timeout).
    pub callbacks_unreachable: u64,
    /// POSTs repeated after a non-2xx or missing answer (`--redeliver-on-non-2xx`).
    pub callbacks_redelivered: u64,
    /// Callbacks not sent (drop fault).
    pub callbacks_dropped: u64,
    /// Callbacks sent twice (duplicate fault), counted once per query.
    pub callbacks_duplicated: u64,
    /// `status: FAILED` results (failed fault).
    pub callbacks_failed: u64,
    /// Invalid JSON bodies (malformed fault).
    pub callbacks_malformed: u64,
}

impl SimulatorStats {
    pub fn rejected_with(&self, status: u16) -> u64 {
        self.rejected.get(&status).copied().unwrap_or(0)
    }

    /// 500 answers (server-error fault).
    pub fn server_errors(&self) -> u64 {
        self.rejected_with(500)
    }

    /// 429 answers.
    pub fn throttled(&self) -> u64 {
        self.rejected_with(429)
    }
}

/// The simulator; cheap to clone, all clones share state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    opts: SimulatorOptions,
    clock: Arc<dyn Clock>,
    data: data::Dataset,
    http: reqwest::Client,
    /// Submit sequence: the server-error fault is decided per submit.
    submits: AtomicU64,
    /// Accepted-query sequence: callback faults are decided per accepted query.
    accepted: AtomicU64,
    throttle: Mutex<server::Throttle>,
    deliveries: Mutex<std::collections::VecDeque<Delivery>>,
    /// The requests of the queries answered 201, as the simulator read them.
    queries: Mutex<std::collections::VecDeque<QueryBillingUsageApiRequest>>,
    /// State of every accepted query, kept only with the status endpoint on.
    requests: Mutex<HashMap<String, server::RequestState>>,
    stats: watch::Sender<SimulatorStats>,
}

impl Simulator {
    /// Out-of-range options are clamped here; call [`SimulatorOptions::validate`] first to refuse them.
    pub fn new(mut opts: SimulatorOptions, clock: Arc<dyn Clock>) -> Self {
        let clamp = |r: f64| if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
        let f = &mut opts.faults;
        for ratio in [
            &mut f.drop_callback_ratio,
            &mut f.duplicate_callback_ratio,
            &mut f.failed_ratio,
            &mut f.server_error_ratio,
            &mut f.malformed_callback_ratio,
        ] {
            *ratio = clamp(*ratio);
        }
        opts.scale = opts.scale.clamped();
        opts.requests_per_second = opts.requests_per_second.max(1);
        opts.redeliver_on_non_2xx = opts.redeliver_on_non_2xx.min(MAX_REDELIVERIES);
        let data = data::Dataset::generate(opts.seed, opts.scale);
        let http = reqwest::Client::builder()
            .timeout(server::CALLBACK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // Callbacks go exactly to the given URL (A15), never through an ambient proxy.
            .no_proxy()
            .build()
            .unwrap_or_default();
        let throttle = server::Throttle::new(opts.requests_per_second);
        Self {
            inner: Arc::new(Inner {
                opts,
                clock,
                data,
                http,
                submits: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                throttle: Mutex::new(throttle),
                deliveries: Mutex::new(std::collections::VecDeque::new()),
                queries: Mutex::new(std::collections::VecDeque::new()),
                requests: Mutex::new(HashMap::new()),
                stats: watch::Sender::new(SimulatorStats::default()),
            }),
        }
    }

    /// `POST /billing/1/usage/query`, and with [`SimulatorOptions::status_endpoint`] the
    /// non-Infobip `GET /billing/1/usage/requests/{id}`.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone())
    }

    /// Serves [`Self::router`] until `shutdown` fires, then lets open requests finish.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }

    /// The last [`KEPT_DELIVERIES`] callbacks the simulator delivered or tried to, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.inner.deliveries).iter().cloned().collect()
    }

    /// The requests of the last [`KEPT_DELIVERIES`] queries it accepted, in order.
    pub fn queries(&self) -> Vec<QueryBillingUsageApiRequest> {
        lock(&self.inner.queries).iter().cloned().collect()
    }

    /// The result the simulator would produce for this request at this instant.
    pub fn result_for(
        &self,
        request: &QueryBillingUsageApiRequest,
        request_id: &str,
        now: OffsetDateTime,
    ) -> BillingUsageResult {
        self.inner
            .data
            .query(request, now, &self.inner.opts)
            .to_result(request_id)
    }

    /// The same result as [`Self::result_for`], serialized as the callback body, streaming the
    /// rows (no intermediate JSON tree).
    pub fn result_body_for(
        &self,
        request: &QueryBillingUsageApiRequest,
        request_id: &str,
        now: OffsetDateTime,
    ) -> Vec<u8> {
        self.inner
            .data
            .query(request, now, &self.inner.opts)
            .to_body(request_id)
    }

    pub fn stats(&self) -> SimulatorStats {
        self.inner.stats.borrow().clone()
    }

    /// Follows the stats, so a test can wait for an event instead of sleeping.
    pub fn watch_stats(&self) -> watch::Receiver<SimulatorStats> {
        self.inner.stats.subscribe()
    }

    /// The simulated account hierarchy, parent first.
    pub fn accounts(&self) -> Vec<AccountInfo> {
        self.inner.data.accounts()
    }

    pub fn options(&self) -> &SimulatorOptions {
        &self.inner.opts
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("options", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

/// A poisoned lock only means another request panicked; the data inside is still consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
