//! `auth/jwt` end to end, against a local HTTPS issuer (`jwt_issuer.rs`):
//! JWKS and discovery, key rotation, the known JWT attacks, role bindings,
//! an issuer that is down or answers garbage, a CA that does not match, and
//! the unknown-`kid` flood that must not reach the issuer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::jwt_issuer::{Issuer, KEY_A, KEY_B, KEY_EC, Mode, RSA_A_PUB, claims};
use crate::support::TestApp;

async fn enable(app: &TestApp) {
    app.write("sys/auth/jwt", json!({"type": "jwt"}))
        .await
        .expect(204);
}

/// A server with `auth/jwt` reading keys from `issuer`'s JWKS, and role
/// `ci` bound to audience `vault` and a glob on `sub`.
async fn server_for(issuer: &Issuer) -> TestApp {
    let app = TestApp::new();
    enable(&app).await;
    app.write(
        "auth/jwt/config",
        json!({"jwks_url": issuer.jwks_url(), "jwks_ca_pem": issuer.ca_pem, "bound_issuer": issuer.url}),
    )
    .await
    .expect(204);
    app.write(
        "auth/jwt/role/ci",
        json!({
            "role_type": "jwt", "user_claim": "sub", "bound_audiences": "vault",
            "bound_claims_type": "glob", "bound_claims": {"sub": "repo:org/*:ref:main"},
            "claim_mappings": {"email": "email"},
            "token_policies": "deploy", "token_ttl": "10m",
        }),
    )
    .await
    .expect(204);
    app
}

async fn login(app: &TestApp, jwt: &str) -> crate::support::Reply {
    app.as_token(None)
        .write("auth/jwt/login", json!({"role": "ci", "jwt": jwt}))
        .await
}

/// A refused login: 400, the error text, and never an `auth` block.
async fn refused(app: &TestApp, jwt: &str) -> String {
    let r = login(app, jwt).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.body.get("auth").is_none_or(Value::is_null),
        "{:?}",
        r.body
    );
    r.body["errors"][0].as_str().unwrap().to_owned()
}

/// A refusal with this status and first error.
trait Refusal {
    fn expect_err(self, status: u16, want: &str);
}

impl Refusal for crate::support::Reply {
    #[track_caller]
    fn expect_err(self, status: u16, want: &str) {
        assert_eq!(
            (self.status, self.error().as_str()),
            (status, want),
            "{}",
            self.body
        );
    }
}

const NO_KEY: &str = "error validating token: error verifying token signature: no known key successfully validated the token signature";

#[tokio::test(flavor = "multi_thread")]
async fn jwks_login_issues_a_token_with_the_roles_settings() {
    let issuer = Issuer::start(&[KEY_A, KEY_EC]);
    let app = server_for(&issuer).await;
    for key in [KEY_A, KEY_EC] {
        let r = login(&app, &key.sign(&claims(&issuer.url, json!({})))).await;
        let r = r.expect(200);
        let auth = &r.body["auth"];
        assert_eq!(auth["policies"], json!(["default", "deploy"]));
        assert_eq!(auth["lease_duration"], json!(600));
        assert_eq!(
            auth["metadata"],
            json!({"role": "ci", "email": "ci@example.com"})
        );
        let token = auth["client_token"].as_str().unwrap();
        let me = app
            .as_token(Some(token))
            .read("auth/token/lookup-self")
            .await;
        let me = me.expect(200);
        assert_eq!(
            me.body["data"]["display_name"],
            json!("jwt-repo:org/app:ref:main")
        );
        assert_eq!(me.body["data"]["path"], json!("auth/jwt/login"));
    }
    // The configuration and the role read back as OpenBao shows them.
    let config = app.read("auth/jwt/config").await;
    let config = config.expect(200);
    assert_eq!(config.body["data"]["jwks_url"], json!(issuer.jwks_url()));
    assert_eq!(config.body["data"]["bound_issuer"], json!(issuer.url));
    let role = app.read("auth/jwt/role/ci").await;
    let role = role.expect(200);
    assert_eq!(
        role.body["data"]["bound_claims"],
        json!({"sub": "repo:org/*:ref:main"})
    );
    assert_eq!(role.body["data"]["bound_claims_type"], json!("glob"));
    assert_eq!(role.body["data"]["role_type"], json!("jwt"));
    assert_eq!(role.body["data"]["token_ttl"], json!(600));
    assert_eq!(
        app.call("LIST", "auth/jwt/role", Value::Null).await.body["data"]["keys"],
        json!(["ci"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_is_followed_and_an_unknown_kid_flood_is_rate_limited() {
    let issuer = Issuer::start(&[KEY_A]);
    let app = server_for(&issuer).await;
    login(&app, &KEY_A.sign(&claims(&issuer.url, json!({}))))
        .await
        .expect(200);
    // Rotate: B replaces A. Past the minimum refresh interval, B's unknown
    // kid makes the server fetch the new set.
    issuer.publish(&[KEY_B]);
    std::thread::sleep(transitd::auth::jwt_verify::keys::MIN_REFRESH);
    login(&app, &KEY_B.sign(&claims(&issuer.url, json!({}))))
        .await
        .expect(200);
    assert_eq!(
        refused(&app, &KEY_A.sign(&claims(&issuer.url, json!({})))).await,
        NO_KEY
    );
    // A flood of made-up kids right after: refused, and the issuer sees
    // at most one more fetch.
    let before = issuer.jwks_fetches();
    for i in 0..40 {
        let kid = format!("made-up-{i}");
        let jwt = KEY_B.sign_as(Some(&kid), &claims(&issuer.url, json!({})));
        assert_eq!(refused(&app, &jwt).await, NO_KEY);
    }
    assert!(
        issuer.jwks_fetches() <= before + 1,
        "{} fetches for 40 unknown kids",
        issuer.jwks_fetches() - before
    );
    // Known keys kept working throughout.
    login(&app, &KEY_B.sign(&claims(&issuer.url, json!({}))))
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_known_attacks_are_refused() {
    let issuer = Issuer::start(&[KEY_A]);
    let app = server_for(&issuer).await;
    let good = claims(&issuer.url, json!({}));
    let signed = KEY_A.sign(&good);
    let mut parts = signed.split('.');
    let (_, body, sig) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());

    // alg: none, without and with the real signature.
    let none = b64(json!({"alg": "none", "typ": "JWT", "kid": "key-a"}));
    for jwt in [format!("{none}.{body}."), format!("{none}.{body}.{sig}")] {
        let e = refused(&app, &jwt).await;
        assert!(
            e.starts_with("error validating token: error verifying token signature"),
            "{e}"
        );
    }
    // HS256 "signed" with the issuer's public key.
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("key-a".into());
    let hs = jsonwebtoken::encode(
        &header,
        &good,
        &EncodingKey::from_secret(RSA_A_PUB.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(refused(&app, &hs).await, NO_KEY);
    // A kid pointing at the issuer's key, signed by another key.
    assert_eq!(
        refused(&app, &KEY_B.sign_as(Some("key-a"), &good)).await,
        NO_KEY
    );
    // Claims changed under a valid signature.
    let forged = format!(
        "{}.{}.{sig}",
        signed.split('.').next().unwrap(),
        b64(claims(
            &issuer.url,
            json!({"sub": "repo:org/admin:ref:main"})
        ))
    );
    assert_eq!(refused(&app, &forged).await, NO_KEY);

    let with = |extra: Value| KEY_A.sign(&claims(&issuer.url, extra));
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"exp": crate::jwt_issuer::now() - 120}),
            "error validating token: invalid expiration time (exp) claim: token is expired",
        ),
        (
            json!({"nbf": crate::jwt_issuer::now() + 120}),
            "error validating token: invalid not before (nbf) claim: token not yet valid",
        ),
        (
            json!({"aud": "someone-else"}),
            "error validating token: invalid audience (aud) claim: audience claim does not match any expected audience",
        ),
        (
            json!({"iss": "https://evil.example"}),
            "error validating token: invalid issuer (iss) claim",
        ),
        (
            json!({"sub": "repo:evil/app:ref:main"}),
            "error validating claims: claim \"sub\" does not match any associated bound claim values",
        ),
        (
            json!({"sub": "repo:org/app:ref:dev"}),
            "error validating claims: claim \"sub\" does not match any associated bound claim values",
        ),
        (json!({"sub": null}), "claim \"sub\" not found in token"),
    ];
    for (extra, want) in cases {
        assert_eq!(refused(&app, &with(extra.clone())).await, want, "{extra}");
    }
    // A glob matches any repository of the organisation.
    login(&app, &with(json!({"sub": "repo:org/other:ref:main"})))
        .await
        .expect(200);
    // A bound subject.
    app.write(
        "auth/jwt/role/exact",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vault"], "bound_subject": "repo:org/app:ref:main"}),
    )
    .await
    .expect(204);
    let r = app
        .as_token(None)
        .write(
            "auth/jwt/login",
            json!({"role": "exact", "jwt": with(json!({"sub": "repo:org/other:ref:main"}))}),
        )
        .await;
    r.expect_err(400, "error validating token: invalid subject (sub) claim");
    // Oversized tokens are refused before anything is decoded.
    let big = "a".repeat(transitd::auth::jwt_verify::MAX_JWT_BYTES + 1);
    assert!(refused(&app, &big).await.contains("larger than"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issuer_down_or_answering_garbage_gives_no_token() {
    let issuer = Issuer::start(&[KEY_A]);
    let app = server_for(&issuer).await;
    for mode in [Mode::Down, Mode::Garbage] {
        issuer.set_mode(mode);
        // A config write checks the URL.
        let r = app
            .write(
                "auth/jwt/config",
                json!({"jwks_url": issuer.jwks_url(), "jwks_ca_pem": issuer.ca_pem}),
            )
            .await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert!(
            r.body["errors"][0]
                .as_str()
                .unwrap()
                .starts_with("error checking jwks URL: "),
            "{:?}",
            r.body
        );
    }
    // The configuration in place is unchanged; with the issuer down before
    // the first key fetch, logins fail with the reason.
    issuer.set_mode(Mode::Down);
    let e = refused(&app, &KEY_A.sign(&claims(&issuer.url, json!({})))).await;
    assert!(e.contains("503"), "{e}");
    assert!(
        e.starts_with("error validating token: error verifying token signature: "),
        "{e}"
    );
    // Back up: after the refresh interval, logins work again.
    issuer.set_mode(Mode::Serving);
    std::thread::sleep(transitd::auth::jwt_verify::keys::MIN_REFRESH);
    login(&app, &KEY_A.sign(&claims(&issuer.url, json!({}))))
        .await
        .expect(200);
    // Down again once the keys are cached: known keys keep working, an
    // unknown kid is refused with the reason.
    issuer.set_mode(Mode::Down);
    std::thread::sleep(transitd::auth::jwt_verify::keys::MIN_REFRESH);
    login(&app, &KEY_A.sign(&claims(&issuer.url, json!({}))))
        .await
        .expect(200);
    let e = refused(&app, &KEY_B.sign(&claims(&issuer.url, json!({})))).await;
    assert!(e.contains("503"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_ca_and_configuration_errors() {
    let issuer = Issuer::start(&[KEY_EC]);
    let other = Issuer::start(&[KEY_A]);
    let app = TestApp::new();
    enable(&app).await;
    // The CA of another server: TLS fails, nothing is stored.
    let r = app
        .write(
            "auth/jwt/config",
            json!({"oidc_discovery_url": issuer.url, "oidc_discovery_ca_pem": other.ca_pem}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("error checking oidc discovery URL: "),
        "{:?}",
        r.body
    );
    app.read("auth/jwt/config").await.expect(404);
    // A discovery document naming another issuer.
    issuer.claim_issuer("https://impostor.example");
    let r = app
        .write(
            "auth/jwt/config",
            json!({"oidc_discovery_url": issuer.url, "oidc_discovery_ca_pem": issuer.ca_pem}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["errors"][0]
            .as_str()
            .unwrap()
            .contains("issuer did not match")
    );
    issuer.claim_issuer(&issuer.url);
    app.write(
        "auth/jwt/config",
        json!({"oidc_discovery_url": issuer.url, "oidc_discovery_ca_pem": issuer.ca_pem,
               "bound_issuer": issuer.url, "jwt_supported_algs": ["ES256"], "default_role": "ci"}),
    )
    .await
    .expect(204);
    app.write(
        "auth/jwt/role/ci",
        json!({"role_type": "jwt", "user_claim": "email", "bound_audiences": "vault"}),
    )
    .await
    .expect(204);
    // No role given: the default role.
    let r = app
        .as_token(None)
        .write(
            "auth/jwt/login",
            json!({"jwt": KEY_EC.sign(&claims(&issuer.url, json!({})))}),
        )
        .await;
    let r = r.expect(200);
    assert_eq!(r.body["auth"]["metadata"], json!({"role": "ci"}));

    // OpenBao's answers to bad configuration and roles (test vectors).
    for (path, body, want) in [
        (
            "auth/jwt/config",
            json!({}),
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', or 'oidc_discovery_url' must be set",
        ),
        (
            "auth/jwt/config",
            json!({"jwt_validation_pubkeys": ["nope"]}),
            "error parsing public key: data does not contain any valid public keys",
        ),
        (
            "auth/jwt/config",
            json!({"jwt_validation_pubkeys": [RSA_A_PUB], "jwt_supported_algs": "HS256"}),
            "invalid jwt_supported_algs: unsupported signing algorithm \"HS256\"",
        ),
        (
            "auth/jwt/config",
            json!({"jwks_url": "http://127.0.0.1:1/keys"}),
            "jwks_url must be an https:// URL",
        ),
        (
            "auth/jwt/config",
            json!({"jwt_validation_pubkeys": [RSA_A_PUB], "oidc_client_id": "x"}),
            "oidc_client_id is not supported by transitd",
        ),
        (
            "auth/jwt/role/r",
            json!({"role_type": "jwt"}),
            "a user claim must be defined on the role",
        ),
        (
            "auth/jwt/role/r",
            json!({"role_type": "jwt", "user_claim": "sub"}),
            "must have at least one bound constraint when creating/updating a role",
        ),
        (
            "auth/jwt/role/r",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "bound_claims_type": "nope"}),
            "invalid 'bound_claims_type': nope",
        ),
        (
            "auth/jwt/role/r",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "bound_claims_type": "glob", "bound_claims": {"x": 1}}),
            "claim is not a string: 1",
        ),
        (
            "auth/jwt/role/r",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "claim_mappings": {"a": "m", "b": "m"}}),
            "multiple keys are mapped to metadata key \"m\"",
        ),
        (
            "auth/jwt/role/r",
            json!({"user_claim": "sub", "bound_audiences": "a"}),
            "role_type \"oidc\" is not supported by transitd (no browser OIDC flow): set role_type=jwt",
        ),
        (
            "auth/jwt/role/r",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "allowed_redirect_uris": "http://x"}),
            "allowed_redirect_uris is not supported by transitd",
        ),
        (
            "auth/jwt/role/r",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "token_bound_cidrs": "10.0.0.0/8"}),
            "token_bound_cidrs is not supported by transitd",
        ),
    ] {
        app.write(path, body.clone()).await.expect_err(400, want);
    }
    app.read("auth/jwt/role/r").await.expect(404);
    // The browser flow is refused clearly, without a token.
    app.as_token(None)
        .write(
            "auth/jwt/oidc/auth_url",
            json!({"role": "ci", "redirect_uri": "http://x"}),
        )
        .await
        .expect_err(
            400,
            "the OIDC browser flow is not supported by transitd: log in with a signed JWT at login",
        );
    // Login errors before any verification, as OpenBao's.
    let anon = app.as_token(None);
    anon.write("auth/jwt/login", json!({"role": "nope", "jwt": "x"}))
        .await
        .expect_err(400, "role \"nope\" could not be found");
    anon.write("auth/jwt/login", json!({"role": "ci"}))
        .await
        .expect_err(400, "missing token");
    // Role management needs a token.
    anon.write("auth/jwt/role/x", json!({})).await.expect(403);
}

/// A real server with a file audit device: a JWT (`jwt` or `kubernetes`
/// login, accepted or refused) or the Kubernetes reviewer JWT reaches
/// neither the audit log nor the server log in clear.
#[test]
fn the_jwt_is_never_logged_in_clear() {
    use crate::kube_api::{KubeApi, projected};
    const REVIEWER: &str = "reviewer-jwt-that-must-not-leak";
    let api = KubeApi::start(&[KEY_A], &[REVIEWER]);
    use crate::node::Site;
    let site = Site::new("disable_mlock = true\nlog_level = \"trace\"");
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    let r = Some(root.as_str());
    let audit_path = site.dir.path().join("audit.log");
    let audit = json!({"type": "file", "options": {"file_path": audit_path.display().to_string()}});
    for (path, body) in [
        ("sys/audit/file", audit),
        ("sys/auth/jwt", json!({"type": "jwt"})),
        (
            "auth/jwt/config",
            json!({"jwt_validation_pubkeys": [RSA_A_PUB], "bound_issuer": "https://issuer"}),
        ),
        (
            "auth/jwt/role/ci",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "vault"}),
        ),
        ("sys/auth/kubernetes", json!({"type": "kubernetes"})),
        (
            "auth/kubernetes/config",
            json!({"kubernetes_host": api.url, "kubernetes_ca_cert": api.ca_pem, "token_reviewer_jwt": REVIEWER}),
        ),
        (
            "auth/kubernetes/role/app",
            json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "ns"}),
        ),
    ] {
        let (status, reply) = node.call("POST", path, r, Some(body));
        assert_eq!(status, 204, "{path}: {reply}");
    }
    let good = KEY_A.sign(&claims("https://issuer", json!({})));
    let forged = KEY_B.sign(&claims("https://issuer", json!({})));
    let (status, reply) = node.call(
        "POST",
        "auth/jwt/login",
        None,
        Some(json!({"role": "ci", "jwt": good})),
    );
    assert_eq!(status, 200, "{reply}");
    let (status, _) = node.call(
        "POST",
        "auth/jwt/login",
        None,
        Some(json!({"role": "ci", "jwt": forged})),
    );
    assert_eq!(status, 400);
    let pod = KEY_A.sign(&projected("ns", "app", json!({})));
    let stranger = KEY_A.sign(&projected("ns", "intruder", json!({})));
    let forged_pod = KEY_B.sign(&projected("ns", "app", json!({})));
    for (jwt, want) in [(&pod, 200), (&stranger, 403), (&forged_pod, 403)] {
        let (status, reply) = node.call(
            "POST",
            "auth/kubernetes/login",
            None,
            Some(json!({"role": "app", "jwt": jwt})),
        );
        assert_eq!(status, want, "{reply}");
    }
    node.stop();
    let log = std::fs::read_to_string(&audit_path).unwrap();
    assert!(log.contains("\"path\":\"auth/jwt/login\""));
    let server_log: String = std::fs::read_dir(site.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("server-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        !log.contains(REVIEWER) && !server_log.contains(REVIEWER),
        "the reviewer JWT leaked"
    );
    for jwt in [&good, &forged, &pod, &stranger, &forged_pod] {
        // The signature alone is enough to recognise a leak.
        let signature = jwt.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a JWT in the audit log in clear");
        assert!(!server_log.contains(signature), "a JWT in the server log");
    }
}
