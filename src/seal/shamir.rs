//! Splitting the root key into unseal shares (Shamir over GF(256), by vsss-rs).
//!
//! A share is the crate's byte form: one identifier byte, then one byte per
//! secret byte (33 bytes for the 32-byte root key). As in Vault, a 1-of-1
//! "split" is the root key itself.

use vsss_rs::Gf256;
use zeroize::Zeroizing;

pub const MAX_SHARES: u64 = 255;

/// Check Vault's rules for `secret_shares`/`secret_threshold`.
pub fn check_params(shares: u64, threshold: u64) -> Result<(), String> {
    let problem = if shares == 0 {
        "shares must be at least one"
    } else if threshold == 0 {
        "threshold must be at least one"
    } else if threshold > shares {
        "threshold cannot be larger than shares"
    } else if shares > MAX_SHARES {
        "shares must be less than 256"
    } else if shares > 1 && threshold == 1 {
        "threshold must be greater than one for multiple shares"
    } else {
        return Ok(());
    };
    Err(format!("invalid seal configuration: {problem}"))
}

pub fn split(
    secret: &[u8],
    shares: u64,
    threshold: u64,
) -> Result<Vec<Zeroizing<Vec<u8>>>, String> {
    check_params(shares, threshold)?;
    if shares == 1 {
        return Ok(vec![Zeroizing::new(secret.to_vec())]);
    }
    let parts = Gf256::split_bytes(threshold as usize, shares as usize, secret, rand::rng())
        .map_err(|e| format!("failed to split the root key: {e:?}"))?;
    Ok(parts.into_iter().map(Zeroizing::new).collect())
}

/// Recombine; a wrong share gives a wrong secret, which the caller detects by
/// failing to open the barrier keyring with it.
pub fn combine(parts: &[Zeroizing<Vec<u8>>], threshold: u64) -> Result<Zeroizing<Vec<u8>>, String> {
    if threshold == 1 {
        return parts
            .first()
            .map(|p| Zeroizing::new(p.to_vec()))
            .ok_or_else(|| "no unseal key given".to_owned());
    }
    let owned: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    let result =
        Gf256::combine_bytes(&owned).map_err(|e| format!("failed to combine shares: {e:?}"));
    // The copies handed to the crate are shares too.
    for mut p in owned {
        zeroize::Zeroize::zeroize(&mut p);
    }
    result.map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_subset_recovers_the_secret() {
        let secret = [7u8; 32];
        let parts = split(&secret, 5, 3).unwrap();
        assert_eq!(parts.len(), 5);
        assert!(parts.iter().all(|p| p.len() == 33));
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let subset = [parts[a].clone(), parts[b].clone(), parts[c].clone()];
                    assert_eq!(combine(&subset, 3).unwrap().as_slice(), &secret);
                }
            }
        }
        let two = [parts[0].clone(), parts[1].clone()];
        assert_ne!(
            combine(&two, 3).ok().as_deref().map(Vec::as_slice),
            Some(&secret[..])
        );
    }

    #[test]
    fn one_of_one_is_the_key() {
        let parts = split(&[9u8; 32], 1, 1).unwrap();
        assert_eq!(parts[0].as_slice(), &[9u8; 32]);
        assert_eq!(combine(&parts, 1).unwrap().as_slice(), &[9u8; 32]);
    }

    #[test]
    fn vault_parameter_rules() {
        assert!(check_params(0, 0).is_err());
        assert!(check_params(3, 5).is_err());
        assert!(check_params(3, 1).is_err());
        assert!(check_params(256, 2).is_err());
        assert!(check_params(1, 1).is_ok());
        assert!(check_params(5, 3).is_ok());
        assert!(check_params(255, 255).is_ok());
    }
}
