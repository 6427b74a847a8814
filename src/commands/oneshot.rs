//! One-shot queries from the command line (`query`, `backfill`, `check-config`): which target to
//! ask, and a short-lived callback listener that waits for the results of the queries this
//! process sent. It applies the daemon's callback checks in small: a fresh 256-bit token per
//! query compared in constant time, only `POST` with JSON, a body limit, and the `requestId`
//! the `201` answered.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rand::Rng;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{
    ApiKey, ApiKeySource, Config, DEFAULT_MAX_BODY, SecretError, check_base_url, check_public_url,
};
use crate::daemon::callback::{is_json, wait_for_request_id};
use crate::errors::chain;
use crate::infobip::client::{Client, ClientError};
use crate::infobip::model::{
    BillingUsageAggregate, BillingUsageDataFilter, DateInterval, QueryBillingUsageApiRequest,
    QueryBillingUsageRequest,
};

/// The environment variable a flag-given target takes its key from (never a flag: argv is
/// visible to every user of the machine).
pub const API_KEY_ENV: &str = "INFOBIP_API_KEY";

/// Which Infobip account to ask: a target of a config file, or a base URL and `INFOBIP_API_KEY`.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Take the target from this exporter configuration file.
    #[arg(long, value_name = "FILE", conflicts_with = "base_url")]
    pub config: Option<PathBuf>,
    /// The target to use from --config (required when it has several); with --base-url, the
    /// `target` label written by backfill.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Your Infobip base URL (https://xxxxx.api.infobip.com); the key comes from INFOBIP_API_KEY.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

/// Where this process receives its callbacks, and how long it waits for them.
#[derive(Debug, Clone, clap::Args)]
pub struct CallbackArgs {
    /// Where to listen for the callback.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub callback_listen: SocketAddr,
    /// The URL Infobip posts the callback to, reaching --callback-listen (default: the listen
    /// address itself, which only a local simulator can reach).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Give up on a callback after this long.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

/// A resolved target: its name, base URL and key.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub base_url: String,
    pub key: ApiKey,
    /// The configuration the target came from: its dimensions shape backfill's labels.
    pub config: Option<Config>,
}

/// Why a one-shot command could not run; `reason()` is a bounded label.
#[derive(Debug, thiserror::Error)]
pub enum OneShotError {
    #[error("give either --config FILE or --base-url URL (with the key in {API_KEY_ENV})")]
    NoTarget,
    #[error("{0}")]
    Config(String),
    #[error("{path} has no target named {name:?} (it has: {known})")]
    UnknownTarget {
        path: String,
        name: String,
        known: String,
    },
    #[error("{path} has several targets ({known}): choose one with --target")]
    AmbiguousTarget { path: String, known: String },
    /// The message is the config's, as for `targets[].base_url`.
    #[error("--base-url {0}")]
    BaseUrl(String),
    /// The message is the config's, as for `callback.public_url`.
    #[error("--public-url {0}")]
    PublicUrl(String),
    #[error("API key: {0}")]
    Key(SecretError),
    #[error("cannot listen for callbacks on {addr}: {cause}")]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("cannot build the HTTP client: {}", chain(.0))]
    Http(reqwest::Error),
    #[error(transparent)]
    Submit(#[from] ClientError),
    #[error(
        "no callback within {}: Infobip may still be working, or cannot reach the callback URL",
        humantime::format_duration(*.0)
    )]
    Timeout(Duration),
    #[error("interrupted")]
    Cancelled,
}

impl OneShotError {
    pub fn reason(&self) -> &'static str {
        match self {
            OneShotError::NoTarget
            | OneShotError::Config(_)
            | OneShotError::UnknownTarget { .. }
            | OneShotError::AmbiguousTarget { .. }
            | OneShotError::BaseUrl(_)
            | OneShotError::PublicUrl(_) => "usage",
            OneShotError::Key(_) => "api_key",
            OneShotError::Listen { .. } => "listen",
            OneShotError::Http(_) => "http_client",
            OneShotError::Submit(e) => e.reason(),
            OneShotError::Timeout(_) => "timeout",
            OneShotError::Cancelled => "cancelled",
        }
    }
}

impl TargetArgs {
    /// The target these flags name, with its key read from the environment or a file.
    pub fn resolve(&self) -> Result<Target, OneShotError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Target, OneShotError> {
        if let Some(path) = &self.config {
            let config =
                Config::load(path).map_err(|e| OneShotError::Config(e.problems().join("\n")))?;
            let known = || {
                config
                    .targets
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let target = match &self.target {
                Some(name) => config
                    .targets
                    .iter()
                    .find(|t| &t.name == name)
                    .ok_or_else(|| OneShotError::UnknownTarget {
                        path: path.display().to_string(),
                        name: name.clone(),
                        known: known(),
                    })?,
                None => match config.targets.as_slice() {
                    [only] => only,
                    _ => {
                        return Err(OneShotError::AmbiguousTarget {
                            path: path.display().to_string(),
                            known: known(),
                        });
                    }
                },
            };
            let key = target
                .api_key
                .resolve_with(&env)
                .map_err(OneShotError::Key)?;
            return Ok(Target {
                name: target.name.clone(),
                base_url: target.base_url.clone(),
                key,
                config: Some(config.clone()),
            });
        }
        let base_url = self.base_url.as_deref().ok_or(OneShotError::NoTarget)?;
        let base_url = check_base_url(base_url).map_err(OneShotError::BaseUrl)?;
        let key = ApiKeySource::Env(API_KEY_ENV.to_owned())
            .resolve_with(env)
            .map_err(OneShotError::Key)?;
        Ok(Target {
            name: self.target.clone().unwrap_or_else(|| "default".to_owned()),
            base_url,
            key,
            config: None,
        })
    }
}

/// A callback listener serving the queries of this process until dropped.
pub struct Receiver {
    public_url: String,
    local_addr: SocketAddr,
    slots: Arc<Slots>,
    stop: CancellationToken,
}

#[derive(Default)]
struct Slots {
    open: Mutex<Vec<Slot>>,
    request_id_recorded: Notify,
}

struct Slot {
    token: String,
    request_id: Option<String>,
    /// Taken by the first accepted callback; a duplicate finds it gone.
    deliver: Option<oneshot::Sender<Bytes>>,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Finds a slot comparing every token in constant time.
fn find<'a>(slots: &'a mut [Slot], token: &str) -> Option<&'a mut Slot> {
    let mut found = None;
    for slot in slots.iter_mut() {
        if bool::from(slot.token.as_bytes().ct_eq(token.as_bytes())) {
            found = Some(slot);
        }
    }
    found
}

/// How far a query has come, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Submitting,
    Waiting { request_id: String },
}

impl Receiver {
    /// Listens on `listen`; Infobip is told `public_url`, or the bound address when unset.
    pub async fn bind(listen: SocketAddr, public_url: Option<&str>) -> Result<Self, OneShotError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|cause| OneShotError::Listen {
                addr: listen,
                cause,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|cause| OneShotError::Listen {
                addr: listen,
                cause,
            })?;
        let public_url = match public_url {
            Some(url) => check_public_url(url).map_err(OneShotError::PublicUrl)?,
            None => format!("http://{local_addr}"),
        };
        let slots = Arc::new(Slots::default());
        let stop = CancellationToken::new();
        let router = Router::new()
            .route("/callback/{token}", post(receive))
            .layer(DefaultBodyLimit::max(
                usize::try_from(DEFAULT_MAX_BODY).unwrap_or(usize::MAX),
            ))
            .with_state(Arc::clone(&slots));
        tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        );
        Ok(Self {
            public_url,
            local_addr,
            slots,
            stop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Submits `request` and waits for its callback body, at most `timeout` after the submit.
    pub async fn run(
        &self,
        client: &Client,
        request: QueryBillingUsageApiRequest,
        timeout: Duration,
        shutdown: &CancellationToken,
        progress: &(dyn Fn(Phase) + Sync),
    ) -> Result<Bytes, OneShotError> {
        let bytes: [u8; 32] = rand::rng().random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let (tx, rx) = oneshot::channel();
        self.slots.lock().push(Slot {
            token: token.clone(),
            request_id: None,
            deliver: Some(tx),
        });
        let result = self
            .submit_and_wait(client, request, &token, rx, timeout, shutdown, progress)
            .await;
        self.slots.lock().retain(|s| s.token != token);
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn submit_and_wait(
        &self,
        client: &Client,
        request: QueryBillingUsageApiRequest,
        token: &str,
        rx: oneshot::Receiver<Bytes>,
        timeout: Duration,
        shutdown: &CancellationToken,
        progress: &(dyn Fn(Phase) + Sync),
    ) -> Result<Bytes, OneShotError> {
        progress(Phase::Submitting);
        let envelope = QueryBillingUsageRequest {
            callback_url: format!("{}/callback/{token}", self.public_url),
            request,
        };
        let request_id = tokio::select! {
            r = client.submit(&envelope) => r?,
            () = shutdown.cancelled() => return Err(OneShotError::Cancelled),
        };
        if let Some(slot) = find(&mut self.slots.lock(), token) {
            slot.request_id = Some(request_id.clone());
        }
        self.slots.request_id_recorded.notify_waiters();
        progress(Phase::Waiting { request_id });
        tokio::select! {
            body = tokio::time::timeout(timeout, rx) => match body {
                Ok(Ok(body)) => Ok(body),
                // The sender lives in the slot until delivery, so this is the timeout case.
                Ok(Err(_)) | Err(_) => Err(OneShotError::Timeout(timeout)),
            },
            () = shutdown.cancelled() => Err(OneShotError::Cancelled),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Only the field the handler checks; the caller decodes the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIdOnly {
    request_id: String,
}

async fn receive(
    State(slots): State<Arc<Slots>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> StatusCode {
    if find(&mut slots.lock(), &token).is_none() {
        return StatusCode::NOT_FOUND;
    }
    if !is_json(&headers) {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.status(),
    };
    let Ok(sent) = serde_json::from_slice::<RequestIdOnly>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Some(expected) = recorded_request_id(&slots, &token).await else {
        return StatusCode::CONFLICT;
    };
    if !bool::from(expected.as_bytes().ct_eq(sent.request_id.as_bytes())) {
        return StatusCode::CONFLICT;
    }
    if let Some(deliver) = find(&mut slots.lock(), &token).and_then(|s| s.deliver.take()) {
        let _ = deliver.send(body);
    }
    // A duplicate delivery is accepted and ignored.
    StatusCode::OK
}

/// The slot's `requestId`, waiting briefly when the callback arrived before the `201`.
async fn recorded_request_id(slots: &Slots, token: &str) -> Option<String> {
    wait_for_request_id(&slots.request_id_recorded, || {
        find(&mut slots.lock(), token).map(|s| s.request_id.clone())
    })
    .await
}

/// A client for `target`.
pub fn client(target: &Target) -> Result<Client, OneShotError> {
    Client::new(&target.base_url, &target.key).map_err(OneShotError::Http)
}

/// Why a target failed `check-config`'s reachability check; `reason()` is a bounded label.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("base URL {0:?} has no host")]
    NoHost(String),
    #[error("DNS: cannot resolve {host}: {detail}")]
    Dns { host: String, detail: String },
    #[error("connect: cannot open a TCP connection to {addr}: {cause}")]
    Connect {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("{step}: no answer within {}", humantime::format_duration(*.after))]
    Timeout { step: &'static str, after: Duration },
    #[error("TLS or HTTP: {0}")]
    Tls(String),
    #[error("{0}")]
    Refused(ClientError),
    #[error("the probe query got {0}")]
    Unexpected(ClientError),
    #[error("cannot build the HTTP client: {}", chain(.0))]
    Http(reqwest::Error),
}

impl ProbeError {
    pub fn reason(&self) -> &'static str {
        match self {
            ProbeError::NoHost(_) => "base_url",
            ProbeError::Dns { .. } => "dns",
            ProbeError::Connect { .. } => "connect",
            ProbeError::Timeout { .. } => "timeout",
            ProbeError::Tls(_) => "tls",
            ProbeError::Refused(_) => "unauthorized",
            ProbeError::Unexpected(e) => e.reason(),
            ProbeError::Http(_) => "http_client",
        }
    }
}

/// What a successful probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub address: SocketAddr,
    pub tls: bool,
    /// The HTTP status the empty query got: 400 is the expected one.
    pub status: u16,
}

const PROBE_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Reaches `base_url` as the daemon would: DNS, TCP, TLS, and a query with an empty date range
/// (`sentSince == sentUntil`), which a good key gets `400` for and a wrong key or missing
/// `billing:usage:view` scope `401`/`403`. Nothing is queried, so nothing is billed or called back.
pub async fn probe(
    base_url: &str,
    key: &ApiKey,
    callback_url: &str,
    today: time::Date,
) -> Result<Probe, ProbeError> {
    let url = reqwest::Url::parse(base_url).map_err(|_| ProbeError::NoHost(base_url.to_owned()))?;
    let host = url
        .host_str()
        .ok_or_else(|| ProbeError::NoHost(base_url.to_owned()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let timed = |step| ProbeError::Timeout {
        step,
        after: PROBE_STEP_TIMEOUT,
    };
    let address = tokio::time::timeout(
        PROBE_STEP_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| timed("DNS"))?
    .map_err(|e| ProbeError::Dns {
        host: host.clone(),
        detail: e.to_string(),
    })?
    .next()
    .ok_or_else(|| ProbeError::Dns {
        host: host.clone(),
        detail: "no address".to_owned(),
    })?;
    tokio::time::timeout(PROBE_STEP_TIMEOUT, tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| timed("connect"))?
        .map_err(|cause| ProbeError::Connect {
            addr: address,
            cause,
        })?;
    let client = Client::new(base_url, key).map_err(ProbeError::Http)?;
    let empty = QueryBillingUsageRequest {
        callback_url: callback_url.to_owned(),
        request: QueryBillingUsageApiRequest {
            filter_by: BillingUsageDataFilter {
                date_interval: DateInterval {
                    sent_since: today,
                    sent_until: today,
                },
                ..Default::default()
            },
            aggregate_by: vec![BillingUsageAggregate::DAY],
            options: None,
        },
    };
    let status = match client.submit(&empty).await {
        // A server that takes an empty range still took the key.
        Ok(_) => 201,
        Err(ClientError::Validation { .. }) => 400,
        Err(e @ ClientError::Unauthorized { .. }) => return Err(ProbeError::Refused(e)),
        Err(ClientError::Network(e)) => return Err(ProbeError::Tls(chain(&e))),
        Err(e) => return Err(ProbeError::Unexpected(e)),
    };
    Ok(Probe {
        address,
        tls: url.scheme() == "https",
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>, target: Option<&str>, base_url: Option<&str>) -> TargetArgs {
        TargetArgs {
            config,
            target: target.map(Into::into),
            base_url: base_url.map(Into::into),
        }
    }

    #[test]
    fn base_url_target_takes_its_key_from_the_environment_only() {
        let a = args(None, None, Some("https://x.api.infobip.com/"));
        let t = a
            .resolve_with(|n| (n == API_KEY_ENV).then(|| "k ".to_owned()))
            .unwrap();
        assert_eq!(t.base_url, "https://x.api.infobip.com");
        assert_eq!(t.key.expose(), "k");
        assert_eq!(t.name, "default");
        let err = a.resolve_with(|_| None).unwrap_err();
        assert_eq!(err.reason(), "api_key");
        assert!(err.to_string().contains(API_KEY_ENV), "{err}");
    }

    #[test]
    fn bad_target_flags_are_refused() {
        assert_eq!(
            args(None, None, None)
                .resolve_with(|_| None)
                .unwrap_err()
                .reason(),
            "usage"
        );
        assert!(matches!(
            args(None, None, Some("ftp://x")).resolve_with(|_| None),
            Err(OneShotError::BaseUrl(_))
        ));
    }

    #[test]
    fn config_targets_are_chosen_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "targets:\n  - name: eu\n    base_url: https://eu.api.infobip.com\n    api_key_env: K_EU\n\
             \x20 - name: us\n    base_url: https://us.api.infobip.com\n    api_key_env: K_US\n\
             callback:\n  listen: 127.0.0.1:9478\n  public_url: https://e.example.com\nstate_dir: /tmp/x\n",
        )
        .unwrap();
        let env = |n: &str| Some(format!("key-of-{n}"));
        let err = args(Some(path.clone()), None, None)
            .resolve_with(env)
            .unwrap_err();
        assert!(err.to_string().contains("eu, us"), "{err}");
        let t = args(Some(path.clone()), Some("us"), None)
            .resolve_with(env)
            .unwrap();
        assert_eq!((t.name.as_str(), t.key.expose()), ("us", "key-of-K_US"));
        assert!(matches!(
            args(Some(path), Some("ap"), None).resolve_with(env),
            Err(OneShotError::UnknownTarget { .. })
        ));
    }
}
