//! Ingesting a 1,000,000-row callback (DAY, ACCOUNT_NAME, ACCOUNT_KEY, CATEGORY_CODE,
//! COUNTRY_CODE, TRAFFIC_TYPE) from the simulator. Ours: the exporter's decoder. The baseline:
//! a `serde_json::Value` tree, then the rows summed by column name into a `HashMap` of decimals.
//! Also the decoder alone on the body `shared/bench/ingest_e2e.py` posts: a million distinct
//! facts with 11 columns, the shape the end-to-end target is set on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infobip_billing_exporter::billing::calendar::YearMonth;
use infobip_billing_exporter::billing::calendar::{DayRange, ManualClock};
use infobip_billing_exporter::billing::ledger::{Ledger, SegmentKey};
use infobip_billing_exporter::billing::snapshot::{Snapshot, View};
use infobip_billing_exporter::infobip::model::{
    BillingUsageAggregate as Agg, QueryBillingUsageApiRequest,
};
use infobip_billing_exporter::infobip::result::{self, Outcome};
use infobip_billing_exporter::simulator::{Scale, Simulator, SimulatorOptions};
use rust_decimal::Decimal;
use serde_json::Value;
use time::macros::{date, datetime};

/// The key columns besides the money: the ones the exporter keys a fact by.
const KEY_COLUMNS: [&str; 8] = [
    "DAY",
    "ACCOUNT_NAME",
    "ACCOUNT_KEY",
    "CATEGORY_CODE",
    "CURRENCY",
    "UNIT_TYPE",
    "COUNTRY_CODE",
    "TRAFFIC_TYPE",
];

/// Seven days of a large account hierarchy: about a million rows.
fn body() -> Vec<u8> {
    let now = datetime!(2026-04-10 12:00 UTC);
    let opts = SimulatorOptions {
        scale: Scale {
            accounts: 805,
            countries: 20,
            ..Scale::default()
        },
        ..SimulatorOptions::default()
    };
    let sim = Simulator::new(opts, Arc::new(ManualClock::new(now)));
    let days = DayRange {
        since: date!(2026 - 03 - 01),
        until: date!(2026 - 03 - 08),
    };
    let request = QueryBillingUsageApiRequest::unfiltered(
        days,
        vec![
            Agg::DAY,
            Agg::ACCOUNT_NAME,
            Agg::ACCOUNT_KEY,
            Agg::CATEGORY_CODE,
            Agg::COUNTRY_CODE,
            Agg::TRAFFIC_TYPE,
        ],
    );
    sim.result_body_for(&request, "ID", now)
}

/// The callback `ingest_e2e.py` builds, for February 2026: the same columns, cells and row order
/// (its `itertools.product` of day, account, category, traffic type, country), every fact distinct.
fn e2e_body() -> Vec<u8> {
    const ROWS: usize = 1_000_000;
    const CATEGORIES: [&str; 10] = [
        "SMS",
        "SMS_OPERATOR_FEE",
        "MMS",
        "EMAIL",
        "RCS",
        "WHATSAPP",
        "VIBER",
        "MOBILE_PUSH",
        "NUMBER_LOOKUP",
        "CARRIER_LOOKUP",
    ];
    const TRAFFIC: [&str; 5] = ["A2P", "MARKETING", "UTILITY", "AUTHENTICATION", "SERVICE"];
    const COLUMNS: [(&str, &str); 11] = [
        ("DAY", "DATE_TIME"),
        ("ACCOUNT_NAME", "STRING"),
        ("ACCOUNT_KEY", "STRING"),
        ("CATEGORY_CODE", "STRING"),
        ("TRAFFIC_TYPE", "STRING"),
        ("COUNTRY_CODE", "STRING"),
        ("UNIT_TYPE", "STRING"),
        ("UNIT_PRICE", "NUMBER"),
        ("QUANTITY", "NUMBER"),
        ("TOTAL_PER_UNIT", "NUMBER"),
        ("CURRENCY", "STRING"),
    ];
    let period = r#"{"sentSince": "2026-02-01T00:00:00.000+0000", "sentUntil": "2026-03-01T00:00:00.000+0000"}"#;
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, kind)| format!(r#"{{"columnName": "{name}", "columnDataType": "{kind}"}}"#))
        .collect();
    let mut body = format!(
        r#"{{"requestId": "ID", "status": "SUCCESS", "metadata": {{"clientRequestedPeriod": {period}, "billingPeriods": [{{"month": "2026-02", "volumeFinalized": false}}]}}, "response": {{"requestedPeriod": {period}, "totalRows": {ROWS}, "columns": [{}], "rows": ["#,
        columns.join(", ")
    );
    let combos = (1..=28).flat_map(|d| {
        (0..8).flat_map(move |a| {
            CATEGORIES.iter().flat_map(move |c| {
                TRAFFIC
                    .iter()
                    .flat_map(move |t| (0..100).map(move |k| (d, a, c, t, k)))
            })
        })
    });
    for (i, (d, a, c, t, k)) in combos.take(ROWS).enumerate() {
        if i > 0 {
            body.push(',');
        }
        // Python's `Decimal(n) / 100`: exact, without trailing zeros.
        let total = Decimal::new((i % 9973) as i64, 2).normalize();
        body.push_str(&format!(
            r#"["2026-02-{d:02}T00:00:00.000+0000","Account {a}","K{a:031}","{c}","{t}","C{k:02}","message",0.0075,{},{total},"EUR"]"#,
            i % 977
        ));
    }
    body.push_str("]}}");
    body.into_bytes()
}

/// A number or string cell as a decimal, as a hand-written client would read it.
fn decimal(cell: &Value) -> Decimal {
    match cell {
        Value::String(s) => s.parse().unwrap_or_default(),
        other => other.to_string().parse().unwrap_or_default(),
    }
}

/// The naive way: the whole body as a tree, the columns looked up by name, every row's key
/// cells copied into a `Vec<String>`.
fn baseline(body: &[u8]) -> HashMap<Vec<String>, (Decimal, Decimal)> {
    let doc: Value = serde_json::from_slice(body).unwrap();
    let response = &doc["response"];
    let names: Vec<&str> = response["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["columnName"].as_str().unwrap())
        .collect();
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    let keys: Vec<usize> = KEY_COLUMNS.iter().map(|n| at(n)).collect();
    let (total, quantity) = (at("TOTAL_PER_UNIT"), at("QUANTITY"));
    let mut sums: HashMap<Vec<String>, (Decimal, Decimal)> = HashMap::new();
    for row in response["rows"].as_array().unwrap() {
        let row = row.as_array().unwrap();
        let key = keys
            .iter()
            .map(|&i| match &row[i] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let sum = sums.entry(key).or_default();
        sum.0 += decimal(&row[total]);
        sum.1 += decimal(&row[quantity]);
    }
    sums
}

/// The exporter's defaults on the day after the callback's last day: 35 days, 10,000 series.
fn view() -> View {
    let today = date!(2026 - 03 - 08);
    View {
        today,
        day_window: DayRange {
            since: today - time::Duration::days(34),
            until: today.next_day().unwrap(),
        },
        max_series: 10_000,
        budgets: Vec::new(),
    }
}

fn ingest(c: &mut Criterion) {
    let body = body();
    let dimensions = [Agg::COUNTRY_CODE, Agg::TRAFFIC_TYPE];
    let rows = serde_json::from_slice::<Value>(&body).unwrap()["response"]["totalRows"]
        .as_u64()
        .unwrap();
    let Outcome::Success(usage) = result::decode(&body, &dimensions).unwrap().outcome else {
        panic!("the simulator's result did not decode as a success");
    };
    let facts = usage.len();
    assert_eq!(baseline(&body).len(), facts, "both sum to the same facts");
    let mut group = c.benchmark_group(format!(
        "ingest/{rows}_rows_{}MB_{facts}_facts",
        body.len() / 1_000_000
    ));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("ours_decode", |b| {
        b.iter(|| result::decode(&body, &dimensions).unwrap())
    });
    group.bench_function("baseline_serde_json_value", |b| b.iter(|| baseline(&body)));
    // Not part of the comparison: the whole way to a scrape, as the exporter goes it.
    group.bench_function("ours_decode_apply_snapshot", |b| {
        b.iter(|| {
            let Outcome::Success(usage) = result::decode(&body, &dimensions).unwrap().outcome
            else {
                unreachable!("decoded above");
            };
            let mut ledger =
                Ledger::new(dimensions.iter().map(|d| d.as_str().to_owned()).collect());
            let asked = usage.covered.unwrap();
            let key = SegmentKey::new("eu", YearMonth::of(asked.since));
            ledger.apply(&key, asked, usage, time::OffsetDateTime::UNIX_EPOCH);
            Snapshot::build(&ledger, &view(), &["eu".to_owned()])
        })
    });
    group.finish();

    let body = e2e_body();
    // As ingest_e2e.py configures the daemon.
    let dimensions = [Agg::TRAFFIC_TYPE, Agg::COUNTRY_CODE];
    let Outcome::Success(usage) = result::decode(&body, &dimensions).unwrap().outcome else {
        panic!("the e2e body did not decode as a success");
    };
    assert_eq!(usage.len(), 1_000_000, "every row is its own fact");
    let mut group = c.benchmark_group(format!("ingest/e2e_body_{}MB", body.len() / 1_000_000));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("ours_decode", |b| {
        b.iter(|| result::decode(&body, &dimensions).unwrap())
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
