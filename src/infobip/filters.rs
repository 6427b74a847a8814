//! The `filterBy` of a query apart from its dates, as `query`'s flags and a target's `filters`
//! both say it. One parser per kind of value, so that both refuse a wrong value with the same
//! message.

use std::fmt::Display;

use crate::infobip::model::{
    BillingUsageDataFilter, Category, DateInterval, Direction, Platform, SubCategory,
};

/// Within one list the values are alternatives; different lists narrow the result. Empty lists
/// filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub account_keys: Vec<String>,
    pub categories: Vec<Category>,
    pub sub_categories: Vec<SubCategory>,
    pub countries: Vec<String>,
    pub directions: Vec<Direction>,
    pub traffic_types: Vec<String>,
    pub senders: Vec<String>,
    pub sender_types: Vec<String>,
    pub campaign_references: Vec<String>,
    pub campaign_ids: Vec<i64>,
    pub template_ids: Vec<String>,
    pub platforms: Vec<Platform>,
}

impl UsageFilter {
    /// The wire filter over `date_interval`, each list without repeats (the API wants unique
    /// items).
    pub fn over(&self, date_interval: DateInterval) -> BillingUsageDataFilter {
        BillingUsageDataFilter {
            date_interval,
            account_keys: unique(&self.account_keys),
            categories: unique(&self.categories),
            sub_categories: unique(&self.sub_categories),
            country_codes: unique(&self.countries),
            platforms: unique(&self.platforms),
            directions: unique(&self.directions),
            traffic_types: unique(&self.traffic_types),
            senders: unique(&self.senders),
            sender_types: unique(&self.sender_types),
            campaign_reference_ids: unique(&self.campaign_references),
            campaign_ids: unique(&self.campaign_ids),
            template_ids: unique(&self.template_ids),
        }
    }

    /// The `filterBy` this filter sends, without its dates, as JSON: what tells whether a
    /// stored month was fetched under the same filter. The order of values within a list does
    /// not matter, so they are sorted.
    pub fn identity(&self) -> String {
        let mut wire = self.over(DateInterval::default());
        wire.account_keys.sort();
        wire.categories.sort();
        wire.sub_categories.sort();
        wire.country_codes.sort();
        wire.platforms.sort_by(|a, b| {
            (&a.application_id, &a.entity_id).cmp(&(&b.application_id, &b.entity_id))
        });
        wire.directions.sort();
        wire.traffic_types.sort();
        wire.senders.sort();
        wire.sender_types.sort();
        wire.campaign_reference_ids.sort();
        wire.campaign_ids.sort();
        wire.template_ids.sort();
        let mut json = serde_json::to_value(&wire).unwrap_or_default();
        if let Some(map) = json.as_object_mut() {
            map.remove("dateInterval");
        }
        json.to_string()
    }
}

/// Appends the values not yet present.
pub(crate) fn unique<T: PartialEq + Clone>(values: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

/// One of the schema's codes, in any letter case.
pub fn parse_code<T: Copy + Display>(all: &[T], what: &str, text: &str) -> Result<T, String> {
    let code = text.trim().to_ascii_uppercase();
    all.iter()
        .copied()
        .find(|v| v.to_string() == code)
        .ok_or_else(|| {
            let codes: Vec<String> = all.iter().map(ToString::to_string).collect();
            format!(
                "{text:?} is not a {what} code; expected one of {}",
                codes.join(", ")
            )
        })
}

pub fn parse_category(text: &str) -> Result<Category, String> {
    parse_code(Category::ALL, "category", text)
}

pub fn parse_sub_category(text: &str) -> Result<SubCategory, String> {
    parse_code(SubCategory::ALL, "subcategory", text)
}

pub fn parse_direction(text: &str) -> Result<Direction, String> {
    parse_code(Direction::ALL, "direction", text)
}

pub fn parse_country(text: &str) -> Result<String, String> {
    let code = text.trim().to_ascii_uppercase();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(format!(
            "expected an ISO 3166-1 alpha-2 country code such as DE, got {text:?}"
        ))
    }
}

pub fn parse_platform(text: &str) -> Result<Platform, String> {
    let (app, entity) = text.split_once(':').unwrap_or((text, ""));
    let part = |p: &str| (!p.trim().is_empty()).then(|| p.trim().to_owned());
    let platform = Platform {
        application_id: part(app),
        entity_id: part(entity),
    };
    if platform.application_id.is_none() && platform.entity_id.is_none() {
        return Err(format!("expected app, app:entity or :entity, got {text:?}"));
    }
    Ok(platform)
}

pub fn parse_campaign_id(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("expected a campaign id (a whole number), got {text:?}"))
}

/// A free-text value (account key, traffic type, sender...): anything but blank.
pub fn parse_text(text: &str) -> Result<String, String> {
    let value = text.trim();
    if value.is_empty() {
        Err("empty; expected a value".into())
    } else {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_in_any_case_and_a_message_listing_them() {
        assert_eq!(parse_category("whatsapp"), Ok(Category::WHATSAPP));
        let err = parse_category("WHATSAP").unwrap_err();
        assert!(
            err.starts_with("\"WHATSAP\" is not a category code; expected one of SMS,"),
            "{err}"
        );
    }

    #[test]
    fn the_identity_ignores_order_and_repeats() {
        let a = UsageFilter {
            categories: vec![Category::SMS, Category::WHATSAPP],
            account_keys: vec!["K2".into(), "K1".into(), "K1".into()],
            ..UsageFilter::default()
        };
        let b = UsageFilter {
            categories: vec![Category::WHATSAPP, Category::SMS],
            account_keys: vec!["K1".into(), "K2".into()],
            ..UsageFilter::default()
        };
        assert_eq!(a.identity(), b.identity());
        assert_ne!(a.identity(), UsageFilter::default().identity());
        assert_eq!(UsageFilter::default().identity(), "{}");
    }
}
