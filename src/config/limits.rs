//! What each listener allows a connection: its timeouts and how many connections it holds.
//!
//! The defaults follow what a Prometheus scrape and an Infobip callback need, not more: a
//! request's headers within 10 s of connecting (or of its first byte on a kept-alive
//! connection), a kept-alive connection idle for at most 60 s (Prometheus scrapes every 15 s to
//! 1 min and keeps its connection), and a body within 5 min, which carries a 256 MiB callback at
//! about 1 MB/s. The callback listener holds 512 connections, the web listener 64: far more than
//! Infobip or a few scrapers open, and with both full the exporter stays under 1,024 descriptors.

use std::path::PathBuf;
use std::time::Duration;

use super::durations::validate_duration;
use super::problems::Problems;

/// Timeouts and the connection bound of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// From accepting a connection (or the first byte of a further request on it) to the end of
    /// the request's headers, TLS handshake included.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long a request body may take to arrive, and a response to be written.
    pub body_timeout: Duration,
    /// Connections held at once; past it the oldest idle one makes room, or the new one is
    /// closed when every connection has a request in progress.
    pub max_connections: usize,
}

impl ListenerLimits {
    pub const WEB: ListenerLimits = ListenerLimits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(5 * 60),
        max_connections: 64,
    };
    pub const CALLBACK: ListenerLimits = ListenerLimits {
        max_connections: 512,
        ..ListenerLimits::WEB
    };
}

/// The certificate and key a listener presents, PEM files re-read when they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The four keys as written under `web:` or `callback:`.
pub(super) struct RawLimits {
    pub(super) header_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) body_timeout: Option<String>,
    pub(super) max_connections: Option<String>,
}

const MAX_CONNECTIONS: usize = 65_536;

pub(super) fn validate_limits(
    section: &str,
    raw: RawLimits,
    defaults: ListenerLimits,
    p: &mut Problems,
) -> Option<ListenerLimits> {
    let short = (
        Duration::from_millis(100),
        Duration::from_secs(600),
        "100ms to 10m, e.g. 10s",
    );
    let long = (
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "100ms to 1h, e.g. 5m",
    );
    let header_timeout = validate_duration(
        &format!("{section}.header_timeout"),
        raw.header_timeout.as_deref(),
        defaults.header_timeout,
        short,
        p,
    );
    let idle_timeout = validate_duration(
        &format!("{section}.idle_timeout"),
        raw.idle_timeout.as_deref(),
        defaults.idle_timeout,
        long,
        p,
    );
    let body_timeout = validate_duration(
        &format!("{section}.body_timeout"),
        raw.body_timeout.as_deref(),
        defaults.body_timeout,
        long,
        p,
    );
    let max_connections = match raw.max_connections {
        None => Some(defaults.max_connections),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_CONNECTIONS).contains(&n) => Some(n),
            _ => {
                p.push(
                    format!("{section}.max_connections"),
                    format!(
                        "{text:?} is not a whole number from 1 to {MAX_CONNECTIONS}; expected e.g. {}",
                        defaults.max_connections
                    ),
                );
                None
            }
        },
    };
    Some(ListenerLimits {
        header_timeout: header_timeout?,
        idle_timeout: idle_timeout?,
        body_timeout: body_timeout?,
        max_connections: max_connections?,
    })
}

/// `callback.tls`: both files, or a problem for each one missing.
pub(super) fn validate_cert_files(
    section: &str,
    cert_file: Option<String>,
    key_file: Option<String>,
    p: &mut Problems,
) -> Option<CertFiles> {
    let mut file = |key: &str, value: Option<String>| match value {
        Some(v) if !v.trim().is_empty() => Some(PathBuf::from(v.trim())),
        _ => {
            p.push(
                format!("{section}.{key}"),
                "missing; expected the path of a PEM file (both cert_file and key_file are needed)",
            );
            None
        }
    };
    let cert_file = file("cert_file", cert_file);
    let key_file = file("key_file", key_file);
    Some(CertFiles {
        cert_file: cert_file?,
        key_file: key_file?,
    })
}
