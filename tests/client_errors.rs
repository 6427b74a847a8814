//! The client's typed errors, against the simulator on loopback.

use std::sync::Arc;

use infobip_billing_exporter::billing::calendar::{Clock, DayRange, ManualClock};
use infobip_billing_exporter::config::ApiKey;
use infobip_billing_exporter::daemon::scheduler::AGGREGATE_BY;
use infobip_billing_exporter::infobip::client::{Client, ClientError};
use infobip_billing_exporter::infobip::model::{
    QueryBillingUsageApiRequest, QueryBillingUsageRequest,
};
use infobip_billing_exporter::simulator::{Faults, Simulator, SimulatorOptions};
use time::macros::{date, datetime};
use tokio_util::sync::CancellationToken;

struct Sim {
    url: String,
    shutdown: CancellationToken,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn simulator(options: SimulatorOptions) -> Sim {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(datetime!(2026-11-27 12:00 UTC)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(Simulator::new(options, clock).serve(listener, shutdown.clone()));
    Sim { url, shutdown }
}

fn query(since: time::Date, until: time::Date) -> QueryBillingUsageRequest {
    QueryBillingUsageRequest {
        // Nothing listens there: the tests only look at the submit answer.
        callback_url: "http://127.0.0.1:9/callback".into(),
        request: QueryBillingUsageApiRequest::unfiltered(
            DayRange { since, until },
            AGGREGATE_BY.to_vec(),
        ),
    }
}

fn nov() -> QueryBillingUsageRequest {
    query(date!(2026 - 11 - 01), date!(2026 - 11 - 28))
}

fn client(url: &str, key: &str) -> Client {
    Client::new(url, &ApiKey::new(key.into())).unwrap()
}

#[tokio::test]
async fn accepted_query_returns_the_request_id() {
    let sim = simulator(SimulatorOptions::default()).await;
    let id = client(&sim.url, "demo-key").submit(&nov()).await.unwrap();
    assert_eq!(id.len(), 32);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
}

#[tokio::test]
async fn wrong_key_is_unauthorized_401() {
    let sim = simulator(SimulatorOptions::default()).await;
    let err = client(&sim.url, "wrong").submit(&nov()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Unauthorized { status: 401, ref code, .. } if code == "E401"),
        "{err:?}"
    );
    assert_eq!(err.reason(), "unauthorized");
    assert!(
        !err.to_string().contains("wrong"),
        "the key never shows in messages"
    );
}

#[tokio::test]
async fn key_without_scope_is_unauthorized_403() {
    let sim = simulator(SimulatorOptions {
        unscoped_api_key: Some("no-scope".into()),
        ..Default::default()
    })
    .await;
    let err = client(&sim.url, "no-scope")
        .submit(&nov())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn reversed_dates_are_a_validation_error_with_violations() {
    let sim = simulator(SimulatorOptions::default()).await;
    let err = client(&sim.url, "demo-key")
        .submit(&query(date!(2026 - 11 - 20), date!(2026 - 11 - 10)))
        .await
        .unwrap_err();
    let ClientError::Validation { violations, .. } = &err else {
        panic!("expected a validation error, got {err:?}");
    };
    assert!(
        violations
            .iter()
            .any(|v| v.property.starts_with("request.filterBy.dateInterval")),
        "{violations:?}"
    );
    assert_eq!(err.reason(), "invalid_request");
}

#[tokio::test]
async fn server_errors_are_typed() {
    let sim = simulator(SimulatorOptions {
        faults: Faults {
            server_error_ratio: 1.0,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let err = client(&sim.url, "demo-key")
        .submit(&nov())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Server { status: 500, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn throttling_carries_retry_after() {
    // Two requests per second: back-to-back requests outrun the refill even on a loaded machine.
    let sim = simulator(SimulatorOptions {
        requests_per_second: 2,
        ..Default::default()
    })
    .await;
    let c = client(&sim.url, "demo-key");
    let mut throttled = None;
    for _ in 0..300 {
        if let Err(err) = c.submit(&nov()).await {
            throttled = Some(err);
            break;
        }
    }
    let err = throttled.expect("a 429 within 300 quick requests");
    assert!(
        matches!(err, ClientError::Throttled { retry_after: Some(d) } if d.as_secs() == 1),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_host_is_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = client(&format!("http://127.0.0.1:{port}"), "k")
        .submit(&nov())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Network(_)), "{err:?}");
    assert_eq!(err.status(), None);
}
