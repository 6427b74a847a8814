//! The binary as a user runs it: `demo`, `simulator` + `run --config` as two processes, and
//! `check-config`.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BIN, Proc, WAIT, parse, samples_named};
use infobip_billing_exporter::billing::calendar::{Clock, ManualClock};
use infobip_billing_exporter::commands::demo;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

#[test]
fn demo_serves_cost_series_within_ten_seconds_and_stops_on_ctrl_c() {
    let demo = Proc::spawn(&["demo", "--listen", "127.0.0.1:0"]);
    let line = Proc::wait_line(&demo.stdout, "metrics:");
    let url = line.split_whitespace().last().unwrap().to_owned();
    let started = Instant::now();
    let text = loop {
        let text = reqwest::blocking::get(&url)
            .and_then(|r| r.text())
            .unwrap_or_default();
        if text.contains("infobip_billing_cost{") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no cost series within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let samples = parse(&text);
    assert!(!samples_named(&samples, "infobip_billing_cost").is_empty());
    let status = demo.interrupt_and_wait();
    assert!(status.success(), "demo exit status {status}");
}

#[test]
fn simulator_and_run_as_processes_match_the_demo() {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let now_text = now.format(&Rfc3339).unwrap();
    let sim = Proc::spawn(&["simulator", "--listen", "127.0.0.1:0", "--now", &now_text]);
    let line = Proc::wait_line(&sim.stdout, "listening on");
    let sim_url = line.split_whitespace().last().unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let (config, metrics) = common::write_run_config(dir.path(), &sim_url);
    let run = Proc::spawn(&["run", "--config", config.to_str().unwrap()]);
    for _ in 0..3 {
        Proc::wait_line(&run.stderr, "result applied");
    }
    let processes = reqwest::blocking::get(&metrics).unwrap().text().unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let in_process = runtime.block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
        let shutdown = CancellationToken::new();
        let state = tempfile::tempdir().unwrap();
        let demo = demo::start(
            "127.0.0.1:0".parse().unwrap(),
            clock,
            state.path().into(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let mut snapshots = demo.exporter.shared.store.subscribe();
        tokio::time::timeout(
            WAIT,
            snapshots.wait_for(|s| s.snapshot.results_applied >= 3),
        )
        .await
        .unwrap()
        .unwrap();
        let text = common::scrape(demo.exporter.web_addr).await;
        shutdown.cancel();
        demo.join().await.unwrap();
        text
    });
    for metric in ["infobip_billing_cost", "infobip_billing_month_cost"] {
        let a = parse(&processes);
        let b = parse(&in_process);
        let (a, b) = (samples_named(&a, metric), samples_named(&b, metric));
        assert!(!a.is_empty());
        assert_eq!(a, b, "{metric}: two processes vs demo");
    }
    assert!(run.interrupt_and_wait().success());
    assert!(sim.interrupt_and_wait().success());
}

#[test]
fn check_config_reports_every_problem_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "targets: []\ncallback:\n  listen: nowhere\n").unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("callback.listen"), "{stderr}");

    let good = dir.path().join("good.yaml");
    let key = dir.path().join("key");
    std::fs::write(&key, "k").unwrap();
    std::fs::write(
        &good,
        format!(
            "targets:\n  - name: eu\n    base_url: https://x.api.infobip.com\n    api_key_file: {}\n\
             callback:\n  listen: 0.0.0.0:9478\n  public_url: https://exporter.example.com\nstate_dir: /tmp/x\n",
            key.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "check-config",
            "--offline",
            "--config",
            good.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_lists_every_unknown_key_and_offline_warns_of_an_absent_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typos.yaml");
    std::fs::write(
        &file,
        "targets:\n  - name: eu\n    base_url: https://x.api.infobip.com\n    api_key_env: IBX_SURELY_UNSET_KEY\n    apikey: x\n\
         callback:\n  listen: 0.0.0.0:9478\n  public_url: https://exporter.example.com\n  port: 1\n\
         state_dir: /tmp/x\nintervall: 1h\n",
    )
    .unwrap();
    let check = |offline: bool| {
        let mut args = vec!["check-config", "--config", file.to_str().unwrap()];
        if offline {
            args.push("--offline");
        }
        let out = Command::new(BIN)
            .args(args)
            .env_remove("IBX_SURELY_UNSET_KEY")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(true);
    assert_eq!(code, Some(1), "{stderr}");
    for key in [
        "targets[0]: unknown field `apikey`",
        "callback: unknown field `port`",
        "config: unknown field `intervall`",
    ] {
        assert!(stderr.contains(key), "{key} missing from:\n{stderr}");
    }
    assert!(stderr.contains("3 problem(s)"), "{stderr}");

    let text = std::fs::read_to_string(&file).unwrap();
    let fixed = text
        .replace("    apikey: x\n", "")
        .replace("  port: 1\n", "")
        .replace("intervall", "interval");
    std::fs::write(&file, fixed).unwrap();
    let (code, stderr) = check(true);
    assert_eq!(
        code,
        Some(0),
        "offline: an absent secret is a warning: {stderr}"
    );
    assert!(
        stderr.contains("warning: targets[0].api_key_env")
            && stderr.contains("IBX_SURELY_UNSET_KEY"),
        "{stderr}"
    );
    let (code, stderr) = check(false);
    assert_eq!(
        code,
        Some(1),
        "online: an absent secret is a problem: {stderr}"
    );
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["run", "demo", "simulator", "check-config"] {
        let out = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{sub} --help"
        );
    }
}

#[test]
fn check_config_reads_the_web_config_file_as_the_listener_will() {
    let dir = tempfile::tempdir().unwrap();
    let web_config = dir.path().join("web.yml");
    std::fs::write(
        &web_config,
        "basic_auth_users:\n  alice: not-a-bcrypt-hash\n",
    )
    .unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  - name: eu\n    base_url: https://x.api.infobip.com\n    api_key_env: IBX_UNSET\n\
             callback:\n  listen: 0.0.0.0:9478\n  public_url: https://exporter.example.com\n\
             web:\n  config_file: {}\nstate_dir: /tmp/x\n",
            web_config.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "check-config",
            "--offline",
            "--config",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("alice"),
        "names the user with the bad hash: {stderr}"
    );
}
