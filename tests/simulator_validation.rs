//! Request validation: one case per rule, each asserting the violation's property path
//! (reference §3, §9, A2, A3, A7, A11, A22, A23).

mod simulator_support;

use serde_json::{Value, json};
use simulator_support::*;
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-04-10 12:00 UTC);

fn valid() -> Value {
    query(
        "http://127.0.0.1:9/cb",
        "2026-04-01",
        "2026-04-05",
        &["DAY", "CATEGORY_CODE"],
    )
}

/// Posts `body`, expects a schema-valid 400 E400, returns the violated properties.
async fn violations(body: impl Into<reqwest::Body>) -> Vec<String> {
    violations_at(NOW, body).await
}

async fn violations_at(now: time::OffsetDateTime, body: impl Into<reqwest::Body>) -> Vec<String> {
    let run = start(fast(), now).await;
    let answer = post_raw(&run.base, Some("App demo-key"), body).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_valid(&answer.body, "ApiError");
    assert_eq!(answer.body["errorCode"], "E400");
    assert_eq!(answer.body["description"], "Request cannot be processed.");
    assert_eq!(run.sim.stats().rejected_with(400), 1);
    assert_eq!(run.sim.stats().queries_accepted, 0);
    answer.body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert!(!v["violation"].as_str().unwrap().is_empty());
            v["property"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn with(mut body: Value, pointer: &str, value: Value) -> String {
    *body.pointer_mut(pointer).unwrap() = value;
    body.to_string()
}

fn without(mut body: Value, parent: &str, key: &str) -> String {
    body.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    body.to_string()
}

fn with_filter(key: &str, value: Value) -> String {
    let mut body = valid();
    body["request"]["filterBy"][key] = value;
    body.to_string()
}

#[tokio::test]
async fn the_valid_baseline_is_accepted() {
    let run = start(fast(), NOW).await;
    assert_eq!(post(&run.base, &valid()).await.status, 201);
}

#[tokio::test]
async fn invalid_json() {
    assert_eq!(violations("{\"callbackUrl\": ").await, ["body"]);
    assert_eq!(violations("[]").await, ["body"]);
}

#[tokio::test]
async fn missing_callback_url() {
    assert_eq!(
        violations(without(valid(), "", "callbackUrl")).await,
        ["callbackUrl"]
    );
}

#[tokio::test]
async fn empty_callback_url() {
    assert_eq!(
        violations(with(valid(), "/callbackUrl", json!(""))).await,
        ["callbackUrl"]
    );
    assert_eq!(
        violations(with(valid(), "/callbackUrl", json!("not a url"))).await,
        ["callbackUrl"]
    );
}

#[tokio::test]
async fn missing_request() {
    assert_eq!(
        violations(without(valid(), "", "request")).await,
        ["request"]
    );
}

#[tokio::test]
async fn missing_filter_by() {
    assert_eq!(
        violations(without(valid(), "/request", "filterBy")).await,
        ["request.filterBy"]
    );
}

#[tokio::test]
async fn missing_date_interval() {
    assert_eq!(
        violations(without(valid(), "/request/filterBy", "dateInterval")).await,
        ["request.filterBy.dateInterval"]
    );
}

#[tokio::test]
async fn missing_aggregate_by() {
    assert_eq!(
        violations(without(valid(), "/request", "aggregateBy")).await,
        ["request.aggregateBy"]
    );
}

#[tokio::test]
async fn empty_aggregate_by() {
    assert_eq!(
        violations(with(valid(), "/request/aggregateBy", json!([]))).await,
        ["request.aggregateBy"]
    );
}

#[tokio::test]
async fn unknown_aggregate_by_code() {
    assert_eq!(
        violations(with(
            valid(),
            "/request/aggregateBy",
            json!(["DAY", "HOUR"])
        ))
        .await,
        ["request.aggregateBy[1]"]
    );
}

#[tokio::test]
async fn duplicate_aggregate_by() {
    assert_eq!(
        violations(with(
            valid(),
            "/request/aggregateBy",
            json!(["DAY", "SENDER", "DAY"])
        ))
        .await,
        ["request.aggregateBy[2]"]
    );
}

#[tokio::test]
async fn day_and_month_together() {
    assert_eq!(
        violations(with(
            valid(),
            "/request/aggregateBy",
            json!(["DAY", "MONTH"])
        ))
        .await,
        ["request.aggregateBy"]
    );
}

#[tokio::test]
async fn unknown_category() {
    assert_eq!(
        violations(with_filter("categories", json!(["SMS", "TELEGRAM"]))).await,
        ["request.filterBy.categories[1]"]
    );
}

#[tokio::test]
async fn unknown_sub_category() {
    assert_eq!(
        violations(with_filter("subCategories", json!(["VIBER_CHANNELS"]))).await,
        ["request.filterBy.subCategories[0]"]
    );
}

#[tokio::test]
async fn unknown_direction() {
    assert_eq!(
        violations(with_filter("directions", json!(["SIDEWAYS"]))).await,
        ["request.filterBy.directions[0]"]
    );
}

#[tokio::test]
async fn non_array_filter_values() {
    // The Postman collection's bare string (A7) is refused.
    assert_eq!(
        violations(with_filter("categories", json!("AI"))).await,
        ["request.filterBy.categories"]
    );
    assert_eq!(
        violations(with_filter("senders", json!({"a": 1}))).await,
        ["request.filterBy.senders"]
    );
    assert_eq!(
        violations(with_filter("campaignIds", json!(["754564654689"]))).await,
        ["request.filterBy.campaignIds[0]"]
    );
}

#[tokio::test]
async fn duplicate_filter_values() {
    assert_eq!(
        violations(with_filter("countryCodes", json!(["DE", "DE"]))).await,
        ["request.filterBy.countryCodes[1]"]
    );
}

#[tokio::test]
async fn dates_not_yyyy_mm_dd() {
    let body = with(
        valid(),
        "/request/filterBy/dateInterval",
        json!({"sentSince": "2026/04/01", "sentUntil": "2026-04-05T00:00:00Z"}),
    );
    assert_eq!(
        violations(body).await,
        [
            "request.filterBy.dateInterval.sentSince",
            "request.filterBy.dateInterval.sentUntil"
        ]
    );
    let body = with(
        valid(),
        "/request/filterBy/dateInterval",
        json!({"sentSince": "2026-02-30", "sentUntil": 20260405}),
    );
    assert_eq!(
        violations(body).await,
        [
            "request.filterBy.dateInterval.sentSince",
            "request.filterBy.dateInterval.sentUntil"
        ]
    );
}

#[tokio::test]
async fn missing_dates() {
    let body = with(valid(), "/request/filterBy/dateInterval", json!({}));
    assert_eq!(
        violations(body).await,
        [
            "request.filterBy.dateInterval.sentSince",
            "request.filterBy.dateInterval.sentUntil"
        ]
    );
}

#[tokio::test]
async fn sent_until_not_after_sent_since() {
    for (since, until) in [("2026-04-05", "2026-04-05"), ("2026-04-05", "2026-04-01")] {
        let body = with(
            valid(),
            "/request/filterBy/dateInterval",
            json!({"sentSince": since, "sentUntil": until}),
        );
        assert_eq!(violations(body).await, ["request.filterBy.dateInterval"]);
    }
}

#[tokio::test]
async fn span_over_three_calendar_months() {
    // 15 Feb to 16 May touches four months, and May is also beyond the current month.
    let body = with(
        valid(),
        "/request/filterBy/dateInterval",
        json!({"sentSince": "2026-02-15", "sentUntil": "2026-05-16"}),
    );
    let props = violations(body).await;
    assert!(
        props.contains(&"request.filterBy.dateInterval".to_owned()),
        "{props:?}"
    );
    // Inside retention a range can never touch more than three months, so the span violation
    // always comes with a retention one: here 31 March (out of retention on 10 June) to June.
    let body = with(
        valid(),
        "/request/filterBy/dateInterval",
        json!({"sentSince": "2026-03-31", "sentUntil": "2026-07-01"}),
    );
    let props = violations_at(datetime!(2026-06-10 0:00 UTC), body).await;
    assert_eq!(
        props,
        [
            "request.filterBy.dateInterval",
            "request.filterBy.dateInterval.sentSince"
        ]
    );
}

#[tokio::test]
async fn sent_since_before_retention() {
    // On 10 April, retention starts on 1 February.
    let body = with(
        valid(),
        "/request/filterBy/dateInterval",
        json!({"sentSince": "2026-01-31", "sentUntil": "2026-02-05"}),
    );
    assert_eq!(
        violations(body).await,
        ["request.filterBy.dateInterval.sentSince"]
    );
    let run = start(fast(), NOW).await;
    let body = with(
        valid(),
        "/request/filterBy/dateInterval/sentSince",
        json!("2026-02-01"),
    );
    assert_eq!(
        post_raw(&run.base, Some("App demo-key"), body).await.status,
        201
    );
}

#[tokio::test]
async fn retention_crosses_the_year_boundary() {
    let now = datetime!(2026-02-10 0:00 UTC);
    let body = query(
        "http://127.0.0.1:9/cb",
        "2025-11-30",
        "2025-12-05",
        &["DAY"],
    )
    .to_string();
    assert_eq!(
        violations_at(now, body).await,
        ["request.filterBy.dateInterval.sentSince"]
    );
    let run = start(fast(), now).await;
    let body = query(
        "http://127.0.0.1:9/cb",
        "2025-12-01",
        "2025-12-05",
        &["DAY"],
    );
    assert_eq!(post(&run.base, &body).await.status, 201);
}

#[tokio::test]
async fn sent_until_beyond_the_current_month() {
    let body = with(
        valid(),
        "/request/filterBy/dateInterval/sentUntil",
        json!("2026-05-02"),
    );
    assert_eq!(
        violations(body).await,
        ["request.filterBy.dateInterval.sentUntil"]
    );
    // The exclusive end of the current month is fine.
    let run = start(fast(), NOW).await;
    let body = with(
        valid(),
        "/request/filterBy/dateInterval/sentUntil",
        json!("2026-05-01"),
    );
    assert_eq!(
        post_raw(&run.base, Some("App demo-key"), body).await.status,
        201
    );
}

#[tokio::test]
async fn empty_platform_object() {
    assert_eq!(
        violations(with_filter(
            "platforms",
            json!([{"applicationId": "app_a"}, {}])
        ))
        .await,
        ["request.filterBy.platforms[1]"]
    );
}

#[tokio::test]
async fn empty_filter_lists_mean_no_filter() {
    let run = start(fast(), NOW).await;
    let body = with_filter("categories", json!([]));
    assert_eq!(
        post_raw(&run.base, Some("App demo-key"), body).await.status,
        201
    );
}

#[tokio::test]
async fn options_must_be_typed() {
    let mut body = valid();
    body["request"]["options"] = json!({"includeUnfinalizedData": "no"});
    assert_eq!(
        violations(body.to_string()).await,
        ["request.options.includeUnfinalizedData"]
    );
}

#[tokio::test]
async fn several_problems_give_several_violations() {
    let body = json!({
        "callbackUrl": "",
        "request": {
            "filterBy": {
                "dateInterval": { "sentSince": "2026-04-05", "sentUntil": "2026-04-01" },
                "categories": ["SMS", "FAX"],
                "directions": "OUTBOUND"
            },
            "aggregateBy": ["DAY", "MONTH", "DAY"]
        }
    });
    assert_eq!(
        violations(body.to_string()).await,
        [
            "callbackUrl",
            "request.filterBy.dateInterval",
            "request.filterBy.categories[1]",
            "request.filterBy.directions",
            "request.aggregateBy[2]",
            "request.aggregateBy",
        ]
    );
}
