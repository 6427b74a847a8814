//! A result stays in its month: a body whose period reaches outside the month its query asked
//! for is applied only inside, logged and counted, and never changes another month.

mod common;

use std::time::Duration;

use common::{Harness, counter, parse, samples_named, scrape};
use infobip_billing_exporter::daemon::pending::QueryState;
use infobip_billing_exporter::infobip::model::{Cell, QueryBillingUsageApiRequest};
use infobip_billing_exporter::simulator::SimulatorOptions;
use rust_decimal::Decimal;

fn month_cost(samples: &[common::Sample], month: &str) -> Vec<(String, Decimal)> {
    samples_named(samples, "infobip_billing_month_cost")
        .into_iter()
        .filter(|s| s.labels["month"] == month)
        .map(|s| (format!("{:?}", s.labels), s.value))
        .collect()
}

#[tokio::test]
async fn a_result_reaching_into_another_month_leaves_that_month_unchanged() {
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    let state = h.stop().await;

    // Restarted with callbacks lost and a short interval: November is asked for again and its
    // query stays pending, for this test to answer.
    let h = Harness::start_in(common::callbacks_lost(), state, |c| {
        c.interval = Duration::from_millis(300)
    })
    .await;
    let before = parse(&scrape(h.exporter.web_addr).await);
    let mut pending = None;
    for _ in 0..500 {
        pending = h
            .exporter
            .shared
            .lock_pending()
            .queries()
            .iter()
            .find(|q| {
                q.state == QueryState::Sent
                    && q.month.to_string() == "2026-11"
                    && q.request_id.is_some()
            })
            .cloned();
        if pending.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let query = pending.expect("a pending November query");

    // November's own result, with its period widened to October 31st and a row of that day.
    let request = QueryBillingUsageApiRequest::unfiltered(
        query.range,
        h.exporter.shared.settings().aggregate_by.clone(),
    );
    let request_id = query.request_id.clone().unwrap();
    let mut result = h.simulator.result_for(&request, &request_id, h.clock.now());
    let response = result.response.as_mut().unwrap();
    response.requested_period.sent_since -= time::Duration::days(1);
    let mut october = response.rows[0].clone();
    october[0] = Cell::Text("2026-10-31T00:00:00.000+0000".into());
    let cost = response
        .columns
        .iter()
        .position(|c| c.column_name == "TOTAL_PER_UNIT")
        .unwrap();
    october[cost] = Cell::Number(Decimal::from(1_000_000));
    response.rows.push(october);
    response.total_rows += 1;
    let url = format!(
        "http://{}/callback/sim/{}",
        h.exporter.callback_addr, query.token
    );
    let status = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&result).unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the days inside are applied");

    let after = parse(&scrape(h.exporter.web_addr).await);
    assert!(!month_cost(&before, "2026-10").is_empty());
    assert_eq!(
        month_cost(&after, "2026-10"),
        month_cost(&before, "2026-10"),
        "October untouched"
    );
    assert_eq!(
        month_cost(&after, "2026-11"),
        month_cost(&before, "2026-11"),
        "November as Infobip has it"
    );
    let outside = "infobip_billing_exporter_results_outside_period_total";
    assert_eq!(counter(&after, outside, ("target", "sim")), Decimal::ONE);
    h.stop().await;
}
