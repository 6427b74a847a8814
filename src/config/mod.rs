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
//!     # Optional: only part of the account, with the API's filterBy fields in snake_case and
//!     # the values of query's flags: account_keys, categories, sub_categories, countries,
//!     # directions, traffic_types, senders, sender_types, campaign_references, campaign_ids,
//!     # template_ids, platforms (app, app:entity or :entity). Within a list the values are
//!     # alternatives; lists narrow each other. A change asks again for every stored month of
//!     # the target, final ones included. Default: everything.
//!     filters:
//!       categories: [WHATSAPP, SMS]
//!       countries: [US, CA]
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
//!   # Optional: serve HTTPS with this certificate, for deployments without a TLS-terminating
//!   # ingress (public_url may then be https:// to the exporter itself). Both files are PEM and
//!   # re-read when they change.
//!   tls: { cert_file: /etc/exporter/callback.crt, key_file: /etc/exporter/callback.key }
//!   # Headers of a request must arrive within header_timeout of connecting (default 10s; 100ms
//!   # to 10m), a kept-alive connection may idle for idle_timeout (default 60s), a body must
//!   # arrive and a response be written within body_timeout (default 5m; both 100ms to 1h).
//!   header_timeout: 10s
//!   idle_timeout: 60s
//!   body_timeout: 5m
//!   # Connections held at once (1 to 65536; default 512 here, 64 on web). Past it the oldest
//!   # idle connection is closed to make room, or the new one when all are busy.
//!   max_connections: 512
//! web:
//!   # Address of /metrics, /-/healthy and /-/ready. Default 127.0.0.1:9477. The flag
//!   # --web.listen-address of `run` overrides it.
//!   listen: 127.0.0.1:9477
//!   # Optional: TLS, client certificates, basic auth and response headers, in the web
//!   # configuration file format of the Prometheus exporters (see `webconfig`). The flag
//!   # --web.config.file of `run` overrides it.
//!   config_file: /etc/exporter/web-config.yml
//!   # header_timeout, idle_timeout, body_timeout and max_connections as under callback.
//!   max_connections: 64
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
//! # Optional: also push the metrics over OTLP, with the names and labels of /metrics. Every key
//! # may be left out for its OTEL_EXPORTER_OTLP_* environment variable (README "OpenTelemetry"),
//! # which the keys written here win over; OTEL_EXPORTER_OTLP_ENDPOINT alone turns the push on.
//! otlp:
//!   # The collector's URL. For http/protobuf, /v1/metrics is appended when the URL has no path.
//!   # With headers (from any source), http:// is accepted only for loopback hosts.
//!   endpoint: https://otel-collector:4317
//!   # grpc (default) or http/protobuf. https:// is verified against the system's CA
//!   # certificates; SSL_CERT_FILE in the environment names another PEM bundle.
//!   protocol: grpc
//!   # How often to push. Default 60s; 1s to 1d.
//!   interval: 60s
//!   # Optional headers sent with every push. Secrets (tokens) belong in headers_file instead.
//!   headers:
//!     x-scope-orgid: finops
//!   # Optional: a file of further headers, one `Name: value` per line (blank lines and lines
//!   # starting with # are skipped), e.g. `Authorization: Bearer <token>`. A header may come
//!   # from one place only: headers, headers_file or OTEL_EXPORTER_OTLP_HEADERS.
//!   headers_file: /run/secrets/otlp-headers
//! ```
//!
//! Parsing happens in two steps: serde reads the file into raw structs whose fields are all
//! optional (so a missing key is reported together with every other problem, not alone), then
//! [`Config::from_yaml`] validates them, applies defaults and normalizes URLs. API keys are not
//! read during validation: [`ApiKeySource::resolve`] does that when the exporter needs them, and
//! [`Config::missing_secrets`] lets `check-config` report unresolvable keys.

mod budgets;
mod durations;
mod filters;
mod limits;
mod listen;
mod metrics;
mod names;
mod otlp;
mod problems;
mod raw;
mod secrets;
mod sizes;
mod targets;
mod unknown_keys;
mod url;
pub mod webconfig;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::billing::budget::{BudgetConfig, BudgetMatch};
pub use crate::infobip::key::ApiKey;

pub use self::durations::{
    DEFAULT_CALLBACK_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_RETRY_BACKOFF, MAX_INTERVAL, MIN_INTERVAL,
};
pub use self::limits::{CertFiles, ListenerLimits};
pub use self::listen::DEFAULT_WEB_LISTEN;
pub use self::metrics::{DEFAULT_MAX_SERIES, MetricsConfig};
pub use self::otlp::{
    DEFAULT_OTLP_INTERVAL, DEFAULT_SERVICE_NAME, OtlpConfig, OtlpProtocol, OtlpSettings,
    resolve_otlp,
};
pub use self::problems::{ConfigError, Problem};
pub use self::secrets::{ApiKeySource, SecretError};
pub use self::sizes::DEFAULT_MAX_BODY;
pub use self::targets::TargetConfig;
pub use self::url::{check_base_url, check_public_url};

use self::durations::{validate_duration, validate_interval};
use self::limits::{RawLimits, validate_cert_files, validate_limits};
use self::listen::{listeners_collide, parse_listen, validate_cidrs};
use self::metrics::validate_metrics;
use self::problems::Problems;
use self::raw::RawConfig;
use self::secrets::read_capped;
use self::sizes::validate_size;
use self::targets::validate_targets;
use self::url::validate_public_url;

/// `days` when the config does not set it: covers the previous month whole plus a few days.
pub const DEFAULT_DAYS: u32 = 35;
/// Largest `days`: Infobip retains the current month and the two before it, at most 93 days.
pub const MAX_DAYS: u32 = 93;
/// Config files are small; the cap keeps a wrong path (a device, a huge log) from eating memory.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackConfig {
    pub listen: SocketAddr,
    /// Normalized: no trailing '/'. Append `/callback/<target>/<token>`.
    pub public_url: String,
    /// Largest callback body accepted, in bytes.
    pub max_body: u64,
    /// Source networks allowed to post callbacks; empty allows any.
    pub allowed_cidrs: Vec<ipnet::IpNet>,
    /// The listener's own certificate, for deployments without a TLS-terminating ingress.
    pub tls: Option<CertFiles>,
    pub limits: ListenerLimits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// The exporter-toolkit web configuration (TLS, basic auth, headers); see [`webconfig`].
    pub config_file: Option<PathBuf>,
    pub limits: ListenerLimits,
}

impl WebConfig {
    /// Plain HTTP on `listen` with the default limits.
    pub fn at(listen: SocketAddr) -> Self {
        WebConfig {
            listen,
            config_file: None,
            limits: ListenerLimits::WEB,
        }
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_capped(path, MAX_CONFIG_BYTES).map_err(|cause| ConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        Config::from_yaml(&text)
    }

    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        // `Option` so that an empty file reports every missing key rather than "EOF".
        let raw: Option<RawConfig> = serde_norway::from_str(text).map_err(|e| {
            let message = syntax_message(&e);
            // serde stops at the first unknown key; a file with several gets them all listed.
            let unknown = if unknown_keys::is_unknown_key(&message) {
                unknown_keys::unknown_keys::<Option<RawConfig>>(text)
            } else {
                Vec::new()
            };
            if unknown.is_empty() {
                ConfigError::Syntax { message }
            } else {
                ConfigError::Invalid(unknown)
            }
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

        let (callback_listen, public_url, max_body, allowed_cidrs, callback_extra) = match self
            .callback
        {
            None => {
                p.push(
                    "callback",
                    "missing; expected a mapping with listen and public_url",
                );
                (None, None, None, None, None)
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
                let tls = match cb.tls {
                    None => Some(None),
                    Some(t) => validate_cert_files("callback.tls", t.cert_file, t.key_file, &mut p)
                        .map(Some),
                };
                let limits = RawLimits {
                    header_timeout: cb.header_timeout,
                    idle_timeout: cb.idle_timeout,
                    body_timeout: cb.body_timeout,
                    max_connections: cb.max_connections,
                };
                let limits = validate_limits("callback", limits, ListenerLimits::CALLBACK, &mut p);
                let extra = tls.zip(limits);
                (listen, public_url, max_body, cidrs, extra)
            }
        };

        let web = self.web.unwrap_or_default();
        let web_listen = match web.listen {
            None => Some(DEFAULT_WEB_LISTEN),
            Some(s) => parse_listen("web.listen", &s, "127.0.0.1:9477", &mut p),
        };
        let web_config_file = match web.config_file {
            Some(f) if f.trim().is_empty() => {
                p.push(
                    "web.config_file",
                    "empty; expected the path of an exporter-toolkit web configuration file, or no key for plain HTTP",
                );
                None
            }
            f => Some(f.map(|f| PathBuf::from(f.trim()))),
        };
        let web_limits = RawLimits {
            header_timeout: web.header_timeout,
            idle_timeout: web.idle_timeout,
            body_timeout: web.body_timeout,
            max_connections: web.max_connections,
        };
        let web_limits = validate_limits("web", web_limits, ListenerLimits::WEB, &mut p);
        let web = web_listen.zip(web_config_file).zip(web_limits).map(
            |((listen, config_file), limits)| WebConfig {
                listen,
                config_file,
                limits,
            },
        );
        if let (Some(cb), Some(web)) = (callback_listen, web_listen)
            && listeners_collide(cb, web)
        {
            p.push(
                    "web.listen",
                    format!(
                        "{web} collides with callback.listen {cb}; expected a different port (the two listeners are separate sockets)"
                    ),
                );
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
            (callback_extra, web),
            state_dir,
            (days, metrics),
        ) {
            (
                Some(targets),
                (Some(interval), Some(callback_timeout), Some(retry_backoff)),
                (Some(listen), Some(public_url), Some(max_body), Some(allowed_cidrs)),
                (Some((tls, limits)), Some(web)),
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
                    tls,
                    limits,
                },
                web,
                state_dir,
                days,
                metrics,
            }),
            _ => Err(p.0),
        }
    }
}
