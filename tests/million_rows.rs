//! A 1,000,000-row callback from the simulator, streamed through the callback listener: the
//! exporter's totals per currency equal, to the cent, a sum over the same body done by an
//! independent parser (serde_json, one row at a time).

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use common::{Harness, WAIT, november_clock};
use infobip_billing_exporter::billing::calendar::{Clock, DayRange, YearMonth};
use infobip_billing_exporter::billing::facts::CURRENCY;
use infobip_billing_exporter::billing::snapshot::Kind;
use infobip_billing_exporter::billing::state;
use infobip_billing_exporter::daemon::pending::wall_now;
use infobip_billing_exporter::infobip::model::{
    BillingUsageAggregate as Agg, Cell, QueryBillingUsageApiRequest,
};
use infobip_billing_exporter::simulator::{Scale, Simulator, SimulatorOptions};
use rust_decimal::Decimal;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use time::macros::date;

const DIMENSIONS: [Agg; 6] = [
    Agg::DAY,
    Agg::ACCOUNT_NAME,
    Agg::ACCOUNT_KEY,
    Agg::CATEGORY_CODE,
    Agg::COUNTRY_CODE,
    Agg::TRAFFIC_TYPE,
];

/// Sums TOTAL_PER_UNIT per CURRENCY over a `rows` array without keeping the rows.
struct RowSums<'a> {
    total: usize,
    currency: usize,
    sums: &'a mut BTreeMap<String, Decimal>,
    rows: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for RowSums<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowSums<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<Vec<Cell>>()? {
            *self.rows += 1;
            let (Cell::Number(total), Cell::Text(currency)) =
                (&row[self.total], &row[self.currency])
            else {
                continue;
            };
            *self.sums.entry(currency.clone()).or_default() += *total;
        }
        Ok(())
    }
}

fn independent_sums(body: &[u8]) -> (BTreeMap<String, Decimal>, usize) {
    let text = std::str::from_utf8(body).unwrap();
    let columns_at = text.find("\"columns\":").unwrap() + "\"columns\":".len();
    let columns_end = columns_at + text[columns_at..].find(']').unwrap() + 1;
    let columns: Vec<serde_json::Value> =
        serde_json::from_str(&text[columns_at..columns_end]).unwrap();
    let position = |name: &str| {
        columns
            .iter()
            .position(|c| c["columnName"] == name)
            .unwrap()
    };
    let rows_at = text.find("\"rows\":").unwrap() + "\"rows\":".len();
    let (mut sums, mut rows) = (BTreeMap::new(), 0);
    let seed = RowSums {
        total: position("TOTAL_PER_UNIT"),
        currency: position("CURRENCY"),
        sums: &mut sums,
        rows: &mut rows,
    };
    seed.deserialize(&mut serde_json::Deserializer::from_slice(&body[rows_at..]))
        .unwrap();
    (sums, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy: builds and ingests a 155 MB callback (about 2 minutes in a debug build); CI runs it"]
async fn a_million_row_callback_is_ingested_to_the_cent() {
    let clock = november_clock();
    let options = SimulatorOptions {
        scale: Scale {
            accounts: 420,
            countries: 20,
            senders: 4,
            ..Scale::default()
        },
        ..SimulatorOptions::default()
    };
    let simulator = Simulator::new(options, clock.clone());
    let range = DayRange {
        since: date!(2026 - 11 - 01),
        until: date!(2026 - 11 - 15),
    };
    let request = QueryBillingUsageApiRequest::unfiltered(range, DIMENSIONS.to_vec());
    let body = simulator.result_body_for(&request, "MILLION", clock.now());
    let (expected, rows) = independent_sums(&body);
    println!("callback: {rows} rows, {} MB", body.len() / 1_000_000);
    assert!(rows >= 1_000_000, "{rows} rows");

    // Nothing answers at the target's URL: the only result is the one posted below.
    let h = Harness::start_against(
        "http://127.0.0.1:9",
        simulator,
        Arc::clone(&clock),
        tokio_util::sync::CancellationToken::new(),
        tempfile::tempdir().unwrap(),
        // The default max_series, as a user runs it: a million series are rolled up to 10,000
        // per metric, and every currency total must survive that too.
        |c| c.metrics.dimensions = vec![Agg::COUNTRY_CODE, Agg::TRAFFIC_TYPE],
    )
    .await;
    let token = {
        let mut pending = h.exporter.shared.lock_pending();
        let token = pending.register("sim", YearMonth::of(range.since), range, wall_now());
        pending.record_request_id(&token, "MILLION".into());
        token
    };
    let url = format!("http://{}/callback/sim/{token}", h.exporter.callback_addr);
    let posted = std::time::Instant::now();
    let status = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    println!("posted and applied in {:?}", posted.elapsed());

    // The 200 came once the month's segment was durable: its file holds every fact.
    let mut held: BTreeMap<String, Decimal> = BTreeMap::new();
    for entry in std::fs::read_dir(h.state.path().join("segments")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let (_, segment, _) = state::read(&bytes).unwrap();
        for facts in segment.days.values() {
            for (ids, amount) in facts.iter() {
                let currency = segment.labels.name(ids[CURRENCY]);
                *held.entry(currency.to_owned()).or_default() += amount.cost;
            }
        }
    }
    assert_eq!(held, expected, "segment file totals per currency");
    let exposition = h.exporter.shared.store.exposition();
    let snapshot = &exposition.snapshot;
    let mut exported: BTreeMap<String, Decimal> = BTreeMap::new();
    for s in snapshot.series(Kind::MonthCost) {
        *exported.entry(s.currency.clone()).or_default() += s.value;
    }
    assert_eq!(
        exported, expected,
        "month cost per currency, after the roll-up"
    );
    let rolled: u64 = snapshot.segments.iter().map(|s| s.rolled_up).sum();
    assert!(rolled > 0, "a million series were rolled up");
    let days = snapshot.series(Kind::Cost).count();
    assert!(days <= 10_000, "{days} day series");
    tokio::time::timeout(WAIT, h.stop()).await.unwrap();
}
