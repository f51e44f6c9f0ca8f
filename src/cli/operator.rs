//! Client commands (`operator init|unseal|seal`, `status`), speaking to a
//! server at `BAO_ADDR`/`VAULT_ADDR` as the Vault CLI does, with its output
//! format and exit codes (0 ok/unsealed, 2 sealed or API error, 1 other errors).

use std::process::ExitCode;

use serde_json::{Value, json};

use super::client::{CallError, Client};
use super::{Flags, print_line};

const SEALED_OR_API_ERROR: u8 = 2;

const OPERATOR_USAGE: &str = "usage: transitd operator init [-key-shares=5] [-key-threshold=3] [-format=table|json] [-status]\n       \
     transitd operator unseal [-reset] [KEY]\n       \
     transitd operator seal\n       \
     transitd operator snapshot save|restore ...";

fn failure(what: &str, e: CallError) -> Result<ExitCode, String> {
    match e {
        CallError::Api(f) => {
            eprint!("{}", f.render(what));
            Ok(ExitCode::from(SEALED_OR_API_ERROR))
        }
        CallError::Other(m) => Err(format!("Error {what}: {m}")),
    }
}

pub fn run_operator(args: &[String]) -> Result<ExitCode, String> {
    let (sub, rest) = args
        .split_first()
        .ok_or_else(|| OPERATOR_USAGE.to_owned())?;
    if sub == "snapshot" {
        // Works on the database file, not through the API: no client flags.
        return super::snapshot::run(rest);
    }
    let flags = Flags::parse(
        rest,
        &[
            "key-shares",
            "key-threshold",
            "format",
            "address",
            "ca-cert",
        ],
    )?;
    match sub.as_str() {
        "init" => init(&flags),
        "unseal" => unseal(&flags),
        "seal" => seal(&flags),
        _ => Err(OPERATOR_USAGE.to_owned()),
    }
}

fn init(flags: &Flags) -> Result<ExitCode, String> {
    let client = Client::from_env(flags)?;
    if flags.is_set("status") {
        return match client.call("GET", "sys/init", None) {
            Ok(v) if v["initialized"] == json!(true) => {
                print_line("Vault is initialized");
                Ok(ExitCode::SUCCESS)
            }
            Ok(_) => {
                print_line("Vault is not initialized");
                Ok(ExitCode::from(SEALED_OR_API_ERROR))
            }
            Err(e) => failure("checking init status", e),
        };
    }
    let number = |name: &str, default: u64| -> Result<u64, String> {
        flags.value(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("invalid -{name}: {v}"))
        })
    };
    let body = json!({
        "secret_shares": number("key-shares", 5)?,
        "secret_threshold": number("key-threshold", 3)?,
    });
    let reply = match client.call("PUT", "sys/init", Some(body.clone())) {
        Ok(r) => r,
        Err(e) => return failure("initializing", e),
    };
    let strings = |field: &str| -> Vec<String> {
        reply[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let b64 = strings("keys_base64");
    let root = reply["root_token"].as_str().unwrap_or_default();
    if flags.value("format") == Some("json") {
        let out = json!({
            "unseal_keys_b64": b64,
            "unseal_keys_hex": strings("keys"),
            "unseal_shares": body["secret_shares"],
            "unseal_threshold": body["secret_threshold"],
            "recovery_keys_b64": null,
            "recovery_keys_hex": null,
            "recovery_keys_shares": 0,
            "recovery_keys_threshold": 0,
            "root_token": root,
        });
        print_line(&serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for (i, k) in b64.iter().enumerate() {
        out.push_str(&format!("Unseal Key {}: {k}\n", i + 1));
    }
    out.push_str(&format!("\nInitial Root Token: {root}\n\n"));
    if b64.is_empty() {
        out.push_str("The server unseals itself with its seal (static or transit).\n");
    } else {
        out.push_str(&format!(
            "The server is sealed. Unseal it with {} of these {} keys (`transitd operator unseal`)\n\
             each time it starts. Give each key to a different person and keep them apart:\n\
             they are shown once and never stored; without enough of them every key is lost.\n",
            body["secret_threshold"], body["secret_shares"]
        ));
    }
    print_line(out.trim_end());
    Ok(ExitCode::SUCCESS)
}

fn unseal(flags: &Flags) -> Result<ExitCode, String> {
    let client = Client::from_env(flags)?;
    let body = if flags.is_set("reset") {
        json!({ "reset": true })
    } else {
        let key = match flags.positional.first() {
            Some(k) => k.clone(),
            None => rpassword::prompt_password("Unseal Key (will be hidden): ")
                .map_err(|e| format!("cannot read the key: {e}"))?,
        };
        json!({ "key": key.trim() })
    };
    match client.call("PUT", "sys/unseal", Some(body)) {
        Ok(status) => {
            print_status(&status, flags);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => failure("unsealing", e),
    }
}

fn seal(flags: &Flags) -> Result<ExitCode, String> {
    let client = Client::from_env(flags)?;
    match client.call("PUT", "sys/seal", None) {
        Ok(_) => {
            print_line("Success! Vault is sealed.");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => failure("sealing", e),
    }
}

pub fn status(args: &[String]) -> Result<ExitCode, String> {
    let flags = Flags::parse(args, &["format", "address", "ca-cert"])?;
    let client = Client::from_env(&flags)?;
    match client.call("GET", "sys/seal-status", None) {
        Ok(status) => {
            print_status(&status, &flags);
            if status["sealed"] == json!(false) {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(SEALED_OR_API_ERROR))
            }
        }
        Err(e) => failure("checking seal status", e),
    }
}

fn print_status(status: &Value, flags: &Flags) {
    if flags.value("format") == Some("json") {
        print_line(&serde_json::to_string_pretty(status).unwrap_or_default());
        return;
    }
    print_line(&status_table(status));
}

/// The `Key  Value` table of `bao status`.
fn status_table(s: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let sealed = s["sealed"] == json!(true);
    let mut rows: Vec<(&str, String)> = vec![
        ("Seal Type", text(&s["type"])),
        ("Initialized", text(&s["initialized"])),
        ("Sealed", text(&s["sealed"])),
        ("Total Shares", text(&s["n"])),
        ("Threshold", text(&s["t"])),
    ];
    if sealed {
        rows.push((
            "Unseal Progress",
            format!("{}/{}", text(&s["progress"]), text(&s["t"])),
        ));
        let nonce = s["nonce"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or("n/a");
        rows.push(("Unseal Nonce", nonce.to_owned()));
    }
    rows.push(("Version", text(&s["version"])));
    rows.push(("Storage Type", text(&s["storage_type"])));
    if !sealed {
        rows.push(("Cluster Name", text(&s["cluster_name"])));
        rows.push(("Cluster ID", text(&s["cluster_id"])));
    }
    rows.push(("HA Enabled", "false".to_owned()));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 4;
    let mut out = format!("{:<width$}Value\n{:<width$}-----\n", "Key", "---");
    for (k, v) in rows {
        out.push_str(&format!("{k:<width$}{v}\n"));
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_like_bao() {
        let sealed = json!({"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,
            "progress":1,"nonce":"abc","version":"2.7.2","storage_type":"sqlite"});
        let t = status_table(&sealed);
        assert!(t.starts_with(
            "Key                Value\n---                -----\nSeal Type          shamir\n"
        ));
        assert!(t.contains("Unseal Progress    1/3\nUnseal Nonce       abc\n"));
        let open = json!({"type":"shamir","initialized":true,"sealed":false,"t":3,"n":5,
            "progress":0,"nonce":"","version":"2.7.2","storage_type":"sqlite",
            "cluster_name":"c","cluster_id":"id"});
        let t = status_table(&open);
        assert!(!t.contains("Unseal Progress"));
        assert!(t.contains("Cluster ID      id"));
    }
}
