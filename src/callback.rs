//! The webhook receiver. Infobip posts each result once to the callback URL of its query; the
//! secret token in that URL and the `requestId` it was answered with are the only proof of
//! origin (reference §10, A15), so both must match a query this exporter sent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};

use crate::exporter::Shared;
use crate::infobip::result::{self, Outcome};
use crate::scheduler::QueryState;

/// Largest callback body accepted: a large customer's daily breakdown runs to hundreds of MiB.
pub const MAX_BODY: usize = 256 * 1024 * 1024;

/// How long a callback that beat the `201` waits for its `requestId` to be recorded (A27).
const REQUEST_ID_WAIT: Duration = Duration::from_secs(5);

/// `POST /callback/{target}/{token}`.
pub async fn receive(
    State(shared): State<Arc<Shared>>,
    Path((target, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (status, outcome) = handle(&shared, &target, &token, &headers, &body).await;
    if status.is_success() {
        tracing::debug!(target = %target, outcome, "callback handled");
    } else {
        tracing::warn!(target = %target, outcome, status = status.as_u16(), "callback rejected");
        shared.metrics.callback_rejected(outcome);
    }
    status
}

async fn handle(
    shared: &Shared,
    target: &str,
    token: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, &'static str) {
    let Some(query) = shared.lock_pending().find(token).cloned() else {
        return (StatusCode::NOT_FOUND, "unknown_token");
    };
    if query.target != target {
        return (StatusCode::NOT_FOUND, "unknown_token");
    }
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type");
    }
    let decoded = match result::decode(body) {
        Ok(decoded) => decoded,
        Err(err) => {
            tracing::warn!(target = %target, month = %query.month, "unusable callback body, the query will be sent again: {err}");
            mark(shared, token, QueryState::Failed);
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
        return (StatusCode::OK, "duplicate");
    }
    match decoded.outcome {
        Outcome::Success(usage) => {
            // Settled before applying, so the state saved with the result already says so.
            shared.lock_pending().settle(token, QueryState::Done);
            let report = shared.apply(target, usage);
            shared.query_settled();
            for r in &report.restatements {
                let msg = "restated";
                if r.was_final {
                    tracing::warn!(target = %target, day = %r.day, currency = %r.currency, old = %r.old, new = %r.new, "{msg} a day of a finalized month");
                } else {
                    tracing::info!(target = %target, day = %r.day, currency = %r.currency, old = %r.old, new = %r.new, "{msg}");
                }
            }
            let now = shared.clock.now().unix_timestamp_nanos() as f64 / 1e9;
            shared
                .metrics
                .result_applied(target, now, report.restatements.len());
            tracing::info!(target = %target, month = %query.month, days = report.days_replaced, "result applied");
            (StatusCode::OK, "applied")
        }
        Outcome::Failed { message } => {
            tracing::warn!(target = %target, month = %query.month, "Infobip could not run the query ({message}); it will be sent again");
            shared.metrics.result_failed(target);
            mark(shared, token, QueryState::Failed);
            (StatusCode::OK, "failed_result")
        }
    }
}

fn mark(shared: &Shared, token: &str, state: QueryState) {
    shared.lock_pending().settle(token, state);
    shared.persist();
    shared.query_settled();
}

/// The query's `requestId`, waiting briefly when the callback arrived before the `201`.
async fn recorded_request_id(shared: &Shared, token: &str) -> Option<String> {
    let wait = async {
        loop {
            let notified = shared.request_id_recorded.notified();
            match shared
                .lock_pending()
                .find(token)
                .map(|q| q.request_id.clone())
            {
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
