//! OpenBao's `seal "static"`: auto-unseal with a 32-byte key given in the
//! config, in an environment variable (`env://NAME`) or in a file
//! (`file:///path`). Less safe than Shamir shares, since whoever reads that key
//! and the storage has every secret; it exists so a restarted node unseals
//! itself where another secret manager already guards that key.
//!
//! The root key is stored wrapped by the static key at `core/root-key` as
//! `[id length u8][key id][barrier-format entry]`, the key id bound into the
//! associated data, so a rotated configuration (`previous_key`) still opens it.

use base64::Engine as _;

use super::barrier::{KEY_LEN, SecretKey, open_entry, seal_entry};

use crate::storage::layout::ROOT_KEY as ROOT_KEY_PATH;

#[derive(Debug)]
pub struct StaticSeal {
    current: (String, SecretKey),
    previous: Option<(String, SecretKey)>,
}

impl StaticSeal {
    pub fn from_config(
        current_id: &str,
        current: &str,
        previous_id: Option<&str>,
        previous: Option<&str>,
    ) -> Result<Self, String> {
        let current = (current_id.to_owned(), resolve(current, "current_key")?);
        let previous = match (previous_id, previous) {
            (Some(id), Some(value)) => Some((id.to_owned(), resolve(value, "previous_key")?)),
            _ => None,
        };
        Ok(Self { current, previous })
    }

    pub fn wrap(&self, root_key: &SecretKey) -> Result<Vec<u8>, String> {
        let (id, key) = &self.current;
        let id_len =
            u8::try_from(id.len()).map_err(|_| "static seal key id is too long".to_owned())?;
        let entry = seal_entry(key, 0, &aad_path(id), root_key.expose())
            .map_err(|e| format!("cannot wrap the root key: {e}"))?;
        let mut out = Vec::with_capacity(1 + id.len() + entry.len());
        out.push(id_len);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&entry);
        Ok(out)
    }

    /// The root key, and whether it was wrapped by the previous key (so the
    /// caller should rewrap it with the current one).
    pub fn unwrap(&self, stored: &[u8]) -> Result<(SecretKey, bool), String> {
        let (&id_len, rest) = stored
            .split_first()
            .ok_or_else(|| "stored root key is empty".to_owned())?;
        let (id, entry) = rest
            .split_at_checked(usize::from(id_len))
            .ok_or_else(|| "stored root key is truncated".to_owned())?;
        let id =
            std::str::from_utf8(id).map_err(|_| "stored root key id is not UTF-8".to_owned())?;
        let (key, is_previous) = if id == self.current.0 {
            (&self.current.1, false)
        } else if let Some((_, prev)) = self.previous.as_ref().filter(|(p, _)| p == id) {
            (prev, true)
        } else {
            return Err(format!(
                "the root key was sealed with static key id {id:?}, which is neither current_key_id nor previous_key_id"
            ));
        };
        let root = open_entry(key, &aad_path(id), entry)
            .map_err(|_| format!("static seal key {id:?} does not open the stored root key"))?;
        let root = SecretKey::from_slice(&root)
            .ok_or_else(|| "stored root key has the wrong length".to_owned())?;
        Ok((root, is_previous))
    }
}

fn aad_path(id: &str) -> String {
    format!("{ROOT_KEY_PATH}:{id}")
}

/// Read a key given as `env://NAME`, `file:///path` or inline, in raw (files
/// only), hex or base64 form. Errors never contain key bytes.
pub fn resolve(value: &str, field: &str) -> Result<SecretKey, String> {
    let bytes: zeroize::Zeroizing<Vec<u8>> = if let Some(name) = value.strip_prefix("env://") {
        zeroize::Zeroizing::new(
            std::env::var(name)
                .map_err(|_| format!("{field}: environment variable {name} is not set"))?
                .into_bytes(),
        )
    } else if let Some(path) = value.strip_prefix("file://") {
        zeroize::Zeroizing::new(
            std::fs::read(path).map_err(|e| format!("{field}: cannot read {path}: {e}"))?,
        )
    } else {
        zeroize::Zeroizing::new(value.as_bytes().to_vec())
    };
    decode_key(&bytes).ok_or_else(|| {
        format!("{field}: the key must be 32 bytes, raw (in a file), hex or base64 encoded")
    })
}

fn decode_key(bytes: &[u8]) -> Option<SecretKey> {
    if bytes.len() == KEY_LEN {
        return SecretKey::from_slice(bytes);
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let decoded = zeroize::Zeroizing::new(if text.len() == 2 * KEY_LEN {
        hex::decode(text).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?
    });
    SecretKey::from_slice(&decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn key_forms() {
        let k = resolve(KEY_B64, "k").unwrap();
        assert_eq!(k.expose()[31], 31);
        let hex = hex::encode(k.expose());
        assert_eq!(resolve(&hex, "k").unwrap().expose(), k.expose());
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, k.expose()).unwrap();
        let f = resolve(&format!("file://{}", raw.display()), "k").unwrap();
        assert_eq!(f.expose(), k.expose());
        let text = dir.path().join("text");
        std::fs::write(&text, format!("{KEY_B64}\n")).unwrap();
        assert!(resolve(&format!("file://{}", text.display()), "k").is_ok());
        let err = resolve("c2hvcnQ=", "current_key").err().unwrap();
        assert!(err.contains("32 bytes") && !err.contains("c2hvcnQ"));
        assert!(resolve("env://TRANSITD_TEST_SURELY_UNSET", "k").is_err());
        assert!(resolve("file:///nonexistent/key", "k").is_err());
    }

    #[test]
    fn wrap_unwrap_and_rotation() {
        let old = StaticSeal::from_config("1", KEY_B64, None, None).unwrap();
        let root = SecretKey::random().unwrap();
        let stored = old.wrap(&root).unwrap();
        let (back, prev) = old.unwrap(&stored).unwrap();
        assert_eq!(back.expose(), root.expose());
        assert!(!prev);
        let other = hex::encode([5u8; 32]);
        let rotated = StaticSeal::from_config("2", &other, Some("1"), Some(KEY_B64)).unwrap();
        let (back, prev) = rotated.unwrap(&stored).unwrap();
        assert_eq!(back.expose(), root.expose());
        assert!(prev);
        let unrelated = StaticSeal::from_config("1", &other, None, None).unwrap();
        assert!(unrelated.unwrap(&stored).is_err());
        let mut tampered = stored.clone();
        tampered[1] = b'9';
        assert!(old.unwrap(&tampered).is_err());
    }
}
