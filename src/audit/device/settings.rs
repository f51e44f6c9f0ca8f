//! The device options: a [`DeviceConfig`](crate::audit::DeviceConfig)'s kind
//! and options, checked once when the device opens (Vault's option names and
//! defaults where they exist; what transitd cannot honour, such as `prefix`
//! or `file_path=discard`, is refused rather than ignored).

use std::path::PathBuf;

use crate::audit::config::DeviceConfig;
use crate::audit::error::AuditError;
use crate::audit::format::FormatOptions;

/// Entries between two checkpoint lines unless `checkpoint_interval` says otherwise.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 1000;

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
}

/// Go's `strconv.ParseBool`.
fn parse_bool(name: &str, v: &str) -> Result<bool, AuditError> {
    crate::go_syntax::parse_bool(v)
        .ok_or_else(|| AuditError::Config(format!("{name}: {v:?} is not a boolean")))
}

impl Settings {
    pub(super) fn from_config(config: &DeviceConfig) -> Result<Self, AuditError> {
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
        Ok(Self {
            target,
            mode,
            interval,
            format,
        })
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
}
