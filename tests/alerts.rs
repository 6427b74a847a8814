//! Alerts and dashboards as code: every alert is complete, documented and unit-tested (firing
//! and not firing); the dashboards are what Grafana needs and never add two currencies;
//! `promtool` checks and runs the rule tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn files_with(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(ROOT).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{ext} in {}", dir.display());
    files
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every alerting rule of alerts/*.yml.
fn alert_rules() -> Vec<Value> {
    files_with("alerts", "yml")
        .iter()
        .flat_map(|f| {
            yaml(f)["groups"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["rules"].as_array().unwrap().clone())
                .filter(|r| r.get("alert").is_some())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// GitHub's heading anchors: lower case, spaces to '-', other punctuation dropped.
fn anchors(markdown: &str) -> BTreeSet<String> {
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

#[test]
fn every_alert_has_severity_annotations_a_for_and_a_runbook_section() {
    let runbooks = std::fs::read_to_string(Path::new(ROOT).join("docs/runbooks.md")).unwrap();
    let anchors = anchors(&runbooks);
    let rules = alert_rules();
    assert!(rules.len() >= 10, "{} alerts", rules.len());
    for rule in &rules {
        let name = rule["alert"].as_str().unwrap();
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("warning" | "critical")),
            "{name}: severity {severity:?}"
        );
        assert!(
            rule["for"].as_str().is_some_and(|f| !f.is_empty()),
            "{name}: no for:"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{name}: no annotations.{key}"
            );
        }
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = url
            .strip_prefix("docs/runbooks.md#")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} is not docs/runbooks.md#…"));
        assert!(
            anchors.contains(anchor),
            "{name}: docs/runbooks.md has no section #{anchor}"
        );
    }
}

#[test]
fn every_alert_has_a_firing_and_a_not_firing_test_case() {
    let mut firing = BTreeSet::new();
    let mut silent = BTreeSet::new();
    let mut tested_files = BTreeSet::new();
    for file in files_with("alerts/tests", "yml") {
        let test = yaml(&file);
        for rule_file in test["rule_files"].as_array().unwrap() {
            let path = file.parent().unwrap().join(rule_file.as_str().unwrap());
            tested_files.insert(path.canonicalize().unwrap());
        }
        for case in test["tests"].as_array().unwrap() {
            for check in case["alert_rule_test"].as_array().into_iter().flatten() {
                let name = check["alertname"].as_str().unwrap().to_owned();
                match check["exp_alerts"].as_array() {
                    Some(alerts) if !alerts.is_empty() => firing.insert(name),
                    _ => silent.insert(name),
                };
            }
        }
    }
    for file in files_with("alerts", "yml") {
        assert!(
            tested_files.contains(&file.canonicalize().unwrap()),
            "{} is in no alerts/tests/*.yml rule_files",
            file.display()
        );
    }
    for rule in alert_rules() {
        let name = rule["alert"].as_str().unwrap();
        assert!(firing.contains(name), "{name}: no firing test case");
        assert!(silent.contains(name), "{name}: no not-firing test case");
    }
}

/// (dashboard, panel title, expr) of every query, rows' nested panels included.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((panel["title"].as_str().unwrap().to_owned(), expr.to_owned()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every `datasource` object in the dashboard, wherever it is.
fn datasources(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "datasource" && v.is_object() {
                    out.push(v.clone());
                }
                datasources(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| datasources(i, out)),
        _ => {}
    }
}

#[test]
fn dashboards_are_grafana_ready_and_never_add_currencies() {
    let mut uids = BTreeSet::new();
    for file in files_with("dashboards", "json") {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
            "{name}: schemaVersion"
        );
        assert!(d["title"].is_string(), "{name}: title");
        assert!(
            uids.insert(d["uid"].as_str().unwrap().to_owned()),
            "{name}: uid"
        );
        let vars = d["templating"]["list"].as_array().unwrap();
        let var = |n: &str| vars.iter().find(|v| v["name"] == n);
        let ds = var("datasource").unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!(ds["type"], "datasource", "{name}");
        assert_eq!(ds["query"], "prometheus", "{name}");
        for v in ["target", "account", "channel", "currency"] {
            assert!(var(v).is_some(), "{name}: no {v} variable");
        }
        // No hard-coded datasource: the variable, or Grafana's own annotations source.
        let mut all = Vec::new();
        datasources(&d, &mut all);
        for ds in all {
            assert!(
                ds["uid"] == "${datasource}" || ds["uid"] == "-- Grafana --",
                "{name}: hard-coded datasource {ds}"
            );
        }
        for panel in d["panels"].as_array().unwrap() {
            assert!(
                panel["gridPos"]["w"].is_u64(),
                "{name}: panel without gridPos"
            );
        }
        // Money: every aggregation keeps `currency`, and nothing aggregates it away.
        let queries = dashboard_queries(&d);
        assert!(queries.len() >= 10, "{name}: {} queries", queries.len());
        for (title, expr) in queries {
            let money = [
                "infobip_billing_cost{",
                "infobip_billing_month_cost{",
                "infobip_billing_month_forecast_cost{",
            ]
            .iter()
            .any(|m| expr.contains(m));
            if !money {
                continue;
            }
            assert!(!expr.contains("without"), "{name} | {title}: without");
            assert!(!expr.contains("sum("), "{name} | {title}: sum( without by");
            for clause in expr.split(" by (").skip(1) {
                let labels = clause.split(')').next().unwrap();
                assert!(
                    labels.split(',').any(|l| l.trim() == "currency"),
                    "{name} | {title}: by ({labels}) drops currency"
                );
            }
        }
    }
}

fn promtool(args: &[&str], files: &[PathBuf]) {
    let out = Command::new("promtool")
        .args(args)
        .args(files)
        .current_dir(ROOT)
        .output()
        .expect("promtool on PATH (apt-get install prometheus)");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("promtool {}:\n{printed}", args.join(" "));
    assert!(out.status.success(), "promtool {args:?} failed:\n{printed}");
}

#[test]
#[ignore = "needs promtool (Debian package: apt-get install prometheus), run by .ci/run"]
fn promtool_check_rules() {
    promtool(&["check", "rules"], &files_with("alerts", "yml"));
}

#[test]
#[ignore = "needs promtool (Debian package: apt-get install prometheus), run by .ci/run"]
fn promtool_test_rules() {
    promtool(&["test", "rules"], &files_with("alerts/tests", "yml"));
}
