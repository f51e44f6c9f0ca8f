//! `transitd envelope`: encrypt a file or stream of any size under a data
//! key wrapped by a transit key (transitd, OpenBao or Vault), decrypt it,
//! and rewrap its data key after a rotation. The format and the chunk
//! pipeline are `crate::envelope`; this module gets and unwraps the data
//! key over HTTP and handles files.
//!
//! Output files are written under a temporary name beside the target and
//! renamed only when everything was written and, for decrypt, the final
//! chunk authenticated: a file under the final name is always complete.
//! On stdout, decrypt writes each chunk's plaintext once that chunk
//! authenticates; the exit code is 0 only when the final chunk did.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use zeroize::{Zeroize, Zeroizing};

use super::Flags;
use super::client::{CallError, Client};
use crate::envelope::header::{DEFAULT_CHUNK_SIZE, Header};
use crate::envelope::stream::{ChunkKey, KEY_LEN, NONCE_PREFIX_LEN};
use crate::envelope::{EnvelopeError, decrypt, encrypt};

const USAGE: &str = "usage: transitd envelope encrypt -key=NAME [-mount=transit] [-chunk-size=1048576] IN OUT\n       \
     transitd envelope decrypt IN OUT\n       \
     transitd envelope rewrap FILE | IN OUT\n\n\
     IN or OUT `-` is stdin or stdout. Client flags: -address=URL -ca-cert=FILE -tls-skip-verify";

const CLIENT_FLAGS: [&str; 3] = ["address", "ca-cert", "tls-skip-verify"];
const ENCRYPT_FLAGS: [&str; 3] = ["key", "mount", "chunk-size"];

/// A path segment's unreserved characters stay; everything else is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let (command, rest) = args.split_first().ok_or(USAGE)?;
    let extra: &[&str] = match command.as_str() {
        "encrypt" => &ENCRYPT_FLAGS,
        "decrypt" | "rewrap" => &[],
        _ => return Err(USAGE.to_owned()),
    };
    let takes_value: Vec<&str> = ["address", "ca-cert"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let flags = Flags::parse(rest, &takes_value)?;
    if let Some((unknown, _)) = flags
        .named
        .iter()
        .find(|(n, _)| !CLIENT_FLAGS.contains(&n.as_str()) && !extra.contains(&n.as_str()))
    {
        return Err(format!(
            "envelope {command}: unknown flag -{unknown}\n{USAGE}"
        ));
    }
    let (input, output) = match (command.as_str(), flags.positional.as_slice()) {
        ("rewrap", [file]) => (file, file),
        (_, [input, output]) => (input, output),
        _ => return Err(USAGE.to_owned()),
    };
    match command.as_str() {
        "encrypt" => run_encrypt(&flags, input, output),
        "decrypt" => run_decrypt(&flags, input, output),
        _ => run_rewrap(&flags, input, output),
    }
    .map(|()| ExitCode::SUCCESS)
}

fn run_encrypt(flags: &Flags, input: &str, output: &str) -> Result<(), String> {
    let key = flags
        .value("key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| format!("-key is required\n{USAGE}"))?;
    let mount = flags.value("mount").unwrap_or("transit").trim_matches('/');
    let chunk_size = match flags.value("chunk-size") {
        None => DEFAULT_CHUNK_SIZE,
        Some(v) => v
            .parse()
            .map_err(|_| format!("-chunk-size must be a number of bytes, not {v:?}"))?,
    };
    let mut prefix = [0u8; NONCE_PREFIX_LEN];
    rand::fill(&mut prefix);
    // Every header rule is checked before the server is asked for anything;
    // the placeholder is replaced by the real wrapped key below.
    Header::new(chunk_size, prefix, mount, key, "vault:v1:").map_err(refused_field)?;
    let reader = open_input(input)?;
    let client = Client::from_env(flags)?;
    let mut reply = call(
        &client,
        &format!("{}/datakey/plaintext/{}", mount_path(mount), segment(key)),
        json!({ "bits": KEY_LEN * 8 }),
        "fetching a data key",
    )?;
    let data_key = data_key_from(&mut reply)?;
    let wrapped = reply["data"]["ciphertext"]
        .as_str()
        .ok_or("the data key reply has no ciphertext")?;
    let header = Header::new(chunk_size, prefix, mount, key, wrapped).map_err(refused_field)?;
    let chunk_key = ChunkKey::new(&data_key, prefix);
    drop(data_key);
    let out = Output::create(output)?;
    let written = encrypt(
        &header,
        &chunk_key,
        reader,
        out.file.try_clone().map_err(io)?,
    );
    out.finish(written.map(drop).map_err(|e| e.to_string()))
}

fn run_decrypt(flags: &Flags, input: &str, output: &str) -> Result<(), String> {
    let mut reader = open_input(input)?;
    let header = Header::read(&mut reader).map_err(|e| format!("{input}: {e}"))?;
    let client = Client::from_env(flags)?;
    let mut reply = call(
        &client,
        &key_path(&header, "decrypt"),
        json!({ "ciphertext": header.wrapped_key }),
        "unwrapping the data key",
    )?;
    let data_key = data_key_from(&mut reply)?;
    let chunk_key = ChunkKey::new(&data_key, header.nonce_prefix);
    drop(data_key);
    let out = Output::create(output)?;
    let written = decrypt(
        &header,
        &chunk_key,
        reader,
        out.file.try_clone().map_err(io)?,
    );
    out.finish(written.map(drop).map_err(|e| format!("{input}: {e}")))
}

/// A new header with the data key rewrapped by the key's latest version;
/// the chunks are copied unchanged (they do not depend on the wrapped key).
fn run_rewrap(flags: &Flags, input: &str, output: &str) -> Result<(), String> {
    let mut reader = open_input(input)?;
    let header = Header::read(&mut reader).map_err(|e| format!("{input}: {e}"))?;
    let client = Client::from_env(flags)?;
    let reply = call(
        &client,
        &key_path(&header, "rewrap"),
        json!({ "ciphertext": header.wrapped_key }),
        "rewrapping the data key",
    )?;
    let wrapped = reply["data"]["ciphertext"]
        .as_str()
        .ok_or("the rewrap reply has no ciphertext")?;
    let version = |w: &str| w.split(':').nth(1).unwrap_or("").to_owned();
    // Rewrapping always returns a fresh ciphertext; a file already at the
    // latest version is not rewritten for it.
    if version(wrapped) == version(&header.wrapped_key) && input == output && input != "-" {
        eprintln!("{input}: already wrapped by {}", version(wrapped));
        return Ok(());
    }
    let new_header = Header {
        wrapped_key: wrapped.to_owned(),
        ..header.clone()
    }
    .encode();
    let out = Output::create(output)?;
    let copied = (|| {
        let mut file = out.file.try_clone()?;
        file.write_all(&new_header)?;
        std::io::copy(&mut reader, &mut file)?;
        Ok::<_, std::io::Error>(())
    })();
    out.finish(copied.map_err(io))?;
    eprintln!(
        "{output}: data key rewrapped from {} to {}",
        version(&header.wrapped_key),
        version(wrapped)
    );
    Ok(())
}

/// A field `Header::new` refused, said as a setting rather than as a bad file.
fn refused_field(e: EnvelopeError) -> String {
    match e {
        EnvelopeError::Header(what) => format!("envelope encrypt: {what}"),
        other => other.to_string(),
    }
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

fn mount_path(mount: &str) -> String {
    mount.split('/').map(segment).collect::<Vec<_>>().join("/")
}

fn key_path(header: &Header, operation: &str) -> String {
    format!(
        "{}/{operation}/{}",
        mount_path(&header.mount),
        segment(&header.key)
    )
}

fn call(client: &Client, path: &str, body: Value, what: &str) -> Result<Value, String> {
    client.call("POST", path, Some(body)).map_err(|e| match e {
        CallError::Api(failure) => failure.render(what),
        CallError::Other(message) => format!("Error {what}: {message}"),
    })
}

/// Take the base64 data key out of a reply (wiping the reply's copy).
fn data_key_from(reply: &mut Value) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let Value::String(mut encoded) = reply["data"]["plaintext"].take() else {
        return Err("the server's reply has no plaintext data key".to_owned());
    };
    let decoded = Zeroizing::new(STANDARD.decode(encoded.as_bytes()).unwrap_or_default());
    encoded.zeroize();
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if decoded.len() != KEY_LEN {
        return Err(format!(
            "the data key is {} bytes, not {KEY_LEN}: not an envelope data key",
            decoded.len()
        ));
    }
    key.copy_from_slice(&decoded);
    Ok(key)
}

/// stdin for `-`, else the file. An owned descriptor (stdin duplicated):
/// the pipeline reads it from its own thread, in large reads.
fn open_input(path: &str) -> Result<File, String> {
    if path == "-" {
        let fd = std::io::stdin().as_fd().try_clone_to_owned().map_err(io)?;
        return Ok(File::from(fd));
    }
    File::open(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// Where the output goes: stdout, or a temporary file renamed over the
/// target by [`Output::finish`] once complete.
struct Output {
    file: File,
    temp: Option<(PathBuf, PathBuf)>,
}

impl Output {
    fn create(path: &str) -> Result<Self, String> {
        if path == "-" {
            let fd = std::io::stdout().as_fd().try_clone_to_owned().map_err(io)?;
            return Ok(Self {
                file: File::from(fd),
                temp: None,
            });
        }
        let target = PathBuf::from(path);
        let name = target
            .file_name()
            .ok_or_else(|| format!("{path} is not a file name"))?;
        let temp = target.with_file_name(format!(
            ".{}.envelope-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            rand::random::<u32>()
        ));
        // Owner-only: a decrypted file is as secret as its key.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
        Ok(Self {
            file,
            temp: Some((temp, target)),
        })
    }

    /// On success, make the output durable under its final name; on
    /// failure, remove the temporary file and pass the error on.
    fn finish(self, result: Result<(), String>) -> Result<(), String> {
        let Some((temp, target)) = self.temp else {
            return result;
        };
        let committed = result.and_then(|()| {
            self.file.sync_all().map_err(io)?;
            std::fs::rename(&temp, &target)
                .map_err(|e| format!("cannot rename onto {}: {e}", target.display()))?;
            sync_parent(&target)
        });
        if committed.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        committed
    }
}

fn sync_parent(path: &Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent).and_then(|d| d.sync_all()).map_err(io)
}
