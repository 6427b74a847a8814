//! The `targets` list: each Infobip account, its base URL and where its API key comes from.

use std::path::PathBuf;

use super::filters::validate_filters;
use super::names::unique_name;
use super::problems::Problems;
use super::raw::RawTarget;
use super::secrets::ApiKeySource;
use super::url::validate_base_url;
use crate::infobip::filters::UsageFilter;

/// One Infobip account to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub name: String,
    /// Normalized: lower-case scheme and host, no trailing '/', e.g. `https://xxxxx.api.infobip.com`.
    pub base_url: String,
    pub api_key: ApiKeySource,
    /// What every query of the target asks for; part of what its stored months were fetched
    /// under, so a change asks for them all again.
    pub filter: UsageFilter,
}

pub(super) fn validate_targets(
    raw: Option<Vec<RawTarget>>,
    p: &mut Problems,
) -> Option<Vec<TargetConfig>> {
    let Some(raw) = raw else {
        p.push("targets", "missing; expected a list of at least one target");
        return None;
    };
    if raw.is_empty() {
        p.push("targets", "empty; expected at least one target");
        return None;
    }
    let mut targets = Vec::with_capacity(raw.len());
    let mut all_ok = true;
    // (name, index of first use), to name the first use in the duplicate message.
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let at = |key: &str| format!("targets[{i}].{key}");

        let name = unique_name(
            t.name,
            (i, "targets", "it is used in URL paths and metric labels"),
            &mut seen,
            p,
        );

        let base_url = match t.base_url {
            None => {
                p.push(
                    at("base_url"),
                    "missing; expected your Infobip API base URL, e.g. https://xxxxx.api.infobip.com",
                );
                None
            }
            Some(url) => validate_base_url(&at("base_url"), &url, p),
        };

        let api_key = match (t.api_key_env, t.api_key_file) {
            (Some(_), Some(_)) => {
                p.push(
                    format!("targets[{i}]"),
                    "both api_key_env and api_key_file are set; expected exactly one",
                );
                None
            }
            (None, None) => {
                p.push(
                    format!("targets[{i}]"),
                    "neither api_key_env nor api_key_file is set; expected exactly one",
                );
                None
            }
            (Some(var), None) => {
                if valid_env_name(&var) {
                    Some(ApiKeySource::Env(var))
                } else {
                    // The value is not echoed: people paste the key itself here.
                    p.push(
                        at("api_key_env"),
                        "not a valid environment variable name; expected the NAME of the variable holding the key (letters, digits and '_', not starting with a digit), not the key itself",
                    );
                    None
                }
            }
            (None, Some(file)) => {
                if file.trim().is_empty() {
                    p.push(
                        at("api_key_file"),
                        "empty; expected the path of a file containing the API key",
                    );
                    None
                } else {
                    Some(ApiKeySource::File(PathBuf::from(file)))
                }
            }
        };

        let filter = validate_filters(t.filters, &format!("targets[{i}]"), p);

        match (name, base_url, api_key, filter) {
            (Some(name), Some(base_url), Some(api_key), Some(filter)) => {
                targets.push(TargetConfig {
                    name,
                    base_url,
                    api_key,
                    filter,
                })
            }
            _ => all_ok = false,
        }
    }
    all_ok.then_some(targets)
}

fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
