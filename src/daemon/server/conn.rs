//! One connection of a listener: TLS when configured, then HTTP/1.1 with hyper, under the
//! listener's timeouts.
//!
//! A connection is always in one [`Phase`], which its own task watches to apply the right
//! deadline: the request head (header timeout, from accepting or from the first byte of a
//! further request), keep-alive idle (idle timeout), the handler (no deadline here: its body
//! has its own, see [`TimedBody`]) and writing the response (body timeout). hyper's own
//! `header_read_timeout` cannot do this: it starts when the connection turns idle, so idle and
//! header timeouts would be one. The phase also tells the listener which connections it may
//! close to make room: those without a request in progress.

use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::security::Security;
use crate::config::ListenerLimits;
use crate::export::selfmetrics::{HttpRejection, Listener, SelfMetrics};

/// Request line and headers together; more is answered 431. Go allows 1 MiB, nginx 8 to 32 KiB:
/// a scrape or a callback sends well under 1 KiB.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What every connection of one listener shares.
pub(super) struct Context {
    pub(super) listener: Listener,
    pub(super) limits: ListenerLimits,
    pub(super) router: Router,
    pub(super) security: Arc<Security>,
    pub(super) metrics: SelfMetrics,
}

impl Context {
    fn rejected(&self, why: HttpRejection) {
        tracing::debug!(
            listener = self.listener.as_str(),
            reason = why.reason(),
            "connection or request rejected"
        );
        self.metrics.http_rejected(self.listener, why);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Reading a request head (a new connection starts here, TLS handshake included).
    Head = 0,
    /// Kept alive, waiting for the next request.
    Idle = 1,
    /// A handler has the request.
    Handling = 2,
    /// The response is being written.
    Responding = 3,
}

/// The part of a connection its listener sees.
#[derive(Debug)]
pub(super) struct ConnState {
    phase: AtomicU8,
    /// Bumped on every change of phase: one poll of the connection can go through a whole
    /// request (idle, head, handling, responding, idle), which must still restart the deadline.
    changes: AtomicU64,
    /// Cancelled to close the connection: eviction or shutdown. A request in progress finishes
    /// first.
    pub(super) close: CancellationToken,
}

impl ConnState {
    pub(super) fn new(close: CancellationToken) -> Self {
        ConnState {
            phase: AtomicU8::new(Phase::Head as u8),
            changes: AtomicU64::new(0),
            close,
        }
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Head,
            1 => Phase::Idle,
            2 => Phase::Handling,
            _ => Phase::Responding,
        }
    }

    fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// The response is written: idle again, unless a later phase began meanwhile.
    fn responded(&self) {
        let was = self.phase.compare_exchange(
            Phase::Responding as u8,
            Phase::Idle as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if was.is_ok() {
            self.changes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// No request in progress: waiting for one, or for the rest of its head.
    pub(super) fn is_idle(&self) -> bool {
        matches!(self.phase(), Phase::Head | Phase::Idle)
    }
}

/// Serves one accepted connection until it closes, times out or is told to close.
pub(super) async fn serve(
    ctx: Arc<Context>,
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<ConnState>,
    accepted: Instant,
) {
    let head_deadline = accepted + ctx.limits.header_timeout;
    let Some(tls) = ctx.security.current().tls.clone() else {
        return drive(ctx, stream, peer, state, head_deadline).await;
    };
    let close = state.close.clone();
    let handshake = async {
        // A plain HTTP request on the TLS port gets Go's answer rather than a bare close.
        let mut first = [0u8; 1];
        let mut stream = stream;
        if stream.peek(&mut first).await.ok()? == 1 && first[0] != TLS_HANDSHAKE_RECORD {
            let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
            let _ = stream.shutdown().await;
            // Closing with the request unread would reset the connection and lose the answer.
            let mut unread = [0u8; 4096];
            for _ in 0..16 {
                if matches!(stream.read(&mut unread).await, Ok(0) | Err(_)) {
                    break;
                }
            }
            return None;
        }
        tokio_rustls::TlsAcceptor::from(tls)
            .accept(stream)
            .await
            .ok()
    };
    tokio::select! {
        done = tokio::time::timeout_at(head_deadline, handshake) => match done {
            Ok(Some(stream)) => drive(ctx, stream, peer, state, head_deadline).await,
            _ => ctx.rejected(HttpRejection::TlsHandshake),
        },
        // Evicted (counted by the listener) or shutting down.
        () = close.cancelled() => {}
    }
}

/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 48\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

enum End {
    Done(Result<(), hyper::Error>),
    Closed(Option<HttpRejection>),
}

async fn drive<I>(
    ctx: Arc<Context>,
    io: I,
    peer: SocketAddr,
    state: Arc<ConnState>,
    head_deadline: Instant,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let (ctx, state) = (Arc::clone(&ctx), Arc::clone(&state));
        hyper::service::service_fn(move |request: Request<Incoming>| {
            state.set(Phase::Handling);
            handle(Arc::clone(&ctx), Arc::clone(&state), peer, request)
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .header_read_timeout(None)
        .max_header_size(MAX_HEAD_BYTES);
    let io = Watched {
        io,
        state: Arc::clone(&state),
    };
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
    let close = state.close.clone();
    let mut close = pin!(close.cancelled());
    let mut sleep = pin!(tokio::time::sleep_until(head_deadline));
    let (mut seen, mut deadline_on, mut draining) = (0, true, false);
    let limits = ctx.limits;
    let end = poll_fn(|cx| {
        if let Poll::Ready(done) = conn.as_mut().poll(cx) {
            return Poll::Ready(End::Done(done));
        }
        let phase = state.phase();
        let changes = state.changes.load(Ordering::Relaxed);
        if changes != seen {
            seen = changes;
            let timeout = match phase {
                Phase::Head => Some(limits.header_timeout),
                Phase::Idle => Some(limits.idle_timeout),
                Phase::Handling => None,
                Phase::Responding => Some(limits.body_timeout),
            };
            deadline_on = timeout.is_some();
            if let Some(timeout) = timeout {
                sleep.as_mut().reset(Instant::now() + timeout);
            }
        }
        if !draining && close.as_mut().poll(cx).is_ready() {
            if state.is_idle() {
                return Poll::Ready(End::Closed(None));
            }
            // A request is in progress: hyper closes once its response is written.
            draining = true;
            conn.as_mut().graceful_shutdown();
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if deadline_on && sleep.as_mut().poll(cx).is_ready() {
            let why = match phase {
                Phase::Idle => HttpRejection::IdleTimeout,
                Phase::Responding => HttpRejection::ResponseTimeout,
                Phase::Head | Phase::Handling => HttpRejection::HeaderTimeout,
            };
            return Poll::Ready(End::Closed(Some(why)));
        }
        Poll::Pending
    })
    .await;
    match end {
        End::Closed(Some(why)) => ctx.rejected(why),
        End::Closed(None) | End::Done(Ok(())) => {}
        End::Done(Err(err)) => {
            if err.is_parse_too_large() {
                ctx.rejected(HttpRejection::HeaderTooLarge);
            } else if err.is_parse() {
                ctx.rejected(HttpRejection::MalformedRequest);
            } else {
                tracing::debug!(listener = ctx.listener.as_str(), "connection ended: {err}");
            }
        }
    }
}

async fn handle(
    ctx: Arc<Context>,
    state: Arc<ConnState>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<GuardedBody>, Infallible> {
    let deadline = Instant::now() + ctx.limits.body_timeout;
    let mut request = request.map(|body| {
        Body::new(TimedBody {
            inner: body,
            deadline,
            sleep: None,
            ctx: Arc::clone(&ctx),
            timed_out: false,
        })
    });
    request.extensions_mut().insert(ConnectInfo(peer));
    // Per request, so a changed password or header applies to kept-alive connections too.
    let active = ctx.security.current();
    let allowed = match &active.auth {
        Some(auth) => auth.allows(request.headers()).await,
        None => true,
    };
    let mut response = if allowed {
        match ctx.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    } else {
        ctx.rejected(HttpRejection::Unauthorized);
        super::auth::unauthorized()
    };
    for (name, value) in &active.headers {
        response.headers_mut().insert(name, value.clone());
    }
    state.set(Phase::Responding);
    Ok(response.map(|inner| GuardedBody { inner, state }))
}

/// The response body; once hyper has written and dropped it, the connection is idle again.
pub(super) struct GuardedBody {
    inner: Body,
    state: Arc<ConnState>,
}

impl Drop for GuardedBody {
    fn drop(&mut self) {
        self.state.responded();
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that must arrive whole within the body timeout, counted in
/// `http_rejections_total` when it does not (or when its chunked encoding is broken). The
/// error is an `io::Error` of kind `TimedOut`, so that a handler can tell it apart.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    /// Made on the first wait only: most bodies are empty or already buffered.
    sleep: Option<Pin<Box<Sleep>>>,
    ctx: Arc<Context>,
    timed_out: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(err))) => {
                if is_malformed(&err) {
                    this.ctx.rejected(HttpRejection::MalformedBody);
                }
                return Poll::Ready(Some(Err(err.into())));
            }
            Poll::Ready(frame) => return Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {}
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if !this.timed_out {
            this.timed_out = true;
            this.ctx.rejected(HttpRejection::BodyTimeout);
        }
        Poll::Ready(Some(Err(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive within the body timeout",
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A broken chunked encoding, as opposed to a peer that went away.
fn is_malformed(err: &hyper::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            )
        })
}

/// The connection's socket (or TLS stream), noting the first byte of a request on a
/// kept-alive connection: from there its head has the header timeout, no longer the idle one.
struct Watched<I> {
    io: I,
    state: Arc<ConnState>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before && self.state.phase() == Phase::Idle {
            self.state.set(Phase::Head);
        }
        read
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
impl ConnState {
    pub(super) fn set_busy_for_test(&self) {
        self.set(Phase::Handling);
    }
}
