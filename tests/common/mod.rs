//! Helpers shared by the integration tests: start things on `127.0.0.1:0`, scrape, and compute
//! the expected figures from the callback bodies the simulator really sent.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use infobip_billing_exporter::calendar::{Clock, DayRange, YearMonth};
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
    samples_named(samples, name)
        .into_iter()
        .map(|s| {
            let l = |k: &str| {
                s.labels
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| panic!("label {k} on {s:?}"))
            };
            (
                (l("account"), l("category"), l("currency"), l(period)),
                s.value,
            )
        })
        .collect()
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
