//! Authentication and authorization of the simulated query endpoint (reference §2, A12).

mod simulator_support;

use infobip_billing_exporter::simulator::SimulatorOptions;
use simulator_support::*;
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-04-10 12:00 UTC);

fn body() -> String {
    query(
        "http://127.0.0.1:9/cb",
        "2026-04-01",
        "2026-04-05",
        &["DAY"],
    )
    .to_string()
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_valid(&answer.body, "ApiError");
    assert_eq!(answer.body["errorCode"], code);
    let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "all five ApiError keys: {keys:?}");
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn missing_or_malformed_or_wrong_credentials_get_401() {
    let run = start(fast(), NOW).await;
    for auth in [
        None,
        Some(""),
        Some("demo-key"),
        Some("App"),
        Some("App "),
        Some("Bearer demo-key"),
        Some("Basic ZGVtbzprZXk="),
        Some("App wrong-key"),
        Some("App demo-key-but-longer"),
    ] {
        let answer = post_raw(&run.base, auth, body()).await;
        assert_error(&answer, 401, "E401");
        assert_eq!(
            answer.body["resources"][0]["name"], "API Authentication",
            "{auth:?}"
        );
    }
    assert_eq!(run.sim.stats().rejected_with(401), 9);
    assert_eq!(run.sim.stats().queries_accepted, 0);
}

#[tokio::test]
async fn key_without_scope_gets_403() {
    let opts = SimulatorOptions {
        unscoped_api_key: Some("no-billing-scope".into()),
        ..fast()
    };
    let run = start(opts, NOW).await;
    let answer = post_raw(&run.base, Some("App no-billing-scope"), body()).await;
    assert_error(&answer, 403, "E403");
    assert_eq!(answer.body["resources"][0]["name"], "API Scopes");
    assert_eq!(run.sim.stats().rejected_with(403), 1);
}

#[tokio::test]
async fn valid_key_gets_201_with_a_32_hex_request_id() {
    let opts = SimulatorOptions {
        api_key: "s3cret".into(),
        ..fast()
    };
    let run = start(opts, NOW).await;
    // The scheme is case-insensitive; the key is not.
    for auth in ["App s3cret", "app s3cret"] {
        let answer = post_raw(&run.base, Some(auth), body()).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_valid(&answer.body, "QueryAggregateDataResponse");
        let id = answer.body["requestId"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)),
            "{id}"
        );
    }
    assert_eq!(
        post_raw(&run.base, Some("App S3CRET"), body()).await.status,
        401
    );
}
