//! `Node`: a real transitd process started from a config file, for the tests
//! that need restarts, crashes, TLS or the CLI.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use transitd_test_support::Client;
use transitd_test_support::free_port;

pub const BIN: &str = env!("CARGO_BIN_EXE_transitd");

/// A working directory with a config file; nodes start from it, any number of times.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Site {
    /// `storage "sqlite"` in the site's directory, plain HTTP on a free port,
    /// plus `extra` HCL (a seal stanza, `disable_mlock`...).
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("transitd.db");
        Self::build(
            dir,
            &format!("storage \"sqlite\" {{\n  path = \"{}\"\n}}", db.display()),
            extra,
        )
    }

    /// A site with the given `storage` stanza.
    pub fn with_storage(storage: &str, extra: &str) -> Self {
        Self::build(tempfile::tempdir().expect("temp dir"), storage, extra)
    }

    fn build(dir: tempfile::TempDir, storage: &str, extra: &str) -> Self {
        let port = free_port();
        let site = Self { dir, port };
        let config = format!(
            "{storage}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\
             {extra}\n"
        );
        fs::write(site.config(), config).expect("write config");
        site
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("transitd.db")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("transitd.hcl")
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn start(&self) -> Node {
        Node::start(&self.config(), &self.addr(), self.dir.path())
    }

    /// A node that kills itself (SIGKILL) when it reaches the named
    /// `crate::crash_point` inside an operation.
    pub fn start_crashing_at(&self, point: &str) -> Node {
        Node::start_with_env(
            &self.config(),
            &self.addr(),
            self.dir.path(),
            &[("TRANSITD_CRASH_AT", point)],
        )
    }

    /// Every byte SQLite keeps for this site (database, WAL, shared memory).
    pub fn raw_storage(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", self.db().display()));
            if let Ok(bytes) = fs::read(&path) {
                all.extend_from_slice(&bytes);
            }
        }
        all
    }
}

pub struct Node {
    child: Child,
    pub addr: String,
    client: Client,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    pub fn start(config: &Path, addr: &str, dir: &Path) -> Self {
        Self::start_with_env(config, addr, dir, &[])
    }

    pub fn start_with_env(config: &Path, addr: &str, dir: &Path, env: &[(&str, &str)]) -> Self {
        let log = dir.join(format!(
            "server-{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("dup log");
        let child = Command::new(BIN)
            .args(["server", &format!("-config={}", config.display())])
            // Relative paths (audit files) are per node, as on separate machines.
            .current_dir(dir)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn transitd");
        let mut node = Self {
            child,
            addr: addr.to_owned(),
            client: Client::new(addr, None),
            log,
        };
        node.wait_listening();
        node
    }

    /// A node whose process the test started itself.
    pub fn attach(child: Child, addr: &str) -> Self {
        let mut node = Self {
            child,
            addr: addr.to_owned(),
            client: Client::new(addr, None),
            log: PathBuf::from("/dev/null"),
        };
        node.wait_listening();
        node
    }

    /// The node's HTTP client (no token).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("transitd exited ({status}):\n{}", self.log_text());
            }
            if self.client.read("sys/seal-status").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("transitd did not start:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for the process to end by itself (a crash point), within 10 s.
    pub fn wait_killed(mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(!status.success(), "exited cleanly: {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the node did not die at its crash point:\n{}",
            self.log_text()
        );
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "unclean exit {status}:\n{}",
            self.log_text()
        );
    }

    /// `method /v1/{path}` with `token`; writes send `body` (`{}` when
    /// `None`). A transport error fails the test.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = match method {
            "GET" | "DELETE" => Value::Null,
            _ => body.unwrap_or_else(|| json!({})),
        };
        let reply = self
            .client
            .as_token(token)
            .call(method, path, body)
            .unwrap_or_else(|e| panic!("{e}"));
        (reply.status, reply.body)
    }

    /// A POST like `call`, but a transport error is `None` (the crash test
    /// kills nodes under load).
    pub fn try_call(&self, path: &str, token: &str, body: Value) -> Option<(u16, Value)> {
        let reply = self.client.as_token(Some(token)).write(path, body).ok()?;
        Some((reply.status, reply.body))
    }

    /// `sys/init`; under an auto seal (which takes no unseal share counts,
    /// as Vault) without any shares.
    pub fn init(&self, shares: u64, threshold: u64) -> (Vec<String>, String) {
        let (_, status) = self.call("GET", "sys/seal-status", None, None);
        let asked = if status["recovery_seal"] == json!(true) {
            json!({})
        } else {
            json!({"secret_shares": shares, "secret_threshold": threshold})
        };
        let (status, body) = self.call("POST", "sys/init", None, Some(asked));
        assert_eq!(status, 200, "{body}");
        let keys = body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        (keys, body["root_token"].as_str().unwrap().to_owned())
    }

    pub fn unseal(&self, keys: &[String]) -> Value {
        let mut last = Value::Null;
        for k in keys {
            let (status, body) = self.call("POST", "sys/unseal", None, Some(json!({ "key": k })));
            assert_eq!(status, 200, "{body}");
            last = body;
        }
        assert_eq!(last["sealed"], json!(false), "{last}");
        last
    }
}
