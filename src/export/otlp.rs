//! Pushes the data metrics over OTLP (gRPC or HTTP/protobuf), as the same families /metrics
//! serves: [`exposition::families`] feeds both, so names, attributes and values cannot drift.
//!
//! Names keep Prometheus' underscores (`infobip_billing_cost`, attribute `account_key`) rather
//! than OTel's dotted style: the same PromQL, dashboards and alert rules then work whether the
//! data arrives by scrape or through a collector, and a collector's Prometheus exporter needs no
//! renaming. Every data instrument is an observable gauge that reads the latest snapshot when
//! the periodic reader collects; nothing here calls Infobip. Beside them go four of the
//! exporter's own metrics, under their /metrics names and labels: `up`,
//! `last_success_timestamp_seconds` and `query_interval_seconds` (gauges per target) and
//! `callbacks_total` (a cumulative sum per outcome), enough to alert on a stale or failing
//! exporter from the OTLP side alone.
//!
//! The settings come from the `otlp` section and the OpenTelemetry environment variables
//! ([`crate::config::resolve_otlp`] merges them). The SDK reads a few of those variables again
//! by itself (headers, timeout, compression); the resource it would detect from the process
//! environment is replaced by the resolved one, so that `OTEL_SERVICE_NAME` wins and tests can
//! inject the environment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{
    MetricExporter, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{Instrument, PeriodicReader, SdkMeterProvider, Stream};
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{OtlpConfig, OtlpProtocol, OtlpSettings, Problem, resolve_otlp};
use crate::errors::chain;
use crate::export::exposition::{self, Exposition, Family};
use crate::export::selfmetrics::{
    CALLBACKS_HELP, LAST_SUCCESS_HELP, PREFIX, QUERY_INTERVAL_HELP, SelfMetrics, UP_HELP,
};

/// The instrumentation scope of every pushed metric.
const SCOPE: &str = "infobip-billing-exporter";

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("invalid OTLP settings: {}", join(.0))]
    Settings(Vec<Problem>),
    #[error("cannot set up the OTLP exporter for {endpoint}: {}", chain(cause))]
    Build {
        endpoint: String,
        cause: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("OTLP header {0:?} cannot be sent as gRPC metadata; expected an ASCII name and value")]
    Header(String),
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl OtlpError {
    pub fn reason(&self) -> &'static str {
        match self {
            OtlpError::Settings(_) => "settings",
            OtlpError::Build { .. } => "build",
            OtlpError::Header(_) => "header",
        }
    }
}

/// What a pusher reads besides its settings.
#[derive(Debug)]
pub struct Sources {
    pub snapshot: watch::Receiver<Arc<Exposition>>,
    pub metrics: SelfMetrics,
    /// The configured targets, whose `up` and last success are pushed.
    pub targets: Vec<String>,
    /// Sizes the SDK's per-instrument cardinality limit so that no series lands in its
    /// overflow bucket.
    pub max_series: usize,
}

/// The families of one snapshot.
type Built = (Arc<Exposition>, Arc<Vec<Family>>);

/// The families of the latest snapshot, computed once per snapshot rather than once per
/// instrument callback.
struct Cache {
    snapshot: watch::Receiver<Arc<Exposition>>,
    built: Mutex<Option<Built>>,
}

impl Cache {
    fn families(&self) -> Arc<Vec<Family>> {
        let current = Arc::clone(&self.snapshot.borrow());
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        match &*built {
            Some((seen, families)) if Arc::ptr_eq(seen, &current) => Arc::clone(families),
            _ => {
                let families = Arc::new(exposition::families(&current.snapshot));
                *built = Some((current, Arc::clone(&families)));
                families
            }
        }
    }
}

/// A running pusher. [`Pusher::run`] waits for shutdown, then flushes and stops it.
pub struct Pusher {
    provider: SdkMeterProvider,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher").finish_non_exhaustive()
    }
}

/// Starts the push that the `otlp` section (`None`: absent) and the OpenTelemetry variables of
/// `env` ask for, or returns `None` when neither names an endpoint. Must run inside a tokio
/// runtime: the gRPC channel is created on it. A config reload calls it again with the new
/// section and stops the old pusher.
pub fn start(
    config: Option<&OtlpConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    sources: Sources,
) -> Result<Option<Pusher>, OtlpError> {
    let Some(settings) = resolve_otlp(config, env).map_err(OtlpError::Settings)? else {
        return Ok(None);
    };
    let pusher = start_with(&settings, sources)?;
    tracing::info!(
        endpoint = %settings.endpoint,
        protocol = settings.protocol.as_str(),
        interval = %humantime::format_duration(settings.interval),
        "pushing metrics over OTLP"
    );
    Ok(Some(pusher))
}

fn start_with(config: &OtlpSettings, sources: Sources) -> Result<Pusher, OtlpError> {
    let build_err = |cause| OtlpError::Build {
        endpoint: config.endpoint.clone(),
        cause,
    };
    let exporter = match config.protocol {
        OtlpProtocol::Grpc => {
            let mut headers = axum::http::HeaderMap::new();
            for (name, value) in &config.headers {
                let header = || OtlpError::Header(name.clone());
                let key = axum::http::HeaderName::try_from(name.as_str()).map_err(|_| header())?;
                let value =
                    axum::http::HeaderValue::try_from(value.as_str()).map_err(|_| header())?;
                headers.insert(key, value);
            }
            let metadata =
                opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
            let builder = MetricExporter::builder()
                .with_tonic()
                .with_endpoint(&config.endpoint)
                .with_metadata(metadata);
            let builder = if config.endpoint.starts_with("https://") {
                // Without roots of its own, tonic's TLS trusts nothing: take the system's, as
                // the http/protobuf client does (SSL_CERT_FILE and SSL_CERT_DIR are honoured).
                builder.with_tls_config(ClientTlsConfig::new().with_native_roots())
            } else {
                builder
            };
            builder.build().map_err(build_err)?
        }
        OtlpProtocol::HttpProtobuf => {
            let headers: HashMap<String, String> = config.headers.clone().into_iter().collect();
            MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(&config.endpoint)
                .with_headers(headers)
                .build()
                .map_err(build_err)?
        }
    };
    let reader = PeriodicReader::builder(exporter)
        .with_interval(config.interval)
        .build();
    // Not `Resource::builder()`: it reads the process environment itself, after the defaults.
    let resource = Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(
            config
                .resource
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .build();
    // The SDK folds series beyond 2000 per instrument into an overflow set by default.
    let limit = sources.max_series.max(2000) + 1;
    let provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader)
        .with_view(move |_: &Instrument| {
            Stream::builder().with_cardinality_limit(limit).build().ok()
        })
        .build();
    let meter = provider.meter(SCOPE);
    let cache = Arc::new(Cache {
        snapshot: sources.snapshot,
        built: Mutex::new(None),
    });
    for (name, help) in exposition::data_metrics() {
        let cache = Arc::clone(&cache);
        let wanted = name.clone();
        // The instrument lives as long as the provider; the handle itself is not needed.
        let _gauge = meter
            .f64_observable_gauge(name)
            .with_description(help)
            .with_callback(move |observer| {
                let families = cache.families();
                let Some(family) = families.iter().find(|f| f.name == wanted) else {
                    return;
                };
                for point in &family.points {
                    let attributes: Vec<KeyValue> = point
                        .labels
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                        .collect();
                    observer.observe(point.value, &attributes);
                }
            })
            .build();
    }
    observe_self_metrics(&meter, sources.metrics, Arc::new(sources.targets));
    Ok(Pusher { provider })
}

fn observe_self_metrics(meter: &Meter, metrics: SelfMetrics, targets: Arc<Vec<String>>) {
    let (m, t) = (metrics.clone(), Arc::clone(&targets));
    let _up = meter
        .i64_observable_gauge(format!("{PREFIX}_up"))
        .with_description(UP_HELP)
        .with_callback(move |observer| {
            for target in t.iter() {
                if let Some(up) = m.up_of(target) {
                    observer.observe(up, &[KeyValue::new("target", target.clone())]);
                }
            }
        })
        .build();
    let (m, t) = (metrics.clone(), Arc::clone(&targets));
    let _query_interval = meter
        .f64_observable_gauge(format!("{PREFIX}_query_interval_seconds"))
        .with_description(QUERY_INTERVAL_HELP)
        .with_callback(move |observer| {
            for target in t.iter() {
                if let Some(seconds) = m.query_interval_of(target) {
                    observer.observe(seconds, &[KeyValue::new("target", target.clone())]);
                }
            }
        })
        .build();
    let m = metrics.clone();
    let _last_success = meter
        .f64_observable_gauge(format!("{PREFIX}_last_success_timestamp_seconds"))
        .with_description(LAST_SUCCESS_HELP)
        .with_callback(move |observer| {
            for target in targets.iter() {
                if let Some(at) = m.last_success_of(target) {
                    observer.observe(at, &[KeyValue::new("target", target.clone())]);
                }
            }
        })
        .build();
    let _callbacks = meter
        .u64_observable_counter(format!("{PREFIX}_callbacks_total"))
        .with_description(CALLBACKS_HELP)
        .with_callback(move |observer| {
            for (outcome, count) in metrics.callbacks_by_outcome() {
                observer.observe(count, &[KeyValue::new("outcome", outcome)]);
            }
        })
        .build();
}

impl Pusher {
    /// Waits for `shutdown`, then pushes a last time and stops. The SDK blocks while it
    /// exports, so that happens off the async workers.
    pub async fn run(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        let provider = self.provider;
        let stopped = tokio::task::spawn_blocking(move || {
            if let Err(err) = provider.force_flush() {
                tracing::warn!("OTLP: the last push failed: {err}");
            }
            provider.shutdown()
        })
        .await;
        match stopped {
            Ok(Ok(())) => tracing::debug!("OTLP pusher stopped"),
            Ok(Err(err)) => tracing::warn!("OTLP: stopping the pusher failed: {err}"),
            Err(err) => tracing::error!("OTLP: the stopping task failed: {err}"),
        }
    }
}
