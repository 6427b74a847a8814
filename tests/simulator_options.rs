//! The §14 switches: each changes the behaviour it names, and its default is the recommended
//! one (reference A3, A5, A7, A11, A12, A14, A26, A27).

mod simulator_support;

use std::collections::BTreeSet;
use std::time::Duration;

use infobip_billing_exporter::infobip::model::parse_instant;
use infobip_billing_exporter::simulator::{
    DateTimeFormat, Faults, OutOfWindow, STATUS_PATH, SimulatorOptions, UnscopedStatus,
};
use serde_json::{Value, json};
use simulator_support::*;
use time::macros::{date, datetime};

const NOW: time::OffsetDateTime = datetime!(2026-04-10 12:00 UTC);
/// Longer than any test: the callback stays pending for the test's whole life.
const NEVER: Duration = Duration::from_secs(3600);

/// The distinct values of the first column named `name` in a callback.
fn column_values(value: &Value, name: &str) -> BTreeSet<String> {
    let columns = value["response"]["columns"].as_array().unwrap();
    let i = columns
        .iter()
        .position(|c| c["columnName"] == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    value["response"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| match &row[i] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn column_names(value: &Value) -> Vec<String> {
    value["response"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["columnName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn datetime_format_shapes_day_and_month_cells() {
    for (format, day, month) in [
        (
            DateTimeFormat::DatetimeMsOffset,
            "2026-04-02T00:00:00.000+0000",
            "2026-04-01T00:00:00.000+0000",
        ),
        (
            DateTimeFormat::Rfc3339,
            "2026-04-02T00:00:00Z",
            "2026-04-01T00:00:00Z",
        ),
        (DateTimeFormat::DateOnly, "2026-04-02", "2026-04-01"),
    ] {
        let opts = SimulatorOptions {
            datetime_format: format,
            ..fast()
        };
        let run = start(opts, NOW).await;
        let mut sink = sink(200).await;
        let body = query(&sink.url, "2026-04-02", "2026-04-03", &["DAY"]);
        let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
        let value = received.json();
        assert_eq!(
            column_values(&value, "DAY"),
            BTreeSet::from([day.to_owned()]),
            "{format:?}"
        );
        // The client's tolerant reader gets the same day from every form.
        assert_eq!(parse_instant(day).unwrap().date(), date!(2026 - 04 - 02));
        // The periods are schema `date-time`s and keep Infobip's form (A6).
        assert_eq!(
            value["response"]["requestedPeriod"]["sentSince"],
            "2026-04-02T00:00:00.000+0000"
        );

        let body = query(&sink.url, "2026-04-02", "2026-04-03", &["MONTH"]);
        let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
        assert_eq!(
            column_values(&received.json(), "MONTH"),
            BTreeSet::from([month.to_owned()]),
            "{format:?}"
        );
    }
    assert_eq!(
        SimulatorOptions::default().datetime_format,
        DateTimeFormat::DatetimeMsOffset
    );
}

#[tokio::test]
async fn callback_before_response_delivers_first() {
    let opts = SimulatorOptions {
        callback_before_response: true,
        ..fast()
    };
    let run = start(opts, NOW).await;
    let mut sink = sink(200).await;
    let answer = post(
        &run.base,
        &query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]),
    )
    .await;
    assert_eq!(answer.status, 201);
    // Already there when the 201 arrives, without waiting.
    let arrived = sink.pending();
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0].result().request_id, answer.body["requestId"]);
    assert_eq!(run.sim.stats().callbacks_delivered, 1);
}

#[tokio::test]
async fn by_default_the_201_comes_first() {
    let opts = SimulatorOptions {
        callback_delay: NEVER,
        ..fast()
    };
    assert!(!opts.callback_before_response);
    let run = start(opts, NOW).await;
    let mut sink = sink(200).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    assert_eq!(post(&run.base, &body).await.status, 201);
    assert!(sink.pending().is_empty());
    assert_eq!(run.sim.stats().callbacks_delivered, 0);
}

#[tokio::test]
async fn redelivery_repeats_up_to_n_times_on_non_2xx() {
    let opts = SimulatorOptions {
        redeliver_on_non_2xx: 2,
        ..fast()
    };
    let run = start(opts, NOW).await;
    let mut sink = sink(503).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    let (id, first) = submit_and_receive(&run, &mut sink, &body).await;
    let (second, third) = (sink.next().await, sink.next().await);
    assert_eq!(first.body, second.body);
    assert_eq!(first.body, third.body);
    assert_eq!(first.result().request_id, id);
    let stats = wait_stats(&run.sim, |s| s.callbacks_rejected == 3).await;
    assert_eq!(stats.callbacks_redelivered, 2);
    assert_eq!(stats.callbacks_delivered, 0);
    let statuses: Vec<_> = run.sim.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Some(503); 3]);
}

#[tokio::test]
async fn redelivery_stops_at_the_first_2xx() {
    let opts = SimulatorOptions {
        redeliver_on_non_2xx: 5,
        ..fast()
    };
    let run = start(opts, NOW).await;
    let mut sink = sink_answering(&[500, 200]).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    submit_and_receive(&run, &mut sink, &body).await;
    sink.next().await;
    let stats = wait_stats(&run.sim, |s| s.callbacks_delivered == 1).await;
    assert_eq!(
        (stats.callbacks_rejected, stats.callbacks_redelivered),
        (1, 1)
    );
    let statuses: Vec<_> = run.sim.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Some(500), Some(200)]);
}

/// 15 January to 10 February, asked on 10 April: retention starts on 1 February.
fn before_retention(callback: &str) -> Value {
    query(callback, "2026-01-15", "2026-02-10", &["DAY"])
}

#[tokio::test]
async fn out_of_window_reject_is_the_default() {
    assert_eq!(
        SimulatorOptions::default().out_of_window,
        OutOfWindow::Reject
    );
    let run = start(fast(), NOW).await;
    let answer = post(&run.base, &before_retention("http://127.0.0.1:9/cb")).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.body["violations"][0]["property"],
        "request.filterBy.dateInterval.sentSince"
    );
}

#[tokio::test]
async fn out_of_window_trim_answers_the_part_inside() {
    let opts = SimulatorOptions {
        out_of_window: OutOfWindow::Trim,
        ..fast()
    };
    let value = delivered_for(opts, NOW, before_retention).await;
    assert_eq!(
        value["response"]["requestedPeriod"],
        json!({"sentSince": "2026-02-01T00:00:00.000+0000", "sentUntil": "2026-02-10T00:00:00.000+0000"})
    );
    assert_eq!(
        value["metadata"]["clientRequestedPeriod"]["sentSince"],
        "2026-01-15T00:00:00.000+0000"
    );
    let days = column_values(&value, "DAY");
    assert_eq!(days.len(), 9);
    assert_eq!(days.first().unwrap(), "2026-02-01T00:00:00.000+0000");
}

#[tokio::test]
async fn out_of_window_empty_answers_no_rows() {
    let opts = SimulatorOptions {
        out_of_window: OutOfWindow::Empty,
        ..fast()
    };
    let run = start(opts, NOW).await;
    let mut sink = sink(200).await;
    let body = before_retention(&sink.url);
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    let value = received.json();
    assert_eq!(value["status"], "SUCCESS");
    assert_eq!(value["response"]["totalRows"], 0);
    assert_eq!(value["response"]["rows"], json!([]));
    assert_eq!(
        value["response"]["requestedPeriod"],
        value["metadata"]["clientRequestedPeriod"]
    );
    // Inside the window the data is as usual.
    let body = query(&sink.url, "2026-02-01", "2026-02-10", &["DAY"]);
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    assert_eq!(column_values(&received.json(), "DAY").len(), 9);
}

#[tokio::test]
async fn lenient_filters_wrap_a_bare_value() {
    let opts = SimulatorOptions {
        lenient_filters: true,
        ..fast()
    };
    let run = start(opts, NOW).await;
    let mut sink = sink(200).await;
    // The Postman collection's shape (A7).
    let mut body = query(&sink.url, "2026-04-01", "2026-04-05", &["CATEGORY_CODE"]);
    body["request"]["filterBy"]["categories"] = json!("SMS");
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    assert_eq!(
        column_values(&received.json(), "CATEGORY_CODE"),
        BTreeSet::from(["SMS".to_owned()])
    );
    // Still strict about everything else.
    body["request"]["filterBy"]["categories"] = json!({"code": "SMS"});
    let answer = post(&run.base, &body).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.body["violations"][0]["property"],
        "request.filterBy.categories"
    );
}

#[tokio::test]
async fn strict_filters_are_the_default() {
    assert!(!SimulatorOptions::default().lenient_filters);
    let run = start(fast(), NOW).await;
    let mut body = query(
        "http://127.0.0.1:9/cb",
        "2026-04-01",
        "2026-04-05",
        &["DAY"],
    );
    body["request"]["filterBy"]["categories"] = json!("SMS");
    assert_eq!(post(&run.base, &body).await.status, 400);
}

#[tokio::test]
async fn allow_day_and_month_answers_with_day_only() {
    let opts = SimulatorOptions {
        allow_day_and_month: true,
        ..fast()
    };
    let value = delivered_for(opts, NOW, |url| {
        query(url, "2026-04-03", "2026-04-05", &["MONTH", "DAY"])
    })
    .await;
    let names = column_names(&value);
    assert!(names.contains(&"DAY".to_owned()), "{names:?}");
    assert!(!names.contains(&"MONTH".to_owned()), "{names:?}");
    // Not widened to the whole month, as MONTH alone would be (A4).
    assert_eq!(
        value["response"]["requestedPeriod"],
        json!({"sentSince": "2026-04-03T00:00:00.000+0000", "sentUntil": "2026-04-05T00:00:00.000+0000"})
    );
    assert_eq!(column_values(&value, "DAY").len(), 2);
}

#[tokio::test]
async fn unscoped_status_401_answers_e401() {
    let opts = SimulatorOptions {
        unscoped_api_key: Some("no-billing-scope".into()),
        unscoped_status: UnscopedStatus::Unauthorized,
        ..fast()
    };
    let run = start(opts, NOW).await;
    let body = query(
        "http://127.0.0.1:9/cb",
        "2026-04-01",
        "2026-04-05",
        &["DAY"],
    );
    let answer = post_raw(&run.base, Some("App no-billing-scope"), body.to_string()).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["errorCode"], "E401");
    assert_eq!(run.sim.stats().rejected_with(401), 1);
    assert_eq!(run.sim.stats().rejected_with(403), 0);
    assert_eq!(
        SimulatorOptions::default().unscoped_status,
        UnscopedStatus::Forbidden
    );
}

fn status_path(id: &str) -> String {
    assert_eq!(STATUS_PATH, "/billing/1/usage/requests/{id}");
    STATUS_PATH.replace("{id}", id)
}

#[tokio::test]
async fn status_endpoint_is_off_by_default() {
    let run = start(fast(), NOW).await;
    let mut sink = sink(200).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    let (id, _) = submit_and_receive(&run, &mut sink, &body).await;
    let answer = get(&run.base, &status_path(&id), Some("App demo-key")).await;
    assert_eq!(answer.status, 404);
    assert!(answer.headers.get("x-simulator-non-infobip").is_none());
}

#[tokio::test]
async fn status_endpoint_follows_a_query_and_says_it_is_not_infobip() {
    // A callback that never comes: the query stays in progress.
    let opts = SimulatorOptions {
        status_endpoint: true,
        callback_delay: NEVER,
        ..fast()
    };
    let run = start(opts, NOW).await;
    let body = query(
        "http://127.0.0.1:9/cb",
        "2026-04-01",
        "2026-04-02",
        &["DAY"],
    );
    let id = post(&run.base, &body).await.body["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = get(&run.base, &status_path(&id), Some("App demo-key")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["x-simulator-non-infobip"], "true");
    assert_eq!(answer.body["requestId"], id);
    assert_eq!(answer.body["status"], "IN_PROGRESS");
    assert!(
        answer.body["simulatorOnly"]
            .as_str()
            .unwrap()
            .contains("no status endpoint")
    );

    let unknown = get(&run.base, &status_path("NOPE"), Some("App demo-key")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.headers["x-simulator-non-infobip"], "true");
    assert_valid(&unknown.body, "ApiError");
    assert_eq!(unknown.body["errorCode"], "E404");
    // The same credentials as the query endpoint.
    let anonymous = get(&run.base, &status_path(&id), None).await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn status_endpoint_reports_success_and_failure() {
    for (failed_ratio, expected) in [(0.0, "SUCCESS"), (1.0, "FAILED")] {
        let opts = SimulatorOptions {
            status_endpoint: true,
            faults: Faults {
                failed_ratio,
                ..Faults::default()
            },
            ..fast()
        };
        let run = start(opts, NOW).await;
        let mut sink = sink(200).await;
        let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
        let (id, received) = submit_and_receive(&run, &mut sink, &body).await;
        assert_eq!(received.json()["status"], expected);
        let answer = get(&run.base, &status_path(&id), Some("App demo-key")).await;
        assert_eq!(answer.body["status"], expected);
    }
}
