//! The optional `otlp` section, and the OpenTelemetry environment variables that fill in what it
//! leaves out: where and how the metrics are pushed.
//!
//! Precedence, as OTel SDKs do it: a key the config file sets wins over the environment; the
//! signal-specific `OTEL_EXPORTER_OTLP_METRICS_*` variable wins over the generic
//! `OTEL_EXPORTER_OTLP_*`; then the default. `OTEL_EXPORTER_OTLP_ENDPOINT` alone, without an
//! `otlp` section, turns the push on. Headers are the exception: they are merged from
//! `otlp.headers`, `otlp.headers_file` and `OTEL_EXPORTER_OTLP_(METRICS_)HEADERS`, and a header
//! named in two of them is refused rather than silently chosen (the SDK would let the
//! environment win). The environment is read only through the lookup [`resolve_otlp`] is given.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::durations::{MAX_INTERVAL, validate_duration};
use super::problems::{Problem, Problems};
use super::raw::RawOtlp;
use super::secrets::read_capped;
use super::url::{HttpUrl, redact_userinfo, refuse_cleartext};

pub const DEFAULT_OTLP_INTERVAL: Duration = Duration::from_secs(60);
/// `service.name` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` says otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "infobip-billing-exporter";
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// A headers file is a few lines; the cap makes a wrong path fail fast.
const MAX_HEADERS_FILE_BYTES: u64 = 64 * 1024;
const ENDPOINT_EXPECTED: &str =
    "expected the collector's http(s) URL, e.g. http://otel-collector:4317";

/// The `otlp` section as written and validated. What it leaves out (`None`, empty) the
/// environment may fill: [`resolve_otlp`] gives the settings a pusher uses.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Normalized; for http/protobuf, `/v1/metrics` is appended when it has no path.
    pub endpoint: Option<String>,
    pub protocol: Option<OtlpProtocol>,
    pub interval: Option<Duration>,
    /// Values are secrets: `Debug` shows the names only.
    pub headers: BTreeMap<String, String>,
    /// One `Name: value` per line; blank lines and lines starting with `#` are skipped.
    pub headers_file: Option<PathBuf>,
}

/// What a pusher uses: the section merged with the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The URL pushes go to (for http/protobuf, with its `/v1/metrics`).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub interval: Duration,
    /// Names in lower case. Values are secrets: `Debug` shows the names only.
    pub headers: BTreeMap<String, String>,
    /// The resource: `service.name`, `service.version` and `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

impl OtlpProtocol {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            other => Err(format!(
                "{other:?} is not supported; expected grpc or http/protobuf"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Header names only: their values are credentials.
fn header_names(headers: &BTreeMap<String, String>) -> Vec<&str> {
    headers.keys().map(String::as_str).collect()
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("interval", &self.interval)
            .field("headers", &header_names(&self.headers))
            .field("headers_file", &self.headers_file)
            .finish()
    }
}

impl fmt::Debug for OtlpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSettings")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("interval", &self.interval)
            .field("headers", &header_names(&self.headers))
            .field("resource", &self.resource)
            .finish()
    }
}

pub(super) fn validate_otlp(raw: Option<RawOtlp>, p: &mut Problems) -> Option<Option<OtlpConfig>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let mut ok = true;
    let protocol = match raw.protocol.as_deref().map(OtlpProtocol::parse) {
        None => None,
        Some(Ok(protocol)) => Some(protocol),
        Some(Err(message)) => {
            p.push("otlp.protocol", message);
            ok = false;
            None
        }
    };
    let endpoint = match raw.endpoint {
        None => None,
        Some(text) => match HttpUrl::parse(&text, None) {
            Ok(url) => Some(url.to_string()),
            Err(reason) => {
                let shown = redact_userinfo(&text);
                p.push(
                    "otlp.endpoint",
                    format!("{shown:?} {reason}; {ENDPOINT_EXPECTED}"),
                );
                ok = false;
                None
            }
        },
    };
    let interval = match raw.interval {
        None => None,
        Some(text) => {
            let interval = validate_duration(
                "otlp.interval",
                Some(text.as_str()),
                DEFAULT_OTLP_INTERVAL,
                (MIN_INTERVAL, MAX_INTERVAL, "1s to 1d, e.g. 60s"),
                p,
            );
            ok &= interval.is_some();
            interval
        }
    };
    let headers = raw.headers.unwrap_or_default();
    for (name, value) in &headers {
        if let Err(message) = check_header(name, value) {
            p.push(format!("otlp.headers.{name}"), message);
            ok = false;
        }
    }
    let headers_file = match raw.headers_file.as_deref().map(str::trim) {
        None => None,
        Some("") => {
            p.push(
                "otlp.headers_file",
                "empty; expected the path of a file with one `Name: value` header per line",
            );
            ok = false;
            None
        }
        Some(path) => Some(PathBuf::from(path)),
    };
    ok.then_some(Some(OtlpConfig {
        endpoint,
        protocol,
        interval,
        headers,
        headers_file,
    }))
}

/// A header as HTTP/2 and gRPC metadata can carry it. The value is never echoed.
fn check_header(name: &str, value: &str) -> Result<(), &'static str> {
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name {
        Err("is not a valid header name; expected letters, digits, '-' and '_'")
    } else if value.bytes().any(|b| b.is_ascii_control()) {
        Err("the value contains line breaks or control characters; expected one line")
    } else {
        Ok(())
    }
}

/// The push that `section` and the environment ask for: `None` when neither names an endpoint.
/// Every problem is reported, each under the config key or variable it comes from.
pub fn resolve_otlp(
    section: Option<&OtlpConfig>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<OtlpSettings>, Vec<Problem>> {
    // As in the SDKs, a variable set to the empty string is unset.
    let var = |name: &'static str| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    let mut p = Problems::default();
    let file = section.cloned().unwrap_or_default();

    let (endpoint_from, endpoint_text, signal_path) = match file.endpoint.clone() {
        Some(url) => ("otlp.endpoint", url, SignalPath::IfNoPath),
        None => match var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
            Some((name, url)) => (name, url, SignalPath::Never),
            None => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some((name, url)) => (name, url, SignalPath::Always),
                None if section.is_some() => {
                    p.push(
                        "otlp.endpoint",
                        format!("missing; {ENDPOINT_EXPECTED}, or set OTEL_EXPORTER_OTLP_ENDPOINT"),
                    );
                    return Err(p.0);
                }
                None => return Ok(None),
            },
        },
    };
    let url = HttpUrl::parse(endpoint_text.trim(), None)
        .map_err(|reason| {
            let shown = redact_userinfo(&endpoint_text);
            p.push(
                endpoint_from,
                format!("{shown:?} {reason}; {ENDPOINT_EXPECTED}"),
            );
        })
        .ok();

    let protocol = match file.protocol {
        Some(protocol) => Some(protocol),
        None => match var("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        {
            None => Some(OtlpProtocol::Grpc),
            Some((name, text)) => OtlpProtocol::parse(&text)
                .map_err(|message| p.push(name, message))
                .ok(),
        },
    };

    let interval = match file.interval {
        Some(interval) => Some(interval),
        None => match var("OTEL_METRIC_EXPORT_INTERVAL") {
            None => Some(DEFAULT_OTLP_INTERVAL),
            Some((name, text)) => export_interval(&text)
                .map_err(|message| p.push(name, message))
                .ok(),
        },
    };

    let headers = merge_headers(&file, &var, &mut p);
    let resource = resource(&var, &mut p);

    let (Some(url), Some(protocol), Some(interval)) = (url, protocol, interval) else {
        return Err(p.0);
    };
    if !headers.is_empty()
        && let Err(message) = refuse_cleartext(&url.to_string(), &url, "the OTLP headers")
    {
        p.push(endpoint_from, message);
    }
    if !p.0.is_empty() {
        return Err(p.0);
    }
    let append = match signal_path {
        SignalPath::Always => true,
        SignalPath::IfNoPath => url.path.is_empty(),
        SignalPath::Never => false,
    };
    let endpoint = match protocol {
        OtlpProtocol::HttpProtobuf if append => format!("{url}/v1/metrics"),
        _ => url.to_string(),
    };
    Ok(Some(OtlpSettings {
        endpoint,
        protocol,
        interval,
        headers,
        resource,
    }))
}

/// Whether an http/protobuf endpoint gets `/v1/metrics` appended, by where it came from.
enum SignalPath {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL: always (the spec's rule).
    Always,
    /// `otlp.endpoint`: when it has no path of its own.
    IfNoPath,
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is the full URL: never.
    Never,
}

/// `OTEL_METRIC_EXPORT_INTERVAL`: whole milliseconds, per the spec.
fn export_interval(text: &str) -> Result<Duration, String> {
    let (min, max) = (MIN_INTERVAL.as_millis(), MAX_INTERVAL.as_millis());
    match text.trim().parse::<u64>() {
        Ok(ms) if (min..=max).contains(&u128::from(ms)) => Ok(Duration::from_millis(ms)),
        Ok(ms) => Err(format!(
            "{ms} is out of range; expected {min} to {max} milliseconds, e.g. 60000"
        )),
        Err(_) => Err(format!(
            "{text:?} is not a whole number of milliseconds; expected {min} to {max}, e.g. 60000"
        )),
    }
}

type Var<'a> = dyn Fn(&'static str) -> Option<(&'static str, String)> + 'a;

/// Every header, names in lower case, each from exactly one place.
fn merge_headers(file: &OtlpConfig, var: &Var<'_>, p: &mut Problems) -> BTreeMap<String, String> {
    let mut merged: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut add = |from: String, name: &str, value: String, p: &mut Problems| {
        let key = name.to_ascii_lowercase();
        match merged.get(&key) {
            Some((first, _)) => p.push(
                from,
                format!(
                    "header {key:?} is also set by {first}; set each header in one place (the config and the environment are merged)"
                ),
            ),
            None => {
                merged.insert(key, (from, value));
            }
        }
    };
    for (name, value) in &file.headers {
        add(format!("otlp.headers.{name}"), name, value.clone(), p);
    }
    if let Some(path) = &file.headers_file {
        for (name, value) in headers_file(path, p) {
            add("otlp.headers_file".to_owned(), &name, value, p);
        }
    }
    if let Some((var_name, text)) =
        var("OTEL_EXPORTER_OTLP_METRICS_HEADERS").or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"))
    {
        for (name, value) in key_values(var_name, &text, "header", p) {
            match check_header(&name, &value) {
                Ok(()) => add(var_name.to_owned(), &name, value, p),
                Err(message) => p.push(var_name, format!("header {name:?}: {message}")),
            }
        }
    }
    merged
        .into_iter()
        .map(|(name, (_, value))| (name, value))
        .collect()
}

/// The headers of `otlp.headers_file`: one `Name: value` per line, as in an HTTP request;
/// values are taken as they are, without decoding.
fn headers_file(path: &std::path::Path, p: &mut Problems) -> Vec<(String, String)> {
    const AT: &str = "otlp.headers_file";
    let text = match read_capped(path, MAX_HEADERS_FILE_BYTES) {
        Ok(text) => text,
        Err(err) => {
            p.push(
                AT,
                format!(
                    "cannot read {}: {err}; check the path and that the exporter's user may read it",
                    path.display()
                ),
            );
            return Vec::new();
        }
    };
    let mut headers = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let checked = line
            .split_once(':')
            .map(|(name, value)| (name.trim(), value.trim()))
            .ok_or("is not `Name: value`")
            .and_then(|(name, value)| check_header(name, value).map(|()| (name, value)));
        match checked {
            Ok((name, value)) => headers.push((name.to_owned(), value.to_owned())),
            // Neither the line nor the value is echoed: the file holds credentials.
            Err(message) => p.push(AT, format!("{}, line {}: {message}", path.display(), i + 1)),
        }
    }
    headers
}

/// `key1=value1,key2=value2` with percent-encoded values, the format of
/// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES`. Values are never echoed.
fn key_values(
    var: &'static str,
    text: &str,
    what: &str,
    p: &mut Problems,
) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (i, entry) in text.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let decoded = entry.split_once('=').and_then(|(key, value)| {
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .ok()?;
            Some((key.trim().to_owned(), value.into_owned()))
        });
        match decoded {
            Some((key, value)) if !key.is_empty() => pairs.push((key, value)),
            _ => p.push(
                var,
                format!(
                    "{what} {} is not key=value with a percent-encoded UTF-8 value; expected key1=value1,key2=value2",
                    i + 1
                ),
            ),
        }
    }
    pairs
}

/// The resource: defaults, then `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME`.
fn resource(var: &Var<'_>, p: &mut Problems) -> BTreeMap<String, String> {
    let mut resource = BTreeMap::from([
        ("service.name".to_owned(), DEFAULT_SERVICE_NAME.to_owned()),
        (
            "service.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ]);
    if let Some((name, text)) = var("OTEL_RESOURCE_ATTRIBUTES") {
        resource.extend(key_values(name, &text, "attribute", p));
    }
    if let Some((_, service)) = var("OTEL_SERVICE_NAME") {
        resource.insert("service.name".to_owned(), service.trim().to_owned());
    }
    resource
}
