//! End to end with a real Prometheus (Debian's `prometheus` 2.42): it scrapes the exporter fed
//! by the simulator (with COUNTRY_CODE as a dimension, for the Destinations row) and loads
//! `alerts/*.yml`; every dashboard query and rule expression is then evaluated against it, and a
//! budget set below the simulated spend must fire its alert.
//!
//! Everything binds 127.0.0.1, every wait is bounded, and Prometheus is stopped with
//! `POST /-/quit` (killed on drop if that fails).

mod monitoring;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use monitoring::{
    Exporter, ROOT, Server, WAIT, dashboard_queries, files_with, http, metric_names, shipped_rules,
    substitute,
};
use serde_json::Value;

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
dimensions: [COUNTRY_CODE]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus (Debian package: apt-get install prometheus), run by .ci/run"]
async fn dashboards_and_rules_evaluate_against_a_real_prometheus() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(dir.path(), BUDGETS).await;
    let rule_files = shipped_rules(dir.path(), &BTreeMap::new());
    let prometheus = Server::prometheus(dir.path(), exporter.running.web_addr, &rule_files, None);
    let http = http();

    // Ready, scraped, rules evaluated, and several scrapes in for the rate() windows.
    prometheus.wait_ready(&http).await;
    prometheus
        .wait_for(&http, "budget:infobip_billing_month_forecast_cost:ratio")
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
    for file in files_with(&Path::new(ROOT).join("dashboards"), "json") {
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
    for file in files_with(&Path::new(ROOT).join("alerts"), "yml") {
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
    let quit = prometheus.quit(&http).await;
    exporter.stop().await;
    println!("done in {:.1}s", started.elapsed().as_secs_f64());

    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(quit, "prometheus did not quit cleanly");
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
                | "budget:infobip_billing_month_forecast_cost:ratio"
        )
    })
}
