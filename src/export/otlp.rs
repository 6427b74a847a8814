//! Pushes the data metrics over OTLP (gRPC or HTTP/protobuf), as the same families /metrics
//! serves: [`exposition::families`] feeds both, so names, attributes and values cannot drift.
//!
//! Names keep Prometheus' underscores (`infobip_billing_cost`, attribute `account_key`) rather
//! than OTel's dotted style: the same PromQL, dashboards and alert rules then work whether the
//! data arrives by scrape or through a collector, and a collector's Prometheus exporter needs no
//! renaming. Every instrument is an observable gauge that reads the latest snapshot when the
//! periodic reader collects; nothing here calls Infobip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{
    MetricExporter, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{Instrument, PeriodicReader, SdkMeterProvider, Stream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{OtlpConfig, OtlpProtocol};
use crate::export::exposition::{self, Exposition, Family};

/// The instrumentation scope of every pushed metric.
const SCOPE: &str = "infobip-billing-exporter";

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("cannot set up the OTLP exporter for {endpoint}: {source}")]
    Build {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("otlp.headers.{0} cannot be sent as gRPC metadata; expected an ASCII name and value")]
    Header(String),
}

impl OtlpError {
    pub fn reason(&self) -> &'static str {
        match self {
            OtlpError::Build { .. } => "build",
            OtlpError::Header(_) => "header",
        }
    }
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

/// Builds the exporter and starts pushing every `config.interval`. Must run inside a tokio
/// runtime: the gRPC channel is created on it. `max_series` sizes the SDK's per-instrument
/// cardinality limit so that no series lands in its overflow bucket.
pub fn start(
    config: &OtlpConfig,
    snapshot: watch::Receiver<Arc<Exposition>>,
    max_series: usize,
) -> Result<Pusher, OtlpError> {
    let build_err = |source| OtlpError::Build {
        endpoint: config.endpoint.clone(),
        source,
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
    let resource = Resource::builder()
        .with_service_name(SCOPE)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    // The SDK folds series beyond 2000 per instrument into an overflow set by default.
    let limit = max_series.max(2000) + 1;
    let provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader)
        .with_view(move |_: &Instrument| {
            Stream::builder().with_cardinality_limit(limit).build().ok()
        })
        .build();
    let meter = provider.meter(SCOPE);
    let cache = Arc::new(Cache {
        snapshot,
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
    Ok(Pusher { provider })
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
