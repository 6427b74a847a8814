//! `check-config` without `--offline` reaches each target: DNS, TCP, TLS, and an empty query that
//! a good key gets 400 for and a wrong key or scope 401/403.

mod common;

use std::process::{Command, Output};
use std::sync::Arc;

use infobip_billing_exporter::billing::calendar::ManualClock;
use infobip_billing_exporter::simulator::{Simulator, SimulatorOptions};
use tokio_util::sync::CancellationToken;

use common::{BIN, free_port};

async fn check(config: String, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&path)
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn config(targets: &[(&str, &str, &str)]) -> String {
    let mut text = String::from("targets:\n");
    for (name, url, env) in targets {
        text.push_str(&format!(
            "  - name: {name}\n    base_url: {url}\n    api_key_env: {env}\n"
        ));
    }
    text + "callback:\n  listen: 127.0.0.1:9478\n  public_url: https://exporter.example.com\nstate_dir: /tmp/x\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_target_is_reached_and_a_wrong_key_or_scope_fails() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let simulator = Simulator::new(
        SimulatorOptions {
            unscoped_api_key: Some("no-scope-key".into()),
            ..SimulatorOptions::default()
        },
        clock,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(simulator.clone().serve(listener, shutdown));
    let url = format!("http://{addr}");

    let out = check(config(&[("sim", &url, "GOOD")]), &[("GOOD", "demo-key")]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "target sim: reachable at {addr}, key accepted (the empty probe query got 400)"
        )),
        "{stdout}"
    );

    let closed = format!("http://127.0.0.1:{}", free_port());
    let out = check(
        config(&[
            ("good", &url, "GOOD"),
            ("wrong", &url, "WRONG"),
            ("unscoped", &url, "UNSCOPED"),
            ("down", &closed, "GOOD"),
        ]),
        &[
            ("GOOD", "demo-key"),
            ("WRONG", "bad-key"),
            ("UNSCOPED", "no-scope-key"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("target good: reachable"), "{stdout}");
    assert!(
        stderr.contains("target wrong: FAILED: Infobip refused the API key (401"),
        "{stderr}"
    );
    assert!(
        stderr.contains("target unscoped: FAILED: Infobip refused the API key (403"),
        "{stderr}"
    );
    assert!(stderr.contains("target down: FAILED: connect:"), "{stderr}");
    for secret in ["demo-key", "bad-key", "no-scope-key"] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "key {secret} printed"
        );
    }
    // Nothing was queried: every probe was refused before a callback could be due.
    assert_eq!(simulator.stats().queries_accepted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_host_fails_at_dns() {
    let out = check(
        config(&[("eu", "https://billing-exporter-test.invalid", "K")]),
        &[("K", "k")],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("target eu: FAILED: DNS"), "{stderr}");
}
