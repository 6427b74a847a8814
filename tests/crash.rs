//! SIGKILL while a query is in flight: the restarted exporter still applies the late callback of
//! the query the killed process sent, and a restart after SIGTERM serves the stored figures at
//! once.

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

    // First life: killed right after Infobip accepted its queries, before their callbacks.
    let mut first = Proc::spawn(&["run", "--config", config]);
    let in_flight = request_id(&Proc::wait_line(&first.stderr, "query accepted"));
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    // Second life: nothing stored yet, so every other month is asked for; the first life's
    // query is still in the saved pending table, so its late callback is taken, not asked again.
    let second = Proc::spawn(&["run", "--config", config]);
    let applied = Proc::wait_line(&second.stderr, &format!("request_id={in_flight}"));
    assert!(applied.contains("result applied"), "{applied}");
    // The other months' results too.
    let applied = |text: &str| {
        common::counter(
            &parse(text),
            "infobip_billing_exporter_callbacks_total",
            ("outcome", "applied"),
        )
    };
    let started = Instant::now();
    let settled = loop {
        let text = reqwest::blocking::get(&metrics).unwrap().text().unwrap();
        if applied(&text) >= 3.into() {
            break figures(&text);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "four results within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!settled.is_empty());
    assert!(second.signal_and_wait("TERM").success(), "SIGTERM exits 0");
    let segments = std::fs::read_dir(dir.path().join("state/segments"))
        .unwrap()
        .count();
    assert_eq!(segments, 3, "one file per month");

    // Third life: the stored figures within 2 s.
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
    assert!(third.interrupt_and_wait().success());
}
