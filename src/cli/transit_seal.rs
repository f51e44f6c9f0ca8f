//! What `transitd server` runs beside the listeners with `seal "transit"`:
//! the auto-unseal, retried while the unsealer does not answer, and the
//! renewal of the unsealer's token.

use std::sync::Arc;
use std::time::Duration;

use crate::seal::SealError;
use crate::seal::transit::{TransitError, TransitSeal};
use crate::state::AppState;

/// The longest wait between two unseal attempts: short, so the server
/// unseals soon after its unsealer comes back, and one call each time.
const MAX_UNSEAL_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait between two failed renewals.
const MAX_RENEW_BACKOFF: Duration = Duration::from_secs(30);
/// No renewal sooner than this after a success (a token with a TTL of a
/// second or two would otherwise be renewed in a tight loop).
const MIN_RENEW_INTERVAL: Duration = Duration::from_secs(1);

/// Unseal once the unsealer answers. While it does not (no connection, 5xx,
/// 429), the server stays up and sealed (`sys/seal-status` says so) and the
/// log says why at every attempt. A refusal (wrong key, revoked token, a
/// stored root key of another key) cannot get better by retrying: it is
/// returned, and the caller stops the server with it.
pub async fn unseal_with_retry(state: Arc<AppState>) -> Result<(), String> {
    let mut delay = Duration::from_millis(500);
    for attempt in 1u64.. {
        let task_state = Arc::clone(&state);
        let outcome = tokio::task::spawn_blocking(move || task_state.auto_unseal())
            .await
            .map_err(|e| format!("the auto-unseal task failed: {e}"))?;
        match outcome {
            Ok(true) => {
                tracing::info!(attempt, "unsealed with the transit seal");
                return Ok(());
            }
            // Not initialized: `sys/init` unseals.
            Ok(false) => return Ok(()),
            Err(SealError::Unavailable(e)) => {
                tracing::warn!(
                    error = %e,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    "sealed: the transit seal's unsealer did not answer; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_UNSEAL_BACKOFF);
            }
            Err(e) => return Err(format!("auto-unseal with the transit seal: {e}")),
        }
    }
    Ok(())
}

/// Keep the unsealer's token alive: `renew-self` at once (as OpenBao does),
/// then at half of each TTL it is given. A token without a TTL (root) or
/// not renewable is left alone, as is one the unsealer refuses to renew at
/// the first try (it lacks the permission: OpenBao gives up the same way).
/// Later failures are logged and retried.
pub async fn renew_token_forever(seal: Arc<TransitSeal>) {
    let mut delay = Duration::from_secs(1);
    for attempt in 1u64.. {
        let task_seal = Arc::clone(&seal);
        let outcome = match tokio::task::spawn_blocking(move || task_seal.renew_token()).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "the token renewal task failed");
                return;
            }
        };
        match outcome {
            Ok(Some(ttl)) => {
                delay = Duration::from_secs(1);
                tracing::info!(ttl_secs = ttl.as_secs(), "renewed the transit seal's token");
                tokio::time::sleep((ttl / 2).max(MIN_RENEW_INTERVAL)).await;
            }
            Ok(None) => {
                tracing::info!(
                    "the transit seal's token has no TTL or is not renewable; not renewing it"
                );
                return;
            }
            Err(TransitError::Rejected(e)) if attempt == 1 => {
                tracing::info!(error = %e, "cannot renew the transit seal's token; not renewing it");
                return;
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "renewing the transit seal's token failed; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RENEW_BACKOFF);
            }
        }
    }
}
