//! Ingesting a 1,000,000-row callback (DAY, ACCOUNT_NAME, ACCOUNT_KEY, CATEGORY_CODE,
//! COUNTRY_CODE, TRAFFIC_TYPE) from the simulator. Ours: the exporter's decoder. The baseline:
//! a `serde_json::Value` tree, then the rows summed by column name into a `HashMap` of decimals.

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
}

criterion_group!(benches, ingest);
criterion_main!(benches);
