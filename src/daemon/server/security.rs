//! What a listener's TLS and auth files turn into, kept current.
//!
//! exporter-toolkit re-reads its web config file on every handshake and request, so a renewed
//! certificate or a changed password applies without a restart. Here each new connection and
//! each request asks [`Security::current`], which compares the modification time, size and
//! inode of the config file and of every file it names with what was loaded, and loads again
//! when one changed. A changed file that is invalid keeps the settings in force and logs one
//! error (until it changes again). [`Security::reload`] re-reads unconditionally, for a reload
//! signal.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use tokio_rustls::rustls::ServerConfig;

use super::auth::BasicAuth;
use super::tls::{self, TlsError};
use crate::config::CertFiles;
use crate::config::webconfig::{WebConfigError, WebConfigFile};

/// The settings in force for new connections and requests.
#[derive(Debug, Default)]
pub struct Active {
    /// `None`: plain HTTP.
    pub(super) tls: Option<Arc<ServerConfig>>,
    /// `None`: no authentication.
    pub(super) auth: Option<BasicAuth>,
    /// Set on every response.
    pub(super) headers: HeaderMap,
}

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
    #[error("{}: {source}", origin.display())]
    Tls { origin: PathBuf, source: TlsError },
}

/// A listener's TLS, auth and headers, from its files.
#[derive(Debug)]
pub struct Security {
    source: Source,
    loaded: Mutex<Loaded>,
}

#[derive(Debug)]
enum Source {
    Plain,
    WebConfig(PathBuf),
    Certificate(CertFiles),
}

#[derive(Debug)]
struct Loaded {
    active: Arc<Active>,
    /// The files read for `active`, as they were just before reading.
    stamps: Stamps,
    /// The files of a failed load, as they were: tried again (and logged) only once one of
    /// them changes.
    rejected: Option<Stamps>,
}

/// What changes when a file is written or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

fn restamp(stamps: &[(PathBuf, Option<Stamp>)]) -> Stamps {
    stamps
        .iter()
        .map(|(path, _)| (path.clone(), stamp(path)))
        .collect()
}

impl Security {
    /// Plain HTTP, no authentication.
    pub fn plain() -> Security {
        Security::with(Source::Plain, Arc::default(), Vec::new())
    }

    /// The web listener's exporter-toolkit configuration file, loaded now.
    pub fn web_config(path: PathBuf) -> Result<Security, SecurityError> {
        let source = Source::WebConfig(path);
        let (active, stamps) = load(&source).map_err(|(err, _)| err)?;
        Ok(Security::with(source, active, stamps))
    }

    /// A listener's own certificate and key, loaded now.
    pub fn certificate(files: CertFiles) -> Result<Security, SecurityError> {
        let source = Source::Certificate(files);
        let (active, stamps) = load(&source).map_err(|(err, _)| err)?;
        Ok(Security::with(source, active, stamps))
    }

    fn with(source: Source, active: Arc<Active>, stamps: Stamps) -> Self {
        Security {
            source,
            loaded: Mutex::new(Loaded {
                active,
                stamps,
                rejected: None,
            }),
        }
    }

    /// Whether connections are served over TLS now.
    pub fn is_tls(&self) -> bool {
        self.lock().active.tls.is_some()
    }

    /// The settings in force, loaded again first when one of their files changed.
    pub(super) fn current(&self) -> Arc<Active> {
        if matches!(self.source, Source::Plain) {
            return Arc::clone(&self.lock().active);
        }
        let mut loaded = self.lock();
        let watched = loaded.rejected.as_ref().unwrap_or(&loaded.stamps);
        if restamp(watched) == *watched {
            return Arc::clone(&loaded.active);
        }
        match load(&self.source) {
            Ok((active, stamps)) => {
                tracing::info!(source = %self.describe(), tls = active.tls.is_some(), "listener settings reloaded: a file changed");
                *loaded = Loaded {
                    active,
                    stamps,
                    rejected: None,
                };
            }
            Err((err, stamps)) => {
                tracing::error!(
                    "{}: a changed file is invalid, the settings in force stay: {err}",
                    self.describe()
                );
                loaded.rejected = Some(stamps);
            }
        }
        Arc::clone(&loaded.active)
    }

    /// Reads the files again whether or not they changed; on an error the settings in force
    /// stay.
    pub fn reload(&self) -> Result<(), SecurityError> {
        if matches!(self.source, Source::Plain) {
            return Ok(());
        }
        let (active, stamps) = load(&self.source).map_err(|(err, _)| err)?;
        *self.lock() = Loaded {
            active,
            stamps,
            rejected: None,
        };
        Ok(())
    }

    fn describe(&self) -> String {
        match &self.source {
            Source::Plain => "plain HTTP".into(),
            Source::WebConfig(path) => format!("web config file {}", path.display()),
            Source::Certificate(files) => format!("certificate {}", files.cert_file.display()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type Stamps = Vec<(PathBuf, Option<Stamp>)>;

/// Reads `source`, stamping each file before reading it so that a change made while reading
/// is seen next time. A failure comes with the stamps of the files it read.
fn load(source: &Source) -> Result<(Arc<Active>, Stamps), (SecurityError, Stamps)> {
    match source {
        Source::Plain => Ok((Arc::default(), Vec::new())),
        Source::WebConfig(path) => {
            let mut stamps = vec![(path.clone(), stamp(path))];
            let file = match WebConfigFile::load(path) {
                Ok(file) => file,
                Err(err) => return Err((err.into(), stamps)),
            };
            stamps.extend(file.files().into_iter().map(|f| {
                let s = stamp(&f);
                (f, s)
            }));
            let tls = match file.tls.as_ref().map(tls::web_server_config) {
                None => None,
                Some(Ok(config)) => Some(Arc::new(config)),
                Some(Err(source)) => {
                    let origin = path.clone();
                    return Err((SecurityError::Tls { origin, source }, stamps));
                }
            };
            let mut headers = HeaderMap::new();
            for (name, value) in &file.headers {
                // Validated by the config parser; a value that still fails is left out.
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) {
                    headers.insert(name, value);
                }
            }
            let active = Active {
                tls,
                auth: BasicAuth::new(file.basic_auth_users),
                headers,
            };
            Ok((Arc::new(active), stamps))
        }
        Source::Certificate(files) => {
            let stamps: Stamps = [&files.cert_file, &files.key_file]
                .into_iter()
                .map(|f| (f.clone(), stamp(f)))
                .collect();
            let config = match tls::cert_server_config(files) {
                Ok(config) => config,
                Err(source) => {
                    let origin = files.cert_file.clone();
                    return Err((SecurityError::Tls { origin, source }, stamps));
                }
            };
            let active = Active {
                tls: Some(Arc::new(config)),
                ..Active::default()
            };
            Ok((Arc::new(active), stamps))
        }
    }
}
