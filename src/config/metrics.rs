//! Data-metric options: extra dimensions, the series cap, budgets and OTLP push.

use crate::billing::budget::BudgetConfig;
use crate::infobip::model::BillingUsageAggregate;

use super::budgets::validate_budgets;
use super::otlp::{OtlpConfig, validate_otlp};
use super::problems::Problems;
use super::raw::{RawBudget, RawOtlp};
use super::targets::TargetConfig;

/// What the data metrics look like and where else they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Extra Billing Usage API dimensions, in config order; each becomes a snake_case label.
    pub dimensions: Vec<BillingUsageAggregate>,
    /// Most series one data metric may have before the smallest are rolled up into `other`.
    pub max_series: usize,
    pub budgets: Vec<BudgetConfig>,
    pub otlp: Option<OtlpConfig>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            dimensions: Vec::new(),
            max_series: DEFAULT_MAX_SERIES,
            budgets: Vec::new(),
            otlp: None,
        }
    }
}

/// `max_series` when the config does not set it: far above a normal account, low enough that a
/// breakdown by country and traffic type cannot flood Prometheus.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
const MAX_SERIES_RANGE: (usize, usize) = (10, 1_000_000);

/// Always queried: they are the base labels, not optional dimensions.
const BUILT_IN_DIMENSIONS: [BillingUsageAggregate; 5] = [
    BillingUsageAggregate::DAY,
    BillingUsageAggregate::MONTH,
    BillingUsageAggregate::ACCOUNT_NAME,
    BillingUsageAggregate::ACCOUNT_KEY,
    BillingUsageAggregate::CATEGORY_CODE,
];

/// The optional-dimension list the config may name, for messages.
fn optional_dimensions() -> String {
    BillingUsageAggregate::ALL
        .iter()
        .filter(|d| !BUILT_IN_DIMENSIONS.contains(d))
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

type RawMetrics = (
    Option<Vec<String>>,
    Option<String>,
    Option<Vec<RawBudget>>,
    Option<RawOtlp>,
);

/// `targets` is `None` when the targets themselves are invalid: budget targets are not checked.
pub(super) fn validate_metrics(
    (dimensions, max_series, budgets, otlp): RawMetrics,
    targets: Option<&[TargetConfig]>,
    p: &mut Problems,
) -> Option<MetricsConfig> {
    let names: Option<Vec<String>> = targets.map(|t| t.iter().map(|t| t.name.clone()).collect());
    let dimensions = validate_dimensions(dimensions, p);
    let max_series = validate_max_series(max_series.as_deref(), p);
    let budgets = validate_budgets(budgets, names.as_deref(), p);
    let otlp = validate_otlp(otlp, p);
    Some(MetricsConfig {
        dimensions: dimensions?,
        max_series: max_series?,
        budgets: budgets?,
        otlp: otlp?,
    })
}

fn validate_dimensions(
    raw: Option<Vec<String>>,
    p: &mut Problems,
) -> Option<Vec<BillingUsageAggregate>> {
    let mut dims = Vec::new();
    let mut ok = true;
    for (i, text) in raw.unwrap_or_default().iter().enumerate() {
        let at = format!("dimensions[{i}]");
        match text.trim().parse::<BillingUsageAggregate>() {
            Err(_) => p.push(
                at,
                format!(
                    "{text:?} is not a Billing Usage API dimension; expected one of {}",
                    optional_dimensions()
                ),
            ),
            Ok(d) if BUILT_IN_DIMENSIONS.contains(&d) => p.push(
                at,
                format!(
                    "{text:?} is always queried; expected one of {}",
                    optional_dimensions()
                ),
            ),
            Ok(d) if dims.contains(&d) => p.push(
                at,
                format!("{text:?} is listed twice; expected each dimension once"),
            ),
            Ok(d) => {
                dims.push(d);
                continue;
            }
        }
        ok = false;
    }
    ok.then_some(dims)
}

fn validate_max_series(raw: Option<&str>, p: &mut Problems) -> Option<usize> {
    let Some(raw) = raw else {
        return Some(DEFAULT_MAX_SERIES);
    };
    let (min, max) = MAX_SERIES_RANGE;
    match raw.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        Ok(n) => {
            p.push(
                "max_series",
                format!("{n} is out of range; expected {min} to {max}"),
            );
            None
        }
        Err(_) => {
            p.push(
                "max_series",
                format!("{raw:?} is not a whole number; expected {min} to {max}"),
            );
            None
        }
    }
}
