//! Monthly budgets as the configuration gives them: the snapshot measures the month-to-date cost
//! of the series each one matches.

use rust_decimal::Decimal;

/// A monthly budget: `monthly` in `currency` for the series its `matcher` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetConfig {
    pub name: String,
    pub monthly: Decimal,
    pub currency: String,
    pub matcher: BudgetMatch,
}

/// Label values a series must have to count towards a budget; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetMatch {
    pub target: Option<String>,
    pub account: Option<String>,
    pub category: Option<String>,
    pub channel: Option<String>,
}

impl BudgetMatch {
    /// The set keys as (label, value), in label order.
    pub fn labels(&self) -> Vec<(&'static str, &str)> {
        [
            ("target", &self.target),
            ("account", &self.account),
            ("category", &self.category),
            ("channel", &self.channel),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}
