//! The query lifecycle over time: restatements of provisional data, no re-asking for final
//! months after a restart (unless a dimension was added), and state-write failures reported
//! without stopping the exporter.

mod common;

use std::time::Duration;

use common::{Harness, counter, parse, samples_named, scrape};
use infobip_billing_exporter::infobip::model::BillingUsageAggregate as Agg;
use infobip_billing_exporter::simulator::{Faults, SimulatorOptions};
use rust_decimal::Decimal;

fn quick_cycles(c: &mut infobip_billing_exporter::config::Config) {
    c.interval = Duration::from_millis(300);
}

#[tokio::test]
async fn provisional_changes_are_restatements_and_replace_the_figures() {
    let h = Harness::start(SimulatorOptions::default(), quick_cycles).await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    // Six hours later the simulator's provisional November has moved (late records, discounts).
    h.manual_clock.set(h.clock.now() + time::Duration::hours(6));
    let later = h.simulator_month_totals();
    h.wait_for_months(&later).await;
    let samples = h.assert_scrape_months(&later).await;
    let restated = samples_named(&samples, "infobip_billing_exporter_restatements_total");
    assert!(restated[0].value > Decimal::ZERO, "restatements counted");
    // Final months never change, so only November series can differ; September stays final.
    assert!(later.keys().any(|(_, _, _, month)| month == "2026-09"));
    h.stop().await;
}

#[tokio::test]
async fn a_restart_does_not_ask_again_for_final_months() {
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    let expected = h.simulator_month_totals();
    h.wait_for_months(&expected).await;
    assert_eq!(h.simulator.stats().queries_accepted, 3);
    let state = h.stop().await;

    let h = Harness::start_in(SimulatorOptions::default(), state, |_| {}).await;
    let mut snapshots = h.exporter.shared.store.subscribe();
    assert_eq!(
        snapshots.borrow().snapshot.results_applied,
        3,
        "restored at once"
    );
    tokio::time::timeout(
        common::WAIT,
        snapshots.wait_for(|s| s.snapshot.results_applied >= 4),
    )
    .await
    .unwrap()
    .unwrap();
    h.assert_scrape_months(&expected).await;
    // Only November, the provisional month, was asked for after the restart.
    assert_eq!(h.simulator.stats().queries_accepted, 1);
    h.stop().await;
}

#[tokio::test]
async fn a_dimension_added_across_a_restart_fetches_the_final_months_again() {
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    let expected = h.simulator_month_totals();
    h.wait_for_months(&expected).await;
    let state = h.stop().await;

    let by_traffic_type = |c: &mut infobip_billing_exporter::config::Config| {
        c.metrics.dimensions = vec![Agg::TRAFFIC_TYPE];
    };
    let h = Harness::start_in(SimulatorOptions::default(), state, by_traffic_type).await;
    let mut snapshots = h.exporter.shared.store.subscribe();
    tokio::time::timeout(
        common::WAIT,
        snapshots.wait_for(|s| s.snapshot.results_applied >= 6),
    )
    .await
    .unwrap()
    .unwrap();
    // September and October are final, and still asked for: their facts had no traffic type.
    assert_eq!(h.simulator.stats().queries_accepted, 3);
    h.assert_scrape_months(&expected).await;
    let samples = parse(&scrape(h.exporter.web_addr).await);
    let september: Vec<&str> = samples_named(&samples, "infobip_billing_month_cost")
        .into_iter()
        .filter(|s| s.labels["month"] == "2026-09")
        .map(|s| s.labels["traffic_type"].as_str())
        .collect();
    assert!(
        september.iter().any(|t| *t != "N/A"),
        "September has traffic types: {september:?}"
    );
    let state = h.stop().await;

    // Fetched once with the new dimension, final months are left alone again.
    let h = Harness::start_in(SimulatorOptions::default(), state, by_traffic_type).await;
    let mut snapshots = h.exporter.shared.store.subscribe();
    tokio::time::timeout(
        common::WAIT,
        snapshots.wait_for(|s| s.snapshot.results_applied >= 7),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(h.simulator.stats().queries_accepted, 1);
    h.stop().await;
}

#[tokio::test]
async fn a_query_saves_the_pending_table_without_rewriting_the_ledger() {
    // Every callback is lost: queries are sent, no result is ever applied.
    let options = SimulatorOptions {
        faults: Faults {
            drop_callback_ratio: 1.0,
            ..Faults::default()
        },
        ..SimulatorOptions::default()
    };
    let h = Harness::start(options, |_| {}).await;
    let pending_file = h.state.path().join("pending.json");
    let mut sent = 0;
    for _ in 0..500 {
        let table: serde_json::Value = std::fs::read(&pending_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        sent = table["pending"].as_array().map_or(0, Vec::len);
        if sent == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sent, 3, "the three months' queries are saved");
    let state = h.stop().await;
    assert!(
        !state.path().join("state.json").exists(),
        "no result, so the ledger was never written, not even at shutdown"
    );
}

#[tokio::test]
async fn a_failing_state_write_is_reported_and_serving_goes_on() {
    let h = Harness::start(SimulatorOptions::default(), quick_cycles).await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    // A directory where the temp file goes makes every write fail, even for root.
    std::fs::create_dir(h.state.path().join("state.json.tmp")).unwrap();
    h.manual_clock.set(h.clock.now() + time::Duration::hours(6));
    let later = h.simulator_month_totals();
    h.wait_for_months(&later).await;
    let samples = parse(&scrape(h.exporter.web_addr).await);
    let writes = "infobip_billing_exporter_state_writes_total";
    assert!(counter(&samples, writes, ("outcome", "io")) > Decimal::ZERO);
    h.assert_scrape_months(&later).await;
    h.stop().await;
}

#[tokio::test]
async fn a_corrupt_state_file_is_set_aside_and_the_exporter_starts_fresh() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("state.json"), b"{\"version\": 1, \"targ").unwrap();
    let h = Harness::start_in(SimulatorOptions::default(), state, |_| {}).await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    let set_aside: Vec<_> = std::fs::read_dir(h.state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    let kept = std::fs::read(h.state.path().join(&set_aside[0])).unwrap();
    assert_eq!(
        kept, b"{\"version\": 1, \"targ",
        "the unreadable file is kept as it was"
    );
    h.stop().await;
}
