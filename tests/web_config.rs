//! The web listener's exporter-toolkit web config file: HTTPS, client certificates, basic auth,
//! headers, certificates renewed without a restart, gzip, and the callback listener's own
//! certificate. The examples are the ones in README.md, read from it.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{Harness, Proc, WAIT, parse};
use infobip_billing_exporter::config::webconfig::WebConfigFile;
use infobip_billing_exporter::simulator::SimulatorOptions;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// The first fenced YAML block after the README line `heading`.
fn readme_block(heading: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let after = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let block = after.split_once("```yaml\n").unwrap().1;
    block.split_once("```").unwrap().0.to_owned()
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// A certificate and its key, PEM, signed by `ca`; the DER of the certificate.
struct Leaf {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn leaf(ca: &Ca, name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn server_leaf(ca: &Ca, name: &str) -> Leaf {
    leaf(ca, name, ExtendedKeyUsagePurpose::ServerAuth)
}

/// Writes `text` to `path` by renaming a temporary file over it, as certificate tools do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A client trusting only `ca`, without a connection pool so each request handshakes anew.
fn client(ca: &Ca, identity: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()])
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .timeout(WAIT);
    if let Some(leaf) = identity {
        let pem = format!("{}{}", leaf.cert, leaf.key);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn rejections(text: &str, listener: &str, reason: &str) -> u64 {
    parse(text)
        .iter()
        .find(|s| {
            s.name == "infobip_billing_exporter_http_rejections_total"
                && s.labels["listener"] == listener
                && s.labels["reason"] == reason
        })
        .map(|s| s.value.to_string().parse().unwrap())
        .unwrap()
}

/// An exporter whose web listener reads `web_config`.
async fn with_web_config(web_config: PathBuf) -> Harness {
    Harness::start(SimulatorOptions::default(), move |c| {
        c.web.config_file = Some(web_config);
    })
    .await
}

#[tokio::test]
async fn readme_tls_example_lets_in_only_clients_with_a_certificate_of_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, clients_ca, other_ca) = (ca("server CA"), ca("clients CA"), ca("other CA"));
    let server = server_leaf(&server_ca, "exporter");
    std::fs::write(dir.path().join("server.crt"), &server.cert).unwrap();
    std::fs::write(dir.path().join("server.key"), &server.key).unwrap();
    std::fs::write(dir.path().join("clients-ca.crt"), &clients_ca.pem).unwrap();
    let web_config = dir.path().join("web-config.yml");
    std::fs::write(
        &web_config,
        readme_block("#### Example: TLS with client certificates"),
    )
    .unwrap();
    let h = with_web_config(web_config).await;
    let url = format!("https://127.0.0.1:{}/metrics", h.exporter.web_addr.port());

    let anonymous = client(&server_ca, None).get(&url).send().await;
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");
    let stranger = leaf(&other_ca, "stranger", ExtendedKeyUsagePurpose::ClientAuth);
    let strange = client(&server_ca, Some(&stranger)).get(&url).send().await;
    assert!(strange.is_err(), "a certificate of another CA: {strange:?}");

    let prometheus = leaf(
        &clients_ca,
        "prometheus",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let response = client(&server_ca, Some(&prometheus))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("infobip_billing_exporter_build_info"));
    assert!(rejections(&text, "web", "tls_handshake") >= 2);
    h.stop().await;
}

#[tokio::test]
async fn readme_basic_auth_example_over_https_with_the_flags_of_run() {
    let sim = common::start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server CA");
    let server = server_leaf(&server_ca, "exporter");
    std::fs::write(dir.path().join("server.crt"), &server.cert).unwrap();
    std::fs::write(dir.path().join("server.key"), &server.key).unwrap();
    let web_config = dir.path().join("web-config.yml");
    std::fs::write(
        &web_config,
        readme_block("#### Example: basic auth over TLS"),
    )
    .unwrap();
    let (config, _) = common::write_run_config(dir.path(), &sim.url);
    let listen = format!("127.0.0.1:{}", common::free_port());
    let exporter = Proc::spawn(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--web.listen-address",
        &listen,
        "--web.config.file",
        web_config.to_str().unwrap(),
    ]);
    Proc::wait_line(&exporter.stderr, "exporter started");
    let url = format!("https://{listen}/metrics");
    let https = client(&server_ca, None);

    let right = https
        .get(&url)
        .basic_auth("prometheus", Some("correct horse battery staple"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(right.headers()["x-content-type-options"], "nosniff");
    assert_eq!(right.headers()["x-frame-options"], "deny");
    for wrong in [
        https.get(&url).basic_auth("prometheus", Some("wrong")),
        https
            .get(&url)
            .basic_auth("nobody", Some("correct horse battery staple")),
        https.get(&url),
    ] {
        let response = wrong.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Basic");
        assert_eq!(response.headers()["x-frame-options"], "deny");
    }
    let plain = reqwest::Client::new()
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400, "plain HTTP to the TLS port");
    assert!(plain.text().await.unwrap().contains("HTTPS"));

    let text = https
        .get(&url)
        .basic_auth("prometheus", Some("correct horse battery staple"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rejections(&text, "web", "unauthorized"), 3);
    assert_eq!(rejections(&text, "web", "tls_handshake"), 1);
    assert!(exporter.signal_and_wait("TERM").success());
}

/// The certificate the exporter presented on a fresh connection.
async fn presented(ca: &Ca, addr: SocketAddr) -> Vec<u8> {
    let response = client(ca, None)
        .get(format!("https://127.0.0.1:{}/-/healthy", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_renewed_certificate_and_a_changed_file_apply_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server CA");
    let (first, renewed) = (
        server_leaf(&server_ca, "first"),
        server_leaf(&server_ca, "renewed"),
    );
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    replace(&cert, &first.cert);
    replace(&key, &first.key);
    let web_config = dir.path().join("web.yml");
    let tls_only = "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n";
    replace(&web_config, tls_only);
    let h = with_web_config(web_config.clone()).await;
    let addr = h.exporter.web_addr;
    assert_eq!(presented(&server_ca, addr).await, first.der);

    replace(&cert, &renewed.cert);
    replace(&key, &renewed.key);
    assert_eq!(presented(&server_ca, addr).await, renewed.der);

    // A broken certificate keeps the one in force.
    replace(&cert, "not a certificate\n");
    assert_eq!(presented(&server_ca, addr).await, renewed.der);
    replace(&cert, &renewed.cert);

    // The file itself is watched too: basic auth added to it applies to the next request.
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    replace(
        &web_config,
        &format!("{tls_only}basic_auth_users:\n  prometheus: {hash}\n"),
    );
    let url = format!("https://127.0.0.1:{}/-/healthy", addr.port());
    let https = client(&server_ca, None);
    assert_eq!(https.get(&url).send().await.unwrap().status(), 401);
    let allowed = https.get(&url).basic_auth("prometheus", Some("s3cret"));
    assert_eq!(allowed.send().await.unwrap().status(), 200);
    h.stop().await;
}

#[tokio::test]
async fn metrics_are_gzipped_when_the_scraper_asks_for_it() {
    use std::io::Read;
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    let url = format!("http://{}/metrics", h.exporter.web_addr);
    let http = reqwest::Client::new();
    let zipped = http
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.len() > bytes.len(), "compressed");
    assert!(
        parse(&text)
            .iter()
            .any(|s| s.name == "infobip_billing_exporter_build_info")
    );
    let plain = http.get(&url).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain.text().await.unwrap().contains("# TYPE"));
    h.stop().await;
}

#[tokio::test]
async fn the_callback_listener_presents_its_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let callback_ca = ca("callback CA");
    let own = server_leaf(&callback_ca, "callbacks");
    let (cert, key) = (dir.path().join("cb.crt"), dir.path().join("cb.key"));
    std::fs::write(&cert, &own.cert).unwrap();
    std::fs::write(&key, &own.key).unwrap();
    // The README's example, with the files and addresses of this test.
    let snippet = readme_block("#### Example: the callback listener's own certificate");
    let listen = format!("127.0.0.1:{}", common::free_port());
    let snippet = snippet
        .replace("0.0.0.0:9478", &listen)
        .replace(
            "/etc/infobip-billing-exporter/callback.crt",
            cert.to_str().unwrap(),
        )
        .replace(
            "/etc/infobip-billing-exporter/callback.key",
            key.to_str().unwrap(),
        );
    let yaml = format!(
        "targets:\n  - name: sim\n    base_url: https://x.api.infobip.com\n    api_key_env: K\n\
         state_dir: /s\n{snippet}"
    );
    let from_readme = infobip_billing_exporter::config::Config::from_yaml(&yaml).unwrap();
    let h = Harness::start(SimulatorOptions::default(), move |c| {
        c.callback.tls = from_readme.callback.tls.clone();
    })
    .await;
    let url = format!("https://localhost:{}/", h.exporter.callback_addr.port());
    let response = client(&callback_ca, None).get(&url).send().await.unwrap();
    assert_eq!(response.status(), 404, "the callback router, over TLS");
    let presented = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .unwrap()
        .to_vec();
    assert_eq!(presented, own.der);
    h.stop().await;
}

fn problems(yaml: &str) -> Vec<String> {
    match WebConfigFile::from_yaml(yaml, Path::new("/etc/exporter")) {
        Ok(file) => panic!("accepted: {file:?}"),
        Err(infobip_billing_exporter::config::webconfig::Rejected::Invalid(problems)) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn the_web_config_file_is_read_strictly_with_every_problem_at_once() {
    let file = WebConfigFile::from_yaml(
        "tls_server_config:\n  cert_file: a.crt\n  key_file: /abs/a.key\n  \
         cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
        Path::new("/etc/exporter"),
    )
    .unwrap();
    assert_eq!(
        file.files(),
        [
            PathBuf::from("/etc/exporter/a.crt"),
            PathBuf::from("/abs/a.key")
        ],
        "relative to the file's directory"
    );
    assert_eq!(
        file.tls.unwrap().cipher_suites.len(),
        1,
        "TLS 1.3 suites are not configurable"
    );
    assert_eq!(
        WebConfigFile::from_yaml("", Path::new(".")).unwrap(),
        WebConfigFile::default()
    );

    let suites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
    assert_eq!(
        problems(
            "tls_server_config:\n  cert_file: a.crt\n  client_auth_type: RequireAndVerifyClientCert\n  \
             client_allowed_sans: [prometheus]\n  min_version: TLS13\n  max_version: TLS11\n  \
             cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n  curve_preferences: [CurveP521]\n\
             http_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: allow\n    Server: me\n\
             basic_auth_users:\n  prometheus: plaintext\n\
             rate_limit:\n  interval: 1s\n  burst: 10\n"
        ),
        [
            "tls_server_config.key_file: missing; TLS needs a certificate and its key: set key_file (or key with the PEM inline)".to_owned(),
            "tls_server_config.client_ca_file: missing; client_auth_type verifies client certificates, so it needs the CA that issues them (client_ca_file or client_ca)".to_owned(),
            "tls_server_config.client_allowed_sans: is not supported by this exporter; remove it and give client_ca_file a CA that issues certificates only to the clients you allow".to_owned(),
            "tls_server_config.max_version: TLS11 is not offered by this exporter (rustls speaks TLS 1.2 and 1.3); expected TLS12 or TLS13".to_owned(),
            format!("tls_server_config.cipher_suites[0]: \"TLS_RSA_WITH_AES_128_CBC_SHA\" is not a cipher suite this exporter offers (no CBC or RSA key exchange); expected one of {suites}"),
            "tls_server_config.curve_preferences[0]: \"CurveP521\" is not offered by this exporter's TLS library; expected X25519, CurveP256 or CurveP384".to_owned(),
            "http_server_config.http2: HTTP/2 is not served by this exporter; set it to false or remove it (Prometheus scrapes over HTTP/1.1)".to_owned(),
            "http_server_config.headers.Server: this header can not be configured; expected one of Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection".to_owned(),
            "http_server_config.headers.X-Frame-Options: \"allow\" is not allowed; expected one of deny, sameorigin".to_owned(),
            "basic_auth_users.prometheus: is not a bcrypt hash; expected e.g. $2y$10$... as printed by `htpasswd -nBC 10 \"\" | tr -d ':\\n'`".to_owned(),
            "rate_limit: is not supported by this exporter; remove it (the listener bounds its connections instead, see web.max_connections)".to_owned(),
        ]
    );
    assert_eq!(
        problems(
            "tls_server_config:\n  cert: inline\n  cert_file: a.crt\n  key_file: a.key\n  client_ca_file: ca.crt\n"
        ),
        [
            "tls_server_config.cert: both cert and cert_file are set; expected one of them",
            "tls_server_config.client_auth_type: missing; client CAs are configured without a client auth policy: set RequireAndVerifyClientCert to authenticate clients, or remove client_ca_file",
        ]
    );
    let unknown = WebConfigFile::from_yaml("tls_server_config:\n  certfile: a\n", Path::new("."));
    assert!(
        format!("{unknown:?}").contains("unknown field `certfile`"),
        "{unknown:?}"
    );
}

#[test]
fn a_web_config_file_that_cannot_be_used_stops_the_exporter_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let web_config = dir.path().join("web.yml");
    std::fs::write(
        &web_config,
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
    )
    .unwrap();
    let (config, _) = common::write_run_config(dir.path(), "http://127.0.0.1:9");
    let out = std::process::Command::new(common::BIN)
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--web.config.file",
        ])
        .arg(&web_config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read cert") && stderr.contains("missing.crt"),
        "{stderr}"
    );
}
