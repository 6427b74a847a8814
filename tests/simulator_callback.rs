//! The accepted query and its callback: shape, columns, periods, delivery (reference §3.5, §5).

mod simulator_support;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::json;
use simulator_support::*;
use time::macros::datetime;

#[tokio::test]
async fn callback_arrives_with_documented_columns_and_billing_periods() {
    let run = start(fast(), datetime!(2026-04-10 12:00 UTC)).await;
    let mut sink = sink(200).await;
    let body = query(
        &sink.url,
        "2026-03-20",
        "2026-04-05",
        &["DAY", "TRAFFIC_TYPE"],
    );
    let (id, received) = submit_and_receive(&run, &mut sink, &body).await;

    // Posted exactly to the URL given, as JSON, without credentials (A15).
    assert_eq!(received.path, "/hooks/billing/secret-token");
    assert_eq!(received.headers["content-type"], "application/json");
    assert!(received.headers.get("authorization").is_none());
    let value = received.json();
    assert_valid(&value, "BillingUsageResult");

    let result = received.result();
    assert_eq!(result.request_id, id);
    let response = result.response.as_ref().unwrap();
    let names: Vec<&str> = response
        .columns
        .iter()
        .map(|c| c.column_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ACCOUNT_NAME",
            "CATEGORY_CODE",
            "DAY",
            "TRAFFIC_TYPE",
            "UNIT_TYPE",
            "UNIT_PRICE",
            "QUANTITY",
            "TOTAL_PER_UNIT",
            "CURRENCY"
        ]
    );
    let types: Vec<&str> = value["response"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["columnDataType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "STRING",
            "STRING",
            "DATE_TIME",
            "STRING",
            "STRING",
            "NUMBER",
            "NUMBER",
            "NUMBER",
            "STRING"
        ]
    );
    assert_eq!(response.total_rows as usize, response.rows.len());
    assert!(!response.rows.is_empty());
    assert_eq!(
        value["response"]["requestedPeriod"],
        json!({"sentSince": "2026-03-20T00:00:00.000+0000", "sentUntil": "2026-04-05T00:00:00.000+0000"})
    );
    assert_eq!(
        value["metadata"]["clientRequestedPeriod"],
        value["response"]["requestedPeriod"]
    );
    // March is final from 5 April; April is not.
    assert_eq!(
        value["metadata"]["billingPeriods"],
        json!([{"month": "2026-03", "volumeFinalized": true}, {"month": "2026-04", "volumeFinalized": false}])
    );
    // DAY cells are bucket starts in Infobip's format (A5), numbers are JSON numbers (A16).
    let first = &value["response"]["rows"][0];
    assert_eq!(first[2], "2026-03-20T00:00:00.000+0000");
    assert!(first[5].is_number() && first[6].is_number() && first[7].is_number());

    // TOTAL_PER_UNIT = UNIT_PRICE × QUANTITY, half-up to 2 places (A17).
    let (p, q, t) = (
        column(&result, "UNIT_PRICE"),
        column(&result, "QUANTITY"),
        column(&result, "TOTAL_PER_UNIT"),
    );
    for row in &response.rows {
        let expected = (number(&row[p]) * number(&row[q]))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(number(&row[t]), expected);
        assert!(number(&row[q]) > Decimal::ZERO);
    }

    let stats = wait_stats(&run.sim, |s| s.callbacks_delivered == 1).await;
    assert_eq!(stats.queries_accepted, 1);
    let deliveries = run.sim.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].request_id, id);
    assert_eq!(deliveries[0].callback_url, sink.url);
    assert_eq!(deliveries[0].status, Some(200));
    assert_eq!(deliveries[0].body, received.body);
    assert!(!deliveries[0].malformed);
}

#[tokio::test]
async fn explicit_pairs_keep_request_order() {
    let run = start(fast(), datetime!(2026-04-10 12:00 UTC)).await;
    let mut sink = sink(200).await;
    let body = query(
        &sink.url,
        "2026-04-01",
        "2026-04-04",
        &["DAY", "ACCOUNT_NAME", "ACCOUNT_KEY", "CATEGORY_CODE"],
    );
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    let result = received.result();
    let names: Vec<String> = result
        .response
        .unwrap()
        .columns
        .into_iter()
        .map(|c| c.column_name)
        .collect();
    assert_eq!(
        names[..4],
        ["DAY", "ACCOUNT_NAME", "ACCOUNT_KEY", "CATEGORY_CODE"]
    );
}

#[tokio::test]
async fn month_aggregation_expands_and_final_only_trims() {
    // Reference §15.3: asked on 10 May for 1 March – 10 May, finalized data only.
    let run = start(fast(), datetime!(2026-05-10 09:00 UTC)).await;
    let mut sink = sink(200).await;
    let mut body = query(
        &sink.url,
        "2026-03-01",
        "2026-05-11",
        &["MONTH", "ACCOUNT_KEY", "CATEGORY_CODE"],
    );
    body["request"]["options"] = json!({"includeUnfinalizedData": false});
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    let value = received.json();
    assert_valid(&value, "BillingUsageResult");
    assert_eq!(
        value["response"]["requestedPeriod"],
        json!({"sentSince": "2026-03-01T00:00:00.000+0000", "sentUntil": "2026-05-01T00:00:00.000+0000"})
    );
    assert_eq!(
        value["metadata"]["clientRequestedPeriod"],
        json!({"sentSince": "2026-03-01T00:00:00.000+0000", "sentUntil": "2026-05-11T00:00:00.000+0000"})
    );
    assert_eq!(
        value["metadata"]["billingPeriods"],
        json!([{"month": "2026-03", "volumeFinalized": true}, {"month": "2026-04", "volumeFinalized": true}])
    );
    let months: std::collections::BTreeSet<&str> = value["response"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(
        months.into_iter().collect::<Vec<_>>(),
        [
            "2026-03-01T00:00:00.000+0000",
            "2026-04-01T00:00:00.000+0000"
        ]
    );

    // With provisional data included, MONTH widens a mid-month range to whole months.
    let body = query(&sink.url, "2026-04-10", "2026-05-03", &["MONTH"]);
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    let value = received.json();
    assert_eq!(
        value["response"]["requestedPeriod"],
        json!({"sentSince": "2026-04-01T00:00:00.000+0000", "sentUntil": "2026-06-01T00:00:00.000+0000"})
    );
    assert_eq!(
        value["metadata"]["billingPeriods"],
        json!([{"month": "2026-04", "volumeFinalized": true}, {"month": "2026-05", "volumeFinalized": false}])
    );
}

#[tokio::test]
async fn only_final_data_of_a_provisional_month_is_empty() {
    let run = start(fast(), datetime!(2026-04-10 12:00 UTC)).await;
    let mut sink = sink(200).await;
    let mut body = query(&sink.url, "2026-04-01", "2026-04-10", &["DAY"]);
    body["request"]["options"] = json!({"includeUnfinalizedData": false});
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    let value = received.json();
    assert_valid(&value, "BillingUsageResult");
    assert_eq!(value["response"]["totalRows"], 0);
    assert_eq!(
        value["response"]["requestedPeriod"]["sentSince"],
        value["response"]["requestedPeriod"]["sentUntil"]
    );
}

#[tokio::test]
async fn receiver_errors_are_recorded() {
    let run = start(fast(), datetime!(2026-04-10 12:00 UTC)).await;
    let mut sink = sink(503).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    submit_and_receive(&run, &mut sink, &body).await;
    let stats = wait_stats(&run.sim, |s| s.callbacks_rejected == 1).await;
    assert_eq!(stats.callbacks_delivered, 0);
    assert_eq!(run.sim.deliveries()[0].status, Some(503));

    // Nobody listening: recorded with no status.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let body = query(
        &format!("http://{closed}/cb"),
        "2026-04-01",
        "2026-04-02",
        &["DAY"],
    );
    assert_eq!(post(&run.base, &body).await.status, 201);
    wait_stats(&run.sim, |s| s.callbacks_unreachable == 1).await;
    assert_eq!(run.sim.deliveries()[1].status, None);
}

#[tokio::test]
async fn callback_waits_for_the_configured_delay() {
    let opts = infobip_billing_exporter::simulator::SimulatorOptions {
        callback_delay: std::time::Duration::from_millis(300),
        ..fast()
    };
    let run = start(opts, datetime!(2026-04-10 12:00 UTC)).await;
    let mut sink = sink(200).await;
    let started = std::time::Instant::now();
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    submit_and_receive(&run, &mut sink, &body).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}
