//! The exporter through every fault the simulator injects: whatever happens on the way, the
//! final /metrics equal the simulator's own totals to the cent.

mod common;

use std::time::Duration;

use common::{Harness, counter};
use infobip_billing_exporter::simulator::{Faults, SimulatorOptions};
use rust_decimal::Decimal;

fn with_faults(faults: Faults) -> SimulatorOptions {
    SimulatorOptions {
        faults,
        callback_delay: Duration::from_millis(20),
        ..Default::default()
    }
}

const QUERIES: &str = "infobip_billing_exporter_queries_total";
const CALLBACKS: &str = "infobip_billing_exporter_callbacks_total";

#[tokio::test]
async fn dropped_callbacks_time_out_and_are_sent_again() {
    let h = Harness::start(
        with_faults(Faults {
            drop_callback_ratio: 0.5,
            ..Default::default()
        }),
        |c| c.callback_timeout = Duration::from_millis(1500),
    )
    .await;
    let samples = h.converge().await;
    assert!(
        h.simulator.stats().callbacks_dropped > 0,
        "the fault happened"
    );
    assert!(counter(&samples, QUERIES, ("outcome", "timeout")) > Decimal::ZERO);
    h.stop().await;
}

#[tokio::test]
async fn duplicated_callbacks_are_applied_once() {
    let h = Harness::start(
        with_faults(Faults {
            duplicate_callback_ratio: 1.0,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let expected = h.simulator_month_totals();
    h.wait_for_months(&expected).await;
    // Both deliveries of every query are in before the figures are checked.
    let mut stats = h.simulator.watch_stats();
    tokio::time::timeout(common::WAIT, stats.wait_for(|s| s.callbacks_delivered >= 6))
        .await
        .unwrap()
        .unwrap();
    let samples = h.assert_scrape_months(&expected).await;
    assert_eq!(
        counter(&samples, CALLBACKS, ("outcome", "applied")),
        Decimal::from(3)
    );
    assert_eq!(
        counter(&samples, CALLBACKS, ("outcome", "duplicate")),
        Decimal::from(3)
    );
    let restatements =
        common::samples_named(&samples, "infobip_billing_exporter_restatements_total");
    assert_eq!(restatements.len(), 1);
    assert_eq!(restatements[0].value, Decimal::ZERO);
    h.stop().await;
}

#[tokio::test]
async fn failed_results_are_retried() {
    let h = Harness::start(
        with_faults(Faults {
            failed_ratio: 0.5,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let samples = h.converge().await;
    assert!(
        h.simulator.stats().callbacks_failed > 0,
        "the fault happened"
    );
    assert!(counter(&samples, CALLBACKS, ("outcome", "failed_result")) > Decimal::ZERO);
    h.stop().await;
}

#[tokio::test]
async fn server_errors_on_submit_are_retried() {
    let h = Harness::start(
        with_faults(Faults {
            server_error_ratio: 0.5,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let samples = h.converge().await;
    assert!(
        h.simulator.stats().server_errors() > 0,
        "the fault happened"
    );
    assert!(counter(&samples, QUERIES, ("outcome", "server_error")) > Decimal::ZERO);
    assert!(
        counter(
            &samples,
            "infobip_billing_exporter_api_requests_total",
            ("code", "500")
        ) > Decimal::ZERO
    );
    h.stop().await;
}

#[tokio::test]
async fn a_429_storm_is_waited_out() {
    // One request per second: of the three month queries sent at start, two are throttled.
    let options = SimulatorOptions {
        requests_per_second: 1,
        ..with_faults(Faults::default())
    };
    let h = Harness::start(options, |_| {}).await;
    let samples = h.converge().await;
    assert!(h.simulator.stats().throttled() > 0, "the fault happened");
    assert!(counter(&samples, QUERIES, ("outcome", "throttled")) > Decimal::ZERO);
    h.stop().await;
}

#[tokio::test]
async fn malformed_callbacks_are_rejected_and_the_query_sent_again() {
    let h = Harness::start(
        with_faults(Faults {
            malformed_callback_ratio: 0.5,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let samples = h.converge().await;
    assert!(
        h.simulator.stats().callbacks_malformed > 0,
        "the fault happened"
    );
    assert!(counter(&samples, CALLBACKS, ("outcome", "malformed_json")) > Decimal::ZERO);
    h.stop().await;
}

#[tokio::test]
async fn callbacks_delayed_past_the_timeout_still_count() {
    let options = SimulatorOptions {
        callback_delay: Duration::from_millis(1200),
        ..Default::default()
    };
    let h = Harness::start(options, |c| c.callback_timeout = Duration::from_millis(500)).await;
    let samples = h.converge().await;
    assert!(counter(&samples, QUERIES, ("outcome", "timeout")) > Decimal::ZERO);
    h.stop().await;
}
