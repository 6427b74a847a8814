//! Callbacks from anyone but Infobip answering a query we sent: none changes any figure, each
//! is refused with the right status and counted.

mod common;

use common::{Harness, WAIT, counter, parse, samples_named, scrape};
use infobip_billing_exporter::daemon::pending::QueryState;
use infobip_billing_exporter::simulator::SimulatorOptions;
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Above the real callbacks of the default simulator (about 100 KiB), far below the 1 GiB sent.
const MAX_BODY: u64 = 4 * 1024 * 1024;

async fn settled_harness() -> Harness {
    let h = Harness::start(SimulatorOptions::default(), |c| {
        c.callback.max_body = MAX_BODY
    })
    .await;
    let expected = h.simulator_month_totals();
    h.wait_for_months(&expected).await;
    // The simulator records a delivery once its 200 arrives, which can trail the figures.
    tokio::time::timeout(WAIT, async {
        while h.simulator.stats().callbacks_delivered < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("three deliveries recorded");
    h
}

fn figures(text: &str) -> Vec<common::Sample> {
    let samples = parse(text);
    ["infobip_billing_cost", "infobip_billing_month_cost"]
        .iter()
        .flat_map(|m| samples_named(&samples, m).into_iter().cloned())
        .collect()
}

/// The callback URLs the exporter handed out, with the body the simulator delivered to each.
fn delivered(h: &Harness) -> Vec<(String, Vec<u8>)> {
    h.simulator
        .deliveries()
        .into_iter()
        .map(|d| (d.callback_url, d.body.to_vec()))
        .collect()
}

async fn post(url: &str, content_type: &str, body: Vec<u8>) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn hostile_callbacks_change_nothing() {
    let h = settled_harness().await;
    let before = figures(&scrape(h.exporter.web_addr).await);
    let deliveries = delivered(&h);
    assert_eq!(deliveries.len(), 3);
    let (url_a, body_a) = deliveries[0].clone();
    let (url_b, _) = deliveries[1].clone();
    let base = format!("http://{}", h.exporter.callback_addr);
    let json = "application/json";

    let wrong_token = format!("{base}/callback/sim/{}", "0f".repeat(32));
    assert_eq!(
        post(&wrong_token, json, body_a.clone()).await,
        404,
        "wrong token"
    );
    let wrong_target = url_a.replace("/callback/sim/", "/callback/other/");
    assert_eq!(
        post(&wrong_target, json, body_a.clone()).await,
        404,
        "token of another target"
    );
    assert_eq!(
        post(&format!("{base}/metrics"), json, body_a.clone()).await,
        404,
        "not a callback path"
    );

    let get = reqwest::get(&url_a).await.unwrap().status().as_u16();
    assert_eq!(get, 405, "wrong method");
    let put = reqwest::Client::new()
        .put(&url_a)
        .body(body_a.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 405, "wrong method");

    assert_eq!(
        post(&url_a, "text/plain", body_a.clone()).await,
        415,
        "wrong content type"
    );
    assert_eq!(
        post(&url_a, json, b"{\"requestId\": [".to_vec()).await,
        400,
        "malformed JSON"
    );
    assert_eq!(
        post(
            &url_a,
            json,
            b"{\"requestId\":\"X\",\"status\":\"SUCCESS\"}".to_vec()
        )
        .await,
        400,
        "breaks the schema"
    );
    assert_eq!(
        post(&url_b, json, body_a.clone()).await,
        409,
        "requestId of another query"
    );
    assert_eq!(
        post(&url_a, json, body_a.clone()).await,
        200,
        "a replay is acknowledged"
    );

    let after = figures(&scrape(h.exporter.web_addr).await);
    assert_eq!(before, after, "no figure changed");
    let samples = parse(&scrape(h.exporter.web_addr).await);
    let outcome = |o: &str| {
        counter(
            &samples,
            "infobip_billing_exporter_callbacks_total",
            ("outcome", o),
        )
    };
    assert_eq!(outcome("unknown_token"), Decimal::from(2));
    assert_eq!(outcome("unknown_path"), Decimal::ONE);
    assert_eq!(outcome("method"), Decimal::from(2));
    assert_eq!(outcome("content_type"), Decimal::ONE);
    assert_eq!(outcome("malformed_json"), Decimal::ONE);
    assert_eq!(outcome("schema"), Decimal::ONE);
    assert_eq!(outcome("request_id_mismatch"), Decimal::ONE);
    assert_eq!(outcome("duplicate"), Decimal::ONE);
    // A settled query is not sent again because someone posted garbage to its URL.
    assert!(
        h.exporter
            .shared
            .lock_pending()
            .queries()
            .iter()
            .all(|q| q.state == QueryState::Done)
    );
    h.stop().await;
}

/// Sends headers announcing `declared` bytes (or chunked when `None`), then streams zeros until
/// the server answers; returns the status line and how much was sent.
async fn stream_until_answered(url: &str, declared: Option<u64>) -> (String, u64) {
    let url = url.strip_prefix("http://").unwrap();
    let (host, path) = url.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let length = match declared {
        Some(n) => format!("content-length: {n}\r\n"),
        None => "transfer-encoding: chunked\r\n".to_owned(),
    };
    let head = format!(
        "POST /{path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n{length}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let chunk = vec![b' '; 16 * 1024];
    let total: u64 = 1 << 30;
    let writing = async {
        let mut sent = 0u64;
        while sent < total {
            let frame = match declared {
                Some(_) => chunk.clone(),
                None => [
                    format!("{:x}\r\n", chunk.len()).into_bytes(),
                    chunk.clone(),
                    b"\r\n".to_vec(),
                ]
                .concat(),
            };
            if writer.write_all(&frame).await.is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    };
    let reading = async {
        let mut buf = vec![0u8; 1024];
        let n = reader.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    // The writer stops when the server closes the connection; either side may finish first.
    let (status, sent) = tokio::join!(reading, writing);
    assert!(sent < total, "the whole {sent} bytes were accepted");
    (status, sent)
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_reading_them() {
    let h = settled_harness().await;
    let before = figures(&scrape(h.exporter.web_addr).await);
    let (url, _) = delivered(&h)[0].clone();

    let (status, _) = tokio::time::timeout(WAIT, stream_until_answered(&url, Some(1 << 30)))
        .await
        .unwrap();
    assert!(status.contains("413"), "declared length: {status}");
    let (status, sent) = tokio::time::timeout(WAIT, stream_until_answered(&url, None))
        .await
        .unwrap();
    assert!(status.contains("413"), "chunked: {status}");
    assert!(
        sent < 64 * 1024 * 1024,
        "stopped long before the 1 GiB end: {sent} bytes sent"
    );

    assert_eq!(before, figures(&scrape(h.exporter.web_addr).await));
    let samples = parse(&scrape(h.exporter.web_addr).await);
    assert_eq!(
        counter(
            &samples,
            "infobip_billing_exporter_callbacks_total",
            ("outcome", "body_too_large")
        ),
        Decimal::from(2)
    );
    h.stop().await;
}

#[tokio::test]
async fn sources_outside_allowed_cidrs_are_refused() {
    let h = Harness::start(SimulatorOptions::default(), |c| {
        c.callback.allowed_cidrs = vec!["192.0.2.0/24".parse().unwrap()];
    })
    .await;
    // The simulator posts from 127.0.0.1, outside the allowed network: every delivery refused.
    let mut stats = h.simulator.watch_stats();
    tokio::time::timeout(WAIT, stats.wait_for(|s| s.callbacks_rejected >= 3))
        .await
        .unwrap()
        .unwrap();
    assert!(
        h.simulator
            .deliveries()
            .iter()
            .all(|d| d.status == Some(403))
    );
    assert!(h.holds_no_figures());
    h.stop().await;
}
