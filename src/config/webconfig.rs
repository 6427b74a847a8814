//! The web configuration file of the Prometheus exporters (exporter-toolkit's format), read
//! strictly: TLS with optional client certificates, basic auth and extra response headers for
//! the web listener. Paths in it are relative to the file's directory, as exporter-toolkit
//! resolves them.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # or `cert:` with the PEM inline
//!   key_file: server.key           # or `key:`
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt # or `client_ca:`
//!   min_version: TLS12             # TLS12 (default) or TLS13
//!   max_version: TLS13
//!   cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]  # TLS 1.2 only, as in Go
//!   curve_preferences: [X25519, CurveP256]
//!   prefer_server_cipher_suites: true
//! http_server_config:
//!   headers:
//!     X-Content-Type-Options: nosniff
//! basic_auth_users:
//!   prometheus: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG
//! ```
//!
//! What Go offers and this exporter cannot is refused by name rather than ignored:
//! `client_allowed_sans`, `rate_limit` (other than disabled), `http2: true` (HTTP/1.1 is
//! served), TLS 1.0 and 1.1, `CurveP521`, and the CBC and RSA key-exchange cipher suites.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::problems::{Problem, Problems};
use super::secrets::read_capped;

/// The file is small; the cap keeps a wrong path from eating memory.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A validated web configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebConfigFile {
    /// `None`: plain HTTP.
    pub tls: Option<TlsServerConfig>,
    /// User name to bcrypt hash; empty: no authentication.
    pub basic_auth_users: BTreeMap<String, String>,
    /// Set on every response of the web listener, in name order; blank values left out.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServerConfig {
    pub cert: Pem,
    pub key: Pem,
    pub client_ca: Option<Pem>,
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites in preference order; empty: the defaults. TLS 1.3 suites are always all
    /// offered, as Go does.
    pub cipher_suites: Vec<CipherSuite>,
    /// Key exchange groups in preference order; empty: the defaults.
    pub curves: Vec<Curve>,
    pub prefer_server_cipher_suites: bool,
}

/// PEM text from a file (re-read when it changes) or written inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

/// exporter-toolkit's `client_auth_type` values (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Asks for a certificate, accepts any or none, verifies nothing.
    RequestClientCert,
    /// Requires a certificate, verifies nothing about who issued it.
    RequireAnyClientCert,
    /// Accepts no certificate; one that is sent must chain to `client_ca`.
    VerifyClientCertIfGiven,
    /// Requires a certificate chaining to `client_ca`: the only value that authenticates.
    RequireAndVerifyClientCert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// The TLS 1.2 suites rustls offers, under Go's names (which are the IANA names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherSuite {
    EcdheEcdsaAes128Gcm,
    EcdheEcdsaAes256Gcm,
    EcdheEcdsaChacha20,
    EcdheRsaAes128Gcm,
    EcdheRsaAes256Gcm,
    EcdheRsaChacha20,
}

/// Go's name for each (the IANA one; Go also takes the older names without `_SHA256`).
fn cipher_suite(name: &str) -> Option<CipherSuite> {
    use CipherSuite::*;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => EcdheEcdsaAes128Gcm,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => EcdheEcdsaAes256Gcm,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => EcdheEcdsaChacha20,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => EcdheRsaAes128Gcm,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => EcdheRsaAes256Gcm,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
            EcdheRsaChacha20
        }
        _ => return None,
    })
}

const CIPHER_SUITE_NAMES: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

/// Go accepts these in `cipher_suites` but never lets them restrict TLS 1.3.
const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    X25519,
    P256,
    P384,
}

/// exporter-toolkit's response headers, with the values it allows (none listed: any).
const HEADERS: [(&str, &[&str]); 5] = [
    ("Content-Security-Policy", &[]),
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
];

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error(
        "cannot read web config file {}: {source}; check --web.config.file (or web.config_file) and that the file is readable",
        path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("web config file {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("web config file {}: {}", path.display(), join(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl WebConfigFile {
    /// Reads and validates the file at `path`; relative paths in it are taken from its
    /// directory.
    pub fn load(path: &Path) -> Result<WebConfigFile, WebConfigError> {
        let text = read_capped(path, MAX_FILE_BYTES).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        WebConfigFile::from_yaml(&text, dir).map_err(|e| match e {
            Rejected::Syntax(message) => WebConfigError::Syntax {
                path: path.to_owned(),
                message,
            },
            Rejected::Invalid(problems) => WebConfigError::Invalid {
                path: path.to_owned(),
                problems,
            },
        })
    }

    /// Parses and validates YAML text whose relative paths are taken from `dir`.
    pub fn from_yaml(text: &str, dir: &Path) -> Result<WebConfigFile, Rejected> {
        let raw: Option<RawWebConfig> =
            serde_norway::from_str(text).map_err(|e| Rejected::Syntax(e.to_string()))?;
        let raw = raw.unwrap_or_default();
        let mut p = Problems::default();
        let tls = raw
            .tls_server_config
            .and_then(|t| validate_tls(t, dir, &mut p));
        let headers = validate_http(raw.http_server_config.unwrap_or_default(), &mut p);
        let users = validate_users(raw.basic_auth_users.unwrap_or_default(), &mut p);
        if let Some(limit) = raw.rate_limit {
            let disabled = limit
                .interval
                .as_deref()
                .is_none_or(|i| humantime::parse_duration(i.trim()).is_ok_and(|d| d.is_zero()));
            if !disabled {
                p.push(
                    "rate_limit",
                    "is not supported by this exporter; remove it (the listener bounds its connections instead, see web.max_connections)",
                );
            }
        }
        if p.0.is_empty() {
            Ok(WebConfigFile {
                tls: tls.flatten(),
                basic_auth_users: users,
                headers,
            })
        } else {
            Err(Rejected::Invalid(p.0))
        }
    }

    /// The files this configuration reads, to watch for changes.
    pub fn files(&self) -> Vec<PathBuf> {
        let Some(tls) = &self.tls else {
            return Vec::new();
        };
        [Some(&tls.cert), Some(&tls.key), tls.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|pem| match pem {
                Pem::File(path) => Some(path.clone()),
                Pem::Inline(_) => None,
            })
            .collect()
    }
}

/// Why text is not a valid web configuration.
#[derive(Debug)]
pub enum Rejected {
    Syntax(String),
    Invalid(Vec<Problem>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, Option<String>>>,
    rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<String>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<String>,
    headers: Option<BTreeMap<String, Option<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    interval: Option<String>,
    // Accepted so that a disabled limiter (interval 0) passes; it limits nothing then.
    #[serde(rename = "burst")]
    _burst: Option<String>,
}

const SECTION: &str = "tls_server_config";

/// `Some(None)`: a section that configures nothing (exporter-toolkit then serves plain HTTP).
fn validate_tls(t: RawTls, dir: &Path, p: &mut Problems) -> Option<Option<TlsServerConfig>> {
    let nonblank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let (cert, key, client_ca) = (nonblank(t.cert), nonblank(t.key), nonblank(t.client_ca));
    let (cert_file, key_file, ca_file) = (
        nonblank(t.cert_file),
        nonblank(t.key_file),
        nonblank(t.client_ca_file),
    );
    let auth_text = nonblank(t.client_auth_type);
    let enabled = cert.is_some()
        || key.is_some()
        || client_ca.is_some()
        || cert_file.is_some()
        || key_file.is_some()
        || ca_file.is_some()
        || auth_text.is_some();
    if !enabled {
        return Some(None);
    }
    let cert = pem("cert", cert, cert_file, dir, true, p);
    let key = pem("key", key, key_file, dir, true, p);
    let client_ca = pem("client_ca", client_ca, ca_file, dir, false, p);
    let client_auth = match auth_text.as_deref().map(str::trim) {
        None | Some("NoClientCert") => Some(ClientAuth::NoClientCert),
        Some("RequestClientCert") => Some(ClientAuth::RequestClientCert),
        // "RequireClientCert" is exporter-toolkit's old name, still accepted there.
        Some("RequireAnyClientCert" | "RequireClientCert") => {
            Some(ClientAuth::RequireAnyClientCert)
        }
        Some("VerifyClientCertIfGiven") => Some(ClientAuth::VerifyClientCertIfGiven),
        Some("RequireAndVerifyClientCert") => Some(ClientAuth::RequireAndVerifyClientCert),
        Some(other) => {
            p.push(
                format!("{SECTION}.client_auth_type"),
                format!("{other:?} is not a client auth type; expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert (the only one that authenticates clients)"),
            );
            None
        }
    };
    if let (Some(auth), Some(ca)) = (client_auth, &client_ca) {
        let verifies = matches!(
            auth,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        );
        if verifies && ca.is_none() {
            p.push(
                format!("{SECTION}.client_ca_file"),
                "missing; client_auth_type verifies client certificates, so it needs the CA that issues them (client_ca_file or client_ca)",
            );
        }
        if auth == ClientAuth::NoClientCert && ca.is_some() {
            p.push(
                format!("{SECTION}.client_auth_type"),
                "missing; client CAs are configured without a client auth policy: set RequireAndVerifyClientCert to authenticate clients, or remove client_ca_file",
            );
        }
    }
    if t.client_allowed_sans.is_some() {
        p.push(
            format!("{SECTION}.client_allowed_sans"),
            "is not supported by this exporter; remove it and give client_ca_file a CA that issues certificates only to the clients you allow",
        );
    }
    let min_version = version("min_version", t.min_version, TlsVersion::Tls12, p);
    let max_version = version("max_version", t.max_version, TlsVersion::Tls13, p);
    if let (Some(min), Some(max)) = (min_version, max_version)
        && min > max
    {
        p.push(
            format!("{SECTION}.min_version"),
            "is above max_version; expected min_version TLS12 with max_version TLS12 or TLS13, or both TLS13",
        );
    }
    let cipher_suites = cipher_suites(t.cipher_suites.unwrap_or_default(), p);
    let curves = curves(t.curve_preferences.unwrap_or_default(), p);
    let prefer = boolean(
        &format!("{SECTION}.prefer_server_cipher_suites"),
        t.prefer_server_cipher_suites,
        true,
        p,
    );
    Some(Some(TlsServerConfig {
        cert: cert??,
        key: key??,
        client_ca: client_ca?,
        client_auth: client_auth?,
        min_version: min_version?,
        max_version: max_version?,
        cipher_suites: cipher_suites?,
        curves: curves?,
        prefer_server_cipher_suites: prefer?,
    }))
}

/// One of `name` (inline PEM) and `name_file`; `Some(None)` when neither and not `required`.
fn pem(
    name: &str,
    inline: Option<String>,
    file: Option<String>,
    dir: &Path,
    required: bool,
    p: &mut Problems,
) -> Option<Option<Pem>> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            p.push(
                format!("{SECTION}.{name}"),
                format!("both {name} and {name}_file are set; expected one of them"),
            );
            None
        }
        (Some(text), None) => Some(Some(Pem::Inline(text))),
        (None, Some(path)) => Some(Some(Pem::File(dir.join(path.trim())))),
        (None, None) if required => {
            p.push(
                format!("{SECTION}.{name}_file"),
                format!("missing; TLS needs a certificate and its key: set {name}_file (or {name} with the PEM inline)"),
            );
            None
        }
        (None, None) => Some(None),
    }
}

fn version(
    key: &str,
    raw: Option<String>,
    default: TlsVersion,
    p: &mut Problems,
) -> Option<TlsVersion> {
    match raw.as_deref().map(str::trim) {
        None => Some(default),
        Some("TLS12") => Some(TlsVersion::Tls12),
        Some("TLS13") => Some(TlsVersion::Tls13),
        Some(v @ ("TLS10" | "TLS11")) => {
            p.push(
                format!("{SECTION}.{key}"),
                format!("{v} is not offered by this exporter (rustls speaks TLS 1.2 and 1.3); expected TLS12 or TLS13"),
            );
            None
        }
        Some(v) => {
            p.push(
                format!("{SECTION}.{key}"),
                format!("{v:?} is not a TLS version; expected TLS12 or TLS13"),
            );
            None
        }
    }
}

fn cipher_suites(names: Vec<String>, p: &mut Problems) -> Option<Vec<CipherSuite>> {
    let mut suites = Vec::new();
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        let name = name.trim();
        if let Some(suite) = cipher_suite(name) {
            suites.push(suite);
        } else if !TLS13_SUITES.contains(&name) {
            ok = false;
            p.push(
                format!("{SECTION}.cipher_suites[{i}]"),
                format!("{name:?} is not a cipher suite this exporter offers (no CBC or RSA key exchange); expected one of {CIPHER_SUITE_NAMES}"),
            );
        }
    }
    ok.then_some(suites)
}

fn curves(names: Vec<String>, p: &mut Problems) -> Option<Vec<Curve>> {
    let mut curves = Vec::new();
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        match name.trim() {
            "X25519" => curves.push(Curve::X25519),
            "CurveP256" => curves.push(Curve::P256),
            "CurveP384" => curves.push(Curve::P384),
            other => {
                ok = false;
                let why = if other == "CurveP521" {
                    "is not offered by this exporter's TLS library"
                } else {
                    "is not a curve"
                };
                p.push(
                    format!("{SECTION}.curve_preferences[{i}]"),
                    format!("{other:?} {why}; expected X25519, CurveP256 or CurveP384"),
                );
            }
        }
    }
    ok.then_some(curves)
}

fn boolean(key: &str, raw: Option<String>, default: bool, p: &mut Problems) -> Option<bool> {
    match raw.as_deref().map(str::trim) {
        None => Some(default),
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            p.push(
                key,
                format!("{other:?} is not a boolean; expected true or false"),
            );
            None
        }
    }
}

fn validate_http(raw: RawHttp, p: &mut Problems) -> Vec<(String, String)> {
    if boolean("http_server_config.http2", raw.http2, false, p) == Some(true) {
        p.push(
            "http_server_config.http2",
            "HTTP/2 is not served by this exporter; set it to false or remove it (Prometheus scrapes over HTTP/1.1)",
        );
    }
    let mut headers = Vec::new();
    for (name, value) in raw.headers.unwrap_or_default() {
        let key = format!("http_server_config.headers.{name}");
        let Some((_, allowed)) = HEADERS.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = HEADERS.iter().map(|(n, _)| *n).collect();
            p.push(
                key,
                format!(
                    "this header can not be configured; expected one of {}",
                    names.join(", ")
                ),
            );
            continue;
        };
        let value = value.unwrap_or_default();
        if value.trim().is_empty() {
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            p.push(
                key,
                format!(
                    "{value:?} is not allowed; expected one of {}",
                    allowed.join(", ")
                ),
            );
        } else if !value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            p.push(
                key,
                "holds a character a header value cannot carry; expected printable ASCII",
            );
        } else {
            headers.push((name, value));
        }
    }
    headers
}

fn validate_users(
    raw: BTreeMap<String, Option<String>>,
    p: &mut Problems,
) -> BTreeMap<String, String> {
    let mut users = BTreeMap::new();
    for (user, hash) in raw {
        let key = format!("basic_auth_users.{user}");
        if user.contains(':') {
            p.push(
                key,
                "a user name cannot contain ':' (basic auth splits user and password there)",
            );
            continue;
        }
        let hash = hash.unwrap_or_default();
        match hash.trim().parse::<bcrypt::HashParts>() {
            Ok(_) => {
                users.insert(user, hash.trim().to_owned());
            }
            Err(_) => p.push(
                key,
                "is not a bcrypt hash; expected e.g. $2y$10$... as printed by `htpasswd -nBC 10 \"\" | tr -d ':\\n'`",
            ),
        }
    }
    users
}
