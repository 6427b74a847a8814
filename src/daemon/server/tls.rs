//! rustls server settings (aws-lc-rs, as reqwest uses) from the web config file's
//! `tls_server_config` or from `callback.tls`.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{self, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    self, CipherSuite as Suite, DigitallySignedStruct, DistinguishedName, NamedGroup,
    RootCertStore, ServerConfig, SignatureScheme,
};

use crate::config::CertFiles;
use crate::config::webconfig::{CipherSuite, ClientAuth, Curve, Pem, TlsServerConfig, TlsVersion};

/// PEM files are small; the cap keeps a wrong path from eating memory.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{what} holds no PEM {expected}; expected a PEM file with `-----BEGIN {expected}-----`"
    )]
    NoPem {
        what: &'static str,
        expected: &'static str,
    },
    #[error("client_ca holds no certificate usable as a CA: {0}")]
    ClientCa(String),
    #[error("the certificate and key cannot serve TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The settings of the web listener's `tls_server_config`.
pub(super) fn web_server_config(tls: &TlsServerConfig) -> Result<ServerConfig, TlsError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !tls.cipher_suites.is_empty() {
        let all = provider.cipher_suites.clone();
        let tls13 = all
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied();
        let tls12 = tls.cipher_suites.iter().filter_map(|wanted| {
            let wanted = suite(*wanted);
            all.iter().find(|s| s.suite() == wanted).copied()
        });
        provider.cipher_suites = tls13.chain(tls12).collect();
    }
    if !tls.curves.is_empty() {
        let groups = provider.kx_groups.clone();
        provider.kx_groups = tls
            .curves
            .iter()
            .filter_map(|c| groups.iter().find(|g| g.name() == group(*c)).copied())
            .collect();
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (tls.min_version..=tls.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)?;
    let builder = match tls.client_auth {
        ClientAuth::NoClientCert => builder.with_no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => builder
            .with_client_cert_verifier(Arc::new(AnyCertificate {
                mandatory: tls.client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })),
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let ca = tls
                .client_ca
                .as_ref()
                .ok_or_else(|| TlsError::ClientCa("none configured".into()))?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "client_ca")? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if tls.client_auth == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certificates(&tls.cert, "cert")?, key(&tls.key)?)?;
    config.ignore_client_order = tls.prefer_server_cipher_suites;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The callback listener's own certificate, TLS 1.2 and 1.3, no client certificates.
pub(super) fn cert_server_config(files: &CertFiles) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cert = Pem::File(files.cert_file.clone());
    let key_pem = Pem::File(files.key_file.clone());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates(&cert, "cert_file")?, key(&key_pem)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read(pem: &Pem, what: &'static str) -> Result<Vec<u8>, TlsError> {
    match pem {
        Pem::Inline(text) => Ok(text.clone().into_bytes()),
        Pem::File(path) => read_file(path, what),
    }
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES).read_to_end(&mut bytes))
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })?;
    Ok(bytes)
}

fn certificates(pem: &Pem, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(pem, what)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            what,
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn key(pem: &Pem) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(pem, "key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::NoPem {
        what: "key",
        expected: "PRIVATE KEY",
    })
}

fn suite(s: CipherSuite) -> Suite {
    match s {
        CipherSuite::EcdheEcdsaAes128Gcm => Suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheEcdsaAes256Gcm => Suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheEcdsaChacha20 => Suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        CipherSuite::EcdheRsaAes128Gcm => Suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheRsaAes256Gcm => Suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheRsaChacha20 => Suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    }
}

fn group(c: Curve) -> NamedGroup {
    match c {
        Curve::X25519 => NamedGroup::X25519,
        Curve::P256 => NamedGroup::secp256r1,
        Curve::P384 => NamedGroup::secp384r1,
    }
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a certificate is asked for (and with
/// the second required) but not checked against any CA; only the handshake signature proves
/// the client holds its key. exporter-toolkit calls both insecure, and so does the README.
#[derive(Debug)]
struct AnyCertificate {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyCertificate {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline_tls(client_auth: ClientAuth) -> TlsServerConfig {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        TlsServerConfig {
            cert: Pem::Inline(cert.pem()),
            key: Pem::Inline(signing_key.serialize_pem()),
            client_ca: Some(Pem::Inline(cert.pem())),
            client_auth,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: vec![CipherSuite::EcdheEcdsaAes256Gcm],
            curves: vec![Curve::P384, Curve::X25519],
            prefer_server_cipher_suites: false,
        }
    }

    #[test]
    fn every_client_auth_type_and_the_suite_and_curve_choices_build() {
        for auth in [
            ClientAuth::NoClientCert,
            ClientAuth::RequestClientCert,
            ClientAuth::RequireAnyClientCert,
            ClientAuth::VerifyClientCertIfGiven,
            ClientAuth::RequireAndVerifyClientCert,
        ] {
            let config = web_server_config(&inline_tls(auth)).unwrap();
            assert!(!config.ignore_client_order);
            let suites: Vec<Suite> = config
                .crypto_provider()
                .cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect();
            assert_eq!(
                suites.last(),
                Some(&Suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
                "TLS 1.3 suites, then the one TLS 1.2 suite chosen: {suites:?}"
            );
            let groups: Vec<NamedGroup> = config
                .crypto_provider()
                .kx_groups
                .iter()
                .map(|g| g.name())
                .collect();
            assert_eq!(groups, [NamedGroup::secp384r1, NamedGroup::X25519]);
        }
    }

    #[test]
    fn a_key_that_is_not_pem_is_named() {
        let mut tls = inline_tls(ClientAuth::NoClientCert);
        tls.key = Pem::Inline("garbage".into());
        let err = web_server_config(&tls).unwrap_err().to_string();
        assert_eq!(
            err,
            "key holds no PEM PRIVATE KEY; expected a PEM file with `-----BEGIN PRIVATE KEY-----`"
        );
    }
}
