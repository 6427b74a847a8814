//! The exporter's own metrics (prefix `infobip_billing_exporter_`), behind methods named for
//! what happened. Domain code never touches the registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

pub const PREFIX: &str = "infobip_billing_exporter";

/// HELP texts of the self-metrics OTLP pushes too (without the period prometheus-client adds).
pub const UP_HELP: &str =
    "1 when the target's last query was accepted and its last result applied, 0 after a failure";
pub const LAST_SUCCESS_HELP: &str =
    "Unix time of the last result applied for the target: the age of its billing figures";
pub const QUERY_INTERVAL_HELP: &str =
    "The target's query interval in seconds: figures older than a few intervals are stale";
pub const CALLBACKS_HELP: &str =
    "Result callbacks received, by outcome (applied, failed_result, or the rejection reason)";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetOutcome {
    target: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildInfo {
    version: &'static str,
    /// The git commit built (`unknown` outside a checkout without `INFOBIP_EXPORTER_REVISION`).
    revision: &'static str,
    rustc_version: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerReason {
    listener: &'static str,
    reason: &'static str,
}

/// The two listeners, as the `listener` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Web,
    Callback,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Web, Listener::Callback];

    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Web => "web",
            Listener::Callback => "callback",
        }
    }
}

/// Why a listener closed a connection or refused a request before any handler saw it, as the
/// `reason` label of `http_rejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRejection {
    /// A request's headers did not arrive within the header timeout.
    HeaderTimeout,
    /// A kept-alive connection sent no request within the idle timeout.
    IdleTimeout,
    /// A request body did not arrive within the body timeout.
    BodyTimeout,
    /// A response was not taken by the client within the body timeout.
    ResponseTimeout,
    /// The request's headers passed the size limit (answered 431).
    HeaderTooLarge,
    /// Not HTTP/1.x (answered 400).
    MalformedRequest,
    /// A broken chunked encoding in the body.
    MalformedBody,
    /// Closed at once: the listener was full and every connection had a request in progress.
    OverLimit,
    /// Closed to make room for a new connection: the oldest one without a request in progress.
    EvictedIdle,
    /// The TLS handshake failed or did not finish within the header timeout.
    TlsHandshake,
    /// Basic auth missing or wrong (answered 401).
    Unauthorized,
    /// `accept()` failed, e.g. out of file descriptors; the listener retries after a pause.
    AcceptError,
}

impl HttpRejection {
    pub const ALL: [HttpRejection; 12] = [
        HttpRejection::HeaderTimeout,
        HttpRejection::IdleTimeout,
        HttpRejection::BodyTimeout,
        HttpRejection::ResponseTimeout,
        HttpRejection::HeaderTooLarge,
        HttpRejection::MalformedRequest,
        HttpRejection::MalformedBody,
        HttpRejection::OverLimit,
        HttpRejection::EvictedIdle,
        HttpRejection::TlsHandshake,
        HttpRejection::Unauthorized,
        HttpRejection::AcceptError,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            HttpRejection::HeaderTimeout => "header_timeout",
            HttpRejection::IdleTimeout => "idle_timeout",
            HttpRejection::BodyTimeout => "body_timeout",
            HttpRejection::ResponseTimeout => "response_timeout",
            HttpRejection::HeaderTooLarge => "header_too_large",
            HttpRejection::MalformedRequest => "malformed_request",
            HttpRejection::MalformedBody => "malformed_body",
            HttpRejection::OverLimit => "over_limit",
            HttpRejection::EvictedIdle => "evicted_idle",
            HttpRejection::TlsHandshake => "tls_handshake",
            HttpRejection::Unauthorized => "unauthorized",
            HttpRejection::AcceptError => "accept_error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SelfMetrics {
    up: Family<TargetLabel, Gauge>,
    last_success: Family<TargetLabel, Gauge<f64, AtomicU64>>,
    next_query: Family<TargetLabel, Gauge<f64, AtomicU64>>,
    in_flight: Family<TargetLabel, Gauge>,
    callback_latency: Histogram,
    queries: Family<TargetOutcome, Counter>,
    callbacks: Family<Outcome, Counter>,
    api_requests: Family<Code, Counter>,
    restatements: Counter,
    state_writes: Family<Outcome, Counter>,
    series_rolled_up: Counter,
    results_outside_period: Family<TargetLabel, Counter>,
    reload_successful: Gauge,
    reload_success_at: Gauge<f64, AtomicU64>,
    query_interval: Family<TargetLabel, Gauge<f64, AtomicU64>>,
    /// The outcomes `callbacks` has seen, so that OTLP can read the family back.
    callback_outcomes: Arc<Mutex<BTreeSet<&'static str>>>,
    http_rejections: Family<ListenerReason, Counter>,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self {
            up: Family::default(),
            last_success: Family::default(),
            next_query: Family::default(),
            in_flight: Family::default(),
            // 0.25 s to about 2.3 h: from the simulator's loopback to a slow aggregation.
            callback_latency: Histogram::new(exponential_buckets(0.25, 2.0, 16)),
            queries: Family::default(),
            callbacks: Family::default(),
            api_requests: Family::default(),
            restatements: Counter::default(),
            state_writes: Family::default(),
            series_rolled_up: Counter::default(),
            results_outside_period: Family::default(),
            reload_successful: Gauge::default(),
            reload_success_at: Gauge::default(),
            query_interval: Family::default(),
            callback_outcomes: Arc::default(),
            http_rejections: Family::default(),
        }
    }
}

impl SelfMetrics {
    /// Registers every metric under the exporter prefix; `targets` start down until data arrives.
    pub fn register(&self, registry: &mut Registry, targets: &[String]) {
        let sub = registry.sub_registry_with_prefix(PREFIX);
        let build_info: Family<BuildInfo, Gauge> = Family::default();
        build_info
            .get_or_create(&BuildInfo {
                version: env!("CARGO_PKG_VERSION"),
                revision: env!("BUILD_REVISION"),
                rustc_version: env!("BUILD_RUSTC_VERSION"),
            })
            .set(1);
        sub.register(
            "build_info",
            "Build information of the exporter; value is always 1",
            build_info,
        );
        sub.register("up", UP_HELP, self.up.clone());
        sub.register(
            "last_success_timestamp_seconds",
            LAST_SUCCESS_HELP,
            self.last_success.clone(),
        );
        sub.register(
            "next_query_timestamp_seconds",
            "Unix time at which the target's query loop next wakes to send or re-send a query",
            self.next_query.clone(),
        );
        sub.register(
            "queries_in_flight",
            "Queries sent to Infobip whose callback has not arrived yet",
            self.in_flight.clone(),
        );
        sub.register(
            "callback_latency_seconds",
            "Time from submitting a query to applying its result",
            self.callback_latency.clone(),
        );
        sub.register(
            "queries",
            "Billing Usage API queries by outcome (accepted, or the reason they failed)",
            self.queries.clone(),
        );
        sub.register("callbacks", CALLBACKS_HELP, self.callbacks.clone());
        sub.register(
            "api_requests",
            "HTTP answers from the Billing Usage API by status code (\"network\" when none came)",
            self.api_requests.clone(),
        );
        sub.register(
            "restatements",
            "Per-day, per-currency cost figures of a day already ended when stored that a later result changed",
            self.restatements.clone(),
        );
        sub.register(
            "state_writes",
            "Writes of state files (segments, pending table) by outcome: ok, or why one failed",
            self.state_writes.clone(),
        );
        sub.register(
            "series_rolled_up",
            "Data series folded into an `other` label value because of the max_series cap",
            self.series_rolled_up.clone(),
        );
        sub.register(
            "results_outside_period",
            "Results whose period reached outside the month asked for; only the days inside were applied",
            self.results_outside_period.clone(),
        );
        sub.register(
            "config_last_reload_successful",
            "1 when the last load of the config file succeeded, 0 when it was refused",
            self.reload_successful.clone(),
        );
        sub.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful load of the config file",
            self.reload_success_at.clone(),
        );
        sub.register(
            "http_rejections",
            "Connections closed and requests refused before any handler, by listener and reason",
            self.http_rejections.clone(),
        );
        for listener in Listener::ALL {
            for rejection in HttpRejection::ALL {
                self.http_rejections
                    .get_or_create(&listener_reason(listener, rejection))
                    .inc_by(0);
            }
        }
        sub.register(
            "query_interval_seconds",
            QUERY_INTERVAL_HELP,
            self.query_interval.clone(),
        );
        for target in targets {
            self.target_added(target);
        }
    }

    /// A target configured at start or by a reload: down until its data arrives.
    pub fn target_added(&self, target: &str) {
        self.up.get_or_create(&target_label(target)).set(0);
        // From zero, so that increase() sees the first one.
        self.results_outside_period
            .get_or_create(&target_label(target))
            .inc_by(0);
    }

    pub fn config_loaded(&self, at_unix: f64) {
        self.reload_successful.set(1);
        self.reload_success_at.set(at_unix);
    }

    pub fn config_reload_failed(&self) {
        self.reload_successful.set(0);
    }

    pub fn query_accepted(&self, target: &str) {
        self.api_answer(Some(201));
        self.query_outcome(target, "accepted");
    }

    pub fn query_failed(&self, target: &str, reason: &'static str, status: Option<u16>) {
        self.api_answer(status);
        self.query_outcome(target, reason);
        self.up.get_or_create(&target_label(target)).set(0);
    }

    pub fn query_timed_out(&self, target: &str) {
        self.query_outcome(target, "timeout");
        self.up.get_or_create(&target_label(target)).set(0);
    }

    /// The `interval` a target's query loop runs with; a reload that changes it restarts the loop.
    pub fn query_interval(&self, target: &str, seconds: f64) {
        self.query_interval
            .get_or_create(&target_label(target))
            .set(seconds);
    }

    pub fn next_query_at(&self, target: &str, at_unix: f64) {
        self.next_query
            .get_or_create(&target_label(target))
            .set(at_unix);
    }

    pub fn queries_in_flight(&self, target: &str, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.in_flight
            .get_or_create(&target_label(target))
            .set(count);
    }

    /// The time of a target's newest result, applied now or remembered by the state directory
    /// after a restart. Results applied side by side may finish out of order: it never goes back.
    pub fn success_at(&self, target: &str, at_unix: f64) {
        let gauge = self.last_success.get_or_create(&target_label(target));
        if at_unix > gauge.get() {
            gauge.set(at_unix);
        }
    }

    /// A result's period reached outside the month its query asked for.
    pub fn result_outside_period(&self, target: &str) {
        self.results_outside_period
            .get_or_create(&target_label(target))
            .inc();
    }

    pub fn result_applied(&self, target: &str, latency_seconds: f64) {
        self.callback("applied");
        self.callback_latency.observe(latency_seconds);
        self.up.get_or_create(&target_label(target)).set(1);
    }

    /// Per-day, per-currency figures a result changed.
    pub fn restated(&self, figures: usize) {
        self.restatements.inc_by(figures as u64);
    }

    pub fn result_failed(&self, target: &str) {
        self.callback("failed_result");
        self.up.get_or_create(&target_label(target)).set(0);
    }

    pub fn callback_rejected(&self, reason: &'static str) {
        self.callback(reason);
    }

    /// A result that arrived after a newer one for the same month: acknowledged, not applied.
    pub fn result_superseded(&self) {
        self.callback("superseded");
    }

    pub fn duplicate_callback(&self) {
        self.callback("duplicate");
    }

    pub fn state_written(&self) {
        self.state_writes
            .get_or_create(&Outcome { outcome: "ok" })
            .inc();
    }

    pub fn state_write_failed(&self, reason: &'static str) {
        self.state_writes
            .get_or_create(&Outcome { outcome: reason })
            .inc();
    }

    pub fn series_rolled_up(&self, series: u64) {
        self.series_rolled_up.inc_by(series);
    }

    pub fn http_rejected(&self, listener: Listener, rejection: HttpRejection) {
        self.http_rejections
            .get_or_create(&listener_reason(listener, rejection))
            .inc();
    }

    fn callback(&self, outcome: &'static str) {
        self.callbacks.get_or_create(&Outcome { outcome }).inc();
        self.callback_outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(outcome);
    }

    /// `up` of a target, as /metrics shows it; for the OTLP push.
    pub fn up_of(&self, target: &str) -> Option<i64> {
        self.up.get(&target_label(target)).map(|g| g.get())
    }

    /// `last_success_timestamp_seconds` of a target, once it has one; for the OTLP push.
    pub fn last_success_of(&self, target: &str) -> Option<f64> {
        self.last_success
            .get(&target_label(target))
            .map(|g| g.get())
    }

    /// `query_interval_seconds` of a target, once its query loop runs; for the OTLP push.
    pub fn query_interval_of(&self, target: &str) -> Option<f64> {
        self.query_interval
            .get(&target_label(target))
            .map(|g| g.get())
    }

    /// `callbacks_total` by outcome; for the OTLP push.
    pub fn callbacks_by_outcome(&self) -> Vec<(&'static str, u64)> {
        let outcomes = self
            .callback_outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        outcomes
            .into_iter()
            .filter_map(|outcome| {
                let count = self.callbacks.get(&Outcome { outcome })?.get();
                Some((outcome, count))
            })
            .collect()
    }

    fn query_outcome(&self, target: &str, outcome: &'static str) {
        self.queries
            .get_or_create(&TargetOutcome {
                target: target.to_owned(),
                outcome,
            })
            .inc();
    }

    fn api_answer(&self, status: Option<u16>) {
        let code = status.map_or_else(|| "network".to_owned(), |s| s.to_string());
        self.api_requests.get_or_create(&Code { code }).inc();
    }
}

fn listener_reason(listener: Listener, rejection: HttpRejection) -> ListenerReason {
    ListenerReason {
        listener: listener.as_str(),
        reason: rejection.reason(),
    }
}

fn target_label(target: &str) -> TargetLabel {
    TargetLabel {
        target: target.to_owned(),
    }
}
