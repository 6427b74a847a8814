//! The http(s) URLs of the config: validation, normalization, and redaction for messages.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::problems::Problems;

pub(super) fn validate_base_url(path: &str, raw: &str, p: &mut Problems) -> Option<String> {
    check_base_url(raw).map_err(|m| p.push(path, m)).ok()
}

pub(super) fn validate_public_url(raw: &str, p: &mut Problems) -> Option<String> {
    check_public_url(raw)
        .map_err(|m| p.push("callback.public_url", m))
        .ok()
}

/// An Infobip base URL (`targets[].base_url`, `--base-url`), normalized; without a scheme,
/// https:// is assumed. The error completes "<where>: ".
pub fn check_base_url(raw: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected https://HOST[:PORT], e.g. https://xxxxx.api.infobip.com";
    let url = HttpUrl::parse(raw, Some("https")).map_err(|reason| {
        let shown = redact_userinfo(raw);
        format!("{shown:?} {reason}; {EXPECTED}")
    })?;
    if !url.path.is_empty() {
        return Err(format!(
            "{raw:?} has a path; {EXPECTED} (the exporter appends /billing/1/usage/query itself)"
        ));
    }
    refuse_cleartext(raw, &url, "the API key")?;
    Ok(url.to_string())
}

/// The URL Infobip posts callbacks to (`callback.public_url`, `--public-url`), normalized. The
/// error completes "<where>: ".
pub fn check_public_url(raw: &str) -> Result<String, String> {
    let url = HttpUrl::parse(raw, None).map_err(|reason| {
        let shown = redact_userinfo(raw);
        format!(
            "{shown:?} {reason}; expected an absolute http(s) URL without query or fragment, e.g. https://billing-exporter.example.com (the exporter appends /callback/<target>/<token>)"
        )
    })?;
    refuse_cleartext(raw, &url, "the callback tokens in its path")?;
    Ok(url.to_string())
}

/// The one rule for every URL a secret travels to (an API key, callback tokens, OTLP headers):
/// plain http:// only to a loopback host, where nothing crosses a network. `raw` has no
/// userinfo by then ([`HttpUrl::parse`] refuses it), so it may be shown.
pub(super) fn refuse_cleartext(raw: &str, url: &HttpUrl, what: &str) -> Result<(), String> {
    if url.scheme == "http" && !url.loopback {
        return Err(format!(
            "{raw:?} uses http://, which would send {what} in clear text; use https://, or http:// to a loopback host (127.0.0.1, ::1, localhost) such as a local proxy or the simulator"
        ));
    }
    Ok(())
}

/// `raw` with any `user:password@` replaced, so that error messages never echo a password.
pub(super) fn redact_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let authority_end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    match raw[start..authority_end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &raw[..start], &raw[start + at..]),
        None => raw.to_owned(),
    }
}

/// Just enough of an http(s) URL to validate and normalize config values; no dependency needed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct HttpUrl {
    /// `http` or `https`.
    pub(super) scheme: &'static str,
    /// Lower-case; IPv6 addresses keep their brackets.
    host: String,
    port: Option<u16>,
    /// Empty or starting with '/', never ending with '/'.
    pub(super) path: String,
    loopback: bool,
}

impl HttpUrl {
    /// Parses `raw`; without a scheme, `default_scheme` is assumed or, if `None`, it is an error.
    /// The error is a phrase completing "<value> ...".
    pub(super) fn parse(
        raw: &str,
        default_scheme: Option<&'static str>,
    ) -> Result<HttpUrl, String> {
        if raw.is_empty() {
            return Err("is empty".into());
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("contains spaces, control or non-ASCII characters".into());
        }
        if raw.contains(['?', '#']) {
            return Err("has a query or fragment ('?' or '#')".into());
        }
        let (scheme, rest) = match raw.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = if scheme.eq_ignore_ascii_case("https") {
                    "https"
                } else if scheme.eq_ignore_ascii_case("http") {
                    "http"
                } else {
                    return Err(format!("has the unsupported scheme {scheme:?}"));
                };
                (scheme, rest)
            }
            None => match default_scheme {
                Some(scheme) => (scheme, raw),
                None => return Err("is not an absolute URL (no http:// or https://)".into()),
            },
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("contains credentials ('user@')".into());
        }
        let (host, port) = split_host_port(authority)?;
        let host = host.to_ascii_lowercase();
        let loopback = if host.is_empty() {
            return Err("has no host".into());
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            v6.parse::<Ipv6Addr>()
                .map_err(|_| format!("has an invalid IPv6 address {v6:?}"))?
                .is_loopback()
        } else if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            host.parse::<Ipv4Addr>()
                .map_err(|_| format!("has an invalid IPv4 address {host:?}"))?
                .is_loopback()
        } else if host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            host == "localhost"
        } else {
            return Err(format!("has an invalid host {host:?}"));
        };
        Ok(HttpUrl {
            scheme,
            host,
            port,
            path: path.trim_end_matches('/').to_owned(),
            loopback,
        })
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or("has an unclosed '[' in its host")?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("has unexpected text {rest:?} after its host")),
            },
        }
    } else {
        match authority.split_once(':') {
            None => (authority, None),
            Some((_, port)) if port.contains(':') => {
                return Err("has too many ':' (write IPv6 addresses in brackets: [::1])".into());
            }
            Some((host, port)) => (host, Some(port)),
        }
    };
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(n) if n != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("has an invalid port {port:?}")),
        },
    };
    Ok((host, port))
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path)
    }
}
