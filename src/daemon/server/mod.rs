//! The two listeners: the internal web listener (metrics, health) and the public callback
//! listener, kept apart so the callback port can be exposed without exposing metrics.
//!
//! - [`listener`]: the accept loop and the bound on connections, evicting idle ones.
//! - [`conn`]: one connection under the header, idle and body timeouts.
//! - [`security`]: TLS, basic auth and headers from their files, re-read when they change.
//! - [`tls`]: rustls settings from the web config file or the callback certificate.
//! - [`auth`]: basic auth against bcrypt hashes.

mod auth;
mod conn;
mod listener;
pub mod security;
mod tls;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::compression::{CompressionLayer, CompressionLevel};

pub use self::security::{Security, SecurityError};
pub use self::tls::TlsError;
use crate::config::ListenerLimits;
use crate::daemon::callback;
use crate::daemon::shared::Shared;
use crate::export::exposition::{self, Format};
pub use crate::export::selfmetrics::Listener;
use crate::export::selfmetrics::SelfMetrics;

/// gzip when the scraper asks for it (Prometheus always does). The fastest level: an
/// exposition compresses about tenfold even so, and the work stays small on the async worker.
pub fn web_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(ready))
        // As in Prometheus: POST or PUT re-reads the config file.
        .route("/-/reload", post(reload).put(reload))
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .with_state(shared)
}

/// The callback body is streamed and its size limit enforced while decoding, so axum's own
/// buffering limit does not apply here.
///
/// `callback.public_url` may end in a path prefix that a proxy passes on unchanged: a request
/// under it is routed as the same path without it. The prefix is read per request, so a reload
/// that changes it applies to the next callback.
pub fn callback_router(shared: Arc<Shared>) -> Router {
    let routes = Router::new()
        .route(
            "/callback/{target}/{token}",
            post(callback::receive).fallback(callback::wrong_method),
        )
        .fallback(callback::unknown_path)
        .with_state(Arc::clone(&shared));
    let unprefixed = routes.map_request(move |mut request: Request<Body>| {
        if let Some(uri) = without_prefix(request.uri(), &shared.settings().callback_prefix) {
            *request.uri_mut() = uri;
        }
        request
    });
    Router::new().fallback_service(unprefixed)
}

/// `uri` without `prefix` when it starts with `prefix` followed by `/callback/`.
fn without_prefix(uri: &Uri, prefix: &str) -> Option<Uri> {
    if prefix.is_empty() {
        return None;
    }
    let rest = uri.path().strip_prefix(prefix)?;
    if !rest.starts_with("/callback/") {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    path_and_query.parse().ok()
}

/// One listener: its router and what it allows a connection.
pub struct Listening {
    pub listener: Listener,
    pub router: Router,
    pub limits: ListenerLimits,
    pub security: Arc<Security>,
    pub metrics: SelfMetrics,
}

/// Serves until `shutdown`, then lets in-flight requests finish. Handlers see the peer address
/// as `ConnectInfo<SocketAddr>`.
pub async fn serve(listener: TcpListener, listening: Listening, shutdown: CancellationToken) {
    let ctx = conn::Context {
        listener: listening.listener,
        limits: listening.limits,
        router: listening.router,
        security: listening.security,
        metrics: listening.metrics,
    };
    listener::run(listener, ctx, shutdown).await;
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match exposition::render(&shared.store.exposition(), &shared.registry, format) {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(err) => {
            tracing::error!("encoding metrics failed: {err}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Answers once the reload is done: `500` with the reason when the new config was refused.
async fn reload(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    match shared.reload().await {
        Ok(()) => (StatusCode::OK, "config reloaded\n".into()),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {err}\n"),
        ),
    }
}

/// Ready once billing figures are there to serve.
async fn ready(State(shared): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if shared
        .store
        .exposition()
        .snapshot
        .targets_with_data
        .is_empty()
    {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first billing result\n",
        )
    } else {
        (StatusCode::OK, "ready\n")
    }
}

async fn index() -> Html<&'static str> {
    Html(
        "<html><head><title>Infobip billing exporter</title></head><body>\
         <h1>Infobip billing exporter</h1>\
         <p><a href=\"/metrics\">Metrics</a> · <a href=\"/-/healthy\">Healthy</a> · \
         <a href=\"/-/ready\">Ready</a></p></body></html>",
    )
}
