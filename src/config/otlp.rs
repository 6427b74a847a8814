//! The optional `otlp` section: where and how the data metrics are pushed.

use std::time::Duration;

use super::durations::{MAX_INTERVAL, validate_duration};
use super::problems::Problems;
use super::raw::RawOtlp;
use super::url::{HttpUrl, redact_userinfo};

pub const DEFAULT_OTLP_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The URL pushes go to (for http/protobuf, `/v1/metrics` already appended when needed).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub interval: Duration,
    pub headers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

pub(super) fn validate_otlp(raw: Option<RawOtlp>, p: &mut Problems) -> Option<Option<OtlpConfig>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let protocol = match raw.protocol.as_deref().map(str::trim) {
        None | Some("grpc") => Some(OtlpProtocol::Grpc),
        Some("http/protobuf") => Some(OtlpProtocol::HttpProtobuf),
        Some(other) => {
            p.push(
                "otlp.protocol",
                format!("{other:?} is not supported; expected grpc or http/protobuf"),
            );
            None
        }
    };
    const EXPECTED: &str = "expected the collector's http(s) URL, e.g. http://otel-collector:4317";
    let endpoint = match raw.endpoint {
        None => {
            p.push("otlp.endpoint", format!("missing; {EXPECTED}"));
            None
        }
        Some(text) => match HttpUrl::parse(&text, None) {
            Ok(url) => Some(url),
            Err(reason) => {
                let shown = redact_userinfo(&text);
                p.push("otlp.endpoint", format!("{shown:?} {reason}; {EXPECTED}"));
                None
            }
        },
    };
    let interval = validate_duration(
        "otlp.interval",
        raw.interval.as_deref(),
        DEFAULT_OTLP_INTERVAL,
        (Duration::from_secs(1), MAX_INTERVAL, "1s to 1d, e.g. 60s"),
        p,
    );
    let mut headers_ok = true;
    let headers = raw.headers.unwrap_or_default();
    for (name, value) in &headers {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            p.push(
                format!("otlp.headers.{name}"),
                "is not a valid header name; expected letters, digits, '-' and '_'",
            );
            headers_ok = false;
        } else if value.bytes().any(|b| b.is_ascii_control()) {
            // The value is not echoed: headers usually carry credentials.
            p.push(
                format!("otlp.headers.{name}"),
                "the value contains line breaks or control characters; expected one line",
            );
            headers_ok = false;
        }
    }
    let (endpoint, protocol, interval) = (endpoint?, protocol?, interval?);
    if !headers_ok {
        return None;
    }
    // The OTLP/HTTP convention: a base URL gets the signal path appended.
    let endpoint = match protocol {
        OtlpProtocol::HttpProtobuf if endpoint.path.is_empty() => format!("{endpoint}/v1/metrics"),
        _ => endpoint.to_string(),
    };
    Some(Some(OtlpConfig {
        endpoint,
        protocol,
        interval,
        headers,
    }))
}
