//! The `telemetry` stanza's settings, as the server uses them.

use std::time::Duration;

/// Vault's default `prometheus_retention_time` once a `telemetry` block is
/// written.
pub const DEFAULT_PROMETHEUS_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// What `sys/metrics` serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Telemetry {
    /// `prometheus_retention_time`; `None` (no `telemetry` block, or `0`):
    /// `format=prometheus` is refused, as Vault refuses it. transitd's
    /// series are fixed and registered once, so nothing expires: any
    /// retention above zero serves them all.
    pub prometheus_retention: Option<Duration>,
    /// `disable_hostname`; when false, Vault's gauges carry the host name
    /// in their names (`vault_HOST_core_unsealed`), as Vault's do.
    pub disable_hostname: bool,
    /// The host name put in gauge names, sanitized to `[a-zA-Z0-9_]`.
    pub hostname: String,
}

impl Default for Telemetry {
    /// No `telemetry` block: JSON only, no host name in names.
    fn default() -> Self {
        Self {
            prometheus_retention: None,
            disable_hostname: true,
            hostname: String::new(),
        }
    }
}

impl Telemetry {
    /// The settings of a `telemetry` block, with this machine's host name.
    pub fn configured(prometheus_retention: Duration, disable_hostname: bool) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Self {
            prometheus_retention: (!prometheus_retention.is_zero()).then_some(prometheus_retention),
            disable_hostname,
            hostname: sanitize(hostname.trim()),
        }
    }

    /// The prefix of Vault's gauge names: `vault_` or `vault_HOST_`.
    pub(crate) fn gauge_prefix(&self) -> String {
        if self.disable_hostname || self.hostname.is_empty() {
            "vault_".to_owned()
        } else {
            format!("vault_{}_", self.hostname)
        }
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_sanitized_and_only_used_when_enabled() {
        let mut t = Telemetry::configured(DEFAULT_PROMETHEUS_RETENTION, false);
        t.hostname = sanitize("node-1.example");
        assert_eq!(t.gauge_prefix(), "vault_node_1_example_");
        t.disable_hostname = true;
        assert_eq!(t.gauge_prefix(), "vault_");
        assert_eq!(
            Telemetry::configured(Duration::ZERO, true).prometheus_retention,
            None
        );
    }
}
