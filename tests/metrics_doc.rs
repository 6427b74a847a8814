//! `docs/metrics.md` is the metrics reference: this test fails when it and what a running
//! exporter exposes disagree (a metric added, removed or relabelled without the doc, or the
//! other way round).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::scrape;
use infobip_billing_exporter::config::{BudgetConfig, BudgetMatch};
use infobip_billing_exporter::infobip::model::BillingUsageAggregate;
use infobip_billing_exporter::simulator::SimulatorOptions;

/// A documented metric: its type, required labels, optional labels, and whether the optional
/// dimensions (`traffic_type`, …) may appear as labels.
#[derive(Debug)]
struct Documented {
    kind: String,
    labels: BTreeSet<String>,
    optional: BTreeSet<String>,
    dimensions: bool,
}

/// Rows of the doc's tables: `| `name` | type | labels | meaning | PromQL |`.
fn documented() -> BTreeMap<String, Documented> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md");
    let backticked = |text: &str| -> BTreeSet<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut metrics = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, name, kind, labels, meaning, promql, _] = cells[..] else {
            continue;
        };
        let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) else {
            continue;
        };
        assert!(
            !meaning.is_empty() && promql.contains(name),
            "{name}: meaning and PromQL"
        );
        let (required, optional) = labels.split_once("optional:").unwrap_or((labels, ""));
        let doc = Documented {
            kind: kind.to_owned(),
            labels: backticked(required),
            optional: backticked(optional),
            dimensions: optional.contains("dimensions"),
        };
        assert!(
            metrics.insert(name.to_owned(), doc).is_none(),
            "{name} twice"
        );
    }
    metrics
}

#[tokio::test]
async fn docs_list_exactly_the_exposed_metrics_and_labels() {
    let state = tempfile::tempdir().unwrap();
    // Everything on, so that every data metric has series.
    let (demo, shutdown) = common::started_demo(&state, SimulatorOptions::default(), |c| {
        c.metrics.dimensions = vec![BillingUsageAggregate::TRAFFIC_TYPE];
        c.metrics.budgets = vec![BudgetConfig {
            name: "sms".into(),
            monthly: "100".parse().unwrap(),
            currency: "EUR".into(),
            matcher: BudgetMatch {
                channel: Some("sms".into()),
                ..Default::default()
            },
        }];
    })
    .await;
    let text = scrape(demo.exporter.web_addr).await;
    common::stop_demo(demo, shutdown).await;

    // Families from `# TYPE`, so that metrics without series yet are included too.
    let mut exposed: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            exposed.insert(name.to_owned(), (kind.to_owned(), BTreeSet::new()));
        }
    }
    for sample in common::parse(&text) {
        // Histogram and counter samples carry a suffix their family name may not have.
        let family = ["_bucket", "_sum", "_count", "_total", ""]
            .iter()
            .filter_map(|suffix| sample.name.strip_suffix(suffix))
            .find(|base| exposed.contains_key(*base))
            .unwrap_or_else(|| panic!("sample {} has no # TYPE", sample.name))
            .to_owned();
        let labels = &mut exposed.get_mut(&family).unwrap().1;
        labels.extend(sample.labels.into_keys().filter(|k| k != "le"));
    }
    // Counters are documented by the name PromQL sees: with `_total`.
    let exposed: BTreeMap<String, (String, BTreeSet<String>)> = exposed
        .into_iter()
        .map(|(name, (kind, labels))| match kind.as_str() {
            "counter" if !name.ends_with("_total") => (format!("{name}_total"), (kind, labels)),
            _ => (name, (kind, labels)),
        })
        .collect();

    let documented = documented();
    let doc_names: BTreeSet<String> = documented.keys().cloned().collect();
    let exposed_names: BTreeSet<String> = exposed.keys().cloned().collect();
    assert!(
        doc_names == exposed_names,
        "docs/metrics.md and /metrics disagree\n  only documented: {:?}\n  only exposed: {:?}",
        doc_names.difference(&exposed_names).collect::<Vec<_>>(),
        exposed_names.difference(&doc_names).collect::<Vec<_>>(),
    );
    let dimension_labels: BTreeSet<String> = ["traffic_type".to_owned()].into();
    for (name, (kind, labels)) in &exposed {
        let doc = &documented[name];
        assert_eq!(&doc.kind, kind, "{name}: type");
        if labels.is_empty() {
            // No series yet (a counter nothing incremented): nothing to compare.
            continue;
        }
        let mut allowed: BTreeSet<String> = doc.labels.union(&doc.optional).cloned().collect();
        if doc.dimensions {
            allowed.extend(dimension_labels.iter().cloned());
        }
        assert!(
            labels.is_superset(&doc.labels) && labels.is_subset(&allowed),
            "{name}: exposed labels {labels:?}, documented {:?} (optional {:?})",
            doc.labels,
            doc.optional
        );
    }
}
