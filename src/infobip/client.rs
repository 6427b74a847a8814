//! The HTTP client for `POST /billing/1/usage/query`: auth header, submit, typed errors.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER};

use super::model::{
    ApiError, ApiErrorViolation, QueryAggregateDataResponse, QueryBillingUsageRequest,
};
use crate::errors::chain;
use crate::infobip::key::ApiKey;

pub const QUERY_PATH: &str = "/billing/1/usage/query";

/// Why a submit failed; `reason()` is a bounded label value.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Infobip rejected the query (400 {code}): {}", describe_violations(.violations))]
    Validation {
        code: String,
        violations: Vec<ApiErrorViolation>,
    },
    #[error(
        "Infobip refused the API key ({status} {code}: {description}); check that the key is valid \
         and has the billing:usage:view scope"
    )]
    Unauthorized {
        status: u16,
        code: String,
        description: String,
    },
    #[error("Infobip throttled the query (429){}", .retry_after.map(|d| format!(", retry after {}", humantime::format_duration(d))).unwrap_or_default())]
    Throttled { retry_after: Option<Duration> },
    #[error("Infobip answered {status}: {body}")]
    Server { status: u16, body: String },
    #[error("Infobip answered an unexpected {status}: {body}")]
    Unexpected { status: u16, body: String },
    #[error("could not reach Infobip: {}", chain(.0))]
    Network(reqwest::Error),
}

impl ClientError {
    pub fn reason(&self) -> &'static str {
        match self {
            ClientError::Validation { .. } => "invalid_request",
            ClientError::Unauthorized { .. } => "unauthorized",
            ClientError::Throttled { .. } => "throttled",
            ClientError::Server { .. } => "server_error",
            ClientError::Unexpected { .. } => "unexpected_status",
            ClientError::Network(_) => "network",
        }
    }

    /// The HTTP status behind the error, `None` when no answer came.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Validation { .. } => Some(400),
            ClientError::Unauthorized { status, .. }
            | ClientError::Server { status, .. }
            | ClientError::Unexpected { status, .. } => Some(*status),
            ClientError::Throttled { .. } => Some(429),
            ClientError::Network(_) => None,
        }
    }
}

fn describe_violations(violations: &[ApiErrorViolation]) -> String {
    if violations.is_empty() {
        return "no violations listed".into();
    }
    violations
        .iter()
        .map(|v| format!("{}: {}", v.property, v.violation))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One Infobip account (one base URL and key).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    query_url: String,
    auth: HeaderValue,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("query_url", &self.query_url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `base_url` is already normalised by the config (scheme, no trailing `/`).
    pub fn new(base_url: &str, key: &ApiKey) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "infobip-billing-exporter/",
                env!("CARGO_PKG_VERSION")
            ))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut auth = HeaderValue::from_str(&format!("App {}", key.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static("App invalid-key-characters"));
        auth.set_sensitive(true);
        Ok(Self {
            http,
            query_url: format!("{base_url}{QUERY_PATH}"),
            auth,
        })
    }

    /// Submits a query; the result arrives later at its `callbackUrl`. Returns the `requestId`.
    pub async fn submit(&self, request: &QueryBillingUsageRequest) -> Result<String, ClientError> {
        let response = self
            .http
            .post(&self.query_url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json")
            .json(request)
            .send()
            .await
            .map_err(ClientError::Network)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.map_err(ClientError::Network)?;
        if status.is_success() {
            return serde_json::from_str::<QueryAggregateDataResponse>(&body)
                .map(|r| r.request_id)
                .map_err(|_| ClientError::Unexpected {
                    status: status.as_u16(),
                    body: truncate(&body),
                });
        }
        // Tolerate other error envelopes: keep the status and the raw text (reference §9).
        let api_error = serde_json::from_str::<ApiError>(&body).ok();
        let code = |fallback: &str| {
            api_error
                .as_ref()
                .map_or_else(|| fallback.to_owned(), |e| e.error_code.clone())
        };
        Err(match status {
            StatusCode::BAD_REQUEST => ClientError::Validation {
                code: code("E400"),
                violations: api_error
                    .as_ref()
                    .map(|e| e.violations.clone())
                    .unwrap_or_default(),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ClientError::Unauthorized {
                status: status.as_u16(),
                code: code(status.as_str()),
                description: api_error.map_or_else(|| truncate(&body), |e| e.description),
            },
            StatusCode::TOO_MANY_REQUESTS => ClientError::Throttled { retry_after },
            s if s.is_server_error() => ClientError::Server {
                status: s.as_u16(),
                body: truncate(&body),
            },
            s => ClientError::Unexpected {
                status: s.as_u16(),
                body: truncate(&body),
            },
        })
    }
}

/// Error bodies go into logs: keep them short.
fn truncate(body: &str) -> String {
    const MAX: usize = 512;
    match body.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body.to_owned(),
    }
}
