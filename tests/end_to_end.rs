//! The exporter against the simulator on loopback: every exported figure equals, to the cent,
//! the sums this test computes from the callback rows the simulator really delivered.

mod common;

use std::sync::Arc;

use common::{
    WAIT, expected_from_bodies, exported, parse, samples_named, scrape, started_demo, stop_demo,
    window,
};
use infobip_billing_exporter::billing::calendar::Clock;
use infobip_billing_exporter::commands::demo;
use infobip_billing_exporter::simulator::SimulatorOptions;
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

fn clock() -> Arc<dyn Clock> {
    common::november_clock()
}

#[tokio::test]
async fn metrics_equal_the_callback_rows_to_the_cent() {
    let clock = clock();
    let state = tempfile::tempdir().unwrap();
    // One result per month in retention: September, October, November.
    let (demo, shutdown) = started_demo(&state, SimulatorOptions::default(), |_| {}).await;

    let text = scrape(demo.exporter.web_addr).await;
    let samples = parse(&text);
    let deliveries = demo.simulator.deliveries();
    assert_eq!(deliveries.len(), 3, "one callback per month");
    let expected = expected_from_bodies(
        deliveries.iter().map(|d| d.body.as_ref()),
        window(&clock, 35),
    );
    assert!(
        expected.rows > 100,
        "the simulator sent real traffic: {} rows",
        expected.rows
    );

    let days = exported(&samples, "infobip_billing_cost", "day");
    assert_eq!(
        days, expected.days,
        "daily cost per (account, category, currency, day)"
    );
    let months = exported(&samples, "infobip_billing_month_cost", "month");
    assert_eq!(
        months, expected.months,
        "monthly cost per (account, category, currency, month)"
    );

    let cost = samples_named(&samples, "infobip_billing_cost");
    let distinct = |label: &str| {
        cost.iter()
            .map(|s| s.labels[label].clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(
        distinct("account").len() >= 3,
        "accounts: {:?}",
        distinct("account")
    );
    assert!(
        distinct("category").len() >= 6,
        "categories: {:?}",
        distinct("category")
    );
    assert!(distinct("currency").is_superset(&["EUR".into(), "USD".into()].into()));
    for s in &cost {
        let keys: Vec<&str> = s.labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "account", "category", "channel", "currency", "day", "status", "target"
            ]
        );
    }

    // September and October are final (after the 5th of the next month), November is not.
    let status_of = |month: &str| {
        samples_named(&samples, "infobip_billing_month_cost")
            .iter()
            .filter(|s| s.labels["month"] == month)
            .map(|s| s.labels["status"].clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(status_of("2026-10"), ["final".to_owned()].into());
    assert_eq!(status_of("2026-11"), ["provisional".to_owned()].into());

    let up = samples_named(&samples, "infobip_billing_exporter_up");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].value, Decimal::ONE);
    let last = samples_named(
        &samples,
        "infobip_billing_exporter_last_success_timestamp_seconds",
    );
    // Real time of the apply, not the pinned billing calendar: it tells how old the data is.
    let applied_at = last[0].value;
    let now = Decimal::from(time::OffsetDateTime::now_utc().unix_timestamp() + 1);
    assert!(
        applied_at <= now && now - applied_at < Decimal::from(60),
        "{applied_at} vs {now}"
    );

    stop_demo(demo, shutdown).await;
}

#[tokio::test]
async fn health_is_immediate_and_readiness_waits_for_data() {
    let clock = clock();
    let shutdown = CancellationToken::new();
    let state = tempfile::tempdir().unwrap();
    let demo = demo::start(
        "127.0.0.1:0".parse().unwrap(),
        clock,
        state.path().into(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", demo.exporter.web_addr);
    let healthy = reqwest::get(format!("{base}/-/healthy")).await.unwrap();
    assert_eq!(healthy.status(), 200);
    let mut snapshots = demo.exporter.shared.store.subscribe();
    if snapshots.borrow().snapshot.results_applied == 0 {
        let ready = reqwest::get(format!("{base}/-/ready")).await.unwrap();
        // A result may have landed between the two reads; then ready must already say so.
        let applied = snapshots.borrow().snapshot.results_applied;
        assert_eq!(ready.status(), if applied == 0 { 503 } else { 200 });
    }
    tokio::time::timeout(
        WAIT,
        snapshots.wait_for(|s| s.snapshot.results_applied >= 1),
    )
    .await
    .unwrap()
    .unwrap();
    let ready = reqwest::get(format!("{base}/-/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    shutdown.cancel();
    demo.join().await.unwrap();
}

#[tokio::test]
async fn openmetrics_is_served_when_asked_for() {
    let shutdown = CancellationToken::new();
    let state = tempfile::tempdir().unwrap();
    let demo = demo::start(
        "127.0.0.1:0".parse().unwrap(),
        clock(),
        state.path().into(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let response = reqwest::Client::new()
        .get(format!("http://{}/metrics", demo.exporter.web_addr))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(response.text().await.unwrap().ends_with("# EOF\n"));
    shutdown.cancel();
    demo.join().await.unwrap();
}

#[tokio::test]
#[ignore = "needs promtool (Debian package prometheus); .ci/run installs it"]
async fn promtool_finds_the_scrape_clean() {
    let state = tempfile::tempdir().unwrap();
    let (demo, shutdown) = started_demo(&state, SimulatorOptions::default(), |_| {}).await;
    let text = scrape(demo.exporter.web_addr).await;
    let (status, lint) = common::promtool_check_metrics(&text);
    assert!(
        status.success() && lint.trim().is_empty(),
        "promtool check metrics: {status}\n{lint}"
    );
    stop_demo(demo, shutdown).await;
}

#[tokio::test]
async fn a_restart_serves_the_stored_figures_at_once() {
    let state = tempfile::tempdir().unwrap();
    let first = {
        let (demo, shutdown) = started_demo(&state, SimulatorOptions::default(), |_| {}).await;
        let text = scrape(demo.exporter.web_addr).await;
        stop_demo(demo, shutdown).await;
        text
    };
    let shutdown = CancellationToken::new();
    let demo = demo::start(
        "127.0.0.1:0".parse().unwrap(),
        clock(),
        state.path().into(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    // Before any new result could arrive, the restored snapshot is already published.
    assert!(
        demo.exporter
            .shared
            .store
            .exposition()
            .snapshot
            .results_applied
            >= 3
    );
    let second = scrape(demo.exporter.web_addr).await;
    for metric in ["infobip_billing_cost", "infobip_billing_month_cost"] {
        let (a, b) = (parse(&first), parse(&second));
        assert_eq!(
            samples_named(&a, metric),
            samples_named(&b, metric),
            "{metric}"
        );
    }
    shutdown.cancel();
    demo.join().await.unwrap();
}
