//! The complete data-metric model against the simulator: budgets, forecasts, optional
//! dimensions, the `max_series` roll-up, and daily costs adding up to the monthly ones.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    Sample, expected_from_bodies, parse, samples_named, scrape, started_demo, stop_demo, window,
};
use infobip_billing_exporter::config::{BudgetConfig, BudgetMatch, Config};
use infobip_billing_exporter::infobip::model::BillingUsageAggregate;
use infobip_billing_exporter::simulator::{Scale, SimulatorOptions};
use rust_decimal::Decimal;

fn budget(name: &str, monthly: &str, currency: &str, matcher: BudgetMatch) -> BudgetConfig {
    BudgetConfig {
        name: name.into(),
        monthly: monthly.parse().unwrap(),
        currency: currency.into(),
        matcher,
    }
}

/// Budgets and both optional dimensions on, as the promtool check asks.
fn budgets_and_dimensions(config: &mut Config) {
    config.metrics.dimensions = vec![
        BillingUsageAggregate::TRAFFIC_TYPE,
        BillingUsageAggregate::COUNTRY_CODE,
    ];
    config.metrics.budgets = vec![
        budget(
            "whatsapp-eur",
            "500",
            "EUR",
            BudgetMatch {
                channel: Some("whatsapp".into()),
                ..Default::default()
            },
        ),
        budget(
            "demo-usd",
            "1000",
            "USD",
            BudgetMatch {
                target: Some("demo".into()),
                ..Default::default()
            },
        ),
    ];
}

/// Sum of `metric` per (currency, label `by`).
fn sums_by(samples: &[Sample], metric: &str, by: &str) -> BTreeMap<(String, String), Decimal> {
    let mut sums = BTreeMap::new();
    for s in samples_named(samples, metric) {
        let period = s.labels[by].get(..7).unwrap_or_default().to_owned();
        *sums
            .entry((s.labels["currency"].clone(), period))
            .or_default() += s.value;
    }
    sums
}

#[tokio::test]
async fn daily_costs_add_up_to_the_month_cost_per_currency() {
    let state = tempfile::tempdir().unwrap();
    // 93 days from 27 November reach back to 27 August: September to November are whole.
    let (demo, shutdown) = started_demo(&state, SimulatorOptions::default(), |c| c.days = 93).await;
    let samples = parse(&scrape(demo.exporter.web_addr).await);
    let days = sums_by(&samples, "infobip_billing_cost", "day");
    let months = sums_by(&samples, "infobip_billing_month_cost", "month");
    assert_eq!(
        months
            .keys()
            .map(|(_, m)| m.as_str())
            .collect::<BTreeSet<_>>(),
        ["2026-09", "2026-10", "2026-11"].into()
    );
    assert!(months.keys().any(|(c, _)| c == "USD") && months.keys().any(|(c, _)| c == "EUR"));
    assert_eq!(days, months, "per (currency, month)");
    stop_demo(demo, shutdown).await;
}

#[tokio::test]
async fn budgets_forecasts_and_dimensions_are_exported() {
    let state = tempfile::tempdir().unwrap();
    let (demo, shutdown) =
        started_demo(&state, SimulatorOptions::default(), budgets_and_dimensions).await;
    let samples = parse(&scrape(demo.exporter.web_addr).await);

    for metric in [
        "infobip_billing_cost",
        "infobip_billing_month_cost",
        "infobip_billing_quantity",
        "infobip_billing_month_forecast_cost",
    ] {
        let series = samples_named(&samples, metric);
        assert!(!series.is_empty(), "{metric}");
        for s in series {
            assert!(
                s.labels.contains_key("traffic_type") && s.labels.contains_key("country_code"),
                "{metric}: {:?}",
                s.labels
            );
        }
    }
    assert!(
        samples_named(&samples, "infobip_billing_quantity")
            .iter()
            .all(|s| !s.labels["unit"].is_empty())
    );

    // The used ratio is the current month's matching cost over the budget.
    let month_cost = samples_named(&samples, "infobip_billing_month_cost");
    let used = |currency: &str, matches: &dyn Fn(&Sample) -> bool| -> Decimal {
        month_cost
            .iter()
            .filter(|s| s.labels["month"] == "2026-11" && s.labels["currency"] == currency)
            .filter(|s| matches(s))
            .map(|s| s.value)
            .sum()
    };
    let ratio = |name: &str| -> f64 {
        let found = samples_named(&samples, "infobip_billing_budget_used_ratio")
            .into_iter()
            .find(|s| s.labels["budget"] == name)
            .unwrap_or_else(|| panic!("ratio of {name}"));
        found.value.try_into().unwrap()
    };
    let whatsapp = used("EUR", &|s| s.labels["channel"] == "whatsapp");
    assert!(
        whatsapp > Decimal::ZERO,
        "the demo has WhatsApp traffic in EUR"
    );
    let expected: f64 = (whatsapp / Decimal::from(500)).try_into().unwrap();
    assert!((ratio("whatsapp-eur") - expected).abs() < 1e-9);
    let usd: f64 = (used("USD", &|_| true) / Decimal::from(1000))
        .try_into()
        .unwrap();
    assert!((ratio("demo-usd") - usd).abs() < 1e-9);

    let budgets = samples_named(&samples, "infobip_billing_budget");
    let labels: Vec<Vec<&str>> = budgets
        .iter()
        .map(|s| s.labels.keys().map(String::as_str).collect())
        .collect();
    assert_eq!(
        labels,
        [
            vec!["budget", "channel", "currency"],
            vec!["budget", "currency", "target"]
        ],
        "in config order, each with its match labels"
    );
    assert_eq!(budgets[0].value, Decimal::from(500));

    // Forecast: the current month only, never below its month-to-date cost.
    let forecast = samples_named(&samples, "infobip_billing_month_forecast_cost");
    let without_status = |s: &Sample| {
        let mut labels = s.labels.clone();
        labels.remove("status");
        labels
    };
    let mtd: BTreeMap<BTreeMap<String, String>, Decimal> = month_cost
        .iter()
        .filter(|s| s.labels["month"] == "2026-11")
        .map(|s| (without_status(s), s.value))
        .collect();
    assert_eq!(forecast.len(), mtd.len());
    for f in &forecast {
        assert!(f.value >= mtd[&f.labels], "{:?}", f.labels);
        assert_eq!(f.value, f.value.round_dp(2));
    }
    assert!(
        forecast.iter().any(|f| f.value > mtd[&f.labels]),
        "some series project higher"
    );

    let finalized = samples_named(&samples, "infobip_billing_month_finalized");
    let flags: BTreeMap<&str, Decimal> = finalized
        .iter()
        .map(|s| (s.labels["month"].as_str(), s.value))
        .collect();
    assert_eq!(flags["2026-10"], Decimal::ONE);
    assert_eq!(flags["2026-11"], Decimal::ZERO);
    let accounts = samples_named(&samples, "infobip_billing_account_info");
    assert_eq!(accounts.len(), demo.simulator.accounts().len());
    stop_demo(demo, shutdown).await;
}

#[tokio::test]
async fn max_series_caps_every_data_metric_and_keeps_currency_totals() {
    let state = tempfile::tempdir().unwrap();
    let options = SimulatorOptions {
        scale: Scale {
            accounts: 12,
            countries: 20,
            ..Scale::default()
        },
        ..SimulatorOptions::default()
    };
    let (demo, shutdown) = started_demo(&state, options, |c| {
        budgets_and_dimensions(c);
        c.days = 3;
        c.metrics.max_series = 50;
    })
    .await;
    let samples = parse(&scrape(demo.exporter.web_addr).await);
    let clock = demo.exporter.shared.clock.clone();
    let deliveries = demo.simulator.deliveries();
    let expected = expected_from_bodies(
        deliveries.iter().map(|d| d.body.as_ref()),
        window(&clock, 3),
    );
    // Far more than 50 series exist before the cap.
    let rows = {
        let mut rows = 0;
        for d in &deliveries {
            let result = d.result().expect("well-formed callback");
            rows += result.response.map_or(0, |r| r.rows.len());
        }
        rows
    };
    assert!(rows > 1000, "{rows} rows");

    for metric in [
        "infobip_billing_cost",
        "infobip_billing_month_cost",
        "infobip_billing_quantity",
        "infobip_billing_month_forecast_cost",
    ] {
        let n = samples_named(&samples, metric).len();
        assert!((1..=50).contains(&n), "{metric}: {n} series");
    }
    let per_currency = |m: &BTreeMap<common::CostKey, Decimal>| {
        let mut t: BTreeMap<String, Decimal> = BTreeMap::new();
        for ((_, _, currency, _), v) in m {
            *t.entry(currency.clone()).or_default() += v;
        }
        t
    };
    let exported_totals = |metric: &str| {
        let mut t: BTreeMap<String, Decimal> = BTreeMap::new();
        for s in samples_named(&samples, metric) {
            *t.entry(s.labels["currency"].clone()).or_default() += s.value;
        }
        t
    };
    assert_eq!(
        exported_totals("infobip_billing_cost"),
        per_currency(&expected.days)
    );
    assert_eq!(
        exported_totals("infobip_billing_month_cost"),
        per_currency(&expected.months)
    );
    let rolled = samples_named(&samples, "infobip_billing_exporter_series_rolled_up_total");
    assert!(
        rolled[0].value > Decimal::ZERO,
        "rolled-up series are counted"
    );
    assert!(
        samples_named(&samples, "infobip_billing_cost")
            .iter()
            .any(|s| s.labels["country_code"] == "other")
    );
    stop_demo(demo, shutdown).await;
}

#[tokio::test]
#[ignore = "needs promtool (Debian package prometheus); .ci/run installs it"]
async fn promtool_finds_a_scrape_with_budgets_and_dimensions_clean() {
    let state = tempfile::tempdir().unwrap();
    let (demo, shutdown) =
        started_demo(&state, SimulatorOptions::default(), budgets_and_dimensions).await;
    let text = scrape(demo.exporter.web_addr).await;
    assert!(text.contains("infobip_billing_budget_used_ratio{"));
    assert!(text.contains("country_code=\""));
    let (status, lint) = common::promtool_check_metrics(&text);
    assert!(
        status.success() && lint.trim().is_empty(),
        "promtool check metrics: {status}\n{lint}"
    );
    stop_demo(demo, shutdown).await;
}

/// prometheus-client ends every HELP with a period itself, so a text that has one reads `..`.
#[tokio::test]
async fn help_lines_are_short_ascii_and_end_in_one_period() {
    let state = tempfile::tempdir().unwrap();
    let (demo, shutdown) =
        started_demo(&state, SimulatorOptions::default(), budgets_and_dimensions).await;
    let text = scrape(demo.exporter.web_addr).await;
    let helps: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
    assert!(helps.len() > 20, "data and self-metrics: {}", helps.len());
    for line in helps {
        assert!(line.is_ascii(), "not ASCII: {line}");
        assert!(line.len() < 160, "{} characters: {line}", line.len());
        assert!(!line.ends_with(".."), "doubled period: {line}");
    }
    stop_demo(demo, shutdown).await;
}
