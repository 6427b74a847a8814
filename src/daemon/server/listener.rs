//! The accept loop of a listener and its bound on connections.
//!
//! Each listener holds at most `max_connections`. When it is full, a new connection closes the
//! oldest one that has no request in progress (waiting for its first byte, sending its headers
//! slowly, or idle between requests); only when every connection has a request in progress is
//! the new one closed instead. So a flood of idle or slow connections can neither starve the
//! other listener nor a callback already being read, and a genuine request still gets in. A
//! connection picked for closing whose request began in the same instant finishes it first, so
//! for that moment the listener holds one more than its bound.
//!
//! `accept()` failing for want of descriptors (EMFILE) leaves the connection in the kernel's
//! queue; the loop pauses (5 ms, doubling to 1 s, as Go's `http.Server` does) instead of
//! spinning, and counts each failure.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::conn::{self, ConnState, Context};
use crate::export::selfmetrics::HttpRejection;

const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// Serves `listener` until `shutdown`, then lets requests in progress finish.
pub(super) async fn run(listener: TcpListener, ctx: Context, shutdown: CancellationToken) {
    let ctx = Arc::new(ctx);
    let tracker = Arc::new(Tracker {
        bound: ctx.limits.max_connections,
        conns: Mutex::new(Connections::default()),
    });
    let mut conns = JoinSet::new();
    let mut pause: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_per_connection(&err) => continue,
            Err(err) => {
                ctx.metrics
                    .http_rejected(ctx.listener, HttpRejection::AcceptError);
                let wait = pause.map_or(FIRST_PAUSE, |p| (p * 2).min(LONGEST_PAUSE));
                if pause.is_none() {
                    tracing::warn!(
                        listener = ctx.listener.as_str(),
                        "cannot accept connections: {err}; retrying"
                    );
                }
                pause = Some(wait);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        pause = None;
        let accepted_at = Instant::now();
        let Some((slot, state, evicted)) = Tracker::admit(&tracker, &shutdown) else {
            ctx.metrics
                .http_rejected(ctx.listener, HttpRejection::OverLimit);
            drop(stream);
            continue;
        };
        if evicted {
            ctx.metrics
                .http_rejected(ctx.listener, HttpRejection::EvictedIdle);
        }
        let ctx = Arc::clone(&ctx);
        conns.spawn(async move {
            conn::serve(ctx, stream, peer, state, accepted_at).await;
            drop(slot);
        });
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Errors about one connection that was already gone, not about the listener.
fn is_per_connection(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

/// The open connections of one listener, oldest first.
struct Tracker {
    bound: usize,
    conns: Mutex<Connections>,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    open: BTreeMap<u64, Arc<ConnState>>,
}

/// A connection's place in its listener; given back when the connection ends.
struct Slot {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.tracker.lock().open.remove(&self.id);
    }
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new connection, closing the oldest idle one when full (`true`), or `None`
    /// when every connection has a request in progress.
    fn admit(
        this: &Arc<Tracker>,
        shutdown: &CancellationToken,
    ) -> Option<(Slot, Arc<ConnState>, bool)> {
        let mut conns = this.lock();
        let mut evicted = false;
        if conns.open.len() >= this.bound {
            let oldest_idle = conns
                .open
                .iter()
                .find(|(_, c)| c.is_idle())
                .map(|(id, _)| *id)?;
            if let Some(conn) = conns.open.remove(&oldest_idle) {
                conn.close.cancel();
                evicted = true;
            }
        }
        let id = conns.next_id;
        conns.next_id += 1;
        let state = Arc::new(ConnState::new(shutdown.child_token()));
        conns.open.insert(id, Arc::clone(&state));
        let slot = Slot {
            tracker: Arc::clone(this),
            id,
        };
        Some((slot, state, evicted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_listener_closes_its_oldest_idle_connection_and_never_a_busy_one() {
        let tracker = Arc::new(Tracker {
            bound: 2,
            conns: Mutex::new(Connections::default()),
        });
        let shutdown = CancellationToken::new();
        let (first, a, _) = Tracker::admit(&tracker, &shutdown).unwrap();
        let (_second, b, _) = Tracker::admit(&tracker, &shutdown).unwrap();
        let (_third, c, evicted) = Tracker::admit(&tracker, &shutdown).unwrap();
        assert!(evicted && a.close.is_cancelled() && !b.close.is_cancelled());
        drop(first);
        assert_eq!(
            tracker.lock().open.len(),
            2,
            "the evicted slot was already given back"
        );
        b.set_busy_for_test();
        c.set_busy_for_test();
        assert!(Tracker::admit(&tracker, &shutdown).is_none(), "all busy");
    }
}
