//! SIGKILL while a query is in flight: the restarted exporter serves the stored figures at
//! once and still applies the late callback of the query the killed process sent.

mod common;

use std::time::{Duration, Instant};

use common::{Proc, parse, samples_named};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn figures(text: &str) -> Vec<common::Sample> {
    let samples = parse(text);
    ["infobip_billing_cost", "infobip_billing_month_cost"]
        .iter()
        .flat_map(|m| samples_named(&samples, m).into_iter().cloned())
        .collect()
}

fn request_id(line: &str) -> String {
    let at = line
        .find("request_id=")
        .expect("request_id in the log line")
        + "request_id=".len();
    line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

#[test]
fn sigkill_with_queries_in_flight_loses_nothing() {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let sim = Proc::spawn(&[
        "simulator",
        "--listen",
        "127.0.0.1:0",
        "--now",
        &now.format(&Rfc3339).unwrap(),
        "--callback-delay",
        "2s",
    ]);
    let sim_url = Proc::wait_line(&sim.stdout, "listening on")
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (config, metrics) = common::write_run_config(dir.path(), &sim_url);
    let config = config.to_str().unwrap();

    // First life: all three months applied.
    let first = Proc::spawn(&["run", "--config", config]);
    for _ in 0..3 {
        Proc::wait_line(&first.stderr, "result applied");
    }
    let settled = figures(&reqwest::blocking::get(&metrics).unwrap().text().unwrap());
    assert!(!settled.is_empty());
    assert!(first.signal_and_wait("TERM").success(), "SIGTERM exits 0");
    assert!(
        dir.path().join("state/state.json").exists(),
        "state flushed"
    );

    // Second life: killed right after Infobip accepted its query, before the callback.
    let mut second = Proc::spawn(&["run", "--config", config]);
    let in_flight = request_id(&Proc::wait_line(&second.stderr, "query accepted"));
    second.child.kill().unwrap();
    second.child.wait().unwrap();

    // Third life: the stored figures within 2 s, then the second life's late callback.
    let third = Proc::spawn(&["run", "--config", config]);
    let started = Instant::now();
    let served = loop {
        if let Ok(text) = reqwest::blocking::get(&metrics).and_then(|r| r.text()) {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no /metrics within 2 s of the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        figures(&served),
        settled,
        "the restart serves the stored figures"
    );
    let applied = Proc::wait_line(&third.stderr, &format!("request_id={in_flight}"));
    assert!(applied.contains("result applied"), "{applied}");
    assert!(third.interrupt_and_wait().success());
}
