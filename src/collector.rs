//! Encodes the current ledger snapshot as Prometheus text (0.0.4) or OpenMetrics. Nothing here
//! calls Infobip: a scrape only reads the immutable snapshot that the last result produced.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tokio::sync::watch;

use crate::ledger::{BudgetSeries, CostSeries, Snapshot};

pub const PREFIX: &str = "infobip_billing";

const COST_HELP: &str = "Cost of one UTC day as billed by Infobip (TOTAL_PER_UNIT summed), in the \
unit of the currency label; never add series of different currencies. Cached from the last \
Billing Usage API result (see infobip_billing_exporter_last_success_timestamp_seconds); \
status=provisional figures may still change until the month is final.";

const MONTH_COST_HELP: &str = "Month-to-date cost per calendar month in retention, as billed by \
Infobip, in the unit of the currency label; never add series of different currencies. Cached \
from the last Billing Usage API result; status=final once Infobip reports volumeFinalized.";

const QUANTITY_HELP: &str = "Billed units of one UTC day (QUANTITY summed), counted in the unit \
label's unit; series of different units do not add up. Cached from the last Billing Usage API \
result; status=provisional figures may still change until the month is final.";

const FORECAST_HELP: &str = "Projected month-end cost of the current month: the average cost of \
its complete UTC days (today excluded) times the days in the month, rounded to cents and never \
below the month-to-date cost. In the unit of the currency label; never add series of different \
currencies. Computed from cached Billing Usage API results.";

const BUDGET_HELP: &str = "Monthly budget amount from the configuration, in the unit of the \
currency label, labelled with what the budget matches (target, account, category, channel).";

const BUDGET_USED_HELP: &str = "Month-to-date cost of the series a budget matches, in the \
budget's currency only, divided by its monthly amount (1 = fully used). Computed from cached \
Billing Usage API results; currencies are never converted or mixed.";

const FINALIZED_HELP: &str = "1 once Infobip reported volumeFinalized for the month (its figures \
are final), 0 before. Cached from the last Billing Usage API result.";

const ACCOUNT_INFO_HELP: &str = "Joins an account name to its stable ACCOUNT_KEY; the value is \
always 1. Cached from the last Billing Usage API result.";

/// Every data metric: (full name, HELP), in exposition order. OTLP registers one instrument each.
pub fn data_metrics() -> Vec<(String, &'static str)> {
    [
        ("cost", COST_HELP),
        ("month_cost", MONTH_COST_HELP),
        ("quantity", QUANTITY_HELP),
        ("month_forecast_cost", FORECAST_HELP),
        ("budget", BUDGET_HELP),
        ("budget_used_ratio", BUDGET_USED_HELP),
        ("month_finalized", FINALIZED_HELP),
        ("account_info", ACCOUNT_INFO_HELP),
    ]
    .into_iter()
    .map(|(name, help)| (format!("{PREFIX}_{name}"), help))
    .collect()
}

/// One metric family as both /metrics and OTLP export it.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Full name, e.g. `infobip_billing_cost`.
    pub name: String,
    pub help: &'static str,
    pub points: Vec<Point>,
}

/// One series of a family: label pairs and the value, converted from `Decimal` only here.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Every data metric of a snapshot, in exposition order. Families without series are left out.
pub fn families(snapshot: &Snapshot) -> Vec<Family> {
    let dims = &snapshot.dimension_labels;
    let mut out = vec![
        costs("cost", COST_HELP, "day", &snapshot.days, dims),
        costs(
            "month_cost",
            MONTH_COST_HELP,
            "month",
            &snapshot.months,
            dims,
        ),
        costs("quantity", QUANTITY_HELP, "day", &snapshot.quantities, dims),
        costs(
            "month_forecast_cost",
            FORECAST_HELP,
            "month",
            &snapshot.forecasts,
            dims,
        ),
    ];
    let budget_labels = |b: &BudgetSeries| {
        let mut labels = vec![label("budget", &b.name), label("currency", &b.currency)];
        labels.extend(b.matcher.iter().map(|(k, v)| label(k, v)));
        labels
    };
    out.push(family(
        "budget",
        BUDGET_HELP,
        snapshot.budgets.iter().map(|b| Point {
            labels: budget_labels(b),
            value: to_f64(b.monthly),
        }),
    ));
    out.push(family(
        "budget_used_ratio",
        BUDGET_USED_HELP,
        snapshot.budgets.iter().map(|b| Point {
            labels: vec![label("budget", &b.name), label("currency", &b.currency)],
            value: to_f64(b.used_ratio()),
        }),
    ));
    out.push(family(
        "month_finalized",
        FINALIZED_HELP,
        snapshot
            .finalized
            .iter()
            .map(|(target, month, done)| Point {
                labels: vec![label("target", target), label("month", &month.to_string())],
                value: if *done { 1.0 } else { 0.0 },
            }),
    ));
    out.push(family(
        "account_info",
        ACCOUNT_INFO_HELP,
        snapshot
            .accounts
            .iter()
            .map(|(target, account, key)| Point {
                labels: vec![
                    label("target", target),
                    label("account", account),
                    label("account_key", key),
                ],
                value: 1.0,
            }),
    ));
    out.retain(|f| !f.points.is_empty());
    out
}

fn label(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn to_f64(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

fn family(name: &str, help: &'static str, points: impl Iterator<Item = Point>) -> Family {
    Family {
        name: format!("{PREFIX}_{name}"),
        help,
        points: points.collect(),
    }
}

fn costs(
    name: &str,
    help: &'static str,
    period_label: &str,
    series: &[CostSeries],
    dimension_labels: &[String],
) -> Family {
    family(
        name,
        help,
        series.iter().map(|s| {
            let mut labels = vec![
                label("target", &s.target),
                label("account", &s.account),
                label("category", &s.category),
                label("channel", &s.channel),
                label("currency", &s.currency),
            ];
            if let Some(unit) = &s.unit {
                labels.push(label("unit", unit));
            }
            labels.extend(
                dimension_labels
                    .iter()
                    .zip(&s.dimensions)
                    .map(|(k, v)| label(k, v)),
            );
            labels.push(label(period_label, &s.period));
            if let Some(status) = s.status {
                labels.push(label("status", status.as_str()));
            }
            Point {
                labels,
                value: to_f64(s.value),
            }
        }),
    )
}

/// Reads the latest snapshot at scrape time.
#[derive(Debug)]
pub struct SnapshotCollector {
    snapshot: watch::Receiver<Arc<Snapshot>>,
}

impl SnapshotCollector {
    pub fn new(snapshot: watch::Receiver<Arc<Snapshot>>) -> Self {
        Self { snapshot }
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = Arc::clone(&self.snapshot.borrow());
        for f in families(&snapshot) {
            let mut metric = encoder.encode_descriptor(&f.name, f.help, None, MetricType::Gauge)?;
            for point in &f.points {
                let labels: Vec<(&str, &str)> = point
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                ConstGauge::new(point.value).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The exposition formats a scrape can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: what `promtool check metrics` reads and the default.
    Text,
    OpenMetrics,
}

impl Format {
    /// Picks OpenMetrics only when the scraper asks for it.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

pub fn render(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(64 * 1024);
    match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?,
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry)?,
    }
    Ok(out)
}
