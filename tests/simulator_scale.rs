//! Size knobs reach a million-row callback, built and serialized in seconds.

mod simulator_support;

use std::sync::Arc;
use std::time::Instant;

use infobip_billing_exporter::billing::calendar::{DayRange, ManualClock};
use infobip_billing_exporter::infobip::model::{
    BillingUsageAggregate as Agg, QueryBillingUsageApiRequest,
};
use infobip_billing_exporter::simulator::{Scale, Simulator, SimulatorOptions};
use time::macros::{date, datetime};

#[test]
fn a_million_rows() {
    let opts = SimulatorOptions {
        scale: Scale {
            accounts: 140,
            countries: 20,
            senders: 4,
            ..Scale::default()
        },
        ..SimulatorOptions::default()
    };
    let started = Instant::now();
    let sim = Simulator::new(
        opts,
        Arc::new(ManualClock::new(datetime!(2026-04-10 12:00 UTC))),
    );
    let built = started.elapsed();
    let days = DayRange {
        since: date!(2026 - 03 - 01),
        until: date!(2026 - 03 - 08),
    };
    let request = QueryBillingUsageApiRequest::unfiltered(
        days,
        vec![
            Agg::DAY,
            Agg::ACCOUNT_KEY,
            Agg::CATEGORY_CODE,
            Agg::TRAFFIC_TYPE,
            Agg::NORM_NET_CODE,
            Agg::SENDER,
        ],
    );
    let started = Instant::now();
    let body = sim.result_body_for(&request, "ID", datetime!(2026-04-10 12:00 UTC));
    let elapsed = started.elapsed();
    // Read the count without building a tree of a million rows.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Response {
        total_rows: u64,
        rows: serde::de::IgnoredAny,
    }
    #[derive(serde::Deserialize)]
    struct Result {
        response: Response,
    }
    let result: Result = serde_json::from_slice(&body).unwrap();
    let _ = result.response.rows;
    let rows = result.response.total_rows;
    eprintln!(
        "built in {built:?}; {rows} rows, {} MB in {elapsed:?}",
        body.len() / 1_000_000
    );
    assert!(rows >= 1_000_000, "{rows}");
}
