//! The webhook receiver. Infobip posts each result once to the callback URL of its query; the
//! secret token in that URL and the `requestId` it was answered with are the only proof of
//! origin (reference §10, A15), so both must match a query this exporter sent. Every rejection
//! is counted in `callbacks_total{outcome}` with a bounded reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_LENGTH, header::CONTENT_TYPE};
use http_body_util::BodyExt;
use tokio::sync::Notify;

use crate::billing::ledger::SegmentKey;
use crate::daemon::pending::{QueryState, wall_now};
use crate::daemon::shared::{Settings, Shared};
use crate::infobip::result::{DecodeError, Decoded, Outcome, StreamDecoder};

/// How long a callback that beat the `201` waits for its `requestId` to be recorded (A27).
const REQUEST_ID_WAIT: Duration = Duration::from_secs(5);

/// `POST /callback/{target}/{token}`.
pub async fn receive(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((target, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    let (status, outcome) = handle(&shared, peer, &target, &token, &headers, body).await;
    if status.is_success() {
        tracing::debug!(target = %target, outcome, "callback handled");
        status
    } else {
        reject(&shared, status, outcome)
    }
}

/// Any other method on a callback path.
pub async fn wrong_method(State(shared): State<Arc<Shared>>) -> StatusCode {
    reject(&shared, StatusCode::METHOD_NOT_ALLOWED, "method")
}

/// Any path that is not a callback path.
pub async fn unknown_path(State(shared): State<Arc<Shared>>) -> StatusCode {
    reject(&shared, StatusCode::NOT_FOUND, "unknown_path")
}

fn reject(shared: &Shared, status: StatusCode, outcome: &'static str) -> StatusCode {
    tracing::warn!(outcome, status = status.as_u16(), "callback rejected");
    shared.metrics.callback_rejected(outcome);
    status
}

async fn handle(
    shared: &Shared,
    peer: SocketAddr,
    target: &str,
    token: &str,
    headers: &HeaderMap,
    body: Body,
) -> (StatusCode, &'static str) {
    let settings = shared.settings();
    let allowed = &settings.callback_cidrs;
    if !allowed.is_empty() && !allowed.iter().any(|net| net.contains(&peer.ip())) {
        return (StatusCode::FORBIDDEN, "source_not_allowed");
    }
    let Some(query) = shared.lock_pending().find(token).cloned() else {
        return (StatusCode::NOT_FOUND, "unknown_token");
    };
    if query.target != target {
        return (StatusCode::NOT_FOUND, "unknown_token");
    }
    if !is_json(headers) {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type");
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.callback_max_body as u64) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    }
    let decoded = match read_streaming(&settings, body).await {
        Ok(decoded) => decoded,
        Err(Unusable::TooLarge) => return (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        Err(Unusable::Unreadable) => return (StatusCode::BAD_REQUEST, "body_unreadable"),
        Err(Unusable::TimedOut) => return (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
        Err(Unusable::Decode(err)) => {
            if query.state == QueryState::Sent {
                tracing::warn!(target = %target, month = %query.month, "unusable callback body, the query will be sent again: {err}");
                mark(shared, token, QueryState::Failed).await;
            }
            return (StatusCode::BAD_REQUEST, err.reason());
        }
    };
    let Some(expected) = recorded_request_id(shared, token).await else {
        return (StatusCode::CONFLICT, "request_id_unknown");
    };
    if decoded.request_id != expected {
        return (StatusCode::CONFLICT, "request_id_mismatch");
    }
    if query.state == QueryState::Done {
        shared.metrics.duplicate_callback();
        return (StatusCode::OK, "duplicate");
    }
    match decoded.outcome {
        Outcome::Success(usage) => {
            let request_id = decoded.request_id;
            let superseded = {
                let mut pending = shared.lock_pending();
                let superseded = pending.superseded(&query);
                // Settled before applying, so the state saved with the result already says so.
                pending.settle(token, QueryState::Done);
                superseded
            };
            if superseded {
                tracing::info!(target = %target, month = %query.month, "late result of an older query ignored: a newer one was already applied");
                shared.metrics.result_superseded();
                shared.persist_pending().await;
                return (StatusCode::OK, "superseded");
            }
            let key = SegmentKey::new(target, query.month);
            // One instant for the segment and the self-metrics: a restart restores the same age.
            let now = wall_now();
            let applied = shared.store.apply(key, query.range, usage, now).await;
            shared.persist_pending().await;
            shared.query_settled();
            let report = applied.report;
            if report.reached_outside {
                tracing::warn!(target = %target, month = %query.month, facts_left_out = report.facts_outside, "the result's period reaches outside the month its query asked for; only the days inside were applied");
            }
            for r in &report.restatements {
                if r.was_final {
                    tracing::warn!(target = %target, day = %r.day, currency = %r.currency, old = %r.old, new = %r.new, "a day of a finalized month was restated");
                } else {
                    tracing::info!(target = %target, day = %r.day, currency = %r.currency, old = %r.old, new = %r.new, "restated");
                }
            }
            let latency = (now - query.submitted_at).as_seconds_f64().max(0.0);
            shared.metrics.result_applied(target, latency);
            tracing::info!(target = %target, month = %query.month, request_id = %request_id, days = report.days_replaced, "result applied");
            (StatusCode::OK, "applied")
        }
        Outcome::Failed { message } => {
            tracing::warn!(target = %target, month = %query.month, "Infobip could not run the query ({message}); it will be sent again");
            shared.metrics.result_failed(target);
            // A query already failed or resent is being sent again anyway.
            if query.state == QueryState::Sent {
                mark(shared, token, QueryState::Failed).await;
            }
            (StatusCode::OK, "failed_result")
        }
    }
}

enum Unusable {
    TooLarge,
    Unreadable,
    /// Not received whole within `callback.body_timeout`.
    TimedOut,
    Decode(DecodeError),
}

/// Decodes the body as it arrives, on a blocking thread fed frame by frame (decoding is CPU work
/// that must not hold an async worker), never holding more than a few frames of it, and stops
/// reading once it passes `callback.max_body`.
async fn read_streaming(settings: &Settings, mut body: Body) -> Result<Decoded, Unusable> {
    let (frames, mut to_decode) = tokio::sync::mpsc::channel::<axum::body::Bytes>(16);
    let dimensions = settings.metric_model.dimensions.clone();
    let decoding = tokio::task::spawn_blocking(move || {
        let mut decoder = StreamDecoder::new(&dimensions);
        while let Some(data) = to_decode.blocking_recv() {
            decoder.feed(&data)?;
        }
        decoder.finish()
    });
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            if timed_out(&err) {
                Unusable::TimedOut
            } else {
                Unusable::Unreadable
            }
        })?;
        if let Ok(data) = frame.into_data() {
            read += data.len();
            if read > settings.callback_max_body {
                return Err(Unusable::TooLarge);
            }
            // A closed channel means the decoder stopped at an error, which it returns below.
            if frames.send(data).await.is_err() {
                break;
            }
        }
    }
    drop(frames);
    decoding
        .await
        .map_err(|_| Unusable::Unreadable)?
        .map_err(Unusable::Decode)
}

/// The listener ends a body that does not arrive in time with an `io::Error` of kind
/// `TimedOut`.
fn timed_out(err: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

async fn mark(shared: &Shared, token: &str, state: QueryState) {
    shared.lock_pending().settle(token, state);
    shared.persist_pending().await;
    shared.query_settled();
}

/// Whether the body is declared `application/json` (parameters such as a charset allowed).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The query's `requestId`, waiting briefly when the callback arrived before the `201`.
async fn recorded_request_id(shared: &Shared, token: &str) -> Option<String> {
    wait_for_request_id(&shared.request_id_recorded, || {
        shared
            .lock_pending()
            .find(token)
            .map(|q| q.request_id.clone())
    })
    .await
}

/// The `requestId` `lookup` finds (`None`: no such query; `Some(None)`: not recorded yet),
/// checked again each time `recorded` is notified, for at most [`REQUEST_ID_WAIT`]: a callback
/// can beat the `201` that carries its `requestId` (A27).
pub(crate) async fn wait_for_request_id(
    recorded: &Notify,
    lookup: impl Fn() -> Option<Option<String>>,
) -> Option<String> {
    let wait = async {
        loop {
            // Created before the lookup, so a notification in between is not lost.
            let notified = recorded.notified();
            match lookup() {
                None => return None,
                Some(Some(id)) => return Some(id),
                Some(None) => {}
            }
            notified.await;
        }
    };
    tokio::time::timeout(REQUEST_ID_WAIT, wait)
        .await
        .ok()
        .flatten()
}
