//! The server's metrics: counters and timers recorded where things happen,
//! rendered on demand by `sys/metrics` ([`render`]).
//!
//! Every series is registered once, at first use, from fixed lists (operation
//! kinds, key types, outcomes, login methods): recording is one atomic add on
//! a handle held here, with no lookup, no label formatting and no allocation
//! (timers append to a lock-free buffer that the recorder drains: one
//! allocation per 64 observations, freed when drained). No label
//! value ever comes from a request: key names, token-derived values and paths
//! are never labels, so a client cannot grow the number of series.
//!
//! Names follow Vault's where the meaning is the same (`vault_core_*`,
//! `vault_audit_*`, `vault_barrier_*`, `vault_token_*`; timers in
//! milliseconds, as summaries, as Vault's go-metrics exposes them); the rest
//! are `transitd_*`. Values that are a state rather than an event (sealed,
//! cache sizes, process memory) are read when rendered ([`render::Gauges`]).

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};
use std::time::Instant;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder as _};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use transit_keys::KeyType;

pub mod render;
mod telemetry;

pub use render::Gauges;
pub use telemetry::{DEFAULT_PROMETHEUS_RETENTION, Telemetry};

/// Vault's summary quantiles, with the minimum and maximum (which the JSON
/// form reports).
const QUANTILES: [f64; 5] = [0.0, 0.5, 0.9, 0.99, 1.0];

/// The transit operations counted by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Encrypt,
    Decrypt,
    Rewrap,
    Datakey,
    Hmac,
    Sign,
    /// Signature and HMAC verification (one endpoint).
    Verify,
}

impl OpKind {
    const ALL: [Self; 7] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::Rewrap,
        Self::Datakey,
        Self::Hmac,
        Self::Sign,
        Self::Verify,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Rewrap => "rewrap",
            Self::Datakey => "datakey",
            Self::Hmac => "hmac",
            Self::Sign => "sign",
            Self::Verify => "verify",
        }
    }
}

/// The key-type label when the request named no existing key (refused
/// before a key was found).
const NO_KEY: &str = "none";
/// Key types plus [`NO_KEY`].
const KEY_TYPES: usize = KeyType::ALL.len() + 1;

/// Login methods counted for failures, by their Vault type names.
/// Every login method's name (`auth::methods::MethodKind::ALL`; a test there
/// keeps the two lists together).
pub const LOGIN_METHODS: [&str; 5] = ["userpass", "approle", "jwt", "kubernetes", "cert"];

/// Storage operations timed at the barrier, as Vault names them.
#[derive(Clone, Copy, Debug)]
pub enum BarrierOp {
    Get,
    Put,
    Delete,
    List,
}

/// Who may read `sys/metrics` on a listener; carried by each request (an
/// extension set by the listener).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsAccess {
    /// `unauthenticated_metrics_access`: no token needed (and, as in Vault,
    /// not audited, served while sealed).
    pub unauthenticated: bool,
}

/// Where a request was routed, for `vault_route_{op}_{mount}` (Vault's
/// names: `vault_route_update_transit_`, `vault_route_read_auth_token_`).
/// Mount paths come from the mount table, never from a request's spelling.
#[derive(Clone, Copy, Debug)]
pub enum RoutePlace<'a> {
    Sys,
    Token,
    /// A transit mount's path (`transit`).
    Secrets(&'a str),
    /// A login method's path (`userpass`).
    Auth(&'a str),
}

/// Vault's logical operations, in the order of [`RouteTimers`].
pub const ROUTE_OPS: [&str; 5] = ["create", "read", "update", "delete", "list"];
type RouteTimers = [Histogram; 5];

/// Every handle, registered once.
#[derive(Debug)]
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// `vault_route_*`: fixed for `sys/` and `auth/token/`; per mount
    /// (registered at a mount's first request) for the others.
    route_sys: RouteTimers,
    route_token: RouteTimers,
    route_secrets: RwLock<HashMap<String, RouteTimers>>,
    route_auth: RwLock<HashMap<String, RouteTimers>>,
    /// `vault_core_handle_request`: milliseconds from routing to reply.
    pub handle_request: Histogram,
    /// `vault_audit_log_request` / `_response`: milliseconds to record.
    pub audit_request: Histogram,
    pub audit_response: Histogram,
    /// `vault_audit_log_request_failure` / `_response_failure`.
    pub audit_request_failure: Counter,
    pub audit_response_failure: Counter,
    barrier: [Histogram; 4],
    /// `vault_token_lookup`: milliseconds per token lookup.
    pub token_lookup: Histogram,
    /// `vault_token_creation`: tokens issued (logins and `auth/token/create*`).
    pub token_creation: Counter,
    /// `transitd_operations`, by kind, key type and outcome.
    operations: Vec<Counter>,
    /// `transitd_batch_items`, by kind.
    batch_items: Vec<Counter>,
    /// `transitd_login_failures`, by method.
    login_failures: Vec<Counter>,
    /// `transitd_audit_write_seconds` / `transitd_audit_fsync_seconds`.
    pub audit_write: Histogram,
    pub audit_fsync: Histogram,
    /// `transitd_audit_sync_lag_seconds`: with `durability=background`, from
    /// the oldest write a sync covered to that sync's end (how old the
    /// newest entries a power loss could take were).
    pub audit_sync_lag: Histogram,
    /// `transitd_change_apply_seconds`: from another node's change
    /// notification reaching this node to its caches holding the change
    /// (notifications carry no write time, so the network and PostgreSQL's
    /// part of the lag is not in it); `transitd_change_reloads`: full
    /// reloads (a lost or overflowing feed).
    pub change_apply: Histogram,
    pub change_reloads: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::register);

/// The process's metrics (one set, as Vault's are one per process).
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Milliseconds since `start`, as Vault's timers record them.
pub fn millis_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

impl Metrics {
    fn register() -> Self {
        let recorder = match PrometheusBuilder::new().set_quantiles(&QUANTILES) {
            Ok(builder) => builder.build_recorder(),
            // The quantiles are constants in range: unreachable, but never a panic.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let r = &recorder;
        let kinds = OpKind::ALL.len();
        let mut operations = Vec::with_capacity(kinds * KEY_TYPES * 2);
        for kind in OpKind::ALL {
            let types = KeyType::ALL.iter().map(|t| t.name()).chain([NO_KEY]);
            for key_type in types {
                for outcome in ["success", "failure"] {
                    operations.push(counter(
                        r,
                        "transitd_operations",
                        vec![
                            Label::new("kind", kind.name()),
                            Label::new("key_type", key_type),
                            Label::new("outcome", outcome),
                        ],
                    ));
                }
            }
        }
        let by = |name: &'static str, label: &'static str, values: &[&'static str]| {
            values
                .iter()
                .map(|v| counter(r, name, vec![Label::new(label, *v)]))
                .collect::<Vec<_>>()
        };
        let kind_names: Vec<&'static str> = OpKind::ALL.iter().map(|k| k.name()).collect();
        Self {
            handle_request: histogram(r, "vault_core_handle_request"),
            audit_request: histogram(r, "vault_audit_log_request"),
            audit_response: histogram(r, "vault_audit_log_response"),
            audit_request_failure: counter(r, "vault_audit_log_request_failure", vec![]),
            audit_response_failure: counter(r, "vault_audit_log_response_failure", vec![]),
            barrier: [
                histogram(r, "vault_barrier_get"),
                histogram(r, "vault_barrier_put"),
                histogram(r, "vault_barrier_delete"),
                histogram(r, "vault_barrier_list"),
            ],
            token_lookup: histogram(r, "vault_token_lookup"),
            token_creation: counter(r, "vault_token_creation", vec![]),
            operations,
            batch_items: by("transitd_batch_items", "kind", &kind_names),
            login_failures: by("transitd_login_failures", "method", &LOGIN_METHODS),
            audit_write: histogram(r, "transitd_audit_write_seconds"),
            audit_fsync: histogram(r, "transitd_audit_fsync_seconds"),
            audit_sync_lag: histogram(r, "transitd_audit_sync_lag_seconds"),
            change_apply: histogram(r, "transitd_change_apply_seconds"),
            change_reloads: counter(r, "transitd_change_reloads", vec![]),
            route_sys: route_timers(r, "sys/"),
            route_token: route_timers(r, "auth/token/"),
            route_secrets: RwLock::default(),
            route_auth: RwLock::default(),
            handle: recorder.handle(),
            recorder,
        }
    }

    /// A request served at `place` with Vault's operation `op` (one of
    /// [`ROUTE_OPS`]), from `started` until now. A mount's first request
    /// registers its timers; later ones take a read lock and a lookup.
    pub fn route(&self, place: RoutePlace<'_>, op: &str, started: Instant) {
        let millis = millis_since(started);
        let Some(index) = ROUTE_OPS.iter().position(|o| *o == op) else {
            return;
        };
        let (table, path, prefix) = match place {
            RoutePlace::Sys => return self.route_sys[index].record(millis),
            RoutePlace::Token => return self.route_token[index].record(millis),
            RoutePlace::Secrets(path) => (&self.route_secrets, path, ""),
            RoutePlace::Auth(path) => (&self.route_auth, path, "auth/"),
        };
        if let Ok(timers) = table.read()
            && let Some(t) = timers.get(path)
        {
            return t[index].record(millis);
        }
        if let Ok(mut timers) = table.write() {
            let t = timers
                .entry(path.to_owned())
                .or_insert_with(|| route_timers(&self.recorder, &format!("{prefix}{path}/")));
            t[index].record(millis);
        }
    }

    /// One transit request served (or refused by its handler).
    pub fn operation(&self, kind: OpKind, key_type: Option<KeyType>, ok: bool) {
        let kind_index = OpKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let type_index = key_type
            .and_then(|t| KeyType::ALL.iter().position(|k| *k == t))
            .unwrap_or(KEY_TYPES - 1);
        let index = (kind_index * KEY_TYPES + type_index) * 2 + usize::from(!ok);
        if let Some(c) = self.operations.get(index) {
            c.increment(1);
        }
    }

    /// Items of a batch request.
    pub fn batch_items(&self, kind: OpKind, items: usize) {
        let index = OpKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        if let Some(c) = self.batch_items.get(index) {
            c.increment(u64::try_from(items).unwrap_or(u64::MAX));
        }
    }

    /// A login refused (bad credentials, unknown user or role).
    pub fn login_failure(&self, method: &str) {
        if let Some(i) = LOGIN_METHODS.iter().position(|m| *m == method)
            && let Some(c) = self.login_failures.get(i)
        {
            c.increment(1);
        }
    }

    /// A barrier operation that took from `start` until now.
    pub fn barrier(&self, op: BarrierOp, start: Instant) {
        let index = match op {
            BarrierOp::Get => 0,
            BarrierOp::Put => 1,
            BarrierOp::Delete => 2,
            BarrierOp::List => 3,
        };
        self.barrier[index].record(millis_since(start));
    }

    /// The recorded series in Prometheus' text format (drains the timers'
    /// buffers into their summaries).
    pub(crate) fn render_recorded(&self) -> String {
        self.handle.render()
    }

    /// Folds the timers' buffers into their summaries, every
    /// [`UPKEEP_EVERY`], so that memory stays bounded when nothing scrapes
    /// (a timer buffers 8 bytes per observation until then).
    pub async fn upkeep_forever(&self) {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            self.handle.run_upkeep();
        }
    }
}

/// How often [`Metrics::upkeep_forever`] drains the timers' buffers.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()))
}

fn counter(r: &PrometheusRecorder, name: &'static str, labels: Vec<Label>) -> Counter {
    let c = r.register_counter(&Key::from_parts(name, labels), &metadata());
    // Shown from the start at zero, so that a rate has a first point.
    c.increment(0);
    c
}

fn histogram(r: &PrometheusRecorder, name: &'static str) -> Histogram {
    r.register_histogram(&Key::from_name(name), &metadata())
}

/// Vault's route timers of one mount path (`transit/`): `/` and `-` become
/// `_` in Prometheus' names, as Vault's exporter makes them.
fn route_timers(r: &PrometheusRecorder, mount: &str) -> RouteTimers {
    let dashed = mount.replace('/', "-");
    ROUTE_OPS.map(|op| {
        let name = format!("vault_route_{op}_{dashed}");
        r.register_histogram(&Key::from_name(name), &metadata())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_moves_its_own_series_only() {
        let m = Metrics::register();
        for _ in 0..3 {
            m.operation(OpKind::Encrypt, Some(KeyType::Aes256Gcm96), true);
        }
        m.operation(OpKind::Sign, None, false);
        m.batch_items(OpKind::Decrypt, 250);
        m.login_failure("userpass");
        m.login_failure("not-a-method");
        let text = m.render_recorded();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has(
            r#"transitd_operations{kind="encrypt",key_type="aes256-gcm96",outcome="success"} 3"#
        ));
        assert!(has(
            r#"transitd_operations{kind="encrypt",key_type="aes256-gcm96",outcome="failure"} 0"#
        ));
        assert!(has(
            r#"transitd_operations{kind="sign",key_type="none",outcome="failure"} 1"#
        ));
        assert!(has(r#"transitd_batch_items{kind="decrypt"} 250"#));
        assert!(has(r#"transitd_login_failures{method="userpass"} 1"#));
        assert!(has(r#"transitd_login_failures{method="approle"} 0"#));
    }

    #[test]
    fn route_timers_are_named_as_vaults() {
        let m = Metrics::register();
        let now = Instant::now();
        m.route(RoutePlace::Secrets("transit"), "update", now);
        m.route(RoutePlace::Secrets("transit"), "update", now);
        m.route(RoutePlace::Auth("userpass"), "create", now);
        m.route(RoutePlace::Token, "read", now);
        m.route(RoutePlace::Sys, "nope", now);
        let text = m.render_recorded();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has("vault_route_update_transit__count 2"), "{text}");
        assert!(has("vault_route_create_auth_userpass__count 1"), "{text}");
        assert!(has("vault_route_read_auth_token__count 1"), "{text}");
        assert!(has("vault_route_read_transit__count 0"), "{text}");
    }

    #[test]
    fn timers_are_summaries_in_milliseconds() {
        let m = Metrics::register();
        m.handle_request.record(2.0);
        m.handle_request.record(4.0);
        let text = m.render_recorded();
        assert!(
            text.contains("# TYPE vault_core_handle_request summary"),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l == "vault_core_handle_request_sum 6"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l == "vault_core_handle_request_count 2"),
            "{text}"
        );
        assert!(text.contains(r#"vault_core_handle_request{quantile="0.99"}"#));
    }
}
