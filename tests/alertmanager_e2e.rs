//! Alerting end to end on real parts: a real Prometheus (Debian's `prometheus`) evaluates the
//! rules of `alerts/` over the exporter fed by the simulator, a real Alertmanager (Debian's
//! `prometheus-alertmanager`) routes what fires to a webhook receiver in this test, and the
//! notifications must carry a budget alert and a day-spike alert with their labels and a
//! runbook URL that leads to a section of docs/runbooks.md.
//!
//! The rules are those shipped, with `for:` shortened to 1s and the day spike's thresholds set
//! to zero through their parameters (as the chart sets them), since the simulator's steady
//! traffic has no spike: the alert's expression, recording rules and labels are the real ones.
//! Everything binds 127.0.0.1, every wait is bounded.

mod monitoring;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use monitoring::{Exporter, ROOT, RUNBOOKS_URL, Server, WAIT, anchors, http, shipped_rules};
use serde_json::Value;
use tokio::sync::mpsc;

/// A budget far below the simulated WhatsApp spend, so that it is used up at once.
const BUDGETS: &str = "budgets:
  - name: whatsapp-low
    monthly: 1
    currency: EUR
    match: { channel: whatsapp }
";

/// Alertmanager: everything to the test's webhook, each alert in its own group, sent at once.
fn alertmanager_config(webhook: &str) -> String {
    format!(
        "route:\n  receiver: test\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: test\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: false\n"
    )
}

/// The webhook receiver: each notification's JSON body into the channel.
async fn serve_webhook() -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route(
            "/alerts",
            post(
                |State(tx): State<mpsc::UnboundedSender<Value>>, Json(body): Json<Value>| async move {
                    let _ = tx.send(body);
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// The section of docs/runbooks.md a runbook URL leads to, if it exists.
fn runbook_section(url: &str) -> Option<String> {
    let anchor = url.strip_prefix(RUNBOOKS_URL)?.strip_prefix('#')?;
    let runbooks = std::fs::read_to_string(Path::new(ROOT).join("docs/runbooks.md")).unwrap();
    anchors(&runbooks)
        .contains(anchor)
        .then(|| anchor.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus and prometheus-alertmanager (Debian packages), run by .ci/run"]
async fn budget_and_spike_alerts_reach_a_webhook_through_alertmanager() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (webhook, mut notifications) = serve_webhook().await;
    let http = http();
    let alertmanager = Server::alertmanager(dir.path(), &alertmanager_config(&webhook));
    alertmanager.wait_ready(&http).await;

    let exporter = Exporter::start(dir.path(), BUDGETS).await;
    let params: BTreeMap<String, String> = [
        ("spendSpikeFactor", "0"),
        ("spendSpikeMinimum", "0"),
        ("spendSpikeBaselineDays", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let rule_files = shipped_rules(dir.path(), &params);
    let prometheus = Server::prometheus(
        dir.path(),
        exporter.running.web_addr,
        &rule_files,
        Some(alertmanager.address()),
    );
    prometheus.wait_ready(&http).await;

    // Until both have been notified; the first of each is kept.
    let mut received: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    let wanted = [
        "InfobipBillingBudgetExceeded",
        "InfobipBillingDailySpendSpike",
    ];
    while !wanted.iter().all(|w| received.contains_key(*w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(body)) = tokio::time::timeout(left, notifications.recv()).await else {
            let firing = prometheus.get(&http, "/api/v1/alerts").await;
            panic!(
                "within {WAIT:?}, only {:?} arrived; Prometheus' alerts: {firing:#?}\nprometheus log:\n{}\nalertmanager log:\n{}",
                received.keys().collect::<Vec<_>>(),
                prometheus.log_tail(),
                alertmanager.log_tail()
            );
        };
        assert_eq!(body["receiver"], "test", "{body}");
        for alert in body["alerts"].as_array().unwrap() {
            let name = alert["labels"]["alertname"].as_str().unwrap().to_owned();
            println!(
                "{:.1}s: {} {name} {}",
                started.elapsed().as_secs_f64(),
                alert["status"],
                alert["labels"]
            );
            received.entry(name).or_insert_with(|| alert.clone());
        }
    }

    let budget = &received["InfobipBillingBudgetExceeded"];
    let labels = &budget["labels"];
    assert_eq!(labels["budget"], "whatsapp-low", "{budget}");
    assert_eq!(labels["currency"], "EUR", "{budget}");
    assert_eq!(
        labels["channel"], "whatsapp",
        "the budget's match label: {budget}"
    );
    assert_eq!(labels["severity"], "critical", "{budget}");
    assert_eq!(labels["job"], monitoring::JOB, "{budget}");

    let spike = &received["InfobipBillingDailySpendSpike"];
    let labels = &spike["labels"];
    assert_eq!(labels["target"], "sim", "{spike}");
    for label in ["account", "channel", "currency"] {
        assert!(
            labels[label].as_str().is_some_and(|v| !v.is_empty()),
            "{label}: {spike}"
        );
    }
    assert_eq!(labels["severity"], "warning", "{spike}");

    for alert in [budget, spike] {
        assert_eq!(alert["status"], "firing");
        let url = alert["annotations"]["runbook_url"].as_str().unwrap();
        let section = runbook_section(url)
            .unwrap_or_else(|| panic!("{url} leads to no section of docs/runbooks.md"));
        assert_eq!(
            section,
            alert["labels"]["alertname"]
                .as_str()
                .unwrap()
                .to_lowercase(),
            "{url}"
        );
        for key in ["summary", "description"] {
            assert!(
                alert["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.contains("{{")),
                "{key} rendered: {alert}"
            );
        }
    }

    let quit = prometheus.quit(&http).await;
    drop(alertmanager);
    exporter.stop().await;
    println!("done in {:.1}s", started.elapsed().as_secs_f64());
    assert!(quit, "prometheus did not quit cleanly");
}
