//! Raw shapes, exactly as written. Every field is optional so that validation, not serde,
//! reports missing keys, all of them at once. Scalars that need parsing are read as strings for
//! the same reason (serde_norway reads any scalar as a string).

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) targets: Option<Vec<RawTarget>>,
    pub(super) interval: Option<String>,
    pub(super) callback_timeout: Option<String>,
    pub(super) retry_backoff: Option<String>,
    pub(super) callback: Option<RawCallback>,
    pub(super) web: Option<RawWeb>,
    pub(super) state_dir: Option<String>,
    // A string, parsed in validation, so that `days: -1` or `days: many` is a problem with a
    // plain message rather than a serde type error.
    pub(super) days: Option<String>,
    pub(super) dimensions: Option<Vec<String>>,
    pub(super) max_series: Option<String>,
    pub(super) budgets: Option<Vec<RawBudget>>,
    pub(super) otlp: Option<RawOtlp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) name: Option<String>,
    pub(super) base_url: Option<String>,
    pub(super) api_key_env: Option<String>,
    pub(super) api_key_file: Option<String>,
    pub(super) filters: Option<RawFilters>,
}

/// The keys are the `filterBy` fields in snake_case, as `query`'s flags name them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilters {
    pub(super) account_keys: Option<Vec<String>>,
    pub(super) categories: Option<Vec<String>>,
    pub(super) sub_categories: Option<Vec<String>>,
    pub(super) countries: Option<Vec<String>>,
    pub(super) directions: Option<Vec<String>>,
    pub(super) traffic_types: Option<Vec<String>>,
    pub(super) senders: Option<Vec<String>>,
    pub(super) sender_types: Option<Vec<String>>,
    pub(super) campaign_references: Option<Vec<String>>,
    pub(super) campaign_ids: Option<Vec<String>>,
    pub(super) template_ids: Option<Vec<String>>,
    pub(super) platforms: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCallback {
    pub(super) listen: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) max_body: Option<String>,
    pub(super) allowed_cidrs: Option<Vec<String>>,
    pub(super) tls: Option<RawCertFiles>,
    pub(super) header_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) body_timeout: Option<String>,
    pub(super) max_connections: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertFiles {
    pub(super) cert_file: Option<String>,
    pub(super) key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) listen: Option<String>,
    pub(super) config_file: Option<String>,
    pub(super) header_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) body_timeout: Option<String>,
    pub(super) max_connections: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) name: Option<String>,
    pub(super) monthly: Option<String>,
    pub(super) currency: Option<String>,
    #[serde(rename = "match")]
    pub(super) matcher: Option<RawBudgetMatch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudgetMatch {
    pub(super) target: Option<String>,
    pub(super) account: Option<String>,
    pub(super) category: Option<String>,
    pub(super) channel: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOtlp {
    pub(super) endpoint: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) interval: Option<String>,
    pub(super) headers: Option<std::collections::BTreeMap<String, String>>,
    pub(super) headers_file: Option<String>,
}
