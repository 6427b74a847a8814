//! The `budgets` list: an amount per month in one currency, over the series a match selects.

use rust_decimal::Decimal;

use crate::billing::budget::{BudgetConfig, BudgetMatch};

use super::names::unique_name;
use super::problems::Problems;
use super::raw::{RawBudget, RawBudgetMatch};

pub(super) fn validate_budgets(
    raw: Option<Vec<RawBudget>>,
    targets: Option<&[String]>,
    p: &mut Problems,
) -> Option<Vec<BudgetConfig>> {
    let mut budgets = Vec::new();
    let mut ok = true;
    // (name, index of first use), to name the first use in the duplicate message.
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, b) in raw.unwrap_or_default().into_iter().enumerate() {
        let at = |key: &str| format!("budgets[{i}].{key}");
        let name = unique_name(
            b.name,
            (i, "budgets", "it is the budget label"),
            &mut seen,
            p,
        );
        let monthly = match b.monthly {
            None => {
                p.push(
                    at("monthly"),
                    "missing; expected the amount per month in the budget's currency, e.g. 5000 or 1250.50",
                );
                None
            }
            Some(text) => match crate::infobip::model::parse_decimal(text.trim()) {
                Some(amount) if amount > Decimal::ZERO => Some(amount),
                Some(_) => {
                    p.push(
                        at("monthly"),
                        format!("{text:?} is not positive; expected an amount greater than 0"),
                    );
                    None
                }
                None => {
                    p.push(
                        at("monthly"),
                        format!("{text:?} is not an amount; expected a decimal number, e.g. 5000 or 1250.50"),
                    );
                    None
                }
            },
        };
        let currency = match b.currency {
            None => {
                p.push(
                    at("currency"),
                    "missing; expected an ISO 4217 code such as EUR or USD",
                );
                None
            }
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => Some(c),
            Some(c) => {
                p.push(
                    at("currency"),
                    format!("{c:?} is not an ISO 4217 code; expected three upper-case letters such as EUR or USD"),
                );
                None
            }
        };
        let matcher = validate_budget_match(b.matcher.unwrap_or_default(), i, targets, p);
        match (name, monthly, currency, matcher) {
            (Some(name), Some(monthly), Some(currency), Some(matcher)) => {
                budgets.push(BudgetConfig {
                    name,
                    monthly,
                    currency,
                    matcher,
                })
            }
            _ => ok = false,
        }
    }
    ok.then_some(budgets)
}

fn validate_budget_match(
    raw: RawBudgetMatch,
    i: usize,
    targets: Option<&[String]>,
    p: &mut Problems,
) -> Option<BudgetMatch> {
    let mut ok = true;
    let mut check = |key: &str, value: Option<String>, problem: &dyn Fn(&str) -> Option<String>| {
        let value = value?;
        let message = if value.trim().is_empty() {
            Some("empty; expected a label value, or leave the key out to match any".to_owned())
        } else {
            problem(&value)
        };
        match message {
            Some(message) => {
                p.push(format!("budgets[{i}].match.{key}"), message);
                ok = false;
                None
            }
            None => Some(value),
        }
    };
    let target = check("target", raw.target, &|t| {
        let names = targets?;
        (!names.iter().any(|n| n == t)).then(|| {
            format!(
                "{t:?} is not a configured target; expected one of {}",
                names.join(", ")
            )
        })
    });
    let account = check("account", raw.account, &|_| None);
    let category = check("category", raw.category, &|_| None);
    // Channel labels are always lower case (see snapshot::channel_of); anything else never matches.
    let channel = check("channel", raw.channel, &|c| {
        (c != c.to_lowercase()).then(|| {
            format!("{c:?} is not a channel label; expected lower case, e.g. sms or whatsapp")
        })
    });
    ok.then_some(BudgetMatch {
        target,
        account,
        category,
        channel,
    })
}
