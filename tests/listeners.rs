//! Listener hygiene: header, idle and body timeouts, the bound on connections with eviction of
//! idle ones, and a flood of idle connections that neither starves the callbacks nor /metrics
//! of a process held to 1,024 file descriptors. Each rejection is counted by listener and reason.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Harness, WAIT, parse, scrape};
use infobip_billing_exporter::config::Config;
use infobip_billing_exporter::daemon::pending::{PendingQuery, QueryState};
use infobip_billing_exporter::simulator::SimulatorOptions;
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REJECTIONS: &str = "infobip_billing_exporter_http_rejections_total";

async fn rejections(web: SocketAddr, listener: &str, reason: &str) -> Decimal {
    parse(&scrape(web).await)
        .iter()
        .find(|s| {
            s.name == REJECTIONS
                && s.labels.get("listener").map(String::as_str) == Some(listener)
                && s.labels.get("reason").map(String::as_str) == Some(reason)
        })
        .map(|s| s.value)
        .unwrap_or_else(|| {
            panic!("{REJECTIONS}{{listener={listener},reason={reason}}} exists from the start")
        })
}

/// Reads until the peer closes (or resets) the connection; what it sent before.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut got))
        .await
        .expect("closed within the wait");
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends a request and reads its response, on a connection kept alive.
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

/// Reads one response, leaving the connection open.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("an answer within the wait")
            .unwrap();
        assert!(n > 0, "closed before the answer was complete: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text.into_owned();
            }
        }
    }
}

const HEALTHY: &str = "GET /-/healthy HTTP/1.1\r\nHost: exporter\r\n\r\n";

#[tokio::test]
async fn slow_headers_are_closed_at_the_header_timeout_and_counted() {
    let h = Harness::start(SimulatorOptions::default(), |c| {
        c.web.limits.header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut slow = TcpStream::connect(h.exporter.web_addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: exp")
        .await
        .unwrap();
    let answer = read_to_close(&mut slow).await;
    let took = started.elapsed();
    assert!(answer.is_empty(), "closed without an answer: {answer:?}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    assert_eq!(
        rejections(h.exporter.web_addr, "web", "header_timeout").await,
        Decimal::ONE
    );
    h.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_header_timeout_and_ends_at_the_idle_timeout() {
    let h = Harness::start(SimulatorOptions::default(), |c| {
        c.web.limits.header_timeout = Duration::from_millis(300);
        c.web.limits.idle_timeout = Duration::from_millis(1500);
    })
    .await;
    let mut conn = TcpStream::connect(h.exporter.web_addr).await.unwrap();
    assert!(
        exchange(&mut conn, HEALTHY)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Idle for longer than the header timeout: the idle timeout applies between requests.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        exchange(&mut conn, HEALTHY)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let idle_from = Instant::now();
    assert!(read_to_close(&mut conn).await.is_empty());
    assert!(idle_from.elapsed() >= Duration::from_millis(1400));
    assert_eq!(
        rejections(h.exporter.web_addr, "web", "idle_timeout").await,
        Decimal::ONE
    );
    assert_eq!(
        rejections(h.exporter.web_addr, "web", "header_timeout").await,
        Decimal::ZERO
    );
    h.stop().await;
}

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
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, waiting)
        .await
        .expect("a query is sent")
}

/// Sends the head of a callback whose body has `length` bytes, and waits until its handler
/// reads the body (hyper answers `100 Continue` then).
async fn callback_in_progress(h: &Harness, query: &PendingQuery, length: usize) -> TcpStream {
    let mut conn = TcpStream::connect(h.exporter.callback_addr).await.unwrap();
    let head = format!(
        "POST /callback/{}/{} HTTP/1.1\r\nHost: exporter\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n",
        query.target, query.token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    conn
}

#[tokio::test]
async fn a_stalled_callback_body_ends_with_408_and_is_counted() {
    let h = Harness::start(common::callbacks_lost(), |c| {
        c.callback.limits.body_timeout = Duration::from_millis(500);
    })
    .await;
    let query = pending_query(&h).await;
    let mut conn = callback_in_progress(&h, &query, 1000).await;
    let started = Instant::now();
    conn.write_all(b"{\"requestId\"").await.unwrap();
    let answer = read_to_close(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let samples = parse(&scrape(h.exporter.web_addr).await);
    assert_eq!(
        common::counter(
            &samples,
            "infobip_billing_exporter_callbacks_total",
            ("outcome", "body_timeout")
        ),
        Decimal::ONE
    );
    assert_eq!(
        rejections(h.exporter.web_addr, "callback", "body_timeout").await,
        Decimal::ONE
    );
    h.stop().await;
}

#[tokio::test]
async fn a_full_listener_closes_its_oldest_idle_connection_to_let_a_new_one_in() {
    let h = Harness::start(SimulatorOptions::default(), |c| {
        c.web.limits.max_connections = 2;
    })
    .await;
    let web = h.exporter.web_addr;
    let mut oldest = TcpStream::connect(web).await.unwrap();
    assert!(
        exchange(&mut oldest, HEALTHY)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut second = TcpStream::connect(web).await.unwrap();
    assert!(
        exchange(&mut second, HEALTHY)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut newcomer = TcpStream::connect(web).await.unwrap();
    assert!(
        exchange(&mut newcomer, HEALTHY)
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        read_to_close(&mut oldest).await.is_empty(),
        "the oldest idle one made room"
    );
    assert!(
        exchange(&mut second, HEALTHY)
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(rejections(web, "web", "evicted_idle").await >= Decimal::ONE);
    assert_eq!(rejections(web, "web", "over_limit").await, Decimal::ZERO);
    h.stop().await;
}

#[tokio::test]
async fn a_full_listener_whose_connections_are_all_busy_closes_the_new_one_and_finishes_theirs() {
    let h = Harness::start(common::callbacks_lost(), |c| {
        c.callback.limits.max_connections = 2;
    })
    .await;
    let query = pending_query(&h).await;
    let body = b"not json";
    let mut first = callback_in_progress(&h, &query, body.len()).await;
    let mut second = callback_in_progress(&h, &query, body.len()).await;
    let mut third = TcpStream::connect(h.exporter.callback_addr).await.unwrap();
    let _ = third.write_all(HEALTHY.as_bytes()).await;
    assert!(
        read_to_close(&mut third).await.is_empty(),
        "closed unanswered"
    );
    assert_eq!(
        rejections(h.exporter.web_addr, "callback", "over_limit").await,
        Decimal::ONE
    );
    for conn in [&mut first, &mut second] {
        conn.write_all(body).await.unwrap();
        assert!(
            read_response(conn).await.starts_with("HTTP/1.1 400"),
            "answered"
        );
    }
    assert_eq!(
        rejections(h.exporter.web_addr, "callback", "evicted_idle").await,
        Decimal::ZERO
    );
    h.stop().await;
}

#[tokio::test]
async fn an_oversized_head_is_answered_431_and_counted() {
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    let mut conn = TcpStream::connect(h.exporter.web_addr).await.unwrap();
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: exporter\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let _ = conn.write_all(request.as_bytes()).await;
    assert!(read_to_close(&mut conn).await.starts_with("HTTP/1.1 431"));
    assert_eq!(
        rejections(h.exporter.web_addr, "web", "header_too_large").await,
        Decimal::ONE
    );
    let mut conn = TcpStream::connect(h.exporter.web_addr).await.unwrap();
    let _ = conn.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(read_to_close(&mut conn).await.starts_with("HTTP/1.1 400"));
    assert_eq!(
        rejections(h.exporter.web_addr, "web", "malformed_request").await,
        Decimal::ONE
    );
    h.stop().await;
}

#[test]
fn listener_limits_have_defaults_and_are_validated_together() {
    let base = "targets:\n  - name: eu\n    base_url: https://x.api.infobip.com\n    api_key_env: K\n\
                state_dir: /s\n";
    let config = Config::from_yaml(&format!(
        "{base}callback:\n  listen: 0.0.0.0:9478\n  public_url: https://x.example.com\n"
    ))
    .unwrap();
    let (web, callback) = (config.web.limits, config.callback.limits);
    assert_eq!(web.header_timeout, Duration::from_secs(10));
    assert_eq!(web.idle_timeout, Duration::from_secs(60));
    assert_eq!(web.body_timeout, Duration::from_secs(300));
    assert_eq!((web.max_connections, callback.max_connections), (64, 512));
    assert_eq!(config.callback.tls, None);
    assert_eq!(config.web.config_file, None);

    let err = Config::from_yaml(&format!(
        "{base}callback:\n  listen: 0.0.0.0:9478\n  public_url: https://x.example.com\n  \
         max_connections: 0\n  body_timeout: 2h\n  tls:\n    cert_file: c.pem\n\
         web:\n  header_timeout: soon\n  config_file: ''\n"
    ))
    .unwrap_err();
    assert_eq!(
        err.problems(),
        [
            "callback.tls.key_file: missing; expected the path of a PEM file (both cert_file and key_file are needed)",
            "callback.body_timeout: \"2h\" is out of range; expected 100ms to 1h, e.g. 5m",
            "callback.max_connections: \"0\" is not a whole number from 1 to 65536; expected e.g. 512",
            "web.config_file: empty; expected the path of an exporter-toolkit web configuration file, or no key for plain HTTP",
            "web.header_timeout: \"soon\" is not a duration; expected a number and a unit, 100ms to 10m, e.g. 10s",
        ]
    );
}

/// A simulator on loopback at the real now whose callbacks leave `delay` after each `201`.
async fn live_sim_with_delay(
    delay: Duration,
) -> (
    infobip_billing_exporter::simulator::Simulator,
    String,
    tokio_util::sync::CancellationToken,
) {
    let clock = std::sync::Arc::new(
        infobip_billing_exporter::billing::calendar::ManualClock::new(
            time::OffsetDateTime::now_utc(),
        ),
    );
    let options = SimulatorOptions {
        callback_delay: delay,
        ..SimulatorOptions::default()
    };
    let simulator = infobip_billing_exporter::simulator::Simulator::new(options, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(simulator.clone().serve(listener, shutdown.clone()));
    (simulator, url, shutdown)
}

const FLOOD: usize = 1100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prlimit (util-linux)"]
async fn a_flood_of_idle_connections_starves_neither_the_callbacks_nor_the_scrapes() {
    // This process holds the flood's client ends, more than a default soft limit of 1,024.
    let limit = rlimit::increase_nofile_limit(4 * FLOOD as u64).unwrap();
    assert!(
        limit > FLOOD as u64 + 100,
        "this test needs a hard limit above {FLOOD} descriptors, the hard limit is {limit}"
    );
    // Callbacks leave well after the flood is in place, so the one applied came through it.
    let (simulator, sim_url, sim_shutdown) = live_sim_with_delay(Duration::from_secs(5)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "demo-key\n").unwrap();
    let (web, callback) = (common::free_port(), common::free_port());
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "targets:\n  - name: demo\n    base_url: {sim_url}\n    api_key_file: {key}\n\
             callback:\n  listen: 127.0.0.1:{callback}\n  public_url: http://127.0.0.1:{callback}\n\
             \x20 header_timeout: 1m\nweb:\n  listen: 127.0.0.1:{web}\nstate_dir: {state}\n",
            key = dir.path().join("key").display(),
            state = dir.path().join("state").display(),
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new("prlimit");
    command.args(["--nofile=1024:1024", common::BIN, "run", "--config"]);
    command.arg(&config);
    let exporter = common::Proc::spawn_command(command);
    common::Proc::wait_line(&exporter.stderr, "exporter started");
    let mut stats = simulator.watch_stats();
    tokio::time::timeout(WAIT, stats.wait_for(|s| s.queries_accepted >= 1))
        .await
        .unwrap()
        .unwrap();

    let target: SocketAddr = format!("127.0.0.1:{callback}").parse().unwrap();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(TcpStream::connect(target).await.unwrap());
    }
    assert_eq!(
        simulator.stats().callbacks_delivered,
        0,
        "the flood took longer than the callback delay; the test proves nothing"
    );

    tokio::time::timeout(WAIT, stats.wait_for(|s| s.callbacks_delivered >= 1))
        .await
        .expect("a callback got through the flood")
        .unwrap();
    let web_addr: SocketAddr = format!("127.0.0.1:{web}").parse().unwrap();
    let started = Instant::now();
    let text = tokio::time::timeout(Duration::from_secs(1), scrape(web_addr))
        .await
        .expect("/metrics answers within 1 s");
    assert!(started.elapsed() < Duration::from_secs(1));
    let samples = parse(&text);
    assert!(
        samples
            .iter()
            .any(|s| s.name == "infobip_billing_month_cost"),
        "the callback's figures are on /metrics"
    );
    let count = |listener: &str, reason: &str| {
        samples
            .iter()
            .find(|s| {
                s.name == REJECTIONS
                    && s.labels["listener"] == listener
                    && s.labels["reason"] == reason
            })
            .map(|s| s.value)
            .unwrap()
    };
    // At most 512 of the flood are held; the rest made room for newer ones, none failed.
    assert!(count("callback", "evicted_idle") >= Decimal::from(FLOOD - 512));
    assert_eq!(count("callback", "accept_error"), Decimal::ZERO);
    assert_eq!(count("web", "accept_error"), Decimal::ZERO);
    drop(flood);
    let status = exporter.signal_and_wait("TERM");
    assert!(status.success(), "{status}");
    sim_shutdown.cancel();
}
