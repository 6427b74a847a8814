//! Golden /metrics files (`tests/golden/*.prom`) for fixed simulator scenarios: a fixed seed and
//! a `ManualClock`, so the data metrics are the same on every run. `UPDATE_GOLDEN=1 cargo test
//! --test golden` rewrites them; review the diff like code.
//!
//! Only the data metrics (`infobip_billing_*` without `infobip_billing_exporter_*`) are kept:
//! the exporter's own metrics hold timings, counts of retries and the build version, which are
//! not a property of the scenario.

mod common;

use std::path::PathBuf;

use common::scrape;
use infobip_billing_exporter::config::{BudgetConfig, BudgetMatch, Config};
use infobip_billing_exporter::infobip::model::BillingUsageAggregate;
use infobip_billing_exporter::simulator::SimulatorOptions;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.prom"))
}

/// How a scenario changes the demo's config.
type Configure = fn(&mut Config);

/// The scenarios: a name and its config change.
fn scenarios() -> Vec<(&'static str, Configure)> {
    vec![
        ("default", |_| {}),
        ("budgets_dimensions_capped", |c| {
            c.days = 7;
            c.metrics.dimensions = vec![
                BillingUsageAggregate::TRAFFIC_TYPE,
                BillingUsageAggregate::COUNTRY_CODE,
            ];
            c.metrics.max_series = 50;
            c.metrics.budgets = vec![BudgetConfig {
                name: "whatsapp-eur".into(),
                monthly: "500".parse().unwrap(),
                currency: "EUR".into(),
                matcher: BudgetMatch {
                    channel: Some("whatsapp".into()),
                    ..Default::default()
                },
            }];
        }),
    ]
}

/// The data-metric lines of an exposition, comments (HELP, TYPE) included.
fn data_lines(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let name = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line);
            name.starts_with("infobip_billing_") && !name.starts_with("infobip_billing_exporter_")
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

async fn render(configure: Configure) -> String {
    let state = tempfile::tempdir().unwrap();
    let (demo, shutdown) =
        common::started_demo(&state, SimulatorOptions::default(), configure).await;
    let text = scrape(demo.exporter.web_addr).await;
    common::stop_demo(demo, shutdown).await;
    data_lines(&text)
}

#[tokio::test]
async fn scrapes_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, configure) in scenarios() {
        let got = render(configure).await;
        let path = golden(name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .find(|(g, w)| g != w)
                .map(|(g, w)| format!("\n  got:  {g}\n  want: {w}"))
                .unwrap_or_else(|| "\n  (one is a prefix of the other)".into());
            stale.push(format!("{}: differs{first}", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nIf the change is intended: UPDATE_GOLDEN=1 cargo test --test golden",
        stale.join("\n")
    );
}

#[test]
#[ignore = "needs promtool (Debian package prometheus); .ci/run installs it"]
fn golden_files_pass_promtool_check_metrics() {
    for (name, _) in scenarios() {
        let text = std::fs::read_to_string(golden(name)).unwrap();
        assert!(text.contains("# TYPE infobip_billing_cost gauge"), "{name}");
        let (status, lint) = common::promtool_check_metrics(&text);
        assert!(
            status.success() && lint.trim().is_empty(),
            "{name}: promtool check metrics: {status}\n{lint}"
        );
    }
}
