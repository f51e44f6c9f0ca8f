//! Parameters transitd knows but does not implement (a mount's `local`,
//! `seal_wrap`, lease TTLs in `config`...). Clients send them with their
//! default values on every call (the bao CLI sends `config` with `"0s"`
//! TTLs, `local: false`), so a default is accepted; any other value is
//! refused with 400, never ignored: a caller who asked for a lease TTL or a
//! local mount must not believe they got one.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::go_syntax::parse_duration_secs;
use crate::request::Params;

/// 400 for the first of `fields` given with anything but a default value.
pub(crate) fn refuse_unless_default(p: &Params, fields: &[&str]) -> ApiResult<()> {
    for field in fields {
        if p.raw(field).is_some_and(|v| !is_default(v)) {
            return Err(unsupported(field));
        }
    }
    Ok(())
}

/// The refusal of a parameter transitd does not implement.
pub(crate) fn unsupported(field: &str) -> ApiError {
    ApiError::bad(format!("{field} is not supported by transitd"))
}

/// Null, false, zero, empty, a zero duration, or an object or array of those.
fn is_default(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || parse_duration_secs(s) == Some(0),
        Value::Array(items) => items.iter().all(is_default),
        Value::Object(fields) => fields.values().all(is_default),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_pass_and_anything_else_is_refused() {
        // What the bao CLI sends with `bao secrets enable transit`.
        let cli = json!({
            "config": {"options": null, "default_lease_ttl": "0s", "max_lease_ttl": "0s", "force_no_cache": false},
            "local": false, "seal_wrap": false, "external_entropy_access": false, "options": null,
        });
        let fields = [
            "config",
            "local",
            "seal_wrap",
            "external_entropy_access",
            "options",
        ];
        let p = Params::from_map(cli.as_object().unwrap().clone());
        refuse_unless_default(&p, &fields).unwrap();
        for (field, value) in [
            ("config", json!({"default_lease_ttl": "1h"})),
            ("config", json!({"force_no_cache": true})),
            ("local", json!(true)),
            ("seal_wrap", json!("true")),
            ("options", json!({"version": "2"})),
            ("external_entropy_access", json!(1)),
        ] {
            let p = Params::from_map(json!({ field: value }).as_object().unwrap().clone());
            let err = refuse_unless_default(&p, &fields).unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }
}
