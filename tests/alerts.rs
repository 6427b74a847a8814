//! Alerts and dashboards as code: every alert is complete, documented and unit-tested (firing
//! and not firing); the rules travel (one job selector everywhere, thresholds as parameters,
//! absolute runbook URLs, recording rules named `level:metric:operations`); the dashboards are
//! what Grafana and grafana.com need and never add two currencies; `promtool` checks and runs
//! the rule tests.

mod monitoring;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use monitoring::{JOB_MATCHER, ROOT, RUNBOOKS_URL, anchors, metric_selectors, params};
use serde_json::Value;

fn files_with(dir: &str, ext: &str) -> Vec<PathBuf> {
    monitoring::files_with(&Path::new(ROOT).join(dir), ext)
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every rule of alerts/*.yml.
fn rules() -> Vec<Value> {
    files_with("alerts", "yml")
        .iter()
        .flat_map(|f| {
            yaml(f)["groups"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["rules"].as_array().unwrap().clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn alert_rules() -> Vec<Value> {
    rules()
        .into_iter()
        .filter(|r| r.get("alert").is_some())
        .collect()
}

fn rule_name(rule: &Value) -> &str {
    rule["alert"]
        .as_str()
        .or_else(|| rule["record"].as_str())
        .unwrap()
}

#[test]
fn every_alert_has_severity_annotations_a_for_and_a_runbook_section() {
    let runbooks = std::fs::read_to_string(Path::new(ROOT).join("docs/runbooks.md")).unwrap();
    let anchors = anchors(&runbooks);
    let rules = alert_rules();
    assert!(rules.len() >= 12, "{} alerts", rules.len());
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
        // Absolute, so that it works from Alertmanager's notifications.
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = url
            .strip_prefix(RUNBOOKS_URL)
            .and_then(|a| a.strip_prefix('#'))
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} is not {RUNBOOKS_URL}#…"));
        assert_eq!(anchor, name.to_lowercase(), "{name}: its own section");
        assert!(
            anchors.contains(anchor),
            "{name}: docs/runbooks.md has no section #{anchor}"
        );
    }
}

/// Every selector of the exporter's series (raw or recorded) carries the one job matcher that
/// the chart replaces by `prometheusRule.selector`, so that rules of two installations in one
/// Prometheus never read each other's series.
#[test]
fn every_selector_selects_the_exporters_job() {
    let mut checked = 0;
    for rule in rules() {
        let name = rule_name(&rule);
        let expr = rule["expr"].as_str().unwrap();
        let mut selectors = metric_selectors(expr);
        // `up` is Prometheus' own, named without the prefix.
        for (at, _) in expr.match_indices("up{") {
            if at == 0 || !expr[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                let matchers = expr[at + 3..].split_once('}').unwrap().0;
                selectors.push(("up".to_owned(), Some(matchers.to_owned())));
            }
        }
        for (metric, matchers) in selectors {
            assert!(
                matchers
                    .as_deref()
                    .is_some_and(|m| m.split(',').any(|m| m.trim() == JOB_MATCHER)),
                "{name}: {metric} without {{{JOB_MATCHER}}}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} selectors");
}

/// Recording rules are named `level:metric:operations`: the labels kept, the metric they are
/// computed from (one of docs/metrics.md), the operations.
#[test]
fn recording_rules_are_named_level_metric_operations() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/metrics.md")).unwrap();
    let metrics: BTreeSet<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name)
        .collect();
    let mut records = BTreeSet::new();
    for rule in rules() {
        let Some(record) = rule["record"].as_str() else {
            continue;
        };
        let parts: Vec<&str> = record.split(':').collect();
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        assert!(
            parts.len() == 3 && parts.iter().all(|p| valid(p)),
            "{record}: not level:metric:operations"
        );
        assert!(
            metrics.contains(parts[1]),
            "{record}: {} is not a metric of docs/metrics.md",
            parts[1]
        );
        assert!(
            !parts[0].starts_with("infobip"),
            "{record}: the level names labels"
        );
        assert!(records.insert(record.to_owned()), "{record} recorded twice");
    }
    assert!(records.len() >= 12, "{records:?}");
}

/// The thresholds are PromQL comments `<number> # param:<name>` inside the expressions (YAML
/// would drop them from a plain scalar), one default per name.
#[test]
fn thresholds_are_marked_parameters_inside_the_expressions() {
    let mut all = BTreeMap::new();
    for file in files_with("alerts", "yml") {
        let text = std::fs::read_to_string(&file).unwrap();
        let marked = params(&text);
        let exprs: String = yaml(&file)["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .map(|r| format!("{}\n", r["expr"].as_str().unwrap()))
            .collect();
        assert_eq!(
            params(&exprs),
            marked,
            "{}: a `# param:` marker outside an expression (use `expr: |`)",
            file.display()
        );
        for (name, default) in marked {
            assert!(
                default.parse::<f64>().is_ok(),
                "{name}: default {default} is not a number"
            );
            let before = all.insert(name.clone(), default.clone());
            assert!(
                before.is_none_or(|b| b == default),
                "{name} differs between files"
            );
        }
    }
    for name in [
        "spendSpikeFactor",
        "spendSpikeMinimum",
        "newDestinationMinimum",
        "monthOverrunFactor",
        "monthOverrunMinimum",
        "staleIntervals",
    ] {
        assert!(all.contains_key(name), "no parameter {name}: {all:?}");
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

/// The spend anomalies have their named cases: a steady high spender, a weekend dip, a
/// provisional restatement and the first days of a month, each named in the comment above a
/// test group that checks the alert.
#[test]
fn spend_anomalies_are_tested_against_their_false_alarms() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("alerts/tests/billing_days_test.yml"))
        .unwrap();
    // Each test group with the comment block just above it.
    let mut groups: Vec<(String, String)> = Vec::new();
    let mut comment = String::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("  #") {
            comment.push_str(c);
            comment.push(' ');
        } else if line.starts_with("  - interval:") {
            groups.push((std::mem::take(&mut comment), String::new()));
        } else if let Some((_, body)) = groups.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    for alert in [
        "InfobipBillingDailySpendSpike",
        "InfobipBillingNewDestination",
        "InfobipBillingMonthOverrun",
    ] {
        let comments: String = groups
            .iter()
            .filter(|(_, body)| body.contains(&format!("alertname: {alert}\n")))
            .flat_map(|(c, _)| c.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ");
        for case in [
            "fires",
            "steady high spender",
            "weekend",
            "restate",
            "first days of a month",
        ] {
            assert!(comments.contains(case), "{alert}: no case \"{case}\"");
        }
    }
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

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

const MONEY: [&str; 3] = [
    "infobip_billing_cost{",
    "infobip_billing_month_cost{",
    "infobip_billing_month_forecast_cost{",
];

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
        for v in [
            "job", "instance", "target", "account", "channel", "currency",
        ] {
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
        let queries = monitoring::dashboard_queries(&d);
        assert!(queries.len() >= 10, "{name}: {} queries", queries.len());
        for (title, _, expr) in &queries {
            // Every selector follows the job and instance variables.
            for (metric, matchers) in metric_selectors(expr) {
                let matchers = matchers.unwrap_or_default();
                assert!(
                    matchers.contains("job=~\"$job\"")
                        && matchers.contains("instance=~\"$instance\""),
                    "{name} | {title}: {metric} ignores $job or $instance"
                );
            }
            if !MONEY.iter().any(|m| expr.contains(m)) {
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

/// What grafana.com needs to import a dashboard as it is: `__inputs` for the data source it
/// asks for, `__requires` for every panel type used.
#[test]
fn dashboards_import_on_grafana_com() {
    for file in files_with("dashboards", "json") {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let d: Value = serde_json::from_str(&text).unwrap();
        let inputs: BTreeSet<&str> = d["__inputs"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no __inputs"))
            .iter()
            .map(|i| {
                assert_eq!(i["type"], "datasource", "{name}: {i}");
                assert_eq!(i["pluginId"], "prometheus", "{name}: {i}");
                i["name"].as_str().unwrap()
            })
            .collect();
        let used: BTreeSet<&str> = text
            .match_indices("${DS_")
            .map(|(at, _)| {
                let rest = &text[at + 2..];
                &rest[..rest.find('}').unwrap()]
            })
            .collect();
        assert_eq!(inputs, used, "{name}: __inputs and the ${{DS_…}} used");
        let requires = d["__requires"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no __requires"));
        let required = |kind: &str| -> BTreeSet<String> {
            requires
                .iter()
                .filter(|r| r["type"] == kind)
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(required("grafana"), BTreeSet::from(["grafana".to_owned()]));
        assert_eq!(
            required("datasource"),
            BTreeSet::from(["prometheus".to_owned()])
        );
        let types: BTreeSet<String> = panels(&d)
            .iter()
            .map(|p| p["type"].as_str().unwrap().to_owned())
            .filter(|t| t != "row")
            .collect();
        assert_eq!(required("panel"), types, "{name}: __requires panels");
    }
}

/// Money panels show their currency's unit (overrides for EUR, USD, GBP; other currencies and
/// tables fall back to plain numbers beside their currency code, as the description says); the
/// dashboards link to each other and to the runbooks.
#[test]
fn dashboards_carry_currency_units_and_links() {
    let mut tags: Vec<BTreeSet<String>> = Vec::new();
    let runbooks = std::fs::read_to_string(Path::new(ROOT).join("docs/runbooks.md")).unwrap();
    let anchors = anchors(&runbooks);
    for file in files_with("dashboards", "json") {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let links = d["links"].as_array().unwrap();
        let to_dashboards: Vec<&Value> =
            links.iter().filter(|l| l["type"] == "dashboards").collect();
        assert!(
            !to_dashboards.is_empty(),
            "{name}: no link to the other dashboards"
        );
        for l in &to_dashboards {
            assert_eq!(l["keepTime"], true, "{name}: {l}");
            assert_eq!(l["includeVars"], true, "{name}: {l}");
        }
        assert!(
            links
                .iter()
                .any(|l| l["type"] == "link" && l["url"] == RUNBOOKS_URL),
            "{name}: no link to the runbooks"
        );
        let link_tags: BTreeSet<String> = to_dashboards
            .iter()
            .flat_map(|l| l["tags"].as_array().unwrap())
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        let own: BTreeSet<String> = d["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        assert!(
            link_tags.is_subset(&own),
            "{name}: links by tags it does not carry itself"
        );
        tags.push(own);

        let mut money_panels = 0;
        for panel in panels(&d) {
            let title = panel["title"].as_str().unwrap_or("");
            for link in panel["links"].as_array().into_iter().flatten() {
                let url = link["url"].as_str().unwrap();
                let anchor = url
                    .strip_prefix(&format!("{RUNBOOKS_URL}#"))
                    .unwrap_or_else(|| panic!("{name} | {title}: {url}"));
                assert!(
                    anchors.contains(anchor),
                    "{name} | {title}: no runbook section #{anchor}"
                );
            }
            let exprs: Vec<&str> = panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str())
                .collect();
            let money = exprs.iter().any(|e| MONEY.iter().any(|m| e.contains(m)));
            let unit = panel["fieldConfig"]["defaults"]["unit"].as_str();
            if !money || unit == Some("percentunit") || panel["type"] == "table" {
                continue;
            }
            money_panels += 1;
            let overrides = panel["fieldConfig"]["overrides"].as_array().unwrap();
            for currency in ["EUR", "USD", "GBP"] {
                let unit = format!("currency{currency}");
                assert!(
                    overrides.iter().any(|o| {
                        o["matcher"]["id"] == "byRegexp"
                            && o["matcher"]["options"]
                                .as_str()
                                .is_some_and(|r| r.contains(currency))
                            && o["properties"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|p| p["id"] == "unit" && p["value"] == unit.as_str())
                    }),
                    "{name} | {title}: no {unit} override"
                );
            }
            // The overrides match the series' names: each carries its currency code.
            for target in panel["targets"].as_array().unwrap() {
                let legend = target["legendFormat"].as_str().unwrap_or("");
                let expr = target["expr"].as_str().unwrap();
                assert!(
                    legend.contains("{{currency}}")
                        || expr.starts_with("label_join(") && expr.ends_with("\"currency\")"),
                    "{name} | {title}: the series names lack the currency"
                );
            }
        }
        if name == "billing-overview.json" {
            assert!(money_panels >= 8, "{name}: {money_panels} money panels");
            let description = d["description"].as_str().unwrap();
            assert!(
                description.contains("plain numbers"),
                "{name}: the currency fallback is documented in the description"
            );
        }
    }
    let shared = tags.iter().skip(1).fold(tags[0].clone(), |a, t| &a & t);
    assert!(!shared.is_empty(), "the dashboards share no tag to link by");
}

/// The Destinations row appears once the `country_code` label exists: it repeats over a hidden
/// variable whose only value is the metric name of the series that carry it.
#[test]
fn the_destinations_row_depends_on_the_country_label() {
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("dashboards/billing-overview.json")).unwrap();
    let d: Value = serde_json::from_str(&text).unwrap();
    let row = panels(&d)
        .into_iter()
        .find(|p| p["type"] == "row" && p["title"].as_str().unwrap().starts_with("Destinations"))
        .expect("a Destinations row");
    let var = row["repeat"].as_str().expect("repeated");
    let variable = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == var)
        .unwrap();
    assert_eq!(variable["hide"], 2, "hidden");
    let definition = variable["definition"].as_str().unwrap();
    assert!(
        definition.contains("country_code!~") && definition.ends_with(", __name__)"),
        "{definition}"
    );
    assert!(text.contains("country_code"), "panels by country");
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
