//! The YAML configuration: strict, validated in one place, with messages that say what to fix.
//!
//! Unknown keys are rejected everywhere, so a typo fails loudly instead of silently falling back
//! to a default. `infobip-billing-exporter check-config --config FILE` prints every problem at
//! once, each as `key.path: what is wrong; what is expected`.
//!
//! ```yaml
//! # One entry per Infobip account (or API region) to export. Required, at least one.
//! targets:
//!   # Unique; 1-63 characters from a-z, 0-9, '_' and '-'. It is the `target` label of every
//!   # series and part of the callback URL path.
//!   - name: eu
//!     # Your account's API base URL, as shown in the Infobip web interface. Without a scheme,
//!     # https:// is assumed; a trailing '/' is ignored. Infobip requires HTTPS: http:// is
//!     # accepted only for loopback hosts (127.0.0.0/8, ::1, localhost), e.g. the simulator.
//!     base_url: https://xxxxx.api.infobip.com
//!     # Where the API key comes from: exactly one of
//!     #   api_key_env:  the name of an environment variable holding the key, or
//!     #   api_key_file: a file holding the key (surrounding whitespace and newlines are ignored).
//!     # The key itself never goes in this file.
//!     api_key_env: INFOBIP_API_KEY
//!   - name: us
//!     base_url: yyyyy.api.infobip.com
//!     api_key_file: /run/secrets/infobip-us
//! # How often the current month is re-queried. Default 1h; at least 1m, at most 1d.
//! # Humantime syntax: 30m, 1h, 1h 30m.
//! interval: 1h
//! # How long a query may wait for its callback before it is sent again. Default 30m; 1s to 1d.
//! callback_timeout: 30m
//! # First wait before a failed query (FAILED result, 5xx, network error, timeout) is sent
//! # again; it doubles with each failure, with jitter, up to `interval`. Default 15s.
//! retry_backoff: 15s
//! # Infobip delivers query results by POSTing them to a URL you give it.
//! callback:
//!   # Address of the callback listener. Required. It is separate from `web.listen` so that only
//!   # the callback endpoint needs to be reachable from the Internet.
//!   listen: 0.0.0.0:9478
//!   # The public http(s) URL at which Infobip reaches that listener (through your reverse proxy
//!   # or load balancer). Required. A path prefix is allowed; no query or fragment. The exporter
//!   # appends /callback/<target>/<token> to it.
//!   public_url: https://billing-exporter.example.com
//!   # Largest callback body accepted (bytes, or with KiB/MiB/GiB). Default 256MiB: a large
//!   # customer's breakdown by country and traffic type runs to hundreds of MiB.
//!   max_body: 256MiB
//!   # Optional: only these source networks may post callbacks (e.g. your ingress). Default: any.
//!   allowed_cidrs: [10.0.0.0/8, 192.0.2.0/24]
//! web:
//!   # Address of /metrics, /-/healthy and /-/ready. Default 127.0.0.1:9477.
//!   listen: 127.0.0.1:9477
//! # Directory where the exporter keeps its state across restarts. Required.
//! state_dir: /var/lib/infobip-billing-exporter
//! # How many UTC days, up to today, `infobip_billing_cost` exports per day. Default 35; 1 to 93
//! # (Infobip keeps the current month and the two before it, so at most 93 days exist).
//! days: 35
//! # Extra Billing Usage API dimensions to break costs down by. Each becomes a snake_case label
//! # (TRAFFIC_TYPE -> traffic_type) on infobip_billing_cost, _month_cost, _quantity and
//! # _month_forecast_cost. Default none. Any dimension except DAY, MONTH, ACCOUNT_NAME,
//! # ACCOUNT_KEY and CATEGORY_CODE, which are always queried.
//! dimensions: [TRAFFIC_TYPE, COUNTRY_CODE]
//! # Most series one data metric may have. Beyond it the smallest series are rolled up into the
//! # label value "other" (docs/metrics.md); totals per currency stay exact. Default 10000;
//! # 10 to 1000000.
//! max_series: 10000
//! # Monthly budgets, exported as infobip_billing_budget and infobip_billing_budget_used_ratio
//! # (month-to-date cost of the matching series over `monthly`) so alert rules stay generic.
//! budgets:
//!   # Unique; 1-63 characters from a-z, 0-9, '_' and '-'. It is the `budget` label.
//!   - name: whatsapp-eu
//!     # The amount per calendar month, in `currency`; greater than 0.
//!     monthly: 5000
//!     # ISO 4217. Only costs billed in this currency count: currencies are never converted.
//!     currency: EUR
//!     # Optional: the series that count, by any of target, account, category (the Infobip code,
//!     # e.g. SMS_OPERATOR_FEE) and channel (lower case, e.g. sms). Default: every series.
//!     match: { target: eu, channel: whatsapp }
//!   - name: all-usd
//!     monthly: 1250.50
//!     currency: USD
//! # Optional: also push the data metrics over OTLP, with the names and labels of /metrics.
//! otlp:
//!   # The collector's URL. For http/protobuf, /v1/metrics is appended when the URL has no path.
//!   endpoint: http://otel-collector:4317
//!   # grpc (default) or http/protobuf. https:// is verified against the system's CA
//!   # certificates; SSL_CERT_FILE in the environment names another PEM bundle.
//!   protocol: grpc
//!   # How often to push. Default 60s; 1s to 1d.
//!   interval: 60s
//!   # Optional headers sent with every push, e.g. for authentication.
//!   headers:
//!     x-scope-orgid: finops
//! ```
//!
//! Parsing happens in two steps: serde reads the file into raw structs whose fields are all
//! optional (so a missing key is reported together with every other problem, not alone), then
//! [`Config::from_yaml`] validates them, applies defaults and normalizes URLs. API keys are not
//! read during validation: [`ApiKeySource::resolve`] does that when the exporter needs them, and
//! [`Config::missing_secrets`] lets `check-config` report unresolvable keys.

use std::fmt;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

pub use crate::billing::budget::{BudgetConfig, BudgetMatch};
pub use crate::infobip::key::ApiKey;
use crate::infobip::model::BillingUsageAggregate;

/// `interval` when the config does not set it.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Shortest `interval`: results arrive asynchronously, faster polling only adds load.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Longest `interval`: beyond a day the current day's costs would be stale for most of it.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// `web.listen` when the config does not set it: loopback, so /metrics is not exposed by accident.
pub const DEFAULT_WEB_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9477));
/// `days` when the config does not set it: covers the previous month whole plus a few days.
pub const DEFAULT_DAYS: u32 = 35;
pub const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(15);
pub const DEFAULT_MAX_BODY: u64 = 256 * 1024 * 1024;
const MIN_MAX_BODY: u64 = 1024;
/// Largest `days`: Infobip retains the current month and the two before it, at most 93 days.
pub const MAX_DAYS: u32 = 93;
/// Longest target name: it becomes a label value and a URL path segment, keep it short.
const MAX_NAME_LEN: usize = 63;
/// Config files are small; the cap keeps a wrong path (a device, a huge log) from eating memory.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// An API key is a few dozen bytes; the cap makes a wrong path fail fast.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The validated configuration. Build it with [`Config::load`] or [`Config::from_yaml`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub targets: Vec<TargetConfig>,
    pub interval: Duration,
    /// How long a query waits for its callback before it is sent again.
    pub callback_timeout: Duration,
    /// First wait before a failed query is sent again; doubles up to `interval`.
    pub retry_backoff: Duration,
    pub callback: CallbackConfig,
    pub web: WebConfig,
    pub state_dir: PathBuf,
    /// Daily window of `infobip_billing_cost`, in UTC days.
    pub days: u32,
    /// Optional dimensions, the series cap, budgets and OTLP push.
    pub metrics: MetricsConfig,
}

/// One Infobip account to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub name: String,
    /// Normalized: lower-case scheme and host, no trailing '/', e.g. `https://xxxxx.api.infobip.com`.
    pub base_url: String,
    pub api_key: ApiKeySource,
}

/// Where a target's API key is read from. It is resolved only when needed, never stored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeySource {
    /// The name of an environment variable.
    Env(String),
    /// A file whose content, trimmed, is the key.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackConfig {
    pub listen: SocketAddr,
    /// Normalized: no trailing '/'. Append `/callback/<target>/<token>`.
    pub public_url: String,
    /// Largest callback body accepted, in bytes.
    pub max_body: u64,
    /// Source networks allowed to post callbacks; empty allows any.
    pub allowed_cidrs: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub listen: SocketAddr,
}

/// One semantic problem in a config: where it is and what is expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `targets[1].base_url`.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The reason is part of the message because `check-config` prints messages, not chains.
    #[error(
        "cannot read config file {}: {source}; check the path given with --config (or INFOBIP_EXPORTER_CONFIG) and that the file is readable",
        path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML, or YAML of the wrong shape (unknown key, list instead of a mapping, ...).
    #[error("invalid configuration: {message}")]
    Syntax { message: String },
    /// Well-formed YAML whose values are wrong; all problems, in file order.
    #[error("invalid configuration: {}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConfigError {
    /// One line per problem, for `check-config` to print.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Syntax { message } => vec![message.clone()],
            ConfigError::Invalid(problems) => problems.iter().map(Problem::to_string).collect(),
        }
    }
}

/// Why an API key could not be read. No variant carries the key or any part of it.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {var} is not set; export it with the Infobip API key")]
    EnvMissing { var: String },
    #[error("environment variable {var} is empty; set it to the Infobip API key")]
    EnvEmpty { var: String },
    #[error("environment variable {var} is not valid UTF-8; set it to the Infobip API key")]
    EnvNotUnicode { var: String },
    #[error(
        "cannot read API key file {}: {source}; check the path and that the exporter's user may read it",
        path.display()
    )]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("API key file {} is empty; write the Infobip API key into it", path.display())]
    FileEmpty { path: PathBuf },
    /// Caught here because an HTTP header cannot carry it and the client's error would be obscure.
    #[error(
        "the API key from {origin} contains spaces, line breaks or non-ASCII characters; it must be the key alone, on one line"
    )]
    Malformed { origin: String },
}

impl ApiKeySource {
    /// Reads the key from the process environment or the file.
    pub fn resolve(&self) -> Result<ApiKey, SecretError> {
        if let ApiKeySource::Env(var) = self {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(var) {
                return Err(SecretError::EnvNotUnicode { var: var.clone() });
            }
        }
        self.resolve_with(|var| std::env::var(var).ok())
    }

    /// Like [`ApiKeySource::resolve`], with the environment injected (tests, or a snapshot).
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiKey, SecretError> {
        let key = match self {
            ApiKeySource::Env(var) => {
                let value = env(var).ok_or_else(|| SecretError::EnvMissing { var: var.clone() })?;
                let key = value.trim();
                if key.is_empty() {
                    return Err(SecretError::EnvEmpty { var: var.clone() });
                }
                key.to_owned()
            }
            ApiKeySource::File(path) => {
                let content = read_capped(path, MAX_KEY_FILE_BYTES).map_err(|source| {
                    SecretError::FileUnreadable {
                        path: path.clone(),
                        source,
                    }
                })?;
                // Editors and `echo` add a final newline; it is never part of the key.
                let key = content.trim();
                if key.is_empty() {
                    return Err(SecretError::FileEmpty { path: path.clone() });
                }
                key.to_owned()
            }
        };
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretError::Malformed {
                origin: self.describe(),
            });
        }
        Ok(ApiKey::new(key))
    }

    /// Where the key comes from, for logs and messages: `env INFOBIP_API_KEY` or `file /x`.
    pub fn describe(&self) -> String {
        match self {
            ApiKeySource::Env(var) => format!("env {var}"),
            ApiKeySource::File(path) => format!("file {}", path.display()),
        }
    }

    /// The config key this source came from, for problem paths.
    fn key_name(&self) -> &'static str {
        match self {
            ApiKeySource::Env(_) => "api_key_env",
            ApiKeySource::File(_) => "api_key_file",
        }
    }
}

/// Reads a UTF-8 file of at most `limit` bytes.
fn read_capped(path: &Path, limit: u64) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut content = String::new();
    file.take(limit + 1).read_to_string(&mut content)?;
    if content.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("file is larger than {limit} bytes"),
        ));
    }
    Ok(content)
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_capped(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_yaml(&text)
    }

    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        // `Option` so that an empty file reports every missing key rather than "EOF".
        let raw: Option<RawConfig> =
            serde_norway::from_str(text).map_err(|e| ConfigError::Syntax {
                message: syntax_message(&e),
            })?;
        raw.unwrap_or_default()
            .validate()
            .map_err(ConfigError::Invalid)
    }

    /// Targets whose API key cannot be resolved now, one problem each.
    pub fn missing_secrets(&self) -> Vec<Problem> {
        self.missing_secrets_inner(ApiKeySource::resolve)
    }

    /// Like [`Config::missing_secrets`], with the environment injected.
    pub fn missing_secrets_with(&self, env: impl Fn(&str) -> Option<String>) -> Vec<Problem> {
        self.missing_secrets_inner(|source| source.resolve_with(&env))
    }

    fn missing_secrets_inner(
        &self,
        resolve: impl Fn(&ApiKeySource) -> Result<ApiKey, SecretError>,
    ) -> Vec<Problem> {
        self.targets
            .iter()
            .enumerate()
            .filter_map(|(i, target)| {
                let err = resolve(&target.api_key).err()?;
                Some(Problem::new(
                    format!("targets[{i}].{}", target.api_key.key_name()),
                    err.to_string(),
                ))
            })
            .collect()
    }
}

/// serde_norway's message already carries the key path; make sure it also carries the position
/// (it omits "line 1 column 1", which is where root-level errors point).
fn syntax_message(e: &serde_norway::Error) -> String {
    let mut message = e.to_string();
    if let Some(loc) = e.location() {
        let at = format!("line {} column {}", loc.line(), loc.column());
        if !message.contains(&at) {
            message.push_str(" at ");
            message.push_str(&at);
        }
    }
    message
}

// Raw shapes, exactly as written. Every field is optional so that validation, not serde,
// reports missing keys, all of them at once. Scalars that need parsing are read as strings for
// the same reason (serde_norway reads any scalar as a string).

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    targets: Option<Vec<RawTarget>>,
    interval: Option<String>,
    callback_timeout: Option<String>,
    retry_backoff: Option<String>,
    callback: Option<RawCallback>,
    web: Option<RawWeb>,
    state_dir: Option<String>,
    // A string, parsed in validation, so that `days: -1` or `days: many` is a problem with a
    // plain message rather than a serde type error.
    days: Option<String>,
    dimensions: Option<Vec<String>>,
    max_series: Option<String>,
    budgets: Option<Vec<RawBudget>>,
    otlp: Option<RawOtlp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    api_key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallback {
    listen: Option<String>,
    public_url: Option<String>,
    max_body: Option<String>,
    allowed_cidrs: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Option<String>,
}

/// Collects problems; each check returns `None` on failure so validation goes on.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, Vec<Problem>> {
        let mut p = Problems::default();

        let targets = validate_targets(self.targets, &mut p);
        let interval = validate_interval(self.interval.as_deref(), &mut p);
        let callback_timeout = validate_duration(
            "callback_timeout",
            self.callback_timeout.as_deref(),
            DEFAULT_CALLBACK_TIMEOUT,
            (Duration::from_secs(1), MAX_INTERVAL, "1s to 1d, e.g. 30m"),
            &mut p,
        );
        let retry_backoff = validate_duration(
            "retry_backoff",
            self.retry_backoff.as_deref(),
            DEFAULT_RETRY_BACKOFF,
            (
                Duration::from_millis(100),
                Duration::from_secs(3600),
                "100ms to 1h, e.g. 15s",
            ),
            &mut p,
        );

        let (callback_listen, public_url, max_body, allowed_cidrs) = match self.callback {
            None => {
                p.push(
                    "callback",
                    "missing; expected a mapping with listen and public_url",
                );
                (None, None, None, None)
            }
            Some(cb) => {
                let listen = match cb.listen {
                    None => {
                        p.push(
                            "callback.listen",
                            "missing; expected IP:PORT, e.g. 0.0.0.0:9478",
                        );
                        None
                    }
                    Some(s) => parse_listen("callback.listen", &s, "0.0.0.0:9478", &mut p),
                };
                let public_url = match cb.public_url {
                    None => {
                        p.push(
                            "callback.public_url",
                            "missing; expected the http(s) URL at which Infobip reaches callback.listen, e.g. https://billing-exporter.example.com",
                        );
                        None
                    }
                    Some(s) => validate_public_url(&s, &mut p),
                };
                let max_body = match cb.max_body {
                    None => Some(DEFAULT_MAX_BODY),
                    Some(s) => validate_size("callback.max_body", &s, &mut p),
                };
                let cidrs = validate_cidrs(cb.allowed_cidrs.unwrap_or_default(), &mut p);
                (listen, public_url, max_body, cidrs)
            }
        };

        let web_listen = match self.web.and_then(|w| w.listen) {
            None => Some(DEFAULT_WEB_LISTEN),
            Some(s) => parse_listen("web.listen", &s, "127.0.0.1:9477", &mut p),
        };
        if let (Some(cb), Some(web)) = (callback_listen, web_listen) {
            if listeners_collide(cb, web) {
                p.push(
                    "web.listen",
                    format!(
                        "{web} collides with callback.listen {cb}; expected a different port (the two listeners are separate sockets)"
                    ),
                );
            }
        }

        let state_dir = match self.state_dir {
            None => {
                p.push(
                    "state_dir",
                    "missing; expected a directory for the exporter's state, e.g. /var/lib/infobip-billing-exporter",
                );
                None
            }
            Some(s) if s.trim().is_empty() => {
                p.push(
                    "state_dir",
                    "empty; expected a directory for the exporter's state, e.g. /var/lib/infobip-billing-exporter",
                );
                None
            }
            Some(s) => Some(PathBuf::from(s)),
        };

        let days = match self.days {
            None => Some(DEFAULT_DAYS),
            Some(d) => match d.trim().parse::<i64>() {
                Ok(n) if (1..=i64::from(MAX_DAYS)).contains(&n) => u32::try_from(n).ok(),
                Ok(n) => {
                    p.push(
                        "days",
                        format!(
                            "{n} is out of range; expected 1 to {MAX_DAYS} (Infobip keeps at most 3 months)"
                        ),
                    );
                    None
                }
                Err(_) => {
                    p.push(
                        "days",
                        format!("{d:?} is not a whole number; expected 1 to {MAX_DAYS}"),
                    );
                    None
                }
            },
        };

        let metrics = validate_metrics(
            (self.dimensions, self.max_series, self.budgets, self.otlp),
            targets.as_deref(),
            &mut p,
        );

        match (
            targets,
            (interval, callback_timeout, retry_backoff),
            (callback_listen, public_url, max_body, allowed_cidrs),
            web_listen,
            state_dir,
            (days, metrics),
        ) {
            (
                Some(targets),
                (Some(interval), Some(callback_timeout), Some(retry_backoff)),
                (Some(listen), Some(public_url), Some(max_body), Some(allowed_cidrs)),
                Some(web_listen),
                Some(state_dir),
                (Some(days), Some(metrics)),
            ) if p.0.is_empty() => Ok(Config {
                targets,
                interval,
                callback_timeout,
                retry_backoff,
                callback: CallbackConfig {
                    listen,
                    public_url,
                    max_body,
                    allowed_cidrs,
                },
                web: WebConfig { listen: web_listen },
                state_dir,
                days,
                metrics,
            }),
            _ => Err(p.0),
        }
    }
}

fn validate_targets(raw: Option<Vec<RawTarget>>, p: &mut Problems) -> Option<Vec<TargetConfig>> {
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

        match (name, base_url, api_key) {
            (Some(name), Some(base_url), Some(api_key)) => targets.push(TargetConfig {
                name,
                base_url,
                api_key,
            }),
            _ => all_ok = false,
        }
    }
    all_ok.then_some(targets)
}

/// The `name` of list entry `index` of `list`: valid (`why` says what it is used for) and not
/// already taken by an earlier entry, whose index `seen` remembers.
fn unique_name(
    raw: Option<String>,
    (index, list, why): (usize, &str, &str),
    seen: &mut Vec<(String, usize)>,
    p: &mut Problems,
) -> Option<String> {
    let path = format!("{list}[{index}].name");
    let Some(name) = raw else {
        p.push(
            path,
            "missing; expected 1-63 characters from a-z, 0-9, '_' and '-'",
        );
        return None;
    };
    if !valid_target_name(&name) {
        p.push(
            path,
            format!("{name:?} is not a valid name; expected 1-63 characters from a-z, 0-9, '_' and '-' ({why})"),
        );
        return None;
    }
    if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
        let singular = list.trim_end_matches('s');
        p.push(
            path,
            format!(
                "{name:?} is already the name of {list}[{first}]; expected unique {singular} names"
            ),
        );
        return None;
    }
    seen.push((name.clone(), index));
    Some(name)
}

fn valid_target_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn validate_interval(raw: Option<&str>, p: &mut Problems) -> Option<Duration> {
    let Some(raw) = raw else {
        return Some(DEFAULT_INTERVAL);
    };
    match humantime::parse_duration(raw.trim()) {
        Err(_) => {
            // humantime's own messages ("expected number at 0") would confuse more than help.
            p.push(
                "interval",
                format!("{raw:?} is not a duration; expected a number and a unit, e.g. 30m, 1h or 1h 30m"),
            );
            None
        }
        Ok(d) if d < MIN_INTERVAL => {
            p.push(
                "interval",
                format!("{raw:?} is too short; expected at least 1m"),
            );
            None
        }
        Ok(d) if d > MAX_INTERVAL => {
            p.push(
                "interval",
                format!("{raw:?} is too long; expected at most 1d"),
            );
            None
        }
        Ok(d) => Some(d),
    }
}

/// An optional humantime duration within `(min, max, "what is expected")`.
fn validate_duration(
    key: &str,
    raw: Option<&str>,
    default: Duration,
    (min, max, expected): (Duration, Duration, &str),
    p: &mut Problems,
) -> Option<Duration> {
    let Some(raw) = raw else {
        return Some(default);
    };
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if (min..=max).contains(&d) => Some(d),
        Ok(_) => {
            p.push(key, format!("{raw:?} is out of range; expected {expected}"));
            None
        }
        Err(_) => {
            p.push(
                key,
                format!("{raw:?} is not a duration; expected a number and a unit, {expected}"),
            );
            None
        }
    }
}

/// A byte size: a whole number, optionally followed by B, KiB, MiB or GiB.
fn validate_size(path: &str, raw: &str, p: &mut Problems) -> Option<u64> {
    let text = raw.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor = match unit.trim() {
        "" | "B" => Some(1),
        "KiB" => Some(1024),
        "MiB" => Some(1024 * 1024),
        "GiB" => Some(1024 * 1024 * 1024),
        _ => None,
    };
    let size = factor.and_then(|f| digits.parse::<u64>().ok()?.checked_mul(f));
    match size {
        Some(n) if n >= MIN_MAX_BODY => Some(n),
        Some(_) => {
            p.push(
                path,
                format!("{raw:?} is too small; expected at least 1KiB"),
            );
            None
        }
        None => {
            p.push(
                path,
                format!("{raw:?} is not a size; expected bytes or a number with KiB, MiB or GiB, e.g. 256MiB"),
            );
            None
        }
    }
}

fn validate_cidrs(raw: Vec<String>, p: &mut Problems) -> Option<Vec<ipnet::IpNet>> {
    let mut nets = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, text) in raw.iter().enumerate() {
        let text = text.trim();
        // A bare address means that one host.
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => nets.push(net.trunc()),
            Err(_) => {
                ok = false;
                p.push(
                    format!("callback.allowed_cidrs[{i}]"),
                    format!("{text:?} is not a network; expected CIDR notation, e.g. 10.0.0.0/8 or 2001:db8::/32"),
                );
            }
        }
    }
    ok.then_some(nets)
}

fn parse_listen(path: &str, raw: &str, example: &str, p: &mut Problems) -> Option<SocketAddr> {
    match raw.trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            p.push(
                path,
                format!(
                    "{raw:?} is not a socket address; expected IP:PORT, e.g. {example} ([::]:PORT for IPv6)"
                ),
            );
            None
        }
    }
}

/// Whether binding both addresses would fail with "address in use". Port 0 picks a free port.
fn listeners_collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let (a, b) = (a.ip(), b.ip());
    match (a, b) {
        _ if a == b => true,
        // A wildcard takes the port on every address of its family; on Linux [::] also takes
        // the IPv4 addresses (dual stack).
        (IpAddr::V4(x), IpAddr::V4(y)) => x.is_unspecified() || y.is_unspecified(),
        (IpAddr::V6(x), IpAddr::V6(y)) => x.is_unspecified() || y.is_unspecified(),
        (IpAddr::V6(x), IpAddr::V4(_)) | (IpAddr::V4(_), IpAddr::V6(x)) => x.is_unspecified(),
    }
}

fn validate_base_url(path: &str, raw: &str, p: &mut Problems) -> Option<String> {
    const EXPECTED: &str = "expected https://HOST[:PORT], e.g. https://xxxxx.api.infobip.com";
    let url = match HttpUrl::parse(raw, Some("https")) {
        Ok(url) => url,
        Err(reason) => {
            let shown = redact_userinfo(raw);
            p.push(path, format!("{shown:?} {reason}; {EXPECTED}"));
            return None;
        }
    };
    if !url.path.is_empty() {
        p.push(
            path,
            format!(
                "{raw:?} has a path; {EXPECTED} (the exporter appends /billing/1/usage/query itself)"
            ),
        );
        return None;
    }
    if url.scheme == "http" && !url.loopback {
        p.push(
            path,
            format!(
                "{raw:?} uses http://, but Infobip requires HTTPS; expected https:// (http:// is accepted only for loopback hosts such as the simulator)"
            ),
        );
        return None;
    }
    Some(url.to_string())
}

fn validate_public_url(raw: &str, p: &mut Problems) -> Option<String> {
    match HttpUrl::parse(raw, None) {
        Ok(url) => Some(url.to_string()),
        Err(reason) => {
            let shown = redact_userinfo(raw);
            p.push(
                "callback.public_url",
                format!(
                    "{shown:?} {reason}; expected an absolute http(s) URL without query or fragment, e.g. https://billing-exporter.example.com (the exporter appends /callback/<target>/<token>)"
                ),
            );
            None
        }
    }
}

/// `raw` with any `user:password@` replaced, so that error messages never echo a password.
fn redact_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let authority_end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    match raw[start..authority_end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &raw[..start], &raw[start + at..]),
        None => raw.to_owned(),
    }
}

/// Just enough of an http(s) URL to validate and normalize config values; no dependency needed.
#[derive(Debug, PartialEq, Eq)]
struct HttpUrl {
    /// `http` or `https`.
    scheme: &'static str,
    /// Lower-case; IPv6 addresses keep their brackets.
    host: String,
    port: Option<u16>,
    /// Empty or starting with '/', never ending with '/'.
    path: String,
    loopback: bool,
}

impl HttpUrl {
    /// Parses `raw`; without a scheme, `default_scheme` is assumed or, if `None`, it is an error.
    /// The error is a phrase completing "<value> ...".
    fn parse(raw: &str, default_scheme: Option<&'static str>) -> Result<HttpUrl, String> {
        if raw.is_empty() {
            return Err("is empty".into());
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("contains spaces, control or non-ASCII characters".into());
        }
        if raw.contains(['?', '#']) {
            return Err("has a query or fragment ('?' or '#')".into());
        }
        let (scheme, rest) = match raw.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = if scheme.eq_ignore_ascii_case("https") {
                    "https"
                } else if scheme.eq_ignore_ascii_case("http") {
                    "http"
                } else {
                    return Err(format!("has the unsupported scheme {scheme:?}"));
                };
                (scheme, rest)
            }
            None => match default_scheme {
                Some(scheme) => (scheme, raw),
                None => return Err("is not an absolute URL (no http:// or https://)".into()),
            },
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("contains credentials ('user@')".into());
        }
        let (host, port) = split_host_port(authority)?;
        let host = host.to_ascii_lowercase();
        let loopback = if host.is_empty() {
            return Err("has no host".into());
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            v6.parse::<Ipv6Addr>()
                .map_err(|_| format!("has an invalid IPv6 address {v6:?}"))?
                .is_loopback()
        } else if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            host.parse::<Ipv4Addr>()
                .map_err(|_| format!("has an invalid IPv4 address {host:?}"))?
                .is_loopback()
        } else if host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            host == "localhost"
        } else {
            return Err(format!("has an invalid host {host:?}"));
        };
        Ok(HttpUrl {
            scheme,
            host,
            port,
            path: path.trim_end_matches('/').to_owned(),
            loopback,
        })
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or("has an unclosed '[' in its host")?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("has unexpected text {rest:?} after its host")),
            },
        }
    } else {
        match authority.split_once(':') {
            None => (authority, None),
            Some((_, port)) if port.contains(':') => {
                return Err("has too many ':' (write IPv6 addresses in brackets: [::1])".into());
            }
            Some((host, port)) => (host, Some(port)),
        }
    };
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(n) if n != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("has an invalid port {port:?}")),
        },
    };
    Ok((host, port))
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path)
    }
}

// Data-metric options: extra dimensions, the series cap, budgets and OTLP push.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    name: Option<String>,
    monthly: Option<String>,
    currency: Option<String>,
    #[serde(rename = "match")]
    matcher: Option<RawBudgetMatch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudgetMatch {
    target: Option<String>,
    account: Option<String>,
    category: Option<String>,
    channel: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtlp {
    endpoint: Option<String>,
    protocol: Option<String>,
    interval: Option<String>,
    headers: Option<std::collections::BTreeMap<String, String>>,
}

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
pub const DEFAULT_OTLP_INTERVAL: Duration = Duration::from_secs(60);

/// Always queried: they are the base labels, not optional dimensions.
const BUILT_IN_DIMENSIONS: [BillingUsageAggregate; 5] = [
    BillingUsageAggregate::DAY,
    BillingUsageAggregate::MONTH,
    BillingUsageAggregate::ACCOUNT_NAME,
    BillingUsageAggregate::ACCOUNT_KEY,
    BillingUsageAggregate::CATEGORY_CODE,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The URL pushes go to (for http/protobuf, `/v1/metrics` already appended when needed).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub interval: Duration,
    pub headers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

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
fn validate_metrics(
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

fn validate_budgets(
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

fn validate_otlp(raw: Option<RawOtlp>, p: &mut Problems) -> Option<Option<OtlpConfig>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let protocol = match raw.protocol.as_deref().map(str::trim) {
        None | Some("grpc") => Some(OtlpProtocol::Grpc),
        Some("http/protobuf") => Some(OtlpProtocol::HttpProtobuf),
        Some(other) => {
            p.push(
                "otlp.protocol",
                format!("{other:?} is not supported; expected grpc or http/protobuf"),
            );
            None
        }
    };
    const EXPECTED: &str = "expected the collector's http(s) URL, e.g. http://otel-collector:4317";
    let endpoint = match raw.endpoint {
        None => {
            p.push("otlp.endpoint", format!("missing; {EXPECTED}"));
            None
        }
        Some(text) => match HttpUrl::parse(&text, None) {
            Ok(url) => Some(url),
            Err(reason) => {
                let shown = redact_userinfo(&text);
                p.push("otlp.endpoint", format!("{shown:?} {reason}; {EXPECTED}"));
                None
            }
        },
    };
    let interval = validate_duration(
        "otlp.interval",
        raw.interval.as_deref(),
        DEFAULT_OTLP_INTERVAL,
        (Duration::from_secs(1), MAX_INTERVAL, "1s to 1d, e.g. 60s"),
        p,
    );
    let mut headers_ok = true;
    let headers = raw.headers.unwrap_or_default();
    for (name, value) in &headers {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            p.push(
                format!("otlp.headers.{name}"),
                "is not a valid header name; expected letters, digits, '-' and '_'",
            );
            headers_ok = false;
        } else if value.bytes().any(|b| b.is_ascii_control()) {
            // The value is not echoed: headers usually carry credentials.
            p.push(
                format!("otlp.headers.{name}"),
                "the value contains line breaks or control characters; expected one line",
            );
            headers_ok = false;
        }
    }
    let (endpoint, protocol, interval) = (endpoint?, protocol?, interval?);
    if !headers_ok {
        return None;
    }
    // The OTLP/HTTP convention: a base URL gets the signal path appended.
    let endpoint = match protocol {
        OtlpProtocol::HttpProtobuf if endpoint.path.is_empty() => format!("{endpoint}/v1/metrics"),
        _ => endpoint.to_string(),
    };
    Some(Some(OtlpConfig {
        endpoint,
        protocol,
        interval,
        headers,
    }))
}
