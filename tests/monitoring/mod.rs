//! Helpers for the tests of `alerts/`, `dashboards/` and the chart's copies of them: the rule
//! parameters (`# param:<name>` markers), runbook anchors, metric names in PromQL, and real
//! Prometheus and Alertmanager servers over the exporter fed by the simulator.
//!
//! Every server binds 127.0.0.1, every wait is bounded, and a server still running when its
//! handle is dropped is killed.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infobip_billing_exporter::billing::calendar::{Clock, SystemClock};
use infobip_billing_exporter::config::{ApiKey, Config};
use infobip_billing_exporter::daemon::Running;
use infobip_billing_exporter::simulator::{Simulator, SimulatorOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Where every `runbook_url` of `alerts/` points (a section of docs/runbooks.md).
pub const RUNBOOKS_URL: &str = "https://github.com/infobip-billing-exporter/infobip-billing-exporter/blob/main/docs/runbooks.md";
/// The scrape job the rules of `alerts/` select, in every selector.
pub const JOB: &str = "infobip-billing-exporter";
pub const JOB_MATCHER: &str = "job=\"infobip-billing-exporter\"";
/// Bounds each wait on Prometheus; its first scrape alone takes ~5 s (target updates batched).
pub const WAIT: Duration = Duration::from_secs(40);

pub fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{ext} file in {}", dir.display());
    files
}

/// GitHub's heading anchors: lower case, spaces to '-', other punctuation dropped.
pub fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// The line's parameter: `(name, number, text before the number)` for a line ending in
/// `<number> # param:<name>`.
fn marker(line: &str) -> Option<(&str, &str, &str)> {
    let (before, name) = line.rsplit_once(" # param:")?;
    let before = before.trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    let number = &before[start..];
    assert!(
        !number.is_empty() && !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
        "a `# param:` marker must follow a number and name the parameter: {line}"
    );
    Some((name, number, &before[..start]))
}

/// The thresholds of a rule file: `# param:<name>` → the number in front of it (its default).
/// A name used on several lines must have the same number on each.
pub fn params(text: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for (name, number, _) in text.lines().filter_map(marker) {
        let before = found.insert(name.to_owned(), number.to_owned());
        assert!(
            before.as_deref().is_none_or(|b| b == number),
            "param {name} is {before:?} and {number}"
        );
    }
    found
}

/// The rule file with the number of each `# param:<name>` set from `values` (as the chart does);
/// names not in `values` keep their default.
pub fn with_params(text: &str, values: &BTreeMap<String, String>) -> String {
    text.lines()
        .map(|line| match marker(line) {
            Some((name, _, head)) if values.contains_key(name) => {
                format!("{head}{} # param:{name}\n", values[name])
            }
            _ => format!("{line}\n"),
        })
        .collect()
}

/// Metric selectors in a PromQL expression: each name of the data and exporter metrics
/// (`infobip_billing…`) and of the recording rules (`level:infobip_billing…:operations`), with
/// its label matchers (the text between the braces after it, if any). A name inside a string,
/// such as the regex `infobip_billing_(cost|…)`, is skipped.
pub fn metric_selectors(expr: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut in_string = false;
    let mut chars = expr.char_indices().peekable();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while let Some((at, c)) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            continue;
        }
        let mut end = at + c.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if !is_name(c) {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let name = &expr[at..end];
        let rest = &expr[end..];
        if name.contains("infobip_billing") && !rest.starts_with('(') {
            let matchers = rest
                .strip_prefix('{')
                .and_then(|r| r.split_once('}'))
                .map(|(m, _)| m.to_owned());
            found.push((name.to_owned(), matchers));
        }
    }
    found
}

/// The metric names of [`metric_selectors`].
pub fn metric_names(expr: &str) -> Vec<String> {
    metric_selectors(expr).into_iter().map(|(n, _)| n).collect()
}

/// (panel title, refId, expr) of every query of a dashboard, rows' nested panels included.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String, String)> {
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
pub fn substitute(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (from, to) in [
        ("$__rate_interval", "1m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
    ] {
        out = out.replace(from, to);
    }
    for var in [
        "job", "instance", "target", "account", "channel", "currency",
    ] {
        out = out
            .replace(&format!("${{{var}}}"), ".*")
            .replace(&format!("${var}\""), ".*\"");
    }
    out
}

/// The rule files of `alerts/` as shipped, in `dir`, except `for:` shortened to 1s so that alerts
/// fire within a test, and the parameters in `params` set (as the chart sets them).
pub fn shipped_rules(dir: &Path, params: &BTreeMap<String, String>) -> Vec<PathBuf> {
    files_with(&Path::new(ROOT).join("alerts"), "yml")
        .iter()
        .map(|src| {
            let text = with_params(&std::fs::read_to_string(src).unwrap(), params);
            let short: String = text
                .lines()
                .map(|l| match l.split_once("for: ") {
                    Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 1s\n"),
                    _ => format!("{l}\n"),
                })
                .collect();
            let dst = dir.join(src.file_name().unwrap());
            std::fs::write(&dst, short).unwrap();
            dst
        })
        .collect()
}

/// The exporter on loopback, fed by the simulator on the real clock (Prometheus evaluates
/// `time()`, so the simulated days must be today's), querying every 3 s so that queries and
/// callbacks keep coming while Prometheus scrapes. `extra` is appended to its YAML config.
pub struct Exporter {
    pub running: Running,
    pub shutdown: CancellationToken,
}

impl Exporter {
    pub async fn start(dir: &Path, extra: &str) -> Self {
        let shutdown = CancellationToken::new();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let simulator = Simulator::new(SimulatorOptions::default(), clock.clone());
        let key = simulator.options().api_key.clone();
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
        tokio::spawn(simulator.serve(sim_listener, shutdown.clone()));

        let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let callback = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cb = callback.local_addr().unwrap();
        let state = dir.join("state");
        std::fs::create_dir(&state).unwrap();
        let mut config = Config::from_yaml(&format!(
            "targets:\n  - name: sim\n    base_url: {sim_url}\n    api_key_env: UNUSED_IN_TESTS\n\
             callback:\n  listen: {cb}\n  public_url: http://{cb}\nweb:\n  listen: 127.0.0.1:0\n\
             state_dir: {}\n{extra}",
            state.display()
        ))
        .expect("exporter config");
        // Below the 1m minimum on purpose: see above.
        config.interval = Duration::from_secs(3);
        config.retry_backoff = Duration::from_millis(100);
        let running = infobip_billing_exporter::daemon::start(
            &config,
            vec![ApiKey::new(key)],
            web,
            callback,
            clock,
            shutdown.clone(),
        )
        .await
        .expect("exporter starts");
        Self { running, shutdown }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.running.join())
            .await
            .expect("exporter stops");
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A Prometheus or Alertmanager process; killed if still running when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    name: &'static str,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn spawn(name: &'static str, dir: &Path, args: Vec<String>) -> Self {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(name)
            .args(args)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} on PATH (see .ci/run): {e}"));
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            name,
            log,
        }
    }

    /// Prometheus scraping `scrape` every second as job `infobip-billing-exporter`, evaluating
    /// `rule_files` every second, and sending alerts to `alertmanager` (host:port) when given,
    /// again every second while they fire.
    pub fn prometheus(
        dir: &Path,
        scrape: std::net::SocketAddr,
        rule_files: &[PathBuf],
        alertmanager: Option<&str>,
    ) -> Self {
        let dir = dir.join("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| format!("  - {}", p.display()))
            .collect();
        let alerting = alertmanager.map_or_else(String::new, |am| {
            format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{am}']\n"
            )
        });
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             rule_files:\n{}\n{alerting}scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{scrape}']\n",
            rules.join("\n")
        );
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let mut args = vec![
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            "--web.enable-lifecycle".to_owned(),
        ];
        if alertmanager.is_some() {
            // Alerts that fired before the Alertmanager was discovered (target updates are
            // batched every 5 s) are sent again a second later, not a minute later.
            args.push("--rules.alert.resend-delay=1s".to_owned());
        }
        Self::spawn("prometheus", &dir, args)
    }

    /// Alertmanager (Debian's `prometheus-alertmanager`) with `config` as its YAML, no cluster.
    pub fn alertmanager(dir: &Path, config: &str) -> Self {
        let dir = dir.join("alertmanager");
        std::fs::create_dir_all(&dir).unwrap();
        let config_file = dir.join("alertmanager.yml");
        std::fs::write(&config_file, config).unwrap();
        Self::spawn(
            "prometheus-alertmanager",
            &dir,
            vec![
                format!("--config.file={}", config_file.display()),
                format!("--storage.path={}", dir.join("data").display()),
                "--cluster.listen-address=".to_owned(),
            ],
        )
    }

    /// host:port, for another server's config.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + WAIT;
        while !http
            .get(format!("{}/-/ready", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "{} not ready: {}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET path`, parsed; `None` on connection errors (not up yet).
    pub async fn get(&self, http: &reqwest::Client, path: &str) -> Option<Value> {
        let response = http.get(format!("{}{path}", self.base)).send().await.ok()?;
        response.json().await.ok()
    }

    /// An instant query: the result vector, or Prometheus' error message.
    pub async fn query(&self, http: &reqwest::Client, promql: &str) -> Result<Vec<Value>, String> {
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
    pub async fn wait_for(&self, http: &reqwest::Client, promql: &str) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(result) = self.query(http, promql).await
                && !result.is_empty()
            {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "no data for {promql} within {WAIT:?}; {} log:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops the server the polite way (`POST /-/quit`); whether it exited cleanly.
    pub async fn quit(mut self, http: &reqwest::Client) -> bool {
        let quit = http
            .post(format!("{}/-/quit", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        quit && self.child.try_wait().unwrap().is_some_and(|s| s.success())
    }
}

pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
