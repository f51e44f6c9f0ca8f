//! The `telemetry` block (what `sys/metrics` serves) and a listener's
//! `telemetry` block (who may read it there).

use std::time::Duration;

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Attribute, Block};

use super::source::{Scope, Source, value_span};
use crate::metrics::DEFAULT_PROMETHEUS_RETENTION;
use crate::metrics::Telemetry;

const TELEMETRY_SETTINGS: &[&str] = &["prometheus_retention_time", "disable_hostname"];

/// Vault's other telemetry settings: sinks we do not push to, and knobs of
/// go-metrics. Accepted only at their default (empty, `false`), so that a
/// configuration that asks for them is not silently served something else.
const UNSUPPORTED_TELEMETRY: &[&str] = &[
    "statsite_address",
    "statsd_address",
    "dogstatsd_addr",
    "dogstatsd_tags",
    "circonus_api_token",
    "circonus_api_app",
    "circonus_api_url",
    "circonus_submission_interval",
    "circonus_submission_url",
    "circonus_check_id",
    "circonus_check_force_metric_activation",
    "circonus_check_instance_id",
    "circonus_check_search_tag",
    "circonus_check_tags",
    "circonus_check_display_name",
    "circonus_broker_id",
    "circonus_broker_select_tag",
    "stackdriver_project_id",
    "stackdriver_location",
    "stackdriver_namespace",
    "stackdriver_debug_logs",
    "enable_hostname_label",
    "metrics_prefix",
    "usage_gauge_period",
    "maximum_gauge_cardinality",
    "lease_metrics_epsilon",
    "num_lease_metrics_buckets",
    "add_lease_metrics_namespace_labels",
    "filter_default",
    "prefix_filter",
];

const LISTENER_TELEMETRY_SETTINGS: &[&str] = &["unauthenticated_metrics_access"];

impl Source<'_> {
    /// The top-level `telemetry { ... }` block.
    pub(super) fn telemetry(&self, block: &Block) -> Result<Telemetry, String> {
        let scope = Scope::of(block);
        let mut known = TELEMETRY_SETTINGS.to_vec();
        known.extend_from_slice(UNSUPPORTED_TELEMETRY);
        let mut retention = DEFAULT_PROMETHEUS_RETENTION;
        let mut disable_hostname = false;
        for attr in self.settings(block, &scope, &known)? {
            match attr.key.as_str() {
                "prometheus_retention_time" => retention = self.retention(attr, &scope)?,
                "disable_hostname" => disable_hostname = self.boolean(attr, &scope)?,
                key => self.refuse_unless_default(attr, key, &scope)?,
            }
        }
        Ok(Telemetry::configured(retention, disable_hostname))
    }

    /// A listener's `telemetry { unauthenticated_metrics_access = ... }`.
    pub(super) fn listener_telemetry(&self, block: &Block) -> Result<bool, String> {
        let scope = Scope::of(block);
        let mut unauthenticated = false;
        for attr in self.settings(block, &scope, LISTENER_TELEMETRY_SETTINGS)? {
            unauthenticated = self.boolean(attr, &scope)?;
        }
        Ok(unauthenticated)
    }

    /// A Go duration (`"24h"`) or whole seconds; `0` turns Prometheus off.
    fn retention(&self, attr: &Attribute, scope: &Scope) -> Result<Duration, String> {
        let text = match &attr.value {
            Expression::Number(n) => n.value().to_string(),
            Expression::String(s) => s.value().trim().to_owned(),
            _ => String::from("?"),
        };
        crate::go_syntax::parse_duration_secs(&text)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                self.at(
                    value_span(attr, scope),
                    format!(
                        "prometheus_retention_time{} must be a duration such as \"24h\" (0 turns Prometheus off), got {}",
                        scope.suffix(),
                        self.snippet(&attr.value)
                    ),
                )
            })
    }

    fn refuse_unless_default(
        &self,
        attr: &Attribute,
        key: &str,
        scope: &Scope,
    ) -> Result<(), String> {
        let default = match &attr.value {
            Expression::String(s) => s.value().trim().is_empty(),
            Expression::Bool(b) => !*b.value(),
            Expression::Array(a) => a.is_empty(),
            _ => false,
        };
        if default {
            return Ok(());
        }
        Err(self.at(
            value_span(attr, scope),
            format!(
                "{key}{} is not supported by transitd: metrics are served by /v1/sys/metrics only (prometheus_retention_time and disable_hostname are read); remove the setting",
                scope.suffix()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::config::tests::{MINIMAL, err};
    use std::time::Duration;

    #[test]
    fn telemetry_block() {
        let config = parse(
            &format!("{MINIMAL}\ntelemetry {{\n  prometheus_retention_time = \"30s\"\n  disable_hostname = true\n}}\n"),
            "c.hcl",
        )
        .unwrap();
        assert_eq!(
            config.telemetry.prometheus_retention,
            Some(Duration::from_secs(30))
        );
        assert!(config.telemetry.disable_hostname);
        // A block without retention: Vault's 24 h; none at all: off.
        let config = parse(&format!("{MINIMAL}\ntelemetry {{}}\n"), "c.hcl").unwrap();
        assert_eq!(
            config.telemetry.prometheus_retention,
            Some(Duration::from_secs(86400))
        );
        assert!(!config.telemetry.disable_hostname);
        assert_eq!(
            parse(MINIMAL, "c.hcl")
                .unwrap()
                .telemetry
                .prometheus_retention,
            None
        );
        let off = parse(
            &format!("{MINIMAL}\ntelemetry {{ prometheus_retention_time = 0 }}\n"),
            "c.hcl",
        )
        .unwrap();
        assert_eq!(off.telemetry.prometheus_retention, None);
    }

    #[test]
    fn other_telemetry_settings_are_refused_unless_default() {
        let e = err(&format!(
            "{MINIMAL}\ntelemetry {{\n  statsd_address = \"127.0.0.1:8125\"\n}}\n"
        ));
        assert!(
            e.contains(":9: statsd_address in telemetry is not supported"),
            "{e}"
        );
        parse(
            &format!(
                "{MINIMAL}\ntelemetry {{\n  statsd_address = \"\"\n  filter_default = false\n}}\n"
            ),
            "c.hcl",
        )
        .unwrap();
        let e = err(&format!(
            "{MINIMAL}\ntelemetry {{ prometheus_retention_time = \"soon\" }}\n"
        ));
        assert!(e.contains("must be a duration"), "{e}");
        let e = err(&format!("{MINIMAL}\ntelemetry {{}}\ntelemetry {{}}\n"));
        assert!(e.contains("second telemetry block"), "{e}");
    }

    #[test]
    fn listener_telemetry_block() {
        let config = parse(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  telemetry {\n    unauthenticated_metrics_access = true\n  }\n}\n",
            "c.hcl",
        )
        .unwrap();
        assert!(config.listeners[0].unauthenticated_metrics_access);
        assert!(!parse(MINIMAL, "c.hcl").unwrap().listeners[0].unauthenticated_metrics_access);
        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  telemetry {\n    nope = true\n  }\n}\n",
        );
        assert!(e.contains("nope"), "{e}");
    }
}
