//! OTLP push against in-test receivers (gRPC with tonic, also behind TLS; HTTP/protobuf decoded
//! with prost on an axum route): the pushed data metrics carry the same names, attributes and
//! values as /metrics.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use common::{Proc, WAIT, parse, scrape};
use infobip_billing_exporter::config::{BudgetConfig, BudgetMatch, OtlpConfig, OtlpProtocol};
use infobip_billing_exporter::simulator::SimulatorOptions;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Identity, ServerTlsConfig};

/// What a receiver got: every request, and the `x-test` header of the last one.
#[derive(Debug, Default, Clone)]
struct Received {
    requests: Vec<ExportMetricsServiceRequest>,
    header: Option<String>,
}

#[derive(Clone)]
struct Grpc(watch::Sender<Received>);

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let header = request
            .metadata()
            .get("x-test")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.0.send_modify(|r| {
            r.requests.push(request.into_inner());
            r.header = header;
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
            let header = headers
                .get("x-test")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            tx.send_modify(|r| {
                r.requests.push(request);
                r.header = header;
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

fn pushed(request: &ExportMetricsServiceRequest) -> Points {
    let mut points = Points::new();
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let Some(metric::Data::Gauge(gauge)) = &m.data else {
                    panic!("{} is not a gauge", m.name);
                };
                let entry = points.entry(m.name.clone()).or_default();
                for p in &gauge.data_points {
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
                    let Some(number_data_point::Value::AsDouble(v)) = p.value else {
                        panic!("{} has no double value", m.name);
                    };
                    entry.insert((attrs, v.to_bits()));
                }
            }
        }
    }
    points.retain(|_, p| !p.is_empty());
    points
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
    let mut points = Points::new();
    for s in parse(text) {
        if s.name.starts_with("infobip_billing_exporter_") {
            continue;
        }
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
            endpoint,
            protocol,
            interval: Duration::from_secs(1),
            headers: [("x-test".to_owned(), "yes".to_owned())].into(),
        });
    })
    .await;
    let expected = scraped(&scrape(demo.exporter.web_addr).await);
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
    let resource = resource(last);
    assert_eq!(resource["service.name"], "infobip-billing-exporter");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(got.header.as_deref(), Some("yes"));
    receivers.cancel();
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
