//! `dist/transitd.service`: `systemd-analyze verify` accepts it without a
//! word (an unknown key or a bad value is only a warning there, so any
//! output fails the test), and it keeps the hardening docs/systemd.md
//! promises. `systemd-analyze` must be installed (scripts/test-all.sh
//! installs it): this test fails, never skips, without it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::node::BIN;

const UNIT: &str = include_str!("../../dist/transitd.service");

/// Where the unit's `ExecStart` expects the binary.
const INSTALLED_BIN: &str = "usr/local/bin/transitd";

/// A root with the unit in `/etc/systemd/system`, the built binary where the
/// unit expects it, `kill` for `ExecReload`, and the system's units that
/// the unit's dependencies name; `systemd-analyze verify --root` checks the
/// unit there as it would on a host where transitd is installed.
fn install(unit: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let at = |p: &str| root.path().join(p);
    for dir in [
        "usr/local/bin",
        "bin",
        "etc/systemd/system",
        "usr/lib/systemd",
    ] {
        fs::create_dir_all(at(dir)).unwrap();
    }
    // A link, not a copy: the debug binary is some 200 MB.
    if fs::hard_link(BIN, at(INSTALLED_BIN)).is_err() {
        fs::copy(BIN, at(INSTALLED_BIN)).unwrap();
    }
    fs::copy("/bin/kill", at("bin/kill")).unwrap();
    fs::write(at("etc/systemd/system/transitd.service"), unit).unwrap();
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("multi-user.target").exists())
        .expect("the system's systemd units (multi-user.target) are missing");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&units)
        .arg(at("usr/lib/systemd/system"))
        .status()
        .unwrap();
    assert!(status.success());
    root
}

/// `systemd-analyze verify`'s output for the unit installed under `root`.
fn verify(root: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("transitd.service")
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze cannot run ({e}): install the systemd package (scripts/test-all.sh does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let root = install(UNIT);
    let (ok, output) = verify(root.path());
    assert!(
        ok && output.trim().is_empty(),
        "systemd-analyze verify: {output}"
    );

    // The check is not blind: a misspelt key and a bad value are reported.
    for (from, to) in [
        ("ProtectSystem=strict", "ProtectSystm=strict"),
        ("ProtectSystem=strict", "ProtectSystem=strikt"),
    ] {
        let root = install(&UNIT.replace(from, to));
        let (_, output) = verify(root.path());
        assert!(output.contains("transitd.service"), "{to}: {output}");
    }
}

#[test]
fn the_systemd_unit_is_hardened() {
    let settings: Vec<&str> = UNIT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .collect();
    for wanted in [
        "ExecStart=/usr/local/bin/transitd server -config=/etc/transitd/transitd.hcl",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=transitd",
        "LimitMEMLOCK=infinity",
        "LimitCORE=0",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ReadWritePaths=/var/lib/transitd /var/log/transitd",
        "StateDirectory=transitd",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "UMask=0077",
    ] {
        assert!(settings.contains(&wanted), "missing {wanted:?}");
    }
    // Each setting once: systemd would merge or override a repeated one
    // (SystemCallFilter is the exception: its lines add up).
    let mut keys: Vec<&str> = settings
        .iter()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| *k != "SystemCallFilter")
        .collect();
    let before = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), before, "a setting is repeated");
}
