//! The device options: a [`DeviceConfig`](crate::audit::DeviceConfig)'s kind
//! and options, checked once when the device opens (Vault's option names and
//! defaults where they exist; what transitd cannot honour, such as `prefix`
//! or `file_path=discard`, is refused rather than ignored).

use std::path::PathBuf;
use std::time::Duration;

use crate::audit::config::DeviceConfig;
use crate::audit::error::AuditError;
use crate::audit::format::FormatOptions;

/// Entries between two checkpoint lines unless `checkpoint_interval` says otherwise.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 1000;

/// `sync_interval` unless the options say otherwise.
pub(super) const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(100);
/// The bounds of `sync_interval`: below a millisecond it is fsync mode with
/// more threads; beyond a second the loss window outgrows what a
/// checkpoint a second promises.
const SYNC_INTERVAL_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(1));

/// When an entry is durable relative to its caller's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// `durability=fsync` (the default): synced before its caller is answered.
    Fsync,
    /// `durability=background` (Vault's semantics): written (in the page
    /// cache) before its caller is answered, synced at most `sync_interval`
    /// after it was written.
    Background { sync_interval: Duration },
}

/// Every option a device reads; any other is refused.
const KNOWN_OPTIONS: &[&str] = &[
    "file_path",
    "path",
    "mode",
    "format",
    "prefix",
    "hmac_accessor",
    "log_raw",
    "checkpoint_interval",
    "durability",
    "sync_interval",
];

/// Where a device writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    File(PathBuf),
    Stdout,
}

/// What a [`DeviceConfig`] asks for, checked.
#[derive(Debug)]
pub(super) struct Settings {
    pub(super) target: Target,
    /// `None`: keep an existing file's mode (Vault's `mode=0000`).
    pub(super) mode: Option<u32>,
    pub(super) interval: u64,
    pub(super) format: FormatOptions,
    pub(super) durability: Durability,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(name: &str, v: &str) -> Result<bool, AuditError> {
    crate::go_syntax::parse_bool(v)
        .ok_or_else(|| AuditError::Config(format!("{name}: {v:?} is not a boolean")))
}

impl Settings {
    pub(super) fn from_config(config: &DeviceConfig) -> Result<Self, AuditError> {
        // An option we do not know would otherwise be a setting silently not
        // honoured (a misspelt `durability` would leave the default).
        if let Some(unknown) = config
            .options
            .keys()
            .find(|k| !KNOWN_OPTIONS.contains(&k.as_str()))
        {
            return Err(AuditError::Config(format!(
                "unsupported option {unknown:?} (supported: {})",
                KNOWN_OPTIONS.join(", ")
            )));
        }
        let opt = |k: &str| config.options.get(k).map(String::as_str);
        let target = match config.kind.as_str() {
            "file" => {
                let path = opt("file_path")
                    .or_else(|| opt("path"))
                    .ok_or_else(|| AuditError::Config("file_path is required".to_owned()))?;
                if path.eq_ignore_ascii_case("stdout") {
                    Target::Stdout
                } else if path.eq_ignore_ascii_case("discard") {
                    return Err(AuditError::Config(
                        "file_path=discard is not supported: a discarded entry is not audited"
                            .to_owned(),
                    ));
                } else if path.is_empty() {
                    return Err(AuditError::Config("file_path is empty".to_owned()));
                } else {
                    Target::File(PathBuf::from(path))
                }
            }
            "stdout" => Target::Stdout,
            other => {
                return Err(AuditError::Config(format!(
                    "unsupported audit device type {other:?}"
                )));
            }
        };
        if let Some(f) = opt("format")
            && f != "json"
        {
            return Err(AuditError::Config(format!(
                "unsupported format {f:?}: only json"
            )));
        }
        if opt("prefix").is_some_and(|p| !p.is_empty()) {
            return Err(AuditError::Config(
                "prefix is not supported: every line must be a chained JSON object".to_owned(),
            ));
        }
        let mut format = FormatOptions::default();
        if let Some(v) = opt("hmac_accessor") {
            format.hmac_accessor = parse_bool("hmac_accessor", v)?;
        }
        if let Some(v) = opt("log_raw") {
            format.log_raw = parse_bool("log_raw", v)?;
        }
        let interval = match opt("checkpoint_interval") {
            None => DEFAULT_CHECKPOINT_INTERVAL,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(AuditError::Config(format!(
                        "checkpoint_interval: {v:?} is not a whole number of entries >= 1"
                    )));
                }
            },
        };
        let mode = match opt("mode") {
            None => Some(0o600),
            Some(v) => match u32::from_str_radix(v, 8) {
                Ok(0) => None,
                // Like Vault: never executable.
                Ok(m) if m <= 0o777 => Some(m & !0o111),
                _ => {
                    return Err(AuditError::Config(format!(
                        "mode: {v:?} is not an octal file mode"
                    )));
                }
            },
        };
        let durability = durability(&target, opt("durability"), opt("sync_interval"))?;
        Ok(Self {
            target,
            mode,
            interval,
            format,
            durability,
        })
    }
}

/// `durability` and `sync_interval`, checked against each other and the target.
fn durability(
    target: &Target,
    mode: Option<&str>,
    sync_interval: Option<&str>,
) -> Result<Durability, AuditError> {
    if *target == Target::Stdout && (mode.is_some() || sync_interval.is_some()) {
        // A stream is flushed, never synced: either value would be a promise not kept.
        return Err(AuditError::Config(
            "durability and sync_interval apply to a file, not to stdout".to_owned(),
        ));
    }
    match mode.unwrap_or("fsync") {
        "fsync" => match sync_interval {
            None => Ok(Durability::Fsync),
            Some(_) => Err(AuditError::Config(
                "sync_interval applies only with durability=background".to_owned(),
            )),
        },
        "background" => {
            let Some(v) = sync_interval else {
                return Ok(Durability::Background {
                    sync_interval: DEFAULT_SYNC_INTERVAL,
                });
            };
            let (min, max) = SYNC_INTERVAL_BOUNDS;
            match crate::go_syntax::parse_duration(v) {
                Some(d) if (min..=max).contains(&d) => {
                    Ok(Durability::Background { sync_interval: d })
                }
                _ => Err(AuditError::Config(format!(
                    "sync_interval: {v:?} is not a duration from 1ms to 1s"
                ))),
            }
        }
        other => Err(AuditError::Config(format!(
            "durability: {other:?} is not \"fsync\" or \"background\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::audit::FileDevice;
    use crate::audit::device::tests::file_config;
    use crate::audit::generate_signing_key;

    #[test]
    fn config_errors() {
        let key = generate_signing_key().unwrap();
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.options.remove("file_path");
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.options
            .insert("durabilty".to_owned(), "background".to_owned());
        match FileDevice::open(c) {
            Err(AuditError::Config(m)) => assert!(m.contains("\"durabilty\""), "{m}"),
            other => panic!("a misspelt option was accepted: {other:?}"),
        }
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.options
            .insert("checkpoint_interval".to_owned(), "0".to_owned());
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.signing_key = b"not a key".to_vec();
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
        let mut c = file_config(Path::new("discard"), &key, 10);
        c.kind = "file".to_owned();
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.kind = "socket".to_owned();
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
    }

    fn durability_of(options: &[(&str, &str)]) -> Result<Durability, AuditError> {
        let file = Target::File(PathBuf::from("/tmp/x"));
        let get = |k: &str| options.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        durability(&file, get("durability"), get("sync_interval"))
    }

    fn ok(got: Result<Durability, AuditError>) -> Option<Durability> {
        got.ok()
    }

    #[test]
    fn durability_options() {
        let background = |ms| {
            Some(Durability::Background {
                sync_interval: Duration::from_millis(ms),
            })
        };
        assert_eq!(ok(durability_of(&[])), Some(Durability::Fsync));
        let fsync = durability_of(&[("durability", "fsync")]);
        assert_eq!(ok(fsync), Some(Durability::Fsync));
        assert_eq!(
            ok(durability_of(&[("durability", "background")])),
            background(100)
        );
        for (v, ms) in [("1ms", 1), ("250ms", 250), ("1s", 1000), ("0.5s", 500)] {
            let got = durability_of(&[("durability", "background"), ("sync_interval", v)]);
            assert_eq!(ok(got), background(ms), "{v}");
        }
        for bad in [
            vec![("durability", "Background")],
            vec![("durability", "")],
            vec![("durability", "none")],
            vec![("sync_interval", "100ms")],
            vec![("durability", "fsync"), ("sync_interval", "100ms")],
            vec![("durability", "background"), ("sync_interval", "0")],
            vec![("durability", "background"), ("sync_interval", "999us")],
            vec![("durability", "background"), ("sync_interval", "1001ms")],
            vec![("durability", "background"), ("sync_interval", "2")],
            vec![("durability", "background"), ("sync_interval", "-5ms")],
            vec![("durability", "background"), ("sync_interval", "soon")],
        ] {
            let got = durability_of(&bad);
            assert!(
                matches!(got, Err(AuditError::Config(_))),
                "{bad:?}: {got:?}"
            );
        }
        let got = durability(&Target::Stdout, Some("background"), None);
        assert!(matches!(got, Err(AuditError::Config(_))), "{got:?}");
        let default = durability(&Target::Stdout, None, None);
        assert_eq!(ok(default), Some(Durability::Fsync));
    }
}
