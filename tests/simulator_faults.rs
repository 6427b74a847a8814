//! Fault injection: each flag really happens, is counted, and is deterministic for a seed
//! (reference A14, §15.4).

mod simulator_support;

use infobip_billing_exporter::simulator::{Faults, SimulatorOptions};
use serde_json::json;
use simulator_support::*;
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-04-10 12:00 UTC);

fn with(faults: Faults) -> SimulatorOptions {
    SimulatorOptions { faults, ..fast() }
}

#[tokio::test]
async fn drop_never_delivers() {
    let run = start(
        with(Faults {
            drop_callback_ratio: 1.0,
            ..Faults::default()
        }),
        NOW,
    )
    .await;
    let mut sink = sink(200).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    assert_eq!(post(&run.base, &body).await.status, 201);
    let stats = wait_stats(&run.sim, |s| s.callbacks_dropped == 1).await;
    assert_eq!(stats.callbacks_delivered, 0);
    assert!(run.sim.deliveries().is_empty());
    assert!(sink.pending().is_empty());
}

#[tokio::test]
async fn duplicate_delivers_twice() {
    let run = start(
        with(Faults {
            duplicate_callback_ratio: 1.0,
            ..Faults::default()
        }),
        NOW,
    )
    .await;
    let mut sink = sink(200).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    let (id, first) = submit_and_receive(&run, &mut sink, &body).await;
    let second = sink.next().await;
    assert_eq!(first.body, second.body);
    assert_eq!(first.result().request_id, id);
    let stats = wait_stats(&run.sim, |s| s.callbacks_delivered == 2).await;
    assert_eq!(stats.callbacks_duplicated, 1);
    assert_eq!(run.sim.deliveries().len(), 2);
}

#[tokio::test]
async fn failed_sends_the_failure_result() {
    let run = start(
        with(Faults {
            failed_ratio: 1.0,
            ..Faults::default()
        }),
        NOW,
    )
    .await;
    let mut sink = sink(200).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    let (id, received) = submit_and_receive(&run, &mut sink, &body).await;
    let value = received.json();
    assert_valid(&value, "BillingUsageResult");
    assert_eq!(
        value,
        json!({"requestId": id, "status": "FAILED", "failureMessage": "Could not load data"})
    );
    assert_eq!(
        wait_stats(&run.sim, |s| s.callbacks_delivered == 1)
            .await
            .callbacks_failed,
        1
    );
}

#[tokio::test]
async fn server_error_answers_500() {
    let run = start(
        with(Faults {
            server_error_ratio: 1.0,
            ..Faults::default()
        }),
        NOW,
    )
    .await;
    let mut sink = sink(200).await;
    let answer = post(
        &run.base,
        &query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]),
    )
    .await;
    assert_eq!(answer.status, 500);
    assert_valid(&answer.body, "ApiError");
    assert_eq!(
        answer.body,
        json!({"errorCode": "E500", "description": "Something went wrong.", "action": "Contact the support.", "violations": [], "resources": []})
    );
    let stats = run.sim.stats();
    assert_eq!((stats.server_errors(), stats.queries_accepted), (1, 0));
    assert!(sink.pending().is_empty());
}

#[tokio::test]
async fn malformed_sends_invalid_json() {
    let run = start(
        with(Faults {
            malformed_callback_ratio: 1.0,
            ..Faults::default()
        }),
        NOW,
    )
    .await;
    let mut sink = sink(200).await;
    let body = query(&sink.url, "2026-04-01", "2026-04-02", &["DAY"]);
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    assert_eq!(received.headers["content-type"], "application/json");
    assert!(serde_json::from_slice::<serde_json::Value>(&received.body).is_err());
    let stats = wait_stats(&run.sim, |s| s.callbacks_delivered == 1).await;
    assert_eq!(stats.callbacks_malformed, 1);
    let delivery = &run.sim.deliveries()[0];
    assert!(delivery.malformed && delivery.result().is_none());
}

/// Half the submits fail, the same ones for the same seed.
#[tokio::test]
async fn fault_decisions_follow_the_seed() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let opts = SimulatorOptions {
            seed,
            ..with(Faults {
                server_error_ratio: 0.5,
                ..Faults::default()
            })
        };
        let run = start(opts, NOW).await;
        let mut out = Vec::new();
        for _ in 0..24 {
            // Invalid bodies: the fault is decided before validation, and no callback follows.
            out.push(post_raw(&run.base, Some("App demo-key"), "{}").await.status);
        }
        out
    }
    let a = pattern(7).await;
    assert_eq!(a, pattern(7).await);
    assert!(a.contains(&500) && a.contains(&400), "{a:?}");
    assert_ne!(a, pattern(8).await);
}
