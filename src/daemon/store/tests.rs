use std::collections::BTreeMap;
use std::fs;

use rust_decimal::Decimal;
use time::macros::{date, datetime};

use super::*;
use crate::billing::calendar::{ManualClock, YearMonth};
use crate::billing::facts::{Amount, FactKey};

const NOW: OffsetDateTime = datetime!(2026-11-20 10:00 UTC);

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        dir: dir.to_owned(),
        dimensions: Vec::new(),
        days: 35,
        max_series: 10_000,
        budgets: Vec::new(),
        targets: vec!["eu".into()],
        filters: BTreeMap::new(),
    }
}

async fn open(dir: &std::path::Path) -> Result<Opened, StoreError> {
    open_with(config(dir)).await
}

async fn open_with(config: StoreConfig) -> Result<Opened, StoreError> {
    Store::open(
        config,
        Arc::new(ManualClock::new(NOW)),
        SelfMetrics::default(),
    )
    .await
}

fn result(month: &str, cost: &str) -> (SegmentKey, DayRange, Usage) {
    let month: YearMonth = month.parse().unwrap();
    let range = DayRange {
        since: month.first_day(),
        until: month.end_exclusive().min(NOW.date().next_day().unwrap()),
    };
    let key = FactKey {
        account: "Acme".into(),
        account_key: "K".into(),
        category: "SMS".into(),
        currency: "EUR".into(),
        unit: "message".into(),
        dimensions: Vec::new(),
    };
    let amount = Amount {
        cost: cost.parse().unwrap(),
        quantity: Decimal::ONE,
    };
    let usage = Usage::from_facts(
        Some(range),
        vec![(month, false)],
        [((range.since, key), amount)],
    );
    (SegmentKey::new("eu", month), range, usage)
}

fn month_total(store: &Store, month: &str) -> Decimal {
    store
        .exposition()
        .snapshot
        .series(crate::billing::snapshot::Kind::MonthCost)
        .filter(|s| s.period == month)
        .map(|s| s.value)
        .sum()
}

#[tokio::test]
async fn a_second_store_on_a_locked_directory_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await.unwrap();
    let err = open(dir.path()).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Locked { .. }), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    first.store.close().await;
    open(dir.path())
        .await
        .expect("free again once the first is closed");
}

#[tokio::test]
async fn a_result_writes_its_own_segment_and_a_restart_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let opened = open(dir.path()).await.unwrap();
    for (month, cost) in [("2026-10", "5.5"), ("2026-11", "1.25")] {
        let (key, asked, usage) = result(month, cost);
        assert!(opened.store.apply(key, asked, usage, NOW).await.durable);
    }
    let files = |dir: &std::path::Path| {
        let mut names: Vec<String> = fs::read_dir(dir.join("segments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(files(dir.path()), ["eu.2026-10.seg", "eu.2026-11.seg"]);
    opened.store.close().await;
    let again = open(dir.path()).await.unwrap();
    assert_eq!(month_total(&again.store, "2026-10"), "5.5".parse().unwrap());
    assert_eq!(
        month_total(&again.store, "2026-11"),
        "1.25".parse().unwrap()
    );
    let meta = again.store.meta();
    let nov = &meta[&SegmentKey::new("eu", "2026-11".parse().unwrap())];
    assert_eq!(nov.last_result_at, Some(NOW));
}

#[tokio::test]
async fn a_corrupt_segment_is_set_aside_alone() {
    let dir = tempfile::tempdir().unwrap();
    let opened = open(dir.path()).await.unwrap();
    for (month, cost) in [("2026-10", "5.5"), ("2026-11", "1.25")] {
        let (key, asked, usage) = result(month, cost);
        opened.store.apply(key, asked, usage, NOW).await;
    }
    opened.store.close().await;
    let oct = dir.path().join("segments/eu.2026-10.seg");
    let mut bytes = fs::read(&oct).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&oct, bytes).unwrap();
    let again = open(dir.path()).await.unwrap();
    assert_eq!(month_total(&again.store, "2026-10"), Decimal::ZERO);
    assert_eq!(
        month_total(&again.store, "2026-11"),
        "1.25".parse().unwrap()
    );
    let aside = dir.path().join(format!(
        "segments/eu.2026-10.seg.corrupt-{}",
        NOW.unix_timestamp()
    ));
    assert!(aside.exists(), "kept for inspection");
    assert!(!oct.exists());
}

#[tokio::test]
async fn a_state_json_migrates_with_every_figure_equal() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("state.json"),
        r#"{"version":1,"targets":{"eu":{"months":{"2026-10":true},"results_applied":2,"facts":[
          {"day":"2026-10-31","account":"A","account_key":"K","category":"SMS","currency":"EUR","unit":"message","cost":"0.000000001","quantity":"2"},
          {"day":"2026-11-02","account":"A","account_key":"K","category":"WHATSAPP","currency":"USD","unit":"message","cost":"1234567.89","quantity":"1"}
        ]}},"pending":[]}"#,
    )
    .unwrap();
    let opened = open(dir.path()).await.unwrap();
    assert_eq!(
        month_total(&opened.store, "2026-10"),
        "0.000000001".parse().unwrap()
    );
    assert_eq!(
        month_total(&opened.store, "2026-11"),
        "1234567.89".parse().unwrap()
    );
    assert!(!dir.path().join("state.json").exists(), "migrated once");
    opened.store.close().await;
    let again = open(dir.path()).await.unwrap();
    assert_eq!(
        month_total(&again.store, "2026-11"),
        "1234567.89".parse().unwrap()
    );
    let finalized = &again.store.exposition().snapshot.finalized;
    assert!(finalized.contains(&("eu".into(), "2026-10".parse().unwrap(), true)));
    let _ = date!(2026 - 10 - 31);
}

#[tokio::test]
async fn changed_filters_ask_again_for_every_stored_month_of_the_target_final_ones_too() {
    let dir = tempfile::tempdir().unwrap();
    let opened = open(dir.path()).await.unwrap();
    let (key, asked, mut usage) = result("2026-10", "5.5");
    usage.periods = vec![(key.month, true)];
    opened.store.apply(key.clone(), asked, usage, NOW).await;
    assert!(!opened.store.meta()[&key].wants, "final: never asked again");
    opened.store.close().await;

    let whatsapp = crate::infobip::filters::UsageFilter {
        categories: vec![crate::infobip::model::Category::WHATSAPP],
        ..Default::default()
    };
    let filtered = StoreConfig {
        filters: BTreeMap::from([("eu".into(), whatsapp.identity())]),
        ..config(dir.path())
    };
    let again = open_with(filtered.clone()).await.unwrap();
    let meta = again.store.meta();
    assert!(
        meta[&key].wants && meta[&key].reshaped,
        "asked for again at once"
    );
    assert_eq!(
        month_total(&again.store, "2026-10"),
        "5.5".parse().unwrap(),
        "served until then"
    );
    again.store.close().await;

    // The mark is on disk, the filters too: the same filters later change nothing more, and
    // the mark stays until a result covers the month.
    let third = open_with(filtered).await.unwrap();
    assert!(third.store.meta()[&key].reshaped);
    let (key, asked, mut usage) = result("2026-10", "4.0");
    usage.periods = vec![(key.month, true)];
    third.store.apply(key.clone(), asked, usage, NOW).await;
    assert!(
        !third.store.meta()[&key].wants,
        "fetched under the new filters"
    );
}
