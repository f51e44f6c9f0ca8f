//! Request headers: the one place that reads them (besides `Content-Type`,
//! which belongs to the body). Every `X-Vault-*` header Vault or OpenBao
//! defines is honoured or refused here, and so is any other `X-Vault-*`
//! header: a client that asks for something by header (a wrapping format
//! we do not make, a namespace, MFA, consistency) must not get a reply that
//! silently did something else.
//!
//! Checked before the token is looked up and before the body is read.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderValue};

use super::audit::Audit;
use super::route::{Route, Routed};
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::state::AppState;

const TOKEN: &str = "x-vault-token";
const NAMESPACE: &str = "x-vault-namespace";
const WRAP_TTL: &str = "x-vault-wrap-ttl";
const WRAP_FORMAT: &str = "x-vault-wrap-format";

/// What each `X-Vault-*` request header gets. Names are lower case, as
/// `HeaderMap` keeps them.
fn refusal(name: &str) -> Option<ApiError> {
    match name {
        // Read by `token`, `check_namespace` and `wrap_ttl`.
        TOKEN | NAMESPACE | WRAP_TTL | WRAP_FORMAT => None,
        // A marker clients send so that a browser cannot forge the request;
        // OpenBao's server acts on nothing in it, and neither do we.
        "x-vault-request" => None,
        // "Serve this here, do not forward it to the active node": every
        // transitd node serves every request itself, so it always holds.
        "x-vault-no-request-forwarding" => None,
        _ => Some(ApiError::bad(format!(
            "the {} header is not supported by transitd",
            display_name(name)
        ))),
    }
}

/// The longest header name a refusal repeats: the message reaches the
/// reply and the audit log before any authorization, whose size it must not
/// set (a header name may be tens of KiB).
const SHOWN_NAME_CHARS: usize = 64;

/// `x-vault-wrap-ttl` -> `X-Vault-Wrap-Ttl`, as a client would recognise it;
/// a long name is cut to [`SHOWN_NAME_CHARS`] with `...`.
fn display_name(name: &str) -> String {
    let shown: String = name.chars().take(SHOWN_NAME_CHARS).collect();
    let cut = if shown.len() < name.len() { "..." } else { "" };
    let shown = shown
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-");
    shown + cut
}

/// What a request's headers ask for.
#[derive(Debug)]
pub(crate) struct Asked<'h> {
    /// The one token presented.
    pub token: Option<&'h str>,
    /// How long the reply is to stay wrapped (`X-Vault-Wrap-TTL`, not
    /// zero), with its fraction: policy bounds compare the whole of it.
    pub wrap_ttl: Option<std::time::Duration>,
    /// `Accept` asks for Prometheus' format (`sys/metrics` without `format`).
    pub prometheus_accepted: bool,
}

/// Checks every request header this module owns and returns what they ask.
pub(crate) fn check(headers: &HeaderMap) -> ApiResult<Asked<'_>> {
    for name in headers.keys() {
        if name.as_str().starts_with("x-vault-")
            && let Some(refused) = refusal(name.as_str())
        {
            return Err(refused);
        }
    }
    check_namespace(headers)?;
    Ok(Asked {
        wrap_ttl: wrap_ttl(headers)?,
        token: token(headers)?,
        prometheus_accepted: prometheus_accepted(headers),
    })
}

/// As Vault decides it: the first `Accept` header starts with OpenMetrics'
/// type (what Prometheus sends), or any names `prometheus/telemetry`.
fn prometheus_accepted(headers: &HeaderMap) -> bool {
    let mut accept = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let first = accept.next();
    first.is_some_and(|a| a.starts_with("application/openmetrics-text"))
        || first
            .into_iter()
            .chain(accept)
            .any(|a| a.contains("prometheus/telemetry"))
}

/// `X-Vault-Wrap-TTL` as OpenBao reads it (a Go duration or whole seconds;
/// zero or empty: no wrapping), and `X-Vault-Wrap-Format`: only the token
/// format is made. OpenBao also makes JWTs (`jwt`) and reads any other
/// value as `token`; a format we would not make is refused instead.
fn wrap_ttl(headers: &HeaderMap) -> ApiResult<Option<std::time::Duration>> {
    for format in headers.get_all(WRAP_FORMAT) {
        if !matches!(format.to_str().map(str::trim), Ok("" | "token")) {
            return Err(ApiError::bad(
                "X-Vault-Wrap-Format: transitd makes wrapping tokens only (\"token\"), not JWTs",
            ));
        }
    }
    let mut ttl = None;
    for value in headers.get_all(WRAP_TTL) {
        let text = value.to_str().map_err(|_| {
            ApiError::bad("error parsing X-Vault-Wrap-TTL header: not visible ASCII")
        })?;
        let text = text.trim();
        let asked = if text.starts_with('-') {
            return Err(ApiError::bad(
                "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative",
            ));
        } else {
            crate::go_syntax::parse_duration(text).ok_or_else(|| {
                ApiError::bad(format!(
                    "error parsing X-Vault-Wrap-TTL header: time: invalid duration {:?}",
                    text.chars().take(SHOWN_NAME_CHARS).collect::<String>()
                ))
            })?
        };
        if ttl.is_some_and(|seen| seen != asked) {
            return Err(ApiError::bad(
                "the request carries two different X-Vault-Wrap-TTL headers",
            ));
        }
        ttl = Some(asked);
    }
    let ttl = ttl.filter(|asked| !asked.is_zero());
    if let Some(asked) = ttl {
        crate::auth::wrapping::check_ttl(asked.as_secs())?;
    }
    Ok(ttl)
}

/// Only the root namespace exists; OpenBao spells it `""`, `/`, `root`,
/// `root/` or `/root`, and answers 404 for any other.
fn check_namespace(headers: &HeaderMap) -> ApiResult<()> {
    for value in headers.get_all(NAMESPACE) {
        let name = value.to_str().map_err(|_| ApiError::UnknownNamespace)?;
        let name = name.trim().trim_matches('/');
        if !(name.is_empty() || name == "root") {
            return Err(ApiError::UnknownNamespace);
        }
    }
    Ok(())
}

/// The one token a request presents: `X-Vault-Token`, or else
/// `Authorization: Bearer`. Two different tokens (two `X-Vault-Token`
/// headers, or one beside a different bearer token) are refused rather than
/// one of them chosen, so no proxy or log in between can disagree with us
/// about who is calling.
fn token(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let mut found: Option<&str> = None;
    let vault = headers.get_all(TOKEN).iter().map(|v| (v, "X-Vault-Token"));
    let bearer = headers
        .get_all("authorization")
        .iter()
        .map(|v| (v, "Authorization"));
    for (value, header) in vault.chain(bearer) {
        let Some(token) = token_in(value, header == "Authorization")? else {
            continue;
        };
        match found {
            Some(seen) if seen != token => {
                return Err(ApiError::bad(
                    "the request carries two different tokens (X-Vault-Token and Authorization)",
                ));
            }
            _ => found = Some(token),
        }
    }
    Ok(found)
}

/// The token in one header value (`None`: empty, as OpenBao reads it).
fn token_in(value: &HeaderValue, bearer: bool) -> ApiResult<Option<&str>> {
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad("the token header holds a byte that is not visible ASCII"))?;
    let token = if bearer {
        text.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::bad("the Authorization header: only the Bearer scheme is supported")
        })?
    } else {
        text
    };
    let token = token.trim();
    Ok((!token.is_empty()).then_some(token))
}

/// A request refused for its headers is on record as any refused request
/// is: wherever the same request would be audited (not the public `sys/`
/// paths, and nothing while sealed).
pub(crate) async fn refuse(
    state: &AppState,
    request: &Routed,
    refused: ApiError,
    peer: Option<SocketAddr>,
    access: crate::metrics::MetricsAccess,
) -> ApiResult<(Reply, Vec<String>)> {
    let audited = !matches!(request.route, Route::Sys(_)) || !request.route.is_public(access);
    match state.unsealed() {
        Ok(unsealed) if audited => {
            Audit::begin(&unsealed, None, request, &Params::default(), peer)
                .refused(refused)
                .await
        }
        _ => Err(refused),
    }
}
