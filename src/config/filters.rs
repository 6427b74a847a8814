//! A target's `filters`: the Billing Usage API's `filterBy`, one key per field in snake_case,
//! each value checked by the parser `query`'s flag uses, with the same message.

use super::problems::Problems;
use super::raw::RawFilters;
use crate::infobip::filters::{self, UsageFilter};

pub(super) fn validate_filters(
    raw: Option<RawFilters>,
    at: &str,
    p: &mut Problems,
) -> Option<UsageFilter> {
    let Some(raw) = raw else {
        return Some(UsageFilter::default());
    };
    let mut list = List {
        at: format!("{at}.filters"),
        problems: p,
        ok: true,
    };
    let filter = UsageFilter {
        account_keys: list.each("account_keys", raw.account_keys, filters::parse_text),
        categories: list.each("categories", raw.categories, filters::parse_category),
        sub_categories: list.each(
            "sub_categories",
            raw.sub_categories,
            filters::parse_sub_category,
        ),
        countries: list.each("countries", raw.countries, filters::parse_country),
        directions: list.each("directions", raw.directions, filters::parse_direction),
        traffic_types: list.each("traffic_types", raw.traffic_types, filters::parse_text),
        senders: list.each("senders", raw.senders, filters::parse_text),
        sender_types: list.each("sender_types", raw.sender_types, filters::parse_text),
        campaign_references: list.each(
            "campaign_references",
            raw.campaign_references,
            filters::parse_text,
        ),
        campaign_ids: list.each("campaign_ids", raw.campaign_ids, filters::parse_campaign_id),
        template_ids: list.each("template_ids", raw.template_ids, filters::parse_text),
        platforms: list.each("platforms", raw.platforms, filters::parse_platform),
    };
    list.ok.then_some(filter)
}

/// Parses the lists of one `filters` mapping, reporting each wrong value at its path.
struct List<'a> {
    at: String,
    problems: &'a mut Problems,
    ok: bool,
}

impl List<'_> {
    fn each<T>(
        &mut self,
        key: &str,
        values: Option<Vec<String>>,
        parse: fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let mut parsed = Vec::new();
        for (i, text) in values.unwrap_or_default().iter().enumerate() {
            match parse(text) {
                Ok(value) => parsed.push(value),
                Err(problem) => {
                    self.problems
                        .push(format!("{}.{key}[{i}]", self.at), problem);
                    self.ok = false;
                }
            }
        }
        parsed
    }
}
