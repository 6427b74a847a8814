//! Reloading the config in place: SIGHUP and `POST /-/reload` re-read the file; a file that
//! does not validate leaves the running config alone and says so in a gauge.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Proc, WAIT, parse, samples_named, start_live_sim, write_run_config};
use rust_decimal::Decimal;

fn web_addr(metrics_url: &str) -> SocketAddr {
    metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap()
}

/// The value of the first sample of `name` whose labels include `label`, once a scrape has one.
async fn wait_for_value(
    addr: SocketAddr,
    name: &str,
    label: (&str, &str),
    expected: impl Fn(Decimal) -> bool,
) -> Decimal {
    let deadline = Instant::now() + WAIT;
    loop {
        let samples = parse(&common::scrape(addr).await);
        let found = samples_named(&samples, name)
            .into_iter()
            .find(|s| {
                label.0.is_empty() || s.labels.get(label.0).map(String::as_str) == Some(label.1)
            })
            .map(|s| s.value);
        if let Some(value) = found.filter(|v| expected(*v)) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{label:?}: last seen {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hangup(proc: &Proc) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &proc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

const RELOADED: &str = "infobip_billing_exporter_config_last_reload_successful";

#[tokio::test(flavor = "multi_thread")]
async fn sighup_and_post_reload_apply_a_valid_file_and_keep_the_config_before_an_invalid_one() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, metrics_url) = write_run_config(dir.path(), &sim.url);
    let base = std::fs::read_to_string(&config).unwrap();
    let budget = |monthly: &str| {
        format!("{base}budgets:\n  - name: all-eur\n    monthly: {monthly}\n    currency: EUR\n")
    };
    std::fs::write(&config, budget("100")).unwrap();
    let addr = web_addr(&metrics_url);
    let mut proc = Proc::spawn(&["run", "--config", config.to_str().unwrap()]);
    Proc::wait_line(&proc.stderr, "exporter started");
    let pid = proc.child.id();
    let budget_of = |v: &'static str| move |x: Decimal| x == v.parse::<Decimal>().unwrap();
    wait_for_value(
        addr,
        "infobip_billing_budget",
        ("budget", "all-eur"),
        budget_of("100"),
    )
    .await;
    assert_eq!(
        wait_for_value(addr, RELOADED, ("", ""), |_| true).await,
        Decimal::ONE
    );

    // SIGHUP with a changed budget: the new value, from the same process.
    std::fs::write(&config, budget("250.50")).unwrap();
    hangup(&proc);
    Proc::wait_line(&proc.stderr, "config reloaded");
    wait_for_value(
        addr,
        "infobip_billing_budget",
        ("budget", "all-eur"),
        budget_of("250.50"),
    )
    .await;
    assert!(proc.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(proc.child.id(), pid);

    // SIGHUP with a file that does not validate: the old config stays, the gauge says so.
    std::fs::write(&config, format!("{}interval: often\n", budget("999"))).unwrap();
    hangup(&proc);
    let line = Proc::wait_line(&proc.stderr, "config reload failed");
    assert!(line.contains("interval"), "{line}");
    wait_for_value(addr, RELOADED, ("", ""), |v| v == Decimal::ZERO).await;
    wait_for_value(
        addr,
        "infobip_billing_budget",
        ("budget", "all-eur"),
        budget_of("250.50"),
    )
    .await;
    assert!(proc.child.try_wait().unwrap().is_none(), "still running");

    // POST /-/reload answers with the outcome.
    let reload = || async {
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/-/reload"))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (status, body) = reload().await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("interval"), "{body}");
    // The target's query interval, for the stale alert: the default, then the reloaded one.
    let interval = "infobip_billing_exporter_query_interval_seconds";
    wait_for_value(addr, interval, ("target", "demo"), budget_of("3600")).await;
    std::fs::write(&config, format!("{}interval: 30m\n", budget("300"))).unwrap();
    let (status, body) = reload().await;
    assert_eq!(status, 200, "{body}");
    wait_for_value(addr, RELOADED, ("", ""), |v| v == Decimal::ONE).await;
    wait_for_value(addr, interval, ("target", "demo"), budget_of("1800")).await;
    wait_for_value(
        addr,
        "infobip_billing_budget",
        ("budget", "all-eur"),
        budget_of("300"),
    )
    .await;
    let samples = parse(&common::scrape(addr).await);
    let at = samples_named(
        &samples,
        "infobip_billing_exporter_config_last_reload_success_timestamp_seconds",
    )[0]
    .value;
    assert!(at > Decimal::from(1_700_000_000), "{at}");
    assert!(proc.child.try_wait().unwrap().is_none(), "still running");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_adds_a_dimension_and_a_target_asks_again_and_keeps_what_is_stored() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, metrics_url) = write_run_config(dir.path(), &sim.url);
    let base = std::fs::read_to_string(&config).unwrap();
    let addr = web_addr(&metrics_url);
    let mut proc = Proc::spawn(&["run", "--config", config.to_str().unwrap()]);
    Proc::wait_line(&proc.stderr, "exporter started");
    let results = "infobip_billing_exporter_callbacks_total";
    wait_for_value(addr, results, ("outcome", "applied"), |v| {
        v >= Decimal::from(3)
    })
    .await;
    let queries_before = sim.simulator.stats().queries_accepted;

    // A second target on the same account, and a dimension for every query.
    let key = dir.path().join("key");
    let second = format!(
        "  - name: second\n    base_url: {}\n    api_key_file: {}\n",
        sim.url,
        key.display()
    );
    let with_target = base.replacen("callback:", &format!("{second}callback:"), 1);
    std::fs::write(
        &config,
        format!("{with_target}dimensions: [TRAFFIC_TYPE]\n"),
    )
    .unwrap();
    hangup(&proc);
    Proc::wait_line(&proc.stderr, "config reloaded");

    // The stored months of `demo` are asked for again (they lack the dimension), and `second`
    // gets its first results: three months each.
    wait_for_value(addr, results, ("outcome", "applied"), |v| {
        v >= Decimal::from(9)
    })
    .await;
    assert!(sim.simulator.stats().queries_accepted >= queries_before + 6);
    let deadline = Instant::now() + WAIT;
    loop {
        let samples = parse(&common::scrape(addr).await);
        let month_costs = samples_named(&samples, "infobip_billing_month_cost");
        let targets: std::collections::BTreeSet<&str> = month_costs
            .iter()
            .map(|s| s.labels["target"].as_str())
            .collect();
        // Every month of both targets has traffic types (some rows are N/A by nature).
        let months_with_types: std::collections::BTreeSet<(&str, &str)> = month_costs
            .iter()
            .filter(|s| s.labels.get("traffic_type").is_some_and(|v| v != "N/A"))
            .map(|s| (s.labels["target"].as_str(), s.labels["month"].as_str()))
            .collect();
        let dimensioned = months_with_types.len() == 6;
        if targets.len() == 2 && dimensioned {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "targets {targets:?}, all with traffic_type: {dimensioned}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(proc.child.try_wait().unwrap().is_none(), "still running");
    drop(proc);
    // Nothing stored was lost: both targets' months are on disk.
    let segments: Vec<String> = std::fs::read_dir(dir.path().join("state/segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for target in ["demo", "second"] {
        let held = segments
            .iter()
            .filter(|s| s.starts_with(&format!("{target}.")))
            .count();
        assert_eq!(held, 3, "{target}: {segments:?}");
    }
}

/// The README's reload example, run as written.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs curl; .ci/run installs it"]
async fn the_readme_reload_example_reloads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("<!-- reload-example")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("README has the reload example");
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, metrics_url) = write_run_config(dir.path(), &sim.url);
    let addr = web_addr(&metrics_url);
    let proc = Proc::spawn(&["run", "--config", config.to_str().unwrap()]);
    Proc::wait_line(&proc.stderr, "exporter started");
    let out = std::process::Command::new("sh")
        .args(["-eu", "-c", block])
        .env("PID", proc.child.id().to_string())
        .env("ADDR", addr.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("config reloaded"));
    // Once for the signal, once for the POST.
    Proc::wait_line(&proc.stderr, "config reloaded");
    Proc::wait_line(&proc.stderr, "config reloaded");
}
