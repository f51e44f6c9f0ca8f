//! Root token generation (`sys/generate-root/*`), as in Vault: an attempt
//! started with a one-time pad collects unseal shares in memory on this node
//! (zeroized when dropped); once they rebuild the root key, a new root token
//! is issued and handed back XORed with the pad, base64 without padding, so
//! only the holder of the pad reads it. Nothing is stored until the token is.

use std::sync::Mutex;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::barrier::SecretKey;
use super::{SealError, SealResult, combine_shares, decode_share, failed};

/// The length of our tokens (`s.` and 24 characters), so of the pad.
pub const OTP_LEN: usize = 26;

#[derive(Debug)]
struct Attempt {
    nonce: String,
    otp: Zeroizing<String>,
    shares: Vec<Zeroizing<Vec<u8>>>,
}

/// What a share brought.
#[derive(Debug)]
pub enum Step {
    /// More shares are needed; this many are in.
    Progress(usize),
    /// The threshold was met and the shares rebuilt this key (not yet
    /// checked against the root key); the attempt's pad.
    Combined(SecretKey, Zeroizing<String>),
}

/// This node's root generation attempt, if one is under way.
#[derive(Debug, Default)]
pub struct RootGeneration {
    attempt: Mutex<Option<Attempt>>,
}

impl RootGeneration {
    /// (nonce of the attempt under way, shares entered so far)
    pub fn status(&self) -> (Option<String>, usize) {
        self.attempt
            .lock()
            .ok()
            .and_then(|a| a.as_ref().map(|a| (Some(a.nonce.clone()), a.shares.len())))
            .unwrap_or((None, 0))
    }

    /// Start an attempt with `otp` (checked here: exactly [`OTP_LEN`] characters).
    pub fn start(&self, otp: Zeroizing<String>) -> SealResult<()> {
        if otp.len() != OTP_LEN {
            return Err(SealError::Invalid(
                "OTP string has incorrect length".to_owned(),
            ));
        }
        let mut attempt = self.attempt.lock().map_err(failed)?;
        if attempt.is_some() {
            return Err(SealError::Invalid(
                // OpenBao's words (it has namespaces; we have the root one).
                "root generation already in progress for this namespace".to_owned(),
            ));
        }
        *attempt = Some(Attempt {
            nonce: uuid::Uuid::new_v4().to_string(),
            otp,
            shares: Vec::new(),
        });
        Ok(())
    }

    /// Take one share for the attempt named by `nonce`. A bad share, a wrong
    /// nonce or a share given twice changes nothing. At the threshold the
    /// shares are combined and forgotten: a wrong combination leaves the
    /// attempt open with no shares, as in Vault.
    pub fn update(&self, key: &str, nonce: &str, threshold: u64) -> SealResult<Step> {
        let share = decode_share(key)?;
        let mut guard = self.attempt.lock().map_err(failed)?;
        let attempt = guard
            .as_mut()
            .ok_or_else(|| SealError::Invalid("no root generation in progress".to_owned()))?;
        if attempt.nonce != nonce {
            return Err(SealError::Invalid(format!(
                "incorrect nonce supplied; nonce for this root generation operation is {:?}",
                attempt.nonce
            )));
        }
        if attempt
            .shares
            .iter()
            .any(|s| s.as_slice() == share.as_slice())
        {
            return Err(SealError::Invalid(
                "given key has already been provided during this generation operation".to_owned(),
            ));
        }
        attempt.shares.push(share);
        if (attempt.shares.len() as u64) < threshold {
            return Ok(Step::Progress(attempt.shares.len()));
        }
        let shares = std::mem::take(&mut attempt.shares);
        let root = combine_shares(&shares, threshold)?;
        Ok(Step::Combined(root, attempt.otp.clone()))
    }

    /// End the attempt `nonce` once its token is issued; an attempt started
    /// since (after a cancel) is left alone.
    pub fn finish(&self, nonce: &str) {
        if let Ok(mut attempt) = self.attempt.lock()
            && attempt.as_ref().is_some_and(|a| a.nonce == nonce)
        {
            *attempt = None;
        }
    }

    /// End the attempt, whichever it is (`DELETE`).
    pub fn cancel(&self) {
        if let Ok(mut attempt) = self.attempt.lock() {
            *attempt = None;
        }
    }
}

/// `token` XORed with `otp` (same length), base64 without padding: what
/// `bao operator generate-root -decode` undoes.
pub fn encode_token(token: &str, otp: &str) -> SealResult<String> {
    if token.len() != otp.len() {
        return Err(failed("the new token and the OTP differ in length"));
    }
    let xored: Zeroizing<Vec<u8>> =
        Zeroizing::new(token.bytes().zip(otp.bytes()).map(|(t, o)| t ^ o).collect());
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(xored.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::shamir;

    const OTP: &str = "abcdefghijklmnopqrstuvwxyz";

    fn shares(secret: &[u8; 32], n: u64, t: u64) -> Vec<String> {
        shamir::split(secret, n, t)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect()
    }

    #[test]
    fn threshold_shares_rebuild_the_key_and_bad_input_changes_nothing() {
        let attempt = RootGeneration::default();
        let keys = shares(&[9u8; 32], 5, 3);
        assert!(attempt.update(&keys[0], "x", 3).is_err(), "no attempt yet");
        assert!(attempt.start(Zeroizing::new("short".to_owned())).is_err());
        attempt.start(Zeroizing::new(OTP.to_owned())).unwrap();
        assert!(attempt.start(Zeroizing::new(OTP.to_owned())).is_err());
        let (nonce, progress) = attempt.status();
        let nonce = nonce.unwrap();
        assert_eq!(progress, 0);
        let err = attempt.update(&keys[0], "wrong", 3).unwrap_err();
        assert!(err.to_string().contains("incorrect nonce"), "{err}");
        assert!(matches!(
            attempt.update(&keys[0], &nonce, 3),
            Ok(Step::Progress(1))
        ));
        let err = attempt.update(&keys[0], &nonce, 3).unwrap_err();
        assert!(err.to_string().contains("already been provided"), "{err}");
        assert!(attempt.update("zz", &nonce, 3).is_err());
        assert_eq!(attempt.status().1, 1);
        assert!(matches!(
            attempt.update(&keys[3], &nonce, 3),
            Ok(Step::Progress(2))
        ));
        match attempt.update(&keys[4], &nonce, 3).unwrap() {
            Step::Combined(root, otp) => {
                assert_eq!(root.expose(), &[9u8; 32]);
                assert_eq!(otp.as_str(), OTP);
            }
            Step::Progress(n) => panic!("still {n}"),
        }
        // Shares are forgotten; the attempt stays until it is ended.
        assert_eq!(attempt.status(), (Some(nonce.clone()), 0));
        attempt.cancel();
        assert_eq!(attempt.status(), (None, 0));
        // Finishing an attempt leaves one started since (after a cancel) alone.
        attempt.start(Zeroizing::new(OTP.to_owned())).unwrap();
        attempt.finish(&nonce);
        let (newer, _) = attempt.status();
        assert!(newer.as_ref().is_some_and(|n| *n != nonce));
        attempt.finish(&newer.unwrap());
        assert_eq!(attempt.status(), (None, 0));
    }

    #[test]
    fn the_token_is_xored_with_the_pad_in_unpadded_base64() {
        let token = "s.ABCDEFGHIJKLMNOPQRSTUVWX";
        let encoded = encode_token(token, OTP).unwrap();
        assert!(!encoded.contains('='));
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&encoded)
            .unwrap();
        let back: String = bytes
            .iter()
            .zip(OTP.bytes())
            .map(|(b, o)| char::from(b ^ o))
            .collect();
        assert_eq!(back, token);
        assert!(encode_token("s.short", OTP).is_err());
    }
}
