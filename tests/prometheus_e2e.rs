//! End to end with a real Prometheus (Debian's `prometheus` 2.42): it scrapes the exporter fed
//! by the simulator and loads `alerts/*.yml`; every dashboard query and rule expression is then
//! evaluated against it, and a budget set below the simulated spend must fire its alert.
//!
//! Everything binds 127.0.0.1, every wait is bounded, and Prometheus is stopped with
//! `POST /-/quit` (killed on drop if that fails).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infobip_billing_exporter::billing::calendar::{Clock, SystemClock};
use infobip_billing_exporter::config::{ApiKey, Config};
use infobip_billing_exporter::simulator::{Simulator, SimulatorOptions};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Bounds each wait on Prometheus; its first scrape alone takes ~5 s (target updates batched).
const WAIT: Duration = Duration::from_secs(40);
const JOB: &str = "infobip-billing-exporter";

/// Budgets in the exporter's config: `whatsapp-low` is far below the simulated spend and must
/// fire; the others give every shape of `match` to the forecast-cube rules.
const BUDGETS: &str = "budgets:
  - name: whatsapp-low
    monthly: 1
    currency: EUR
    match: { channel: whatsapp }
  - name: all-eur
    monthly: 100000000
    currency: EUR
  - name: all-usd
    monthly: 100000000
    currency: USD
  - name: sms-sim
    monthly: 100000000
    currency: EUR
    match: { target: sim, channel: sms }
  - name: globex-sms
    monthly: 100000000
    currency: EUR
    match: { account: Globex, category: SMS }
";

/// A Prometheus server process; killed if still running when dropped.
struct Prometheus {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, scrape: std::net::SocketAddr, rule_files: &[PathBuf]) -> Self {
        let port = free_port();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| format!("  - {}", p.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             rule_files:\n{}\nscrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{scrape}']\n",
            rules.join("\n")
        );
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("prometheus on PATH (apt-get install prometheus)");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `GET path`, parsed; `None` on connection errors (not up yet).
    async fn get(&self, http: &reqwest::Client, path: &str) -> Option<Value> {
        let response = http.get(format!("{}{path}", self.base)).send().await.ok()?;
        response.json().await.ok()
    }

    /// An instant query: the result vector, or Prometheus' error message.
    async fn query(&self, http: &reqwest::Client, promql: &str) -> Result<Vec<Value>, String> {
        let response = http
            .post(format!("{}/api/v1/query", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("query={}", form_encode(promql)))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        match &body["data"]["result"] {
            Value::Array(series) => Ok(series.clone()),
            // Scalars and strings: one value.
            other => Ok(vec![other.clone()]),
        }
    }

    /// Polls `promql` until it returns at least one series, or fails after `WAIT`.
    async fn wait_for(&self, http: &reqwest::Client, promql: &str) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(result) = self.query(http, promql).await
                && !result.is_empty()
            {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "no data for {promql} within {WAIT:?}; prometheus log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus (Debian package: apt-get install prometheus), run by .ci/run"]
async fn dashboards_and_rules_evaluate_against_a_real_prometheus() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    // The real clock: Prometheus evaluates `time()`, so the simulated days must be today's.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let simulator = Simulator::new(SimulatorOptions::default(), clock.clone());
    let key = simulator.options().api_key.clone();
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
    tokio::spawn(simulator.serve(sim_listener, shutdown.clone()));

    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cb = callback.local_addr().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let mut config = Config::from_yaml(&format!(
        "targets:\n  - name: sim\n    base_url: {sim_url}\n    api_key_env: UNUSED_IN_TESTS\n\
         callback:\n  listen: {cb}\n  public_url: http://{cb}\nweb:\n  listen: 127.0.0.1:0\n\
         state_dir: {}\n{BUDGETS}",
        state.display()
    ))
    .expect("config with budgets");
    // Below the 1m minimum on purpose: queries and callbacks keep coming while Prometheus
    // scrapes, so the rate() panels have something to show.
    config.interval = Duration::from_secs(3);
    config.retry_backoff = Duration::from_millis(100);
    let exporter = infobip_billing_exporter::daemon::start(
        &config,
        vec![ApiKey::new(key)],
        web,
        callback,
        clock,
        shutdown.clone(),
    )
    .await
    .expect("exporter starts");

    // The rule files as shipped, except `for:` shortened so alerts fire within the test.
    let rule_files: Vec<PathBuf> = yaml_files(&Path::new(ROOT).join("alerts"))
        .iter()
        .map(|src| {
            let text = std::fs::read_to_string(src).unwrap();
            let short: String = text
                .lines()
                .map(|l| match l.split_once("for: ") {
                    Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 1s\n"),
                    _ => format!("{l}\n"),
                })
                .collect();
            let dst = dir.path().join(src.file_name().unwrap());
            std::fs::write(&dst, short).unwrap();
            dst
        })
        .collect();
    let prometheus = Prometheus::start(dir.path(), exporter.web_addr, &rule_files);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Ready, scraped, rules evaluated, and several scrapes in for the rate() windows.
    let deadline = Instant::now() + WAIT;
    while !http
        .get(format!("{}/-/ready", prometheus.base))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "prometheus not ready: {}",
            prometheus.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    prometheus
        .wait_for(&http, "infobip_billing:budget_forecast_ratio")
        .await;
    prometheus
        .wait_for(
            &http,
            "count_over_time(infobip_billing_exporter_up[1m]) >= 5 and on () sum(rate(infobip_billing_exporter_callbacks_total[1m])) > 0",
        )
        .await;
    println!(
        "prometheus scraping the exporter {:.1}s after start",
        started.elapsed().as_secs_f64()
    );

    let mut failures = Vec::new();
    let mut names = BTreeSet::new();

    // Every dashboard query, with template variables as "All" and Grafana's intervals at 1m.
    for file in json_files(&Path::new(ROOT).join("dashboards")) {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (title, ref_id, expr) in dashboard_queries(&dashboard) {
            let promql = substitute(&expr);
            names.extend(metric_names(&promql));
            match prometheus.query(&http, &promql).await {
                Ok(result) => {
                    println!(
                        "{file_name} | {title} [{ref_id}]: {} series | {promql}",
                        result.len()
                    );
                    if result.is_empty() {
                        failures.push(format!("{file_name} | {title} [{ref_id}]: no data"));
                    }
                    // Money is never added across currencies: a cost result keeps `currency`.
                    if is_money(&promql) {
                        for series in &result {
                            if series["metric"]["currency"].as_str().is_none() {
                                failures.push(format!(
                                    "{file_name} | {title} [{ref_id}]: series without currency {}",
                                    series["metric"]
                                ));
                            }
                        }
                    }
                }
                Err(e) => failures.push(format!("{file_name} | {title} [{ref_id}]: {e}")),
            }
        }
        // Template variables: label_values(selector, label) must find that label.
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            let Some(definition) = variable["definition"].as_str() else {
                continue;
            };
            let inner = definition
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .expect("label_values(selector, label)");
            let (selector, label) = inner.rsplit_once(',').unwrap();
            let promql = substitute(&format!("count by ({}) ({selector})", label.trim()));
            let count = prometheus.query(&http, &promql).await.map(|r| r.len());
            println!(
                "{file_name} | variable {}: {count:?} values | {promql}",
                variable["name"]
            );
            if !matches!(count, Ok(n) if n > 0) {
                failures.push(format!(
                    "{file_name} | variable {}: {count:?}",
                    variable["name"]
                ));
            }
        }
    }

    // Every rule expression: recording rules must return data; alerts must evaluate cleanly
    // (most are meant to stay silent against a healthy exporter).
    for file in yaml_files(&Path::new(ROOT).join("alerts")) {
        let rules: Value =
            serde_norway::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        for group in rules["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                let expr = rule["expr"].as_str().unwrap();
                names.extend(metric_names(expr));
                let (kind, name) = match rule.get("record") {
                    Some(record) => ("record", record.as_str().unwrap()),
                    None => ("alert", rule["alert"].as_str().unwrap()),
                };
                let one_line = expr.split_whitespace().collect::<Vec<_>>().join(" ");
                match prometheus.query(&http, expr).await {
                    Ok(result) => {
                        println!(
                            "{file_name} | {kind} {name}: {} series | {one_line}",
                            result.len()
                        );
                        if kind == "record" && result.is_empty() {
                            failures.push(format!("{file_name} | record {name}: no data"));
                        }
                    }
                    Err(e) => failures.push(format!("{file_name} | {kind} {name}: {e}")),
                }
            }
        }
    }

    // Every metric the dashboards and rules name exists (a typo would make a silent panel).
    for name in &names {
        let count = prometheus
            .query(&http, &format!("count({{__name__=\"{name}\"}})"))
            .await
            .map(|r| r.len());
        if !matches!(count, Ok(1)) {
            failures.push(format!(
                "metric {name} named in a query is not in Prometheus"
            ));
        }
    }
    println!("{} metric names referenced, all checked", names.len());

    // The budget below the simulated spend fires (for: shortened to 1s for the test).
    let deadline = Instant::now() + WAIT;
    let firing = loop {
        let alerts = prometheus
            .get(&http, "/api/v1/alerts")
            .await
            .unwrap_or_default();
        let alerts = alerts["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let budget = alerts.iter().find(|a| {
            a["labels"]["alertname"] == "InfobipBillingBudgetExceeded"
                && a["labels"]["budget"] == "whatsapp-low"
                && a["state"] == "firing"
        });
        if budget.is_some() {
            break alerts;
        }
        assert!(
            Instant::now() < deadline,
            "InfobipBillingBudgetExceeded{{budget=\"whatsapp-low\"}} not firing within {WAIT:?}: {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for alert in &firing {
        println!(
            "alert {} {}: {}",
            alert["state"], alert["labels"]["alertname"], alert["labels"]
        );
    }
    for budget in ["all-eur", "all-usd", "sms-sim", "globex-sms"] {
        assert!(
            !firing.iter().any(|a| a["labels"]["budget"] == budget),
            "budget {budget} is far above the spend, yet alerts: {firing:#?}"
        );
    }

    // Stop Prometheus the polite way, then the exporter.
    let quit = http
        .post(format!("{}/-/quit", prometheus.base))
        .send()
        .await
        .map(|r| r.status());
    let mut prometheus = prometheus;
    let deadline = Instant::now() + Duration::from_secs(10);
    while prometheus.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exited = prometheus.child.try_wait().unwrap();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), exporter.join())
        .await
        .expect("exporter stops");
    println!("done in {:.1}s", started.elapsed().as_secs_f64());

    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        matches!(&quit, Ok(s) if s.is_success()) && exited.is_some_and(|s| s.success()),
        "prometheus did not quit cleanly: {quit:?}, {exited:?}"
    );
}

/// (panel title, refId, expr) of every query of a dashboard, rows' nested panels included.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((
                        panel["title"].as_str().unwrap_or("").to_owned(),
                        target["refId"].as_str().unwrap_or("").to_owned(),
                        expr.to_owned(),
                    ));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Grafana's variables as a user selecting "All" would send them.
fn substitute(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (from, to) in [
        ("$__rate_interval", "1m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
    ] {
        out = out.replace(from, to);
    }
    for var in ["target", "account", "channel", "currency"] {
        out = out
            .replace(&format!("${{{var}}}"), ".*")
            .replace(&format!("${var}"), ".*");
    }
    out
}

/// Metric names in a PromQL expression (`infobip_billing…` and the recording rules' names),
/// skipping a prefix inside a regex such as `infobip_billing_(cost|…)`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("infobip_billing") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        if !name.ends_with('_') && !tail[end..].starts_with('(') {
            names.push(name.to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// Whether a query reads money, whose results must keep the `currency` label.
fn is_money(promql: &str) -> bool {
    metric_names(promql).iter().any(|n| {
        matches!(
            n.as_str(),
            "infobip_billing_cost"
                | "infobip_billing_month_cost"
                | "infobip_billing_month_forecast_cost"
                | "infobip_billing_budget"
                | "infobip_billing_budget_used_ratio"
                | "infobip_billing:budget_forecast_ratio"
        )
    })
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{ext} file in {}", dir.display());
    files
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, "yml")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, "json")
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
