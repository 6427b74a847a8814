//! The config while the daemon runs. The supervisor starts each target's query loop and the OTLP
//! pusher from the config, and on a reload (SIGHUP, or `POST /-/reload` on the web listener)
//! reads the file again. A file that does not validate, or names a secret that cannot be read,
//! changes nothing: one log line, `config_last_reload_successful` at 0, and the config before
//! stays in force. A good one is applied in place:
//!
//! - budgets, `max_series`, `days` and dimensions rebuild the figures (dimensions re-key the
//!   stored months, which are asked for again, as after a restart; nothing stored is dropped);
//! - a target added, removed or changed (URL, key) starts or stops its query loop; a change to
//!   what every query carries (interval, timeouts, `public_url`, dimensions) starts them all
//!   over, which asks only for what a restart would ask for;
//! - a changed `otlp` section restarts the pusher;
//! - the files of the web config and the callback certificate are read again (they are also
//!   re-read whenever they change); which files they are, the listen addresses, the listeners'
//!   limits and `state_dir` are bound at start: a change to them is logged and waits for the
//!   next restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::config::{ApiKey, Config, ConfigError, SecretError, TargetConfig};
use crate::daemon::Env;
use crate::daemon::pending::wall_now;
use crate::daemon::scheduler;
use crate::daemon::server::SecurityError;
use crate::daemon::shared::{ReloadRequest, Settings, Shared};
use crate::daemon::store::StoreConfig;
use crate::errors::chain;
use crate::export::otlp::{self, OtlpError, Sources};
use crate::infobip::client::Client;

/// Where the config came from, so that a reload reads it the same way.
pub struct ConfigSource {
    pub path: PathBuf,
    /// The command-line flags that override the file, applied again to every reload.
    pub overrides: Box<dyn Fn(&mut Config) + Send + Sync>,
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ConfigSource {
    /// Reads and validates the file, with the flags applied.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(&self.path)?;
        (self.overrides)(&mut config);
        Ok(config)
    }
}

/// Why a config was not taken (see `crate::errors` for how causes are printed).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the exporter was started without a config file: there is nothing to reload")]
    NoFile,
    #[error("{0}")]
    Config(ConfigError),
    #[error("target {target}: {cause}")]
    Secret { target: String, cause: SecretError },
    #[error("target {target}: cannot build the HTTP client: {}", chain(cause))]
    Client {
        target: String,
        cause: reqwest::Error,
    },
    #[error(transparent)]
    Otlp(OtlpError),
    #[error("reading the config file stopped: {0}")]
    Interrupted(tokio::task::JoinError),
    #[error(transparent)]
    Listener(SecurityError),
}

/// One target's running query loop and what it was started with.
struct TargetLoop {
    config: TargetConfig,
    key: ApiKey,
    stop: CancellationToken,
    task: AbortOnDropHandle<()>,
}

impl TargetLoop {
    async fn stop(self) {
        self.stop.cancel();
        // Finished before another loop for the target starts, so two never send side by side.
        let _ = self.task.await;
    }
}

struct RunningPusher {
    stop: CancellationToken,
    task: AbortOnDropHandle<()>,
}

/// Owns the query loops and the pusher; dropping it (an aborted shutdown) aborts them.
pub(super) struct Supervisor {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    source: Option<ConfigSource>,
    env: Env,
    config: Config,
    loops: BTreeMap<String, TargetLoop>,
    pusher: Option<RunningPusher>,
    /// Watched from `start`, before the exporter says it started: SIGHUP's default would end it.
    hangups: Hangups,
}

impl Supervisor {
    /// Starts the pusher and one query loop per target; `keys` are the targets' resolved keys,
    /// in order.
    pub(super) fn start(
        shared: Arc<Shared>,
        config: &Config,
        keys: Vec<ApiKey>,
        (source, env): (Option<ConfigSource>, Env),
        shutdown: CancellationToken,
    ) -> Result<Self, ReloadError> {
        let mut supervisor = Supervisor {
            shared,
            shutdown,
            source,
            env,
            config: config.clone(),
            loops: BTreeMap::new(),
            pusher: None,
            hangups: hangups(),
        };
        supervisor.pusher = supervisor.start_pusher(config)?;
        for (target, key) in config.targets.iter().zip(keys) {
            let client = client_for(target, &key)?;
            supervisor.start_loop(target.clone(), key, client);
        }
        let now = wall_now().unix_timestamp_nanos() as f64 / 1e9;
        supervisor.shared.metrics.config_loaded(now);
        Ok(supervisor)
    }

    /// Serves reloads until shutdown, then waits for the loops and the pusher to stop.
    pub(super) async fn run(mut self, mut requests: mpsc::Receiver<ReloadRequest>) {
        let mut hangups = std::mem::take(&mut self.hangups);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                Some(()) = next_hangup(&mut hangups) => {
                    tracing::info!("SIGHUP: reloading the config");
                    let _ = self.reload_logged().await;
                }
                Some(reply) = requests.recv() => {
                    let outcome = self.reload_logged().await;
                    let _ = reply.send(outcome.map_err(|e| e.to_string()));
                }
            }
        }
        for (_, running) in std::mem::take(&mut self.loops) {
            let _ = running.task.await;
        }
        if let Some(pusher) = self.pusher.take() {
            let _ = pusher.task.await;
        }
    }

    async fn reload_logged(&mut self) -> Result<(), ReloadError> {
        match self.reload().await {
            Ok(()) => {
                let now = wall_now().unix_timestamp_nanos() as f64 / 1e9;
                self.shared.metrics.config_loaded(now);
                tracing::info!(targets = self.loops.len(), "config reloaded");
                Ok(())
            }
            Err(err) => {
                self.shared.metrics.config_reload_failed();
                tracing::error!("config reload failed, the config before stays in force: {err}");
                Err(err)
            }
        }
    }

    async fn reload(&mut self) -> Result<(), ReloadError> {
        let Some(source) = &self.source else {
            return Err(ReloadError::NoFile);
        };
        let (path, overrides) = (source.path.clone(), &source.overrides);
        // Reading files is blocking I/O: the file, then each key file.
        let (config, keys) = {
            let read = tokio::task::spawn_blocking(move || -> Result<_, ReloadError> {
                let config = Config::load(&path).map_err(ReloadError::Config)?;
                let keys = resolve_keys(&config)?;
                Ok((config, keys))
            });
            let (mut config, keys) = read.await.map_err(ReloadError::Interrupted)??;
            overrides(&mut config);
            (config, keys)
        };
        self.warn_of_restart_only_changes(&config);
        // The listeners' files are re-read on change anyway; a reload re-reads them now, so a
        // broken certificate or web config file refuses the whole reload.
        for security in [&self.shared.web_security, &self.shared.callback_security] {
            security.reload().map_err(ReloadError::Listener)?;
        }
        // Everything that can fail is checked before anything changes.
        let mut clients = config
            .targets
            .iter()
            .zip(keys)
            .map(|(target, key)| {
                let client = client_for(target, &key)?;
                Ok((target.name.clone(), (key, client)))
            })
            .collect::<Result<BTreeMap<String, (ApiKey, Client)>, ReloadError>>()?;
        // The pusher also reads the targets (for their `up`) and the cap.
        let pushed = |c: &Config| {
            (
                c.metrics.otlp.clone(),
                c.metrics.max_series,
                target_names(c),
            )
        };
        let pusher_changes = pushed(&config) != pushed(&self.config);
        let new_pusher = if pusher_changes {
            Some(self.start_pusher(&config)?)
        } else {
            None
        };

        let store_config = StoreConfig::of(&config);
        if store_config != StoreConfig::of(&self.config) {
            self.shared.store.reconfigure(store_config).await;
        }
        let settings = Settings::of(&config);
        let restart_all = settings.queries_differ(&self.shared.settings());
        self.shared.replace_settings(settings);
        let names: Vec<String> = self.loops.keys().cloned().collect();
        for name in names {
            let unchanged = !restart_all
                && config.targets.iter().any(|t| {
                    t.name == name
                        && self.loops.get(&name).is_some_and(|running| {
                            running.config == *t
                                && clients
                                    .get(&name)
                                    .is_some_and(|(key, _)| *key == running.key)
                        })
                });
            if !unchanged && let Some(running) = self.loops.remove(&name) {
                running.stop().await;
            }
        }
        for target in &config.targets {
            if !self.loops.contains_key(&target.name)
                && let Some((key, client)) = clients.remove(&target.name)
            {
                tracing::info!(target = %target.name, "starting the target's query loop");
                self.start_loop(target.clone(), key, client);
            }
        }
        if let Some(pusher) = new_pusher
            && let Some(old) = std::mem::replace(&mut self.pusher, pusher)
        {
            old.stop.cancel();
            let _ = old.task.await;
        }
        self.config = config;
        Ok(())
    }

    fn start_loop(&mut self, target: TargetConfig, key: ApiKey, client: Client) {
        self.shared.metrics.target_added(&target.name);
        let stop = self.shutdown.child_token();
        let task = AbortOnDropHandle::new(tokio::spawn(scheduler::run_target(
            Arc::clone(&self.shared),
            target.name.clone(),
            (client, target.filter.clone()),
            stop.clone(),
        )));
        self.loops.insert(
            target.name.clone(),
            TargetLoop {
                config: target,
                key,
                stop,
                task,
            },
        );
    }

    fn start_pusher(&self, config: &Config) -> Result<Option<RunningPusher>, ReloadError> {
        let sources = Sources {
            snapshot: self.shared.store.subscribe(),
            metrics: self.shared.metrics.clone(),
            targets: target_names(config),
            max_series: config.metrics.max_series,
        };
        let started = otlp::start(config.metrics.otlp.as_ref(), &*self.env, sources);
        let Some(pusher) = started.map_err(ReloadError::Otlp)? else {
            return Ok(None);
        };
        let stop = self.shutdown.child_token();
        let task = AbortOnDropHandle::new(tokio::spawn(pusher.run(stop.clone())));
        Ok(Some(RunningPusher { stop, task }))
    }

    fn warn_of_restart_only_changes(&self, config: &Config) {
        let (old, new) = (&self.config, config);
        for (what, changed) in [
            ("web.listen", old.web.listen != new.web.listen),
            (
                "callback.listen",
                old.callback.listen != new.callback.listen,
            ),
            ("state_dir", old.state_dir != new.state_dir),
            (
                "web.config_file",
                old.web.config_file != new.web.config_file,
            ),
            ("callback.tls", old.callback.tls != new.callback.tls),
            (
                "the listeners' limits",
                (old.web.limits, old.callback.limits) != (new.web.limits, new.callback.limits),
            ),
        ] {
            if changed {
                tracing::warn!("{what} changed: it takes effect at the next restart");
            }
        }
    }
}

fn client_for(target: &TargetConfig, key: &ApiKey) -> Result<Client, ReloadError> {
    Client::new(&target.base_url, key).map_err(|cause| ReloadError::Client {
        target: target.name.clone(),
        cause,
    })
}

fn target_names(config: &Config) -> Vec<String> {
    config.targets.iter().map(|t| t.name.clone()).collect()
}

fn resolve_keys(config: &Config) -> Result<Vec<ApiKey>, ReloadError> {
    config
        .targets
        .iter()
        .map(|target| {
            target
                .api_key
                .resolve()
                .map_err(|cause| ReloadError::Secret {
                    target: target.name.clone(),
                    cause,
                })
        })
        .collect()
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

/// SIGHUP, watched from start: its default would end the process.
fn hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup())
            .map_err(|err| tracing::warn!("cannot watch SIGHUP, reload with POST /-/reload: {err}"))
            .ok()
    }
}

async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = hangups {
        return signal.recv().await;
    }
    #[cfg(not(unix))]
    let _ = hangups;
    std::future::pending().await
}
