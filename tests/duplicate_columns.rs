//! A result naming one column twice leaves open which cell holds the value, so it is refused at
//! the callback URL of the query it answers, and counted by its own reason.

mod common;

use common::{Harness, WAIT, counter, parse, scrape};
use infobip_billing_exporter::daemon::pending::{PendingQuery, QueryState};
use rust_decimal::Decimal;

/// A sent query whose `requestId` is recorded, once the exporter has one.
async fn pending_query(h: &Harness) -> PendingQuery {
    let waiting = async {
        loop {
            let found = h
                .exporter
                .shared
                .lock_pending()
                .queries()
                .iter()
                .find(|q| q.state == QueryState::Sent && q.request_id.is_some())
                .cloned();
            if let Some(query) = found {
                return query;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, waiting)
        .await
        .expect("a query is sent")
}

/// Its result, well formed but for two `TOTAL_PER_UNIT` columns.
fn body_with_a_column_twice(query: &PendingQuery) -> Vec<u8> {
    let request_id = query.request_id.as_deref().unwrap_or_default();
    let since = query.range.since;
    format!(
        r#"{{"requestId":"{request_id}","status":"SUCCESS","response":{{
          "requestedPeriod":{{"sentSince":"{since}T00:00:00.000+0000","sentUntil":"{until}T00:00:00.000+0000"}},
          "totalRows":1,
          "columns":[{{"columnName":"DAY","columnDataType":"DATE_TIME"}},
                     {{"columnName":"ACCOUNT_NAME","columnDataType":"STRING"}},
                     {{"columnName":"CATEGORY_CODE","columnDataType":"STRING"}},
                     {{"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}},
                     {{"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}},
                     {{"columnName":"CURRENCY","columnDataType":"STRING"}}],
          "rows":[["{since}T00:00:00.000+0000","Acme","SMS",1.00,100.00,"EUR"]]}},
          "metadata":{{"clientRequestedPeriod":{{"sentSince":"{since}T00:00:00.000+0000","sentUntil":"{until}T00:00:00.000+0000"}},
          "billingPeriods":[{{"month":"{month}","volumeFinalized":false}}]}}}}"#,
        until = query.range.until,
        month = query.month,
    )
    .into_bytes()
}

#[tokio::test]
async fn a_result_naming_a_column_twice_is_refused_and_counted() {
    // Every callback of the simulator is lost: the only result is the one posted here.
    let h = Harness::start(common::callbacks_lost(), |_| {}).await;
    let query = pending_query(&h).await;
    let url = format!(
        "http://{}/callback/{}/{}",
        h.exporter.callback_addr, query.target, query.token
    );
    let status = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body_with_a_column_twice(&query))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);

    let samples = parse(&scrape(h.exporter.web_addr).await);
    assert_eq!(
        counter(
            &samples,
            "infobip_billing_exporter_callbacks_total",
            ("outcome", "duplicate_column")
        ),
        Decimal::ONE
    );
    assert!(h.holds_no_figures(), "neither column was read");
    assert_ne!(
        h.exporter
            .shared
            .lock_pending()
            .find(&query.token)
            .map(|q| q.state),
        Some(QueryState::Done),
        "the query is not settled by a result it cannot read"
    );
    h.stop().await;
}
