//! Kubernetes' TokenReview API: `POST <host>/apis/authentication.k8s.io/v1/
//! tokenreviews` over HTTPS (the configured CA, the fetch deadlines),
//! authorized by the reviewer JWT or else the client's own, and the answer
//! read as Vault reads it (`token_review.go`).

use serde_json::{Value, json};

use super::KubeConfig;
use crate::auth::jwt_verify::fetch::Https;

/// Who the API server says the token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// Ask the API server about `jwt`, for `audiences` (empty: any). `Err`
/// carries the reason for the server log (never the token).
pub fn review(
    https: &Https,
    config: &KubeConfig,
    jwt: &str,
    audiences: &[String],
) -> Result<Reviewed, String> {
    let url = format!(
        "{}/apis/authentication.k8s.io/v1/tokenreviews",
        config.kubernetes_host.trim_end_matches('/')
    );
    let request = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": jwt, "audiences": audiences},
    });
    let bearer = if config.token_reviewer_jwt.is_empty() {
        jwt
    } else {
        &config.token_reviewer_jwt
    };
    let (status, reply) = https.post_json(&url, bearer, &request)?;
    read(status, &reply, audiences)
}

/// The API server's answer, as Vault's `parseResponse` and `Review` read it.
pub fn read(status: u16, reply: &Value, audiences: &[String]) -> Result<Reviewed, String> {
    if status == 401 {
        return Err("lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token".to_owned());
    }
    if !(200..=206).contains(&status) {
        return Err(format!("lookup failed: the API server answered {status}"));
    }
    // A `Status` object instead of a TokenReview: an API error.
    if let Some(s) = reply.get("status").and_then(Value::as_str)
        && s != "Success"
    {
        let message = reply.get("message").and_then(Value::as_str).unwrap_or(s);
        return Err(format!("lookup failed: {message}"));
    }
    if reply.get("kind").and_then(Value::as_str) != Some("TokenReview") {
        return Err("lookup failed: the API server's answer is not a TokenReview".to_owned());
    }
    let result = &reply["status"];
    if let Some(error) = result
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    {
        return Err(format!("lookup failed: {error}"));
    }
    if result.get("authenticated").and_then(Value::as_bool) != Some(true) {
        return Err("lookup failed: service account jwt not valid".to_owned());
    }
    if !audiences.is_empty() {
        let granted: Vec<&str> = result
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !audiences.iter().any(|a| granted.contains(&a.as_str())) {
            return Err(format!(
                "lookup failed: service account jwt valid for audience(s) {granted:?}, but wanted {audiences:?}"
            ));
        }
    }
    let user = &result["user"];
    let username = user.get("username").and_then(Value::as_str).unwrap_or("");
    let parts: Vec<&str> = username.split(':').collect();
    let [system, kind, namespace, name] = parts[..] else {
        return Err("lookup failed: unexpected username format".to_owned());
    };
    if system != "system" || kind != "serviceaccount" {
        return Err("lookup failed: username returned is not a service account".to_owned());
    }
    Ok(Reviewed {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        uid: user
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    })
}
