//! The HTTP side: auth, throttling, the query endpoint and callback delivery with faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::data::{hash, unit_interval};
use super::{Delivery, Inner, Simulator, UnscopedStatus, lock, validate};
use crate::infobip::model::{
    ApiError, ApiErrorResource, ApiErrorViolation, BillingUsageResult, QueryAggregateDataResponse,
    QueryAggregateDataStatus, QueryBillingUsageApiRequest,
};

pub const QUERY_PATH: &str = "/billing/1/usage/query";
/// The simulator-only status endpoint (reference A26); Infobip's Billing Usage API has none.
pub const STATUS_PATH: &str = "/billing/1/usage/requests/{id}";
/// Every status answer carries this, so nobody mistakes the endpoint for Infobip's.
const NON_INFOBIP: &str = "Simulator only: Infobip's Billing Usage API has no status endpoint; \
    a real client learns the result from the callback alone.";
/// Generous, so a million-row body reaches even a slow receiver.
pub(super) const CALLBACK_TIMEOUT: Duration = Duration::from_secs(120);
/// The failure text of the spec's FAILED example.
pub const FAILURE_MESSAGE: &str = "Could not load data";

pub(super) fn router(sim: Simulator) -> Router {
    let router = Router::new().route(QUERY_PATH, post(query));
    let router = if sim.inner.opts.status_endpoint {
        router.route(STATUS_PATH, get(status))
    } else {
        router
    };
    router.with_state(sim)
}

/// Per-credential token buckets on real (monotonic) time: throttling is about request rate, not
/// the simulated calendar.
pub(super) struct Throttle {
    rate: f64,
    buckets: HashMap<String, (f64, Instant)>,
}

impl Throttle {
    pub(super) fn new(per_second: u32) -> Self {
        Self {
            rate: f64::from(per_second),
            buckets: HashMap::new(),
        }
    }

    fn allow(&mut self, credential: &str, now: Instant) -> bool {
        let rate = self.rate;
        let (tokens, last) = self
            .buckets
            .entry(credential.to_owned())
            .or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The kinds of per-query fault, each with its own draw.
#[derive(Clone, Copy)]
enum Fault {
    ServerError = 1,
    Drop = 2,
    Duplicate = 3,
    Failed = 4,
    Malformed = 5,
}

impl Inner {
    fn fault(&self, kind: Fault, seq: u64) -> bool {
        let f = &self.opts.faults;
        let ratio = match kind {
            Fault::ServerError => f.server_error_ratio,
            Fault::Drop => f.drop_callback_ratio,
            Fault::Duplicate => f.duplicate_callback_ratio,
            Fault::Failed => f.failed_ratio,
            Fault::Malformed => f.malformed_callback_ratio,
        };
        ratio > 0.0 && unit_interval(hash(&[self.opts.seed, 0xFA17, kind as u64, seq])) < ratio
    }

    fn count(&self, update: impl FnOnce(&mut super::SimulatorStats)) {
        self.stats.send_modify(update);
    }

    fn reject(&self, status: StatusCode, error: ApiError) -> Response {
        self.count(|s| *s.rejected.entry(status.as_u16()).or_default() += 1);
        (status, Json(error)).into_response()
    }
}

fn api_error(
    code: &str,
    description: &str,
    action: &str,
    violations: Vec<ApiErrorViolation>,
    resource: Option<(&str, &str)>,
) -> ApiError {
    ApiError {
        error_code: code.to_owned(),
        description: description.to_owned(),
        action: action.to_owned(),
        violations,
        resources: resource
            .map(|(name, url)| ApiErrorResource {
                name: name.to_owned(),
                url: url.to_owned(),
            })
            .into_iter()
            .collect(),
    }
}

/// The spec's example bodies (reference §9, §15).
pub fn error_400(violations: Vec<ApiErrorViolation>) -> ApiError {
    api_error(
        "E400",
        "Request cannot be processed.",
        "Check the syntax, violations and adjust the request.",
        violations,
        None,
    )
}

pub fn error_401() -> ApiError {
    api_error(
        "E401",
        "The request lacks valid authentication credentials for the requested resource.",
        "Check the resources and adjust authentication credentials.",
        Vec::new(),
        Some((
            "API Authentication",
            "https://www.infobip.com/docs/essentials/api-authentication",
        )),
    )
}

pub fn error_403() -> ApiError {
    api_error(
        "E403",
        "Insufficient permissions to access the requested resource.",
        "Repeat the request with new or different credentials.",
        Vec::new(),
        Some((
            "API Scopes",
            "https://www.infobip.com/docs/essentials/api-essentials/api-authorization#api-scopes",
        )),
    )
}

pub fn error_429() -> ApiError {
    api_error(
        "E429",
        "Too many requests sent.",
        "Check request rate limit specified in the API endpoint documentation resource.",
        Vec::new(),
        Some((
            "Throttling handling errors",
            "https://www.infobip.com/docs/essentials/integration-best-practices#throttling-handling-errors",
        )),
    )
}

pub fn error_500() -> ApiError {
    api_error(
        "E500",
        "Something went wrong.",
        "Contact the support.",
        Vec::new(),
        None,
    )
}

enum Credential {
    Scoped,
    Unscoped,
}

/// `Authorization: App <key>`; the scheme is matched case-insensitively, the key exactly and in
/// constant time.
fn authenticate(inner: &Inner, headers: &HeaderMap) -> Option<(Credential, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("App") {
        return None;
    }
    let key = key.trim();
    let same = |expected: &str| bool::from(key.as_bytes().ct_eq(expected.as_bytes()));
    if same(&inner.opts.api_key) {
        Some((Credential::Scoped, key.to_owned()))
    } else if inner.opts.unscoped_api_key.as_deref().is_some_and(same) {
        Some((Credential::Unscoped, key.to_owned()))
    } else {
        None
    }
}

/// Credentials, then the rate limit, then the scope: the refusal to send, if any.
fn refusal(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    let Some((credential, key)) = authenticate(inner, headers) else {
        tracing::info!("request refused: missing or invalid credentials (401)");
        return Some(inner.reject(StatusCode::UNAUTHORIZED, error_401()));
    };
    if !lock(&inner.throttle).allow(&key, Instant::now()) {
        tracing::info!("request throttled (429)");
        let mut response = inner.reject(StatusCode::TOO_MANY_REQUESTS, error_429());
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Some(response);
    }
    if let Credential::Unscoped = credential {
        return Some(match inner.opts.unscoped_status {
            UnscopedStatus::Forbidden => {
                tracing::info!("request refused: key lacks the billing:usage:view scope (403)");
                inner.reject(StatusCode::FORBIDDEN, error_403())
            }
            UnscopedStatus::Unauthorized => {
                tracing::info!(
                    "request refused: key lacks the billing:usage:view scope (401, --unscoped-status)"
                );
                inner.reject(StatusCode::UNAUTHORIZED, error_401())
            }
        });
    }
    None
}

async fn query(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let inner = &sim.inner;
    if let Some(response) = refusal(inner, &headers) {
        return response;
    }
    let submit = inner.submits.fetch_add(1, Ordering::Relaxed);
    if inner.fault(Fault::ServerError, submit) {
        tracing::info!(fault = "server_error", "answering 500 by fault injection");
        return inner.reject(StatusCode::INTERNAL_SERVER_ERROR, error_500());
    }
    let now = inner.clock.now();
    let query = match validate::validate(&body, now.date(), &inner.opts) {
        Ok(query) => query,
        Err(violations) => {
            tracing::info!(violations = violations.len(), "query rejected (400)");
            return inner.reject(StatusCode::BAD_REQUEST, error_400(violations));
        }
    };
    let request_id = format!("{:032X}", rand::random::<u128>());
    let seq = inner.accepted.fetch_add(1, Ordering::Relaxed);
    inner.count(|s| s.queries_accepted += 1);
    tracing::info!(request_id, "query accepted");
    if inner.opts.status_endpoint {
        lock(&inner.requests).insert(request_id.clone(), RequestState::InProgress);
    }
    {
        let mut queries = lock(&inner.queries);
        if queries.len() == super::KEPT_DELIVERIES {
            queries.pop_front();
        }
        queries.push_back(query.request.clone());
    }
    let delivery = tokio::spawn(deliver(
        Arc::clone(&sim.inner),
        Job {
            seq,
            request_id: request_id.clone(),
            callback_url: query.callback_url,
            request: query.request,
            now,
        },
    ));
    if inner.opts.callback_before_response {
        // Awaiting a spawned task, not the future itself: a client hanging up on the submit
        // must not cancel the delivery.
        tracing::info!(
            request_id,
            "delivering the callback before answering 201 (--callback-before-response)"
        );
        if let Err(e) = delivery.await {
            tracing::error!(request_id, error = %e, "the callback delivery task failed");
        }
    }
    (
        StatusCode::CREATED,
        Json(QueryAggregateDataResponse { request_id }),
    )
        .into_response()
}

/// An accepted query waiting for its callback. The result is computed for the instant it was
/// accepted, so a test that moves the clock afterwards still knows what it will get.
struct Job {
    seq: u64,
    request_id: String,
    callback_url: String,
    request: QueryBillingUsageApiRequest,
    now: OffsetDateTime,
}

async fn deliver(inner: Arc<Inner>, job: Job) {
    tokio::time::sleep(inner.opts.callback_delay).await;
    let request_id = job.request_id.clone();
    let failed = inner.fault(Fault::Failed, job.seq);
    if inner.opts.status_endpoint {
        let state = if failed {
            RequestState::Failed
        } else {
            RequestState::Success
        };
        lock(&inner.requests).insert(request_id.clone(), state);
    }
    if inner.fault(Fault::Drop, job.seq) {
        tracing::info!(
            request_id,
            fault = "drop_callback",
            "callback dropped by fault injection"
        );
        inner.count(|s| s.callbacks_dropped += 1);
        return;
    }
    let malformed = inner.fault(Fault::Malformed, job.seq);
    let duplicate = inner.fault(Fault::Duplicate, job.seq);
    let render = {
        let inner = Arc::clone(&inner);
        let request_id = request_id.clone();
        let request = job.request;
        move || {
            let mut body = if failed {
                serde_json::to_vec(&BillingUsageResult {
                    request_id,
                    status: QueryAggregateDataStatus::Failed,
                    failure_message: Some(FAILURE_MESSAGE.to_owned()),
                    response: None,
                    metadata: None,
                })
                .unwrap_or_default()
            } else {
                inner
                    .data
                    .query(&request, job.now, &inner.opts)
                    .to_body(&request_id)
            };
            if malformed {
                // A cut-off object is never valid JSON, like a body truncated in transit.
                body.truncate((body.len() / 2).max(1));
            }
            Bytes::from(body)
        }
    };
    // Large results take a while to build: keep that off the async workers.
    let body = match tokio::task::spawn_blocking(render).await {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(request_id, error = %e, "building the callback body failed");
            return;
        }
    };
    if failed {
        tracing::info!(
            request_id,
            fault = "failed",
            "sending a FAILED result by fault injection"
        );
        inner.count(|s| s.callbacks_failed += 1);
    }
    if malformed {
        tracing::info!(
            request_id,
            fault = "malformed_callback",
            "sending invalid JSON by fault injection"
        );
        inner.count(|s| s.callbacks_malformed += 1);
    }
    if duplicate {
        tracing::info!(
            request_id,
            fault = "duplicate_callback",
            "delivering twice by fault injection"
        );
        inner.count(|s| s.callbacks_duplicated += 1);
    }
    for _ in 0..if duplicate { 2 } else { 1 } {
        let mut redeliveries = 0;
        while !post_callback(
            &inner,
            &request_id,
            &job.callback_url,
            body.clone(),
            malformed,
        )
        .await
            && redeliveries < inner.opts.redeliver_on_non_2xx
        {
            redeliveries += 1;
            tracing::info!(
                request_id,
                attempt = redeliveries,
                of = inner.opts.redeliver_on_non_2xx,
                "re-delivering the callback (--redeliver-on-non-2xx)"
            );
            inner.count(|s| s.callbacks_redelivered += 1);
            tokio::time::sleep(inner.opts.callback_delay).await;
        }
    }
}

/// One POST, recorded and counted; `true` when the receiver answered 2xx.
async fn post_callback(
    inner: &Inner,
    request_id: &str,
    url: &str,
    body: Bytes,
    malformed: bool,
) -> bool {
    let sent = inner
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await;
    let status = match sent {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                tracing::info!(request_id, status = status.as_u16(), "callback delivered");
            } else {
                tracing::warn!(
                    request_id,
                    status = status.as_u16(),
                    "callback receiver answered non-2xx"
                );
            }
            Some(status.as_u16())
        }
        Err(e) => {
            tracing::warn!(request_id, error = %crate::errors::chain(&e), "callback receiver unreachable");
            None
        }
    };
    {
        let mut deliveries = lock(&inner.deliveries);
        // Bodies are large: a long-running simulator keeps only the most recent ones.
        if deliveries.len() == super::KEPT_DELIVERIES {
            deliveries.pop_front();
        }
        deliveries.push_back(Delivery {
            request_id: request_id.to_owned(),
            callback_url: url.to_owned(),
            body,
            status,
            malformed,
        });
    }
    let accepted = status.is_some_and(|code| (200..300).contains(&code));
    inner.count(|s| match status {
        _ if accepted => s.callbacks_delivered += 1,
        Some(_) => s.callbacks_rejected += 1,
        None => s.callbacks_unreachable += 1,
    });
    accepted
}

/// Where an accepted query stands, for the status endpoint. The names follow the Metrics API's
/// status endpoint, the nearest Infobip precedent (reference §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum RequestState {
    /// Waiting for the callback delay.
    InProgress,
    /// The result is built; the callback may still be on its way, or dropped by a fault.
    Success,
    /// The result is a `status: FAILED` one.
    Failed,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusAnswer<'a> {
    request_id: &'a str,
    status: RequestState,
    simulator_only: &'static str,
}

/// `GET /billing/1/usage/requests/{id}`: not an Infobip endpoint (reference A26).
async fn status(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let inner = &sim.inner;
    if let Some(response) = refusal(inner, &headers) {
        return response;
    }
    let state = lock(&inner.requests).get(&id).copied();
    let mut response = match state {
        Some(status) => Json(StatusAnswer {
            request_id: &id,
            status,
            simulator_only: NON_INFOBIP,
        })
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(api_error(
                "E404",
                "No query with this requestId was accepted here (simulator-only endpoint, not Infobip's).",
                "Use the requestId of a 201 answer from this simulator.",
                Vec::new(),
                None,
            )),
        )
            .into_response(),
    };
    response
        .headers_mut()
        .insert("x-simulator-non-infobip", HeaderValue::from_static("true"));
    response
}
