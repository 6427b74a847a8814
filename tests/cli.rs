//! The binary as a user runs it: `demo`, `simulator` + `run --config` as two processes, and
//! `check-config`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{WAIT, parse, samples_named};
use infobip_billing_exporter::calendar::{Clock, ManualClock};
use infobip_billing_exporter::demo;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_infobip-billing-exporter");

/// A child process whose output lines arrive on channels; killed when dropped.
struct Proc {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the binary");
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("  | {line}");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The first line of `rx` containing `needle`, within `WAIT`.
    fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line containing {needle:?}: {e}"),
            }
        }
    }

    fn interrupt_and_wait(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill -INT");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "did not stop within 10 s of SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "demo-key\n").unwrap();
    let (web, callback) = (free_port(), free_port());
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "targets:\n  - name: demo\n    base_url: {sim_url}\n    api_key_file: {}\n\
             callback:\n  listen: 127.0.0.1:{callback}\n  public_url: http://127.0.0.1:{callback}\n\
             web:\n  listen: 127.0.0.1:{web}\nstate_dir: {}\n",
            key_file.display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let run = Proc::spawn(&["run", "--config", config.to_str().unwrap()]);
    for _ in 0..3 {
        Proc::wait_line(&run.stderr, "result applied");
    }
    let processes = reqwest::blocking::get(format!("http://127.0.0.1:{web}/metrics"))
        .unwrap()
        .text()
        .unwrap();

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
        let mut snapshots = demo.exporter.shared.subscribe_snapshot();
        tokio::time::timeout(WAIT, snapshots.wait_for(|s| s.results_applied >= 3))
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
        .args(["check-config", "--config", good.to_str().unwrap()])
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
