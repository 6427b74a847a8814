//! Helpers shared by the integration tests: start things on `127.0.0.1:0`, scrape, and compute
//! the expected figures from the callback bodies the simulator really sent.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use infobip_billing_exporter::billing::calendar::{Clock, DayRange, YearMonth};
use infobip_billing_exporter::infobip::model::{
    BillingUsageResult, Cell, QueryAggregateDataStatus,
};
use rust_decimal::Decimal;
use time::Date;

/// Bounds every wait in the tests: long enough for a loaded CI machine, short enough to fail.
pub const WAIT: Duration = Duration::from_secs(20);

/// One sample of the Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: Decimal,
}

pub async fn scrape(addr: SocketAddr) -> String {
    let url = format!("http://{addr}/metrics");
    let response = reqwest::get(&url).await.expect("scrape");
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.text().await.expect("scrape body")
}

/// Parses the text format (labels without escaped quotes, which these tests never produce).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label k=v");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            let value = infobip_billing_exporter::infobip::model::parse_decimal(value)
                .unwrap_or_else(|| panic!("value of {line}"));
            Sample {
                name: name.to_owned(),
                labels,
                value,
            }
        })
        .collect()
}

pub fn samples_named<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a Sample> {
    samples.iter().filter(|s| s.name == name).collect()
}

/// (target-less) key of a cost series: account, category, currency, period.
pub type CostKey = (String, String, String, String);

/// The figures an exporter must show, summed by the test from the callback bodies: the last
/// successful body per covered day wins, as a result replaces the days it covers.
#[derive(Debug, Default)]
pub struct Expected {
    pub days: BTreeMap<CostKey, Decimal>,
    pub months: BTreeMap<CostKey, Decimal>,
    pub rows: usize,
}

pub fn expected_from_bodies<'a>(
    bodies: impl IntoIterator<Item = &'a [u8]>,
    window: DayRange,
) -> Expected {
    let mut by_day: BTreeMap<Date, Vec<(String, String, String, Decimal)>> = BTreeMap::new();
    let mut rows = 0;
    for body in bodies {
        let Ok(result) = serde_json::from_slice::<BillingUsageResult>(body) else {
            continue;
        };
        if result.status != QueryAggregateDataStatus::Success {
            continue;
        }
        let response = result.response.expect("SUCCESS has a response");
        let col = |name: &str| {
            response
                .columns
                .iter()
                .position(|c| c.column_name == name)
                .unwrap_or_else(|| panic!("column {name}"))
        };
        let (day, account, category, total, currency) = (
            col("DAY"),
            col("ACCOUNT_NAME"),
            col("CATEGORY_CODE"),
            col("TOTAL_PER_UNIT"),
            col("CURRENCY"),
        );
        let covered = response.requested_period.covered_days();
        for d in covered.days() {
            by_day.insert(d, Vec::new());
        }
        for row in &response.rows {
            rows += 1;
            let text = |i: usize| match &row[i] {
                Cell::Text(t) => t.clone(),
                Cell::NotApplicable => "N/A".into(),
                Cell::Number(n) => n.to_string(),
            };
            let d = infobip_billing_exporter::infobip::model::parse_instant(&text(day))
                .expect("day cell")
                .date();
            let Cell::Number(cost) = row[total] else {
                continue;
            };
            by_day.entry(d).or_default().push((
                text(account),
                text(category),
                text(currency),
                cost,
            ));
        }
    }
    let mut expected = Expected {
        rows,
        ..Default::default()
    };
    for (day, facts) in by_day {
        for (account, category, currency, cost) in facts {
            let month = YearMonth::of(day).to_string();
            *expected
                .months
                .entry((account.clone(), category.clone(), currency.clone(), month))
                .or_default() += cost;
            if window.contains(day) {
                *expected
                    .days
                    .entry((account, category, currency, day.to_string()))
                    .or_default() += cost;
            }
        }
    }
    expected
}

/// The exported cost series of one metric, keyed like [`Expected`].
pub fn exported(samples: &[Sample], name: &str, period: &str) -> BTreeMap<CostKey, Decimal> {
    let mut sums = BTreeMap::new();
    for s in samples_named(samples, name) {
        let l = |k: &str| {
            s.labels
                .get(k)
                .cloned()
                .unwrap_or_else(|| panic!("label {k} on {s:?}"))
        };
        // Summed over any optional dimension labels.
        let key = (l("account"), l("category"), l("currency"), l(period));
        *sums.entry(key).or_default() += s.value;
    }
    sums
}

/// The days window the exporter exports for `days` days ending today.
pub fn window(clock: &Arc<dyn Clock>, days: i64) -> DayRange {
    let today = clock.today();
    DayRange {
        since: today - time::Duration::days(days - 1),
        until: today.next_day().unwrap(),
    }
}

/// Runs `promtool check metrics` on an exposition; returns its status and what it printed.
pub fn promtool_check_metrics(text: &str) -> (std::process::ExitStatus, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool on PATH (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, printed)
}

/// An exporter and the simulator it queries, in this process, on loopback.
pub struct Harness {
    pub simulator: infobip_billing_exporter::simulator::Simulator,
    pub exporter: infobip_billing_exporter::daemon::Running,
    pub clock: Arc<dyn Clock>,
    /// The same clock, to move the billing calendar in a test.
    pub manual_clock: Arc<infobip_billing_exporter::billing::calendar::ManualClock>,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub state: tempfile::TempDir,
}

/// The billing calendar every harness runs on: late November, so September and October are
/// final and November is provisional.
pub fn november_clock() -> Arc<infobip_billing_exporter::billing::calendar::ManualClock> {
    Arc::new(
        infobip_billing_exporter::billing::calendar::ManualClock::new(
            time::macros::datetime!(2026-11-27 12:00 UTC),
        ),
    )
}

impl Harness {
    /// Starts the simulator with `options` and an exporter with the test-friendly timings
    /// below, then lets `tweak` adjust the exporter's config.
    pub async fn start(
        options: infobip_billing_exporter::simulator::SimulatorOptions,
        tweak: impl FnOnce(&mut infobip_billing_exporter::config::Config),
    ) -> Self {
        Self::start_in(options, tempfile::tempdir().unwrap(), tweak).await
    }

    pub async fn start_in(
        options: infobip_billing_exporter::simulator::SimulatorOptions,
        state: tempfile::TempDir,
        tweak: impl FnOnce(&mut infobip_billing_exporter::config::Config),
    ) -> Self {
        let clock = november_clock();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let simulator = infobip_billing_exporter::simulator::Simulator::new(options, clock.clone());
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
        tokio::spawn(simulator.clone().serve(sim_listener, shutdown.clone()));
        Self::start_against(&sim_url, simulator, clock, shutdown, state, tweak).await
    }

    /// An exporter querying the simulator at `sim_url`; `simulator` (same options and clock,
    /// served or not) gives the expected totals.
    pub async fn start_against(
        sim_url: &str,
        simulator: infobip_billing_exporter::simulator::Simulator,
        manual_clock: Arc<infobip_billing_exporter::billing::calendar::ManualClock>,
        shutdown: tokio_util::sync::CancellationToken,
        state: tempfile::TempDir,
        tweak: impl FnOnce(&mut infobip_billing_exporter::config::Config),
    ) -> Self {
        let clock: Arc<dyn Clock> = manual_clock.clone();
        use infobip_billing_exporter::config::{ApiKey, Config};
        use tokio::net::TcpListener;
        let key = simulator.options().api_key.clone();
        let web = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let callback = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cb = callback.local_addr().unwrap();
        let mut config = Config::from_yaml(&format!(
            "targets:\n  - name: sim\n    base_url: {sim_url}\n    api_key_env: UNUSED_IN_TESTS\n\
             callback:\n  listen: {cb}\n  public_url: http://{cb}\nweb:\n  listen: 127.0.0.1:0\nstate_dir: {}\n",
            state.path().display()
        ))
        .unwrap();
        config.retry_backoff = Duration::from_millis(50);
        tweak(&mut config);
        let exporter = infobip_billing_exporter::daemon::start(
            &config,
            vec![ApiKey::new(key)],
            web,
            callback,
            clock.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        Self {
            simulator,
            exporter,
            clock,
            manual_clock,
            shutdown,
            state,
        }
    }

    /// What the exporter must end up showing: per (account, category, currency, month), the
    /// simulator's own totals for each month in retention at the pinned clock.
    pub fn simulator_month_totals(&self) -> BTreeMap<CostKey, Decimal> {
        use infobip_billing_exporter::billing::calendar::{month_query_range, retention_months};
        use infobip_billing_exporter::infobip::model::QueryBillingUsageApiRequest;
        let today = self.clock.today();
        let bodies: Vec<Vec<u8>> = retention_months(today)
            .into_iter()
            .map(|month| {
                let request = QueryBillingUsageApiRequest::unfiltered(
                    month_query_range(month, today),
                    self.exporter.shared.settings().aggregate_by.clone(),
                );
                serde_json::to_vec(
                    &self
                        .simulator
                        .result_for(&request, "TOTALS", self.clock.now()),
                )
                .unwrap()
            })
            .collect();
        expected_from_bodies(bodies.iter().map(Vec::as_slice), window(&self.clock, 35)).months
    }

    /// Waits until the exporter's monthly figures equal `expected`, failing after `WAIT`.
    pub async fn wait_for_months(&self, expected: &BTreeMap<CostKey, Decimal>) {
        let mut snapshots = self.exporter.shared.store.subscribe();
        let reached = tokio::time::timeout(
            WAIT,
            snapshots.wait_for(|s| &snapshot_months(&s.snapshot) == expected),
        )
        .await;
        if reached.is_err() {
            let got = snapshot_months(&self.exporter.shared.store.exposition().snapshot);
            panic!(
                "figures did not converge within {WAIT:?}: {} series expected, {} held, first difference {:?}; simulator {:?}",
                expected.len(),
                got.len(),
                expected.iter().find(|(k, v)| got.get(*k) != Some(*v)),
                self.simulator.stats()
            );
        }
    }

    /// Waits until the figures equal the simulator's own totals, checks /metrics shows them,
    /// and returns the scrape.
    pub async fn converge(&self) -> Vec<Sample> {
        let expected = self.simulator_month_totals();
        self.wait_for_months(&expected).await;
        self.assert_scrape_months(&expected).await
    }

    /// Scrapes and checks that /metrics shows exactly `expected` as month costs.
    pub async fn assert_scrape_months(&self, expected: &BTreeMap<CostKey, Decimal>) -> Vec<Sample> {
        let samples = parse(&scrape(self.exporter.web_addr).await);
        assert_eq!(
            &exported(&samples, "infobip_billing_month_cost", "month"),
            expected
        );
        samples
    }

    /// An exporter on `state` whose upstream does not answer: what it serves is what it
    /// restored.
    pub async fn start_with_upstream_down(
        state: tempfile::TempDir,
        tweak: impl FnOnce(&mut infobip_billing_exporter::config::Config),
    ) -> Self {
        let down = format!("http://127.0.0.1:{}", free_port());
        let clock = november_clock();
        let simulator = infobip_billing_exporter::simulator::Simulator::new(
            infobip_billing_exporter::simulator::SimulatorOptions::default(),
            clock.clone(),
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        Self::start_against(&down, simulator, clock, shutdown, state, tweak).await
    }

    /// Whether the exporter holds no month cost at all.
    pub fn holds_no_figures(&self) -> bool {
        self.exporter
            .shared
            .store
            .exposition()
            .snapshot
            .series(infobip_billing_exporter::billing::snapshot::Kind::MonthCost)
            .next()
            .is_none()
    }

    /// Stops everything and hands back the state dir, for a restart on it.
    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.exporter.join())
            .await
            .expect("exporter stops");
        self.state
    }
}

/// A simulator that loses every callback: queries stay pending for a test to answer.
pub fn callbacks_lost() -> infobip_billing_exporter::simulator::SimulatorOptions {
    infobip_billing_exporter::simulator::SimulatorOptions {
        faults: infobip_billing_exporter::simulator::Faults {
            drop_callback_ratio: 1.0,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Month costs per (account, category, currency, month), summed over any optional dimensions.
pub fn snapshot_months(
    s: &infobip_billing_exporter::billing::snapshot::Snapshot,
) -> BTreeMap<CostKey, Decimal> {
    let mut months = BTreeMap::new();
    for c in s.series(infobip_billing_exporter::billing::snapshot::Kind::MonthCost) {
        let key = (
            c.account.clone(),
            c.category.clone(),
            c.currency.clone(),
            c.period.clone(),
        );
        *months.entry(key).or_default() += c.value;
    }
    months
}

/// The value of a self-metric sample with the given label, 0 when absent.
pub fn counter(samples: &[Sample], name: &str, label: (&str, &str)) -> Decimal {
    samples
        .iter()
        .filter(|s| s.name == name && s.labels.get(label.0).map(String::as_str) == Some(label.1))
        .map(|s| s.value)
        .sum()
}

// Processes of the real binary, for the tests that run it as a user would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

pub const BIN: &str = env!("CARGO_BIN_EXE_infobip-billing-exporter");

/// A child process whose output lines arrive on channels; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// Like [`Proc::spawn`], with extra environment variables.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        // `env` may set RUST_LOG itself ("" leaves the level to --log.level).
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        Self::spawn_command(command)
    }

    /// Runs `command` (the binary under a wrapper such as `prlimit`), its output on channels.
    pub fn spawn_command(mut command: Command) -> Self {
        let mut child = command
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
    pub fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
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

    pub fn interrupt_and_wait(self) -> std::process::ExitStatus {
        self.signal_and_wait("INT")
    }

    /// Sends `signal` (a `kill` name such as TERM) and waits up to 10 s for the exit.
    pub fn signal_and_wait(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "did not stop within 10 s of SIG{signal}"
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

pub fn free_port() -> u16 {
    use std::net::TcpListener;
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config file in `dir` for `run --config` against the simulator at `sim_url` (key
/// `demo-key` from a file, target `demo`, state in `dir/state`); returns its path and the
/// metrics URL.
pub fn write_run_config(dir: &std::path::Path, sim_url: &str) -> (std::path::PathBuf, String) {
    let key = dir.join("key");
    std::fs::write(&key, "demo-key\n").unwrap();
    let (web, callback) = (free_port(), free_port());
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "targets:\n  - name: demo\n    base_url: {sim_url}\n    api_key_file: {}\n\
             callback:\n  listen: 127.0.0.1:{callback}\n  public_url: http://127.0.0.1:{callback}\n\
             web:\n  listen: 127.0.0.1:{web}\nstate_dir: {}\n",
            key.display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    (config, format!("http://127.0.0.1:{web}/metrics"))
}

/// Starts the demo stack on the November clock with `configure`, and waits for the three months
/// in retention.
pub async fn started_demo(
    state: &tempfile::TempDir,
    options: infobip_billing_exporter::simulator::SimulatorOptions,
    configure: impl FnOnce(&mut infobip_billing_exporter::config::Config),
) -> (
    infobip_billing_exporter::commands::demo::Demo,
    tokio_util::sync::CancellationToken,
) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let demo = infobip_billing_exporter::commands::demo::start_with(
        "127.0.0.1:0".parse().unwrap(),
        november_clock(),
        state.path().into(),
        shutdown.clone(),
        options,
        configure,
    )
    .await
    .unwrap();
    let mut snapshots = demo.exporter.shared.store.subscribe();
    tokio::time::timeout(
        WAIT,
        snapshots.wait_for(|s| s.snapshot.results_applied >= 3),
    )
    .await
    .expect("three results within the wait")
    .unwrap();
    // The simulator records a delivery once its 200 arrives, which can trail the figures.
    for _ in 0..500 {
        if demo.simulator.stats().callbacks_delivered >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    (demo, shutdown)
}

/// Stops what [`started_demo`] started, within `WAIT`.
pub async fn stop_demo(
    demo: infobip_billing_exporter::commands::demo::Demo,
    shutdown: tokio_util::sync::CancellationToken,
) {
    shutdown.cancel();
    tokio::time::timeout(WAIT, demo.join())
        .await
        .expect("clean stop")
        .unwrap();
}

/// A simulator on loopback whose clock is pinned at the real now, for tests of the binary,
/// which validates dates against the system clock. Stopped when dropped.
pub struct LiveSim {
    pub simulator: infobip_billing_exporter::simulator::Simulator,
    pub url: String,
    pub clock: Arc<infobip_billing_exporter::billing::calendar::ManualClock>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for LiveSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start_live_sim() -> LiveSim {
    let clock = Arc::new(
        infobip_billing_exporter::billing::calendar::ManualClock::new(
            time::OffsetDateTime::now_utc(),
        ),
    );
    let simulator = infobip_billing_exporter::simulator::Simulator::new(
        infobip_billing_exporter::simulator::SimulatorOptions::default(),
        clock.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(simulator.clone().serve(listener, shutdown.clone()));
    LiveSim {
        simulator,
        url,
        clock,
        shutdown,
    }
}

/// The first fenced block of `lang` (```sh, ```console, …) in README.md's section `heading`
/// (`## Logs`), so that a test runs the example the README shows.
pub fn readme_example(heading: &str, lang: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.lines().next() == Some(heading.trim_start_matches("## ")))
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let fence = format!("```{lang}\n");
    let start = section
        .find(&fence)
        .unwrap_or_else(|| panic!("no ```{lang} block under {heading:?}"))
        + fence.len();
    let len = section[start..].find("```").expect("a closed block");
    section[start..start + len].to_owned()
}

/// The simulator address README.md's export examples use, replaced by a test's own.
pub const README_SIMULATOR: &str = "http://127.0.0.1:9480";

/// The `infobip-billing-exporter` commands (but `simulator`, which the test runs itself) of the
/// first ```sh block under README.md's `heading`, as argument lists, with the README's
/// simulator address replaced by `sim_url`. Continuation lines are joined; no shell quoting.
pub fn readme_commands(heading: &str, sim_url: &str) -> Vec<Vec<String>> {
    readme_example(heading, "sh")
        .replace("\\\n", " ")
        .replace(README_SIMULATOR, sim_url)
        .lines()
        .filter_map(|line| {
            let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            (words.first().map(String::as_str) == Some("infobip-billing-exporter")
                && words.get(1).map(String::as_str) != Some("simulator"))
            .then(|| words[1..].to_vec())
        })
        .collect()
}

/// Runs the binary in `dir` with the simulator's key; asserts it succeeded.
pub async fn run_with_sim_key(dir: &std::path::Path, args: Vec<String>) -> std::process::Output {
    let dir = dir.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .current_dir(dir)
            .env("INFOBIP_API_KEY", "demo-key")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the binary")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
