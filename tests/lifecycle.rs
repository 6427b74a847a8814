//! The query lifecycle over time: restatements of provisional data, no query at all after a
//! restart inside `interval` and none for final months after it (unless a dimension was added),
//! the age of the figures kept across a restart, and state-write failures reported without
//! stopping the exporter.

mod common;

use std::time::Duration;

use common::{Harness, counter, parse, samples_named, scrape};
use infobip_billing_exporter::infobip::model::BillingUsageAggregate as Agg;
use infobip_billing_exporter::simulator::SimulatorOptions;
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

/// The exporter's next-query time for the target, once its query loop has decided.
async fn next_query_at(h: &Harness) -> Decimal {
    for _ in 0..500 {
        let samples = parse(&scrape(h.exporter.web_addr).await);
        if let Some(s) = samples_named(
            &samples,
            "infobip_billing_exporter_next_query_timestamp_seconds",
        )
        .first()
        {
            return s.value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the query loop never set its next query time");
}

/// The months the simulator delivered results for, by the period each result covers, once it
/// has seen `n` deliveries answered (its record of one can lag the exporter's applying it).
async fn delivered_months(h: &Harness, n: u64) -> std::collections::BTreeSet<String> {
    for _ in 0..500 {
        if h.simulator.stats().callbacks_delivered >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.simulator
        .deliveries()
        .iter()
        .filter_map(|d| d.result()?.response)
        .map(|r| r.requested_period.sent_since.date().to_string()[..7].to_owned())
        .collect()
}

#[tokio::test]
async fn a_restart_inside_interval_asks_nothing_and_after_it_only_the_open_month() {
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    let expected = h.simulator_month_totals();
    h.wait_for_months(&expected).await;
    assert_eq!(h.simulator.stats().queries_accepted, 3);
    let state = h.stop().await;

    // Within the hour: the stored figures at once, and no query before the hour is up.
    let h = Harness::start_in(SimulatorOptions::default(), state, |_| {}).await;
    assert_eq!(
        h.exporter
            .shared
            .store
            .exposition()
            .snapshot
            .results_applied,
        3,
        "restored at once"
    );
    let next = next_query_at(&h).await;
    let now = Decimal::from(time::OffsetDateTime::now_utc().unix_timestamp());
    assert!(
        next > now + Decimal::from(50 * 60),
        "next query at {next}, now {now}"
    );
    assert_eq!(
        h.simulator.stats().queries_accepted,
        0,
        "a restart costs no query"
    );
    h.assert_scrape_months(&expected).await;
    let state = h.stop().await;

    // With an interval shorter than the results' age, only November, the provisional month, is
    // asked for: September and October are final.
    let h = Harness::start_in(SimulatorOptions::default(), state, quick_cycles).await;
    let mut snapshots = h.exporter.shared.store.subscribe();
    tokio::time::timeout(
        common::WAIT,
        snapshots.wait_for(|s| s.snapshot.results_applied >= 4),
    )
    .await
    .unwrap()
    .unwrap();
    h.assert_scrape_months(&expected).await;
    assert_eq!(delivered_months(&h, 1).await, ["2026-11".to_owned()].into());
    h.stop().await;
}

#[tokio::test]
async fn a_restart_with_infobip_down_still_shows_how_old_the_figures_are() {
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    let samples = parse(&scrape(h.exporter.web_addr).await);
    let last = "infobip_billing_exporter_last_success_timestamp_seconds";
    let before = samples_named(&samples, last)[0].value;
    let state = h.stop().await;

    // Nothing listens where Infobip was.
    let h = Harness::start_with_upstream_down(state, quick_cycles).await;
    let samples = parse(&scrape(h.exporter.web_addr).await);
    assert_eq!(
        samples_named(&samples, last)[0].value,
        before,
        "restored, not reset"
    );
    assert!(!samples_named(&samples, "infobip_billing_month_cost").is_empty());
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

    // Fetched once with the new dimension, final months are left alone again (and the short
    // interval has the open month asked for).
    let h = Harness::start_in(SimulatorOptions::default(), state, |c| {
        by_traffic_type(c);
        quick_cycles(c);
    })
    .await;
    let mut snapshots = h.exporter.shared.store.subscribe();
    tokio::time::timeout(
        common::WAIT,
        snapshots.wait_for(|s| s.snapshot.results_applied >= 7),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(delivered_months(&h, 1).await, ["2026-11".to_owned()].into());
    h.stop().await;
}

#[tokio::test]
async fn a_query_saves_the_pending_table_without_rewriting_the_ledger() {
    // Every callback is lost: queries are sent, no result is ever applied.
    let h = Harness::start(common::callbacks_lost(), |_| {}).await;
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
    let segments = std::fs::read_dir(state.path().join("segments"))
        .unwrap()
        .count();
    assert_eq!(
        segments, 0,
        "no result, so no segment was written, not even at shutdown"
    );
}

#[tokio::test]
async fn a_failing_state_write_is_reported_and_serving_goes_on() {
    let h = Harness::start(SimulatorOptions::default(), quick_cycles).await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    // A directory where November's temp file goes makes its writes fail, even for root.
    std::fs::create_dir(h.state.path().join("segments/sim.2026-11.seg.tmp")).unwrap();
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

#[tokio::test]
async fn a_second_exporter_on_the_same_state_dir_refuses_to_start_and_sends_nothing() {
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    h.wait_for_months(&h.simulator_month_totals()).await;

    let clock = common::november_clock();
    let other = infobip_billing_exporter::simulator::Simulator::new(
        SimulatorOptions::default(),
        clock.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(other.clone().serve(listener, h.shutdown.clone()));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cb = callback.local_addr().unwrap();
    let config = infobip_billing_exporter::config::Config::from_yaml(&format!(
        "targets:\n  - name: sim\n    base_url: {sim_url}\n    api_key_env: UNUSED_IN_TESTS\n\
         callback:\n  listen: {cb}\n  public_url: http://{cb}\nweb:\n  listen: 127.0.0.1:0\nstate_dir: {}\n",
        h.state.path().display()
    ))
    .unwrap();
    let key = infobip_billing_exporter::config::ApiKey::new(other.options().api_key.clone());
    let err = infobip_billing_exporter::daemon::start(
        &config,
        vec![key],
        web,
        callback,
        clock,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect_err("the state dir is taken");
    let message = err.to_string();
    assert!(message.contains("in use by another exporter"), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "names the holder: {message}"
    );
    assert_eq!(other.stats().queries_accepted, 0, "nothing sent");
    h.assert_scrape_months(&h.simulator_month_totals()).await;
    h.stop().await;
}

/// The data metrics of a scrape, HELP and TYPE included.
fn data_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            name.starts_with("infobip_billing_") && !name.starts_with("infobip_billing_exporter_")
        })
        .map(str::to_owned)
        .collect()
}

/// The state directory's segments written back as the single `state.json` of earlier versions.
fn as_state_json(dir: &std::path::Path) -> serde_json::Value {
    use infobip_billing_exporter::billing::facts::{
        ACCOUNT, ACCOUNT_KEY, CATEGORY, CURRENCY, FIRST_DIMENSION, UNIT,
    };
    let mut targets = serde_json::Map::new();
    let mut dimensions = Vec::new();
    for entry in std::fs::read_dir(dir.join("segments")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let (key, segment, dims) = infobip_billing_exporter::billing::state::read(&bytes).unwrap();
        dimensions = dims;
        let target = targets.entry(key.target.clone()).or_insert_with(
            || serde_json::json!({"months": {}, "results_applied": 0, "facts": []}),
        );
        target["months"][key.month.to_string()] = segment.finalized.into();
        let applied = target["results_applied"].as_u64().unwrap() + segment.results_applied;
        target["results_applied"] = applied.into();
        let name = |id: u32| segment.labels.name(id).to_owned();
        for (day, facts) in &segment.days {
            for (ids, amount) in facts.iter() {
                let fact = serde_json::json!({
                    "day": day.to_string(),
                    "account": name(ids[ACCOUNT]),
                    "account_key": name(ids[ACCOUNT_KEY]),
                    "category": name(ids[CATEGORY]),
                    "currency": name(ids[CURRENCY]),
                    "unit": name(ids[UNIT]),
                    "cost": amount.cost.to_string(),
                    "quantity": amount.quantity.to_string(),
                    "dimensions": ids[FIRST_DIMENSION..].iter().map(|&id| name(id)).collect::<Vec<_>>(),
                });
                target["facts"].as_array_mut().unwrap().push(fact);
            }
        }
    }
    serde_json::json!({"version": 1, "dimensions": dimensions, "targets": targets, "pending": []})
}

#[tokio::test]
async fn a_state_json_of_an_earlier_version_migrates_with_every_figure_equal() {
    let by_country = |c: &mut infobip_billing_exporter::config::Config| {
        c.metrics.dimensions = vec![Agg::COUNTRY_CODE];
    };
    let h = Harness::start(SimulatorOptions::default(), by_country).await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    let served = data_lines(&scrape(h.exporter.web_addr).await);
    let state = h.stop().await;
    let legacy = as_state_json(state.path());
    std::fs::remove_dir_all(state.path().join("segments")).unwrap();
    std::fs::write(state.path().join("state.json"), legacy.to_string()).unwrap();

    // Infobip unreachable: what is served is what the migration made of the file.
    let h = Harness::start_with_upstream_down(state, by_country).await;
    assert_eq!(data_lines(&scrape(h.exporter.web_addr).await), served);
    assert!(!h.state.path().join("state.json").exists(), "migrated once");
    let segments = std::fs::read_dir(h.state.path().join("segments"))
        .unwrap()
        .count();
    assert_eq!(segments, 3);
    h.stop().await;
}

/// A proxy that passes `public_url`'s path prefix on: the callbacks arrive under it.
#[tokio::test]
async fn a_public_url_with_a_path_prefix_receives_its_callbacks() {
    let h = Harness::start(SimulatorOptions::default(), |c| {
        c.callback.public_url = format!("{}/billing", c.callback.public_url);
    })
    .await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    let deliveries = h.simulator.deliveries();
    assert!(
        deliveries
            .iter()
            .all(|d| d.callback_url.contains("/billing/callback/") && d.status == Some(200)),
        "{:?}",
        deliveries
            .iter()
            .map(|d| (&d.callback_url, d.status))
            .collect::<Vec<_>>()
    );
    // Without the prefix, as before, and nothing else.
    let url = &deliveries[0].callback_url;
    let bare = url.replacen("/billing/callback/", "/callback/", 1);
    let other = url.replacen("/billing/callback/", "/other/callback/", 1);
    let client = reqwest::Client::new();
    let post = |url: String| {
        let client = client.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_ne!(
        post(bare).await,
        404,
        "the bare path is still a callback path"
    );
    assert_eq!(post(other).await, 404);
    h.stop().await;
}
