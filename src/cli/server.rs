//! `transitd server`: dev mode, or a real server from a config file.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Flags, print_line};
use crate::config::{self, Config, LOG_FORMAT_ENV, LogFormat, SealConfig, StorageConfig};
use crate::metrics::{DEFAULT_PROMETHEUS_RETENTION, MetricsAccess, Telemetry};
use crate::seal::SealKind;
use crate::seal::static_key::StaticSeal;
use crate::seal::transit::{TransitSeal, TransitSettings};
use crate::serve::{ConnectionLimits, Listener, RESERVED_FDS, TlsFiles, raise_fd_limit, serve};
use crate::state::{AppState, Limits};
use crate::storage::{MemoryStorage, PostgresConfig, PostgresStorage, SqliteStorage, Storage};

pub const USAGE: &str = "usage: transitd server -config=FILE [-log-level=LEVEL] [-log-format=standard|json]\n       \
     transitd server -dev [-dev-root-token-id=ID] [-dev-listen-address=ADDR] [-log-format=standard|json]";

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &[
            "dev-root-token-id",
            "dev-listen-address",
            "config",
            "log-level",
            "log-format",
        ],
    )?;
    let known = [
        "dev",
        "dev-root-token-id",
        "dev-listen-address",
        "config",
        "log-level",
        "log-format",
    ];
    if let Some((name, _)) = flags
        .named
        .iter()
        .find(|(n, _)| !known.contains(&n.as_str()))
    {
        return Err(format!("unknown flag -{name}\n{USAGE}"));
    }
    match (flags.is_set("dev"), flags.value("config")) {
        (true, None) => dev(&flags),
        (false, Some(path)) => from_config(&flags, path),
        (true, Some(_)) => Err(format!("-dev and -config cannot be combined\n{USAGE}")),
        (false, None) => Err(format!("a config file is required (or -dev)\n{USAGE}")),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

/// The log format: `-log-format`, else the environment
/// ([`LOG_FORMAT_ENV`]), else the config file's `log_format`, else
/// `standard` (Vault's order). A name Vault does not know is refused.
fn log_format(
    flags: &Flags,
    from_file: Option<LogFormat>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LogFormat, String> {
    let given = match flags.value("log-format") {
        Some(value) => Some(("-log-format".to_owned(), value.to_owned())),
        None => LOG_FORMAT_ENV.iter().find_map(|name| {
            env(name)
                .filter(|v| !v.is_empty())
                .map(|v| ((*name).to_owned(), v))
        }),
    };
    match given {
        Some((source, value)) => LogFormat::parse(&value)
            .ok_or_else(|| format!("invalid {source} {value:?} (known: standard, json)")),
        None => Ok(from_file.unwrap_or_default()),
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn dev(flags: &Flags) -> Result<(), String> {
    super::init_logging(
        flags.value("log-level").unwrap_or("info"),
        log_format(flags, None, &process_env)?,
    );
    let token = match flags.value("dev-root-token-id") {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => format!("s.{}", uuid::Uuid::new_v4().simple()),
    };
    let address: SocketAddr = flags
        .value("dev-listen-address")
        .unwrap_or("127.0.0.1:8200")
        .parse()
        .map_err(|e| format!("invalid -dev-listen-address: {e}"))?;
    // As OpenBao's dev server: Prometheus on, host name off, no token needed.
    let telemetry = Telemetry::configured(DEFAULT_PROMETHEUS_RETENTION, true);
    let state = Arc::new(AppState::dev(&token, Limits::default()).with_telemetry(telemetry));
    let connections = connection_limits(&[None], raise_fd_limit()?)?;
    runtime()?.block_on(async move {
        tokio::spawn(Arc::clone(&state).maintain());
        tokio::spawn(crate::metrics::metrics().upkeep_forever());
        tokio::spawn(super::audit::reopen_audit_files_on_hangup(Arc::clone(
            &state,
        )));
        let listener = Listener::bind(address, None)
            .await?
            .with_limits(connections[0])
            .with_metrics_access(MetricsAccess {
                unauthenticated: true,
            });
        print_line(&format!(
            "transitd dev server listening on http://{address}\n\
             WARNING: dev mode keeps keys in memory only; they are gone when it stops.\n\n\
             export VAULT_ADDR='http://{address}'\nRoot Token: {token}\n"
        ));
        serve(crate::app(state), vec![listener], shutdown_signal()).await
    })
}

fn from_config(flags: &Flags, path: &str) -> Result<(), String> {
    let config = config::load(std::path::Path::new(path))?;
    let level = flags
        .value("log-level")
        .or(config.log_level.as_deref())
        .unwrap_or("info");
    super::init_logging(level, log_format(flags, config.log_format, &process_env)?);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    // Before any key material exists in this process.
    crate::hygiene::disable_core_dumps()?;
    if config.disable_mlock {
        tracing::warn!("disable_mlock is set: key material may be swapped to disk");
    } else if let Some(warning) = crate::hygiene::lock_memory()? {
        tracing::warn!("{warning}");
    }
    let state = Arc::new(build_state(&config)?);
    state.check_seal_type().map_err(|e| e.to_string())?;
    // The static key is here; the transit seal's unsealer may not be up
    // yet, so that one is tried (and retried) once the listeners serve.
    if matches!(state.seal_kind(), SealKind::Static(_))
        && state.auto_unseal().map_err(|e| e.to_string())?
    {
        tracing::info!("unsealed with the static seal key");
    }
    let fatal = Arc::new(std::sync::Mutex::new(None::<String>));
    let fatal_slot = Arc::clone(&fatal);
    let asked: Vec<_> = config
        .listeners
        .iter()
        .map(|l| l.limits.max_connections)
        .collect();
    let mut connections = connection_limits(&asked, raise_fd_limit()?)?;
    for (limits, l) in connections.iter_mut().zip(&config.listeners) {
        if let Some(timeout) = l.limits.http_read_header_timeout {
            limits.header_read_timeout = timeout;
        }
    }
    runtime()?.block_on(async move {
        let mut listeners = Vec::new();
        for (l, limits) in config.listeners.iter().zip(connections) {
            let tls = l.tls.as_ref().map(|t| TlsFiles {
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
                min_tls13: t.min_version == config::TlsVersion::Tls13,
                client_certs: !t.disable_client_certs,
            });
            let access = MetricsAccess {
                unauthenticated: l.unauthenticated_metrics_access,
            };
            let listener = Listener::bind(l.address, tls)
                .await?
                .with_limits(limits)
                .with_metrics_access(access);
            let scheme = if listener.is_tls() { "https" } else { "http" };
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            print_line(&format!("transitd listening on {scheme}://{bound}"));
            listeners.push(listener);
        }
        tokio::spawn(Arc::clone(&state).maintain());
        tokio::spawn(crate::metrics::metrics().upkeep_forever());
        tokio::spawn(super::audit::reopen_audit_files_on_hangup(Arc::clone(
            &state,
        )));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        if let SealKind::Transit(seal) = state.seal_kind() {
            if !seal.settings().disable_renewal {
                tokio::spawn(super::transit_seal::renew_token_forever(Arc::clone(seal)));
            }
            let state = Arc::clone(&state);
            let fatal = Arc::clone(&fatal_slot);
            tokio::spawn(async move {
                if let Err(e) = super::transit_seal::unseal_with_retry(state).await {
                    tracing::error!(error = %e, "auto-unseal failed; stopping");
                    if let Ok(mut slot) = fatal.lock() {
                        *slot = Some(e);
                    }
                    let _ = stop_tx.send(());
                }
            });
        }
        let sealed = state.is_sealed();
        tracing::info!(
            storage = state.storage_kind(),
            seal = state.seal_kind().name(),
            sealed,
            locked_memory_bytes = crate::hygiene::memory_locked_bytes(),
            "transitd started"
        );
        let shutdown = async move {
            tokio::select! {
                () = shutdown_signal() => {}
                Ok(()) = stop_rx => {}
            }
        };
        serve(crate::app(state), listeners, shutdown).await
    })?;
    match fatal.lock().ok().and_then(|mut f| f.take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// OpenBao's `BAO_SEAL_TYPE` (or `VAULT_SEAL_TYPE`): `transit` without a
/// `seal` block configures the transit seal from the environment alone.
/// Naming the type the file already has changes nothing; any other
/// combination is refused rather than half applied.
fn seal_type_from_env(
    configured: Option<&SealConfig>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SealConfig>, String> {
    let Some(wanted) = ["BAO_SEAL_TYPE", "VAULT_SEAL_TYPE"]
        .iter()
        .find_map(|name| env(name).filter(|v| !v.is_empty()))
    else {
        return Ok(configured.cloned());
    };
    let current = match configured {
        None => "shamir",
        Some(SealConfig::Static { .. }) => "static",
        Some(SealConfig::Transit(_)) => "transit",
    };
    match (wanted.as_str(), configured) {
        (w, _) if w == current => Ok(configured.cloned()),
        ("transit", None) => Ok(Some(SealConfig::Transit(Default::default()))),
        _ => Err(format!(
            "BAO_SEAL_TYPE is {wanted:?} but the configuration's seal is {current:?}; \
             transitd applies BAO_SEAL_TYPE only to select \"transit\" when there is no seal block"
        )),
    }
}

fn build_state(config: &Config) -> Result<AppState, String> {
    let storage: Arc<dyn Storage> = match &config.storage {
        StorageConfig::Sqlite { path } => {
            Arc::new(SqliteStorage::open(path).map_err(|e| format!("storage \"sqlite\": {e}"))?)
        }
        StorageConfig::Postgresql {
            connection_url,
            max_parallel,
            schema,
        } => {
            let mut pg = PostgresConfig::new(connection_url.as_str());
            pg.max_parallel = *max_parallel;
            pg.schema.clone_from(schema);
            Arc::new(
                PostgresStorage::connect(&pg)
                    .map_err(|e| format!("storage \"postgresql\": {e}"))?,
            )
        }
        StorageConfig::Inmem => Arc::new(MemoryStorage::new()),
    };
    let seal_config = seal_type_from_env(config.seal.as_ref(), &process_env)?;
    let seal = seal_kind(seal_config.as_ref())?;
    let old_seal = config
        .old_seal
        .as_ref()
        .map(|old| seal_kind(Some(old)))
        .transpose()?;
    Ok(AppState::migrating(
        storage,
        seal,
        old_seal,
        request_limits(config),
        cluster_name(config),
    )
    .with_telemetry(config.telemetry.clone()))
}

/// The seal a `seal` block configures (`None`: Shamir).
fn seal_kind(config: Option<&SealConfig>) -> Result<SealKind, String> {
    Ok(match config {
        None => SealKind::Shamir,
        Some(SealConfig::Static {
            current_key_id,
            current_key,
            previous_key_id,
            previous_key,
        }) => SealKind::Static(StaticSeal::from_config(
            current_key_id,
            current_key,
            previous_key_id.as_deref(),
            previous_key.as_deref(),
        )?),
        Some(SealConfig::Transit(transit)) => {
            let settings = TransitSettings::resolve(transit, &process_env)?;
            SealKind::Transit(Arc::new(TransitSeal::new(settings)?))
        }
    })
}

type ListenerSetting = fn(&config::ListenerConfig) -> Option<usize>;

/// One budget for the server: for each setting, the smallest any listener
/// asks for.
fn request_limits(config: &Config) -> Limits {
    let mut limits = Limits::default();
    let smallest = |setting: ListenerSetting| config.listeners.iter().filter_map(setting).min();
    let settings: [(&mut usize, ListenerSetting); 5] = [
        (&mut limits.max_body_bytes, |l| l.max_request_size),
        (&mut limits.max_json_memory, |l| {
            l.limits.max_request_json_memory
        }),
        (&mut limits.max_json_strings, |l| {
            l.limits.max_request_json_strings
        }),
        (&mut limits.max_json_elements, |l| {
            l.limits.max_request_json_elements
        }),
        (&mut limits.max_json_depth, |l| l.limits.max_json_depth),
    ];
    for (limit, setting) in settings {
        if let Some(min) = smallest(setting) {
            *limit = min;
        }
    }
    limits
}

/// Each listener's connection limit: as configured, or by default
/// [`ConnectionLimits::DEFAULT`]'s, shrunk so that all of them fit in the
/// open-file limit with [`RESERVED_FDS`] to spare. Configured limits that do
/// not fit stop the start.
fn connection_limits(
    asked: &[Option<usize>],
    fd_limit: u64,
) -> Result<Vec<ConnectionLimits>, String> {
    let available = usize::try_from(fd_limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    let configured: usize = asked.iter().flatten().sum();
    if configured > available {
        return Err(format!(
            "max_connections of the listeners add up to {configured}, but the open file limit \
             ({fd_limit}, ulimit -n) leaves room for {available}"
        ));
    }
    let defaulted = asked.iter().filter(|a| a.is_none()).count().max(1);
    let default = ConnectionLimits::DEFAULT
        .max_connections
        .min((available - configured) / defaulted)
        .max(1);
    Ok(asked
        .iter()
        .map(|a| ConnectionLimits {
            max_connections: a.unwrap_or(default),
            ..ConnectionLimits::DEFAULT
        })
        .collect())
}

fn cluster_name(config: &Config) -> String {
    config.cluster_name.clone().unwrap_or_else(|| {
        format!(
            "transitd-cluster-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_flag_then_environment_then_file() {
        let flags = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            Flags::parse(&args, &["log-format"]).unwrap()
        };
        let none = |_: &str| None;
        let vault = |name: &str| (name == "VAULT_LOG_FORMAT").then(|| "json".to_owned());
        let both = |name: &str| match name {
            "BAO_LOG_FORMAT" => Some("standard".to_owned()),
            _ => Some("json".to_owned()),
        };
        let bad = |_: &str| Some("xml".to_owned());
        let json = Some(LogFormat::Json);
        assert_eq!(
            log_format(&flags(&[]), None, &none),
            Ok(LogFormat::Standard)
        );
        assert_eq!(log_format(&flags(&[]), json, &none), Ok(LogFormat::Json));
        assert_eq!(log_format(&flags(&[]), None, &vault), Ok(LogFormat::Json));
        assert_eq!(
            log_format(&flags(&[]), json, &both),
            Ok(LogFormat::Standard)
        );
        let flag = flags(&["-log-format=standard"]);
        assert_eq!(log_format(&flag, json, &vault), Ok(LogFormat::Standard));
        assert_eq!(
            log_format(&flags(&["-log-format", "yaml"]), None, &none),
            Err("invalid -log-format \"yaml\" (known: standard, json)".to_owned())
        );
        assert_eq!(
            log_format(&flags(&[]), json, &bad),
            Err("invalid BAO_LOG_FORMAT \"xml\" (known: standard, json)".to_owned())
        );
    }

    #[test]
    fn bao_seal_type_selects_transit_only_without_a_seal_block() {
        let none = |_: &str| None;
        let transit = |name: &str| (name == "VAULT_SEAL_TYPE").then(|| "transit".to_owned());
        let static_seal = SealConfig::Static {
            current_key_id: "1".to_owned(),
            current_key: "env://K".to_owned(),
            previous_key_id: None,
            previous_key: None,
        };
        assert_eq!(seal_type_from_env(None, &none), Ok(None));
        assert!(matches!(
            seal_type_from_env(None, &transit),
            Ok(Some(SealConfig::Transit(_)))
        ));
        let e = seal_type_from_env(Some(&static_seal), &transit).unwrap_err();
        assert!(e.contains("\"static\""), "{e}");
        let awskms = |_: &str| Some("awskms".to_owned());
        assert!(seal_type_from_env(None, &awskms).is_err());
        assert_eq!(
            seal_type_from_env(Some(&static_seal), &|_: &str| Some("static".to_owned())),
            Ok(Some(static_seal.clone()))
        );
    }

    #[test]
    fn connection_limits_fit_in_the_open_file_limit() {
        let limits = connection_limits(&[None, Some(100)], 1024 + RESERVED_FDS).unwrap();
        let max: Vec<_> = limits.iter().map(|l| l.max_connections).collect();
        assert_eq!(max, [924, 100], "the default takes what is left");
        let limits = connection_limits(&[None], 1 << 20).unwrap();
        assert_eq!(limits[0], ConnectionLimits::DEFAULT);
        let e = connection_limits(&[Some(2000)], 1024).unwrap_err();
        assert!(e.contains("add up to 2000"), "{e}");
    }
}
