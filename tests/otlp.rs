//! OTLP push against in-test receivers (gRPC with tonic, also behind TLS; HTTP/protobuf decoded
//! with prost on an axum route): the pushed data metrics and self-metrics carry the same names,
//! attributes and values as /metrics, and the OpenTelemetry environment variables alone set up
//! the push.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use common::{Proc, WAIT, parse, scrape};
use infobip_billing_exporter::config::{
    ApiKey, BudgetConfig, BudgetMatch, Config, OtlpConfig, OtlpProtocol,
};
use infobip_billing_exporter::daemon;
use infobip_billing_exporter::simulator::{Simulator, SimulatorOptions};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Identity, ServerTlsConfig};

/// What a receiver got: every request, and the `x-…` headers of the last one.
#[derive(Debug, Default, Clone)]
struct Received {
    requests: Vec<ExportMetricsServiceRequest>,
    headers: BTreeMap<String, String>,
}

/// The `x-…` headers (the ones the tests set) of a request.
fn x_headers(headers: &axum::http::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-"))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect()
}

#[derive(Clone)]
struct Grpc(watch::Sender<Received>);

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = x_headers(&request.metadata().clone().into_headers());
        self.0.send_modify(|r| {
            r.requests.push(request.into_inner());
            r.headers = headers;
        });
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

/// A gRPC receiver, behind TLS with `tls`.
async fn grpc_receiver(
    shutdown: CancellationToken,
    tls: Option<Identity>,
) -> (SocketAddr, watch::Receiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(Received::default());
    let mut server = tonic::transport::Server::builder();
    if let Some(identity) = tls {
        server = server
            .tls_config(ServerTlsConfig::new().identity(identity))
            .unwrap();
    }
    tokio::spawn(
        server
            .add_service(MetricsServiceServer::new(Grpc(tx)))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                shutdown.cancelled_owned(),
            ),
    );
    (addr, rx)
}

async fn http_receiver(shutdown: CancellationToken) -> (SocketAddr, watch::Receiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(Received::default());
    let route = axum::routing::post(
        move |headers: axum::http::HeaderMap, body: Bytes| async move {
            let Ok(request) = ExportMetricsServiceRequest::decode(body) else {
                return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
            };
            let headers = x_headers(&headers);
            tx.send_modify(|r| {
                r.requests.push(request);
                r.headers = headers;
            });
            let reply = ExportMetricsServiceResponse {
                partial_success: None,
            };
            (axum::http::StatusCode::OK, reply.encode_to_vec())
        },
    );
    let router = axum::Router::new().route("/v1/metrics", route);
    tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .into_future(),
    );
    (addr, rx)
}

/// metric name → {(attributes, value)} of one export request.
type Points = BTreeMap<String, BTreeSet<(Vec<(String, String)>, u64)>>;

const SELF_PREFIX: &str = "infobip_billing_exporter_";
/// The exporter's own metrics that are pushed beside the data metrics.
const PUSHED_SELF_METRICS: [&str; 4] = [
    "infobip_billing_exporter_up",
    "infobip_billing_exporter_last_success_timestamp_seconds",
    "infobip_billing_exporter_query_interval_seconds",
    "infobip_billing_exporter_callbacks_total",
];

/// The data metrics of one export request.
fn pushed(request: &ExportMetricsServiceRequest) -> Points {
    let mut points = all_pushed(request).0;
    points.retain(|name, _| !name.starts_with(SELF_PREFIX));
    points
}

/// Every metric of one export request (values as f64 bits), and each one's description.
fn all_pushed(request: &ExportMetricsServiceRequest) -> (Points, BTreeMap<String, String>) {
    let mut points = Points::new();
    let mut descriptions = BTreeMap::new();
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let data_points = match &m.data {
                    Some(metric::Data::Gauge(gauge)) => &gauge.data_points,
                    Some(metric::Data::Sum(sum)) if sum.is_monotonic => {
                        assert!(m.name.ends_with("_total"), "{} is a counter", m.name);
                        &sum.data_points
                    }
                    other => panic!("{} is {other:?}", m.name),
                };
                descriptions.insert(m.name.clone(), m.description.clone());
                let entry = points.entry(m.name.clone()).or_default();
                for p in data_points {
                    let mut attrs: Vec<(String, String)> = p
                        .attributes
                        .iter()
                        .map(|kv| {
                            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(any_value::Value::StringValue(s)) => s.clone(),
                                other => panic!("attribute {} is {other:?}", kv.key),
                            };
                            (kv.key.clone(), value)
                        })
                        .collect();
                    attrs.sort();
                    let v = match p.value {
                        Some(number_data_point::Value::AsDouble(v)) => v,
                        Some(number_data_point::Value::AsInt(v)) => v as f64,
                        None => panic!("{} has no value", m.name),
                    };
                    entry.insert((attrs, v.to_bits()));
                }
            }
        }
    }
    points.retain(|_, p| !p.is_empty());
    (points, descriptions)
}

fn resource(request: &ExportMetricsServiceRequest) -> BTreeMap<String, String> {
    request.resource_metrics[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some((kv.key.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// The data metrics of a scrape, in the same shape.
fn scraped(text: &str) -> Points {
    let mut points = scraped_all(text);
    points.retain(|name, _| !name.starts_with(SELF_PREFIX));
    points
}

/// The self-metrics that are pushed, as a scrape shows them.
fn scraped_self(text: &str) -> Points {
    let mut points = scraped_all(text);
    points.retain(|name, _| PUSHED_SELF_METRICS.contains(&name.as_str()));
    points
}

/// `# HELP` of `metric` in a scrape (OpenMetrics names a counter's family without `_total`).
fn help(text: &str, metric: &str) -> String {
    let family = metric.strip_suffix("_total").unwrap_or(metric);
    let prefixes = [format!("# HELP {metric} "), format!("# HELP {family} ")];
    text.lines()
        .find_map(|l| prefixes.iter().find_map(|p| l.strip_prefix(p.as_str())))
        .unwrap_or_else(|| panic!("no HELP for {metric}"))
        .to_owned()
}

fn scraped_all(text: &str) -> Points {
    let mut points = Points::new();
    for s in parse(text) {
        let value: f64 = s.value.try_into().unwrap();
        points
            .entry(s.name)
            .or_default()
            .insert((s.labels.into_iter().collect(), value.to_bits()));
    }
    points
}

async fn pushes_what_metrics_serves(protocol: OtlpProtocol) {
    let receivers = CancellationToken::new();
    let (addr, mut received) = match protocol {
        OtlpProtocol::Grpc => grpc_receiver(receivers.clone(), None).await,
        OtlpProtocol::HttpProtobuf => http_receiver(receivers.clone()).await,
    };
    let endpoint = match protocol {
        OtlpProtocol::Grpc => format!("http://{addr}"),
        OtlpProtocol::HttpProtobuf => format!("http://{addr}/v1/metrics"),
    };
    let state = tempfile::tempdir().unwrap();
    let (demo, shutdown) = common::started_demo(&state, SimulatorOptions::default(), |c| {
        c.metrics.budgets = vec![BudgetConfig {
            name: "sms".into(),
            monthly: "250".parse().unwrap(),
            currency: "EUR".into(),
            matcher: BudgetMatch {
                channel: Some("sms".into()),
                ..Default::default()
            },
        }];
        c.metrics.otlp = Some(OtlpConfig {
            endpoint: Some(endpoint),
            protocol: Some(protocol),
            interval: Some(Duration::from_secs(1)),
            headers: [("x-test".to_owned(), "yes".to_owned())].into(),
            headers_file: None,
        });
    })
    .await;
    let scrape_text = scrape(demo.exporter.web_addr).await;
    let expected = scraped(&scrape_text);
    // A periodic push already arrived while the exporter runs.
    tokio::time::timeout(WAIT, received.wait_for(|r| !r.requests.is_empty()))
        .await
        .expect("a push within the wait")
        .unwrap();
    // Stopping flushes once more, from the same (unchanged) snapshot as the scrape.
    common::stop_demo(demo, shutdown).await;

    let got = received.borrow().clone();
    let last = got.requests.last().unwrap();
    let pushed = pushed(last);
    for metric in [
        "infobip_billing_cost",
        "infobip_billing_month_forecast_cost",
        "infobip_billing_budget",
        "infobip_billing_budget_used_ratio",
    ] {
        assert!(expected.contains_key(metric), "{metric} scraped");
        assert_eq!(pushed.get(metric), expected.get(metric), "{metric}");
    }
    assert_eq!(pushed, expected, "every data metric");
    assert_self_metrics_as_scraped(last, &scrape_text);
    let resource = resource(last);
    assert_eq!(resource["service.name"], "infobip-billing-exporter");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(got.headers["x-test"], "yes");
    receivers.cancel();
}

/// `up`, `last_success_timestamp_seconds`, `query_interval_seconds` and `callbacks_total`: pushed
/// with the names, labels, values and HELP of the scrape.
fn assert_self_metrics_as_scraped(request: &ExportMetricsServiceRequest, scrape_text: &str) {
    let (points, descriptions) = all_pushed(request);
    let want = scraped_self(scrape_text);
    for metric in PUSHED_SELF_METRICS {
        assert!(want.contains_key(metric), "{metric} scraped");
        assert_eq!(points.get(metric), want.get(metric), "{metric}");
        // prometheus-client appends a '.' to every HELP it registers.
        assert_eq!(
            descriptions[metric].trim_end_matches('.'),
            help(scrape_text, metric).trim_end_matches('.'),
            "{metric}"
        );
    }
    let pushed_self: BTreeSet<&str> = points
        .keys()
        .map(String::as_str)
        .filter(|n| n.starts_with(SELF_PREFIX))
        .collect();
    assert_eq!(pushed_self, BTreeSet::from(PUSHED_SELF_METRICS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_push_equals_the_scrape() {
    pushes_what_metrics_serves(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_push_equals_the_scrape() {
    pushes_what_metrics_serves(OtlpProtocol::HttpProtobuf).await;
}

/// The real binary pushing over gRPC with TLS to a collector whose certificate is self-signed:
/// trusted through `SSL_CERT_FILE`, the push arrives; with another certificate there, it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_verifies_the_collector() {
    let receivers = CancellationToken::new();
    let localhost = || vec!["localhost".to_owned()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(localhost()).unwrap();
    let identity = Identity::from_pem(cert.pem(), signing_key.serialize_pem());
    let (addr, mut received) = grpc_receiver(receivers.clone(), Some(identity)).await;
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("collector.pem");
    std::fs::write(&trusted, cert.pem()).unwrap();
    let untrusted = dir.path().join("other.pem");
    let other = rcgen::generate_simple_self_signed(localhost()).unwrap();
    std::fs::write(&untrusted, other.cert.pem()).unwrap();

    let sim = Proc::spawn(&["simulator", "--listen", "127.0.0.1:0"]);
    let line = Proc::wait_line(&sim.stdout, "listening on");
    let sim_url = line.split_whitespace().last().unwrap().to_owned();
    let run = |ca: &std::path::Path| {
        let (config, _) = common::write_run_config(dir.path(), &sim_url);
        let otlp = format!(
            "otlp:\n  endpoint: https://localhost:{}\n  protocol: grpc\n  interval: 1s\n",
            addr.port()
        );
        let mut yaml = std::fs::read_to_string(&config).unwrap();
        yaml.push_str(&otlp);
        std::fs::write(&config, yaml).unwrap();
        let env = [("SSL_CERT_FILE", ca.as_os_str())];
        Proc::spawn_with_env(&["run", "--config", config.to_str().unwrap()], &env)
    };

    let mut wrong = run(&untrusted);
    Proc::wait_line(&wrong.stderr, "result applied");
    let pid = wrong.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    // The push at shutdown is the one that must get through; it cannot, and the log says why.
    Proc::wait_line(&wrong.stderr, "invalid peer certificate");
    Proc::wait_line(&wrong.stderr, "the last push failed");
    assert!(wrong.child.wait().unwrap().success());
    assert!(received.borrow().requests.is_empty(), "nothing got through");

    let right = run(&trusted);
    tokio::time::timeout(WAIT, received.wait_for(|r| !r.requests.is_empty()))
        .await
        .expect("a push within the wait")
        .unwrap();
    let pushed = pushed(received.borrow().requests.last().unwrap());
    assert!(pushed.contains_key("infobip_billing_cost"), "{pushed:?}");
    assert!(right.interrupt_and_wait().success());
    assert!(sim.interrupt_and_wait().success());
    receivers.cancel();
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` alone, without an `otlp` section, turns the push on; the
/// service name, resource attributes, headers and interval come from the environment too,
/// injected here rather than set on the test process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_alone_sets_up_the_push() {
    let receivers = CancellationToken::new();
    let (addr, mut received) = grpc_receiver(receivers.clone(), None).await;
    let env: BTreeMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-test=from%20env".to_owned()),
        ("OTEL_SERVICE_NAME", "billing-eu".to_owned()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,service.name=overridden".to_owned(),
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000".to_owned()),
    ]
    .into();
    let lookup = move |name: &str| env.get(name).cloned();

    let clock = common::november_clock();
    let shutdown = CancellationToken::new();
    let simulator = Simulator::new(SimulatorOptions::default(), clock.clone());
    let sim = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim.local_addr().unwrap());
    tokio::spawn(simulator.clone().serve(sim, shutdown.clone()));
    let web = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cb = callback.local_addr().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = Config::from_yaml(&format!(
        "targets:\n  - name: sim\n    base_url: {sim_url}\n    api_key_env: UNUSED_IN_TESTS\n\
         callback:\n  listen: {cb}\n  public_url: http://{cb}\nweb:\n  listen: 127.0.0.1:0\n\
         state_dir: {}\n",
        state.path().display()
    ))
    .unwrap();
    assert!(config.metrics.otlp.is_none(), "no otlp section");
    let key = ApiKey::new(simulator.options().api_key.clone());
    let exporter = daemon::start_with_env(
        &config,
        vec![key],
        (web, callback),
        clock,
        shutdown.clone(),
        std::sync::Arc::new(lookup),
    )
    .await
    .unwrap();
    // Every month applied and acknowledged, so the self-metrics are final too.
    tokio::time::timeout(WAIT, async {
        while simulator.stats().callbacks_delivered < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("three callbacks within the wait");
    tokio::time::timeout(WAIT, received.wait_for(|r| !r.requests.is_empty()))
        .await
        .expect("a periodic push within the wait")
        .unwrap();
    let scrape_text = scrape(exporter.web_addr).await;
    shutdown.cancel();
    tokio::time::timeout(WAIT, exporter.join())
        .await
        .expect("clean stop");

    let got = received.borrow().clone();
    let last = got.requests.last().unwrap();
    assert_eq!(pushed(last), scraped(&scrape_text), "every data metric");
    assert_self_metrics_as_scraped(last, &scrape_text);
    let resource = resource(last);
    assert_eq!(
        resource["service.name"], "billing-eu",
        "OTEL_SERVICE_NAME wins"
    );
    assert_eq!(resource["deployment.environment"], "prod");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(got.headers["x-test"], "from env");
    receivers.cancel();
}

/// README.md's "OpenTelemetry" example, run as shown (a receiver in place of the collector, and
/// any free port for /metrics): the environment alone sets up the push, and the last push
/// carries the resource and header the example sets, and the self-metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_opentelemetry_example_runs_as_shown() {
    let receivers = CancellationToken::new();
    let (addr, mut received) = grpc_receiver(receivers.clone(), None).await;
    let example = common::readme_example("## OpenTelemetry", "sh");
    let words: Vec<String> = example
        .replace("127.0.0.1:4317", &addr.to_string())
        .replace("127.0.0.1:9477", "127.0.0.1:0")
        .split_whitespace()
        .filter(|w| *w != "\\")
        .map(str::to_owned)
        .collect();
    let at = words
        .iter()
        .position(|w| w == "infobip-billing-exporter")
        .expect("the command");
    let env: Vec<(String, std::ffi::OsString)> = words[..at]
        .iter()
        .map(|w| {
            let (k, v) = w.split_once('=').expect("NAME=value");
            (k.to_owned(), v.into())
        })
        .collect();
    let env: Vec<(&str, &std::ffi::OsStr)> = env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_os_str()))
        .collect();
    let args: Vec<&str> = words[at + 1..].iter().map(String::as_str).collect();
    let demo = Proc::spawn_with_env(&args, &env);
    for _ in 0..3 {
        Proc::wait_line(&demo.stderr, "result applied");
    }
    // Stopping pushes once more, after every result.
    assert!(demo.interrupt_and_wait().success());
    tokio::time::timeout(WAIT, received.wait_for(|r| !r.requests.is_empty()))
        .await
        .expect("a push")
        .unwrap();
    let got = received.borrow().clone();
    let last = got.requests.last().unwrap();
    let resource = resource(last);
    assert_eq!(resource["service.name"], "billing-eu");
    assert_eq!(resource["deployment.environment"], "prod");
    assert_eq!(got.headers["x-scope-orgid"], "finops");
    let (points, _) = all_pushed(last);
    for metric in PUSHED_SELF_METRICS.iter().chain(&["infobip_billing_cost"]) {
        assert!(
            points.contains_key(*metric),
            "{metric} pushed: {:?}",
            points.keys()
        );
    }
    receivers.cancel();
}
