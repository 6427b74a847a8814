//! `backfill` against the simulator: the OpenMetrics file holds every complete day in retention
//! with the simulator's own figures, and (in CI) promtool turns it into blocks that a real
//! Prometheus answers from, to the cent.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use infobip_billing_exporter::billing::calendar::{
    Clock, DayRange, YearMonth, retention_months, retention_start,
};
use infobip_billing_exporter::commands::backfill::{end_of_day, plan};
use infobip_billing_exporter::daemon::scheduler::AGGREGATE_BY;
use infobip_billing_exporter::infobip::model::{QueryBillingUsageApiRequest, parse_decimal};
use rust_decimal::Decimal;
use time::Date;

use common::{BIN, LiveSim, WAIT, expected_from_bodies, free_port, start_live_sim};

/// The simulator's own cost per (day, currency) over the days backfill covers.
fn expected_days(sim: &LiveSim) -> BTreeMap<(String, String), Decimal> {
    let today = sim.clock.today();
    let bodies: Vec<Vec<u8>> = plan(today)
        .into_iter()
        .map(|(_, range)| {
            let request = QueryBillingUsageApiRequest::unfiltered(range, AGGREGATE_BY.to_vec());
            serde_json::to_vec(
                &sim.simulator
                    .result_for(&request, "EXPECTED", sim.clock.now()),
            )
            .unwrap()
        })
        .collect();
    let window = DayRange {
        since: retention_start(today),
        until: today,
    };
    let mut per_day = BTreeMap::new();
    for ((_, _, currency, day), cost) in
        expected_from_bodies(bodies.iter().map(Vec::as_slice), window).days
    {
        *per_day.entry((day, currency)).or_default() += cost;
    }
    per_day
}

async fn backfill(sim: &LiveSim, out: &Path) -> Output {
    let args: Vec<String> = [
        "backfill",
        "--base-url",
        &sim.url,
        "--target",
        "sim",
        "--timeout",
        "20s",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .env("INFOBIP_API_KEY", "demo-key")
            .output()
            .expect("run the binary")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "backfill failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One OpenMetrics sample: name, labels, value text, timestamp.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: Decimal,
    at: i64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let (name, rest) = line.split_once('{').expect("labels");
            let (labels, tail) = rest.rsplit_once("} ").expect("end of labels");
            let (value, at) = tail.split_once(' ').expect("value and timestamp");
            let labels = labels
                .split("\",")
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").expect("k=\"v\"");
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: parse_decimal(value).expect("decimal value"),
                at: at.parse().expect("integer timestamp"),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_writes_every_complete_day_with_the_simulators_figures() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.om");
    backfill(&sim, &file).await;
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    for family in [
        "infobip_billing_cost",
        "infobip_billing_month_cost",
        "infobip_billing_quantity",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} gauge\n")),
            "{family}"
        );
    }
    let samples = parse(&text);
    let today = sim.clock.today();
    let mut per_day: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    let mut month_end: BTreeMap<(String, String), (i64, Decimal)> = BTreeMap::new();
    for s in &samples {
        assert_eq!(s.labels["target"], "sim");
        match s.name.as_str() {
            "infobip_billing_cost" => {
                let day: Date = s.labels["day"].parse_day();
                assert!(day < today, "today is incomplete and left out");
                assert_eq!(s.at, end_of_day(day), "stamped at the day's end");
                if YearMonth::of(day) == retention_months(today)[0] {
                    assert_eq!(s.labels["status"], "final", "{day}");
                }
                *per_day
                    .entry((s.labels["day"].clone(), s.labels["currency"].clone()))
                    .or_default() += s.value;
            }
            "infobip_billing_month_cost" => {
                let key = (s.labels["month"].clone(), s.labels["currency"].clone());
                let e = month_end.entry(key).or_insert((s.at, Decimal::ZERO));
                if s.at > e.0 {
                    *e = (s.at, Decimal::ZERO);
                }
                if s.at == e.0 {
                    e.1 += s.value;
                }
            }
            _ => {}
        }
    }
    let want = expected_days(&sim);
    assert_eq!(per_day, want);
    // The last month-to-date sample of each month is the month's total.
    let mut month_totals: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for ((day, currency), cost) in &want {
        *month_totals
            .entry((day[..7].to_owned(), currency.clone()))
            .or_default() += *cost;
    }
    let got: BTreeMap<_, _> = month_end.into_iter().map(|(k, (_, v))| (k, v)).collect();
    assert_eq!(got, month_totals);
}

trait ParseDay {
    fn parse_day(&self) -> Date;
}

impl ParseDay for String {
    fn parse_day(&self) -> Date {
        Date::parse(
            self,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap()
    }
}

/// A real Prometheus on loopback; stopped with `POST /-/quit`, killed if that fails.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(data: &Path, config: &Path) -> Self {
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            // Time retention counts back from the newest block: keep the whole backfill.
            .arg("--storage.tsdb.retention.time=400d")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus on PATH (apt-get install prometheus)");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Polls /-/ready: a separate process gives no other signal.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = reqwest::get(format!("{}/-/ready", self.url)).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An instant query at `at` (Unix seconds): values by currency.
    async fn sum_by_currency(&self, query: &str, at: i64) -> BTreeMap<String, Decimal> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url),
            &[("query", query), ("time", &at.to_string())],
        )
        .unwrap();
        let response: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert_eq!(response["status"], "success", "{response}");
        response["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["metric"]["currency"].as_str().unwrap().to_owned(),
                    parse_decimal(r["value"][1].as_str().unwrap()).unwrap(),
                )
            })
            .collect()
    }

    async fn quit(mut self) {
        let _ = reqwest::Client::new()
            .post(format!("{}/-/quit", self.url))
            .send()
            .await;
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs promtool and prometheus (apt-get install prometheus); .ci/run installs them"]
async fn promtool_blocks_from_backfill_answer_a_days_total_in_prometheus() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.om");
    backfill(&sim, &file).await;
    let data = dir.path().join("data");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&data)
        .output()
        .expect("promtool on PATH");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let prometheus = Prometheus::start(&data, &config);
    prometheus.wait_ready().await;

    let want = expected_days(&sim);
    // The 15th of last month: complete, and present whatever today's date.
    let month = YearMonth::of(sim.clock.today()).previous();
    let day = month.first_day() + time::Duration::days(14);
    let day_text = day.to_string();
    let want_day: BTreeMap<String, Decimal> = want
        .iter()
        .filter(|((d, _), _)| *d == day_text)
        .map(|((_, c), v)| (c.clone(), v.round_dp(2)))
        .collect();
    assert!(!want_day.is_empty(), "the simulator has costs on {day}");
    let got = prometheus
        .sum_by_currency(
            &format!("sum by (currency) (infobip_billing_cost{{day=\"{day}\"}})"),
            end_of_day(day),
        )
        .await;
    let got: BTreeMap<String, Decimal> = got.into_iter().map(|(c, v)| (c, v.round_dp(2))).collect();
    assert_eq!(got, want_day, "day {day} per currency, to the cent");

    // And the whole month, from the month-to-date sample at its last day's end.
    let last = month.end_exclusive().previous_day().unwrap();
    let want_month: BTreeMap<String, Decimal> = want
        .iter()
        .filter(|((d, _), _)| d.starts_with(&month.to_string()))
        .fold(
            BTreeMap::<String, Decimal>::new(),
            |mut acc, ((_, c), v)| {
                *acc.entry(c.clone()).or_default() += *v;
                acc
            },
        )
        .into_iter()
        .map(|(c, v)| (c, v.round_dp(2)))
        .collect();
    let got = prometheus
        .sum_by_currency(
            &format!("sum by (currency) (infobip_billing_month_cost{{month=\"{month}\"}})"),
            end_of_day(last),
        )
        .await;
    let got: BTreeMap<String, Decimal> = got.into_iter().map(|(c, v)| (c, v.round_dp(2))).collect();
    assert_eq!(got, want_month, "month {month} per currency, to the cent");
    prometheus.quit().await;
}
