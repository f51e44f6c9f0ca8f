//! Response wrapping and break-glass revocation on several transitd nodes
//! over one PostgreSQL database: a wrapped reply unwraps on any node, and
//! exactly once when nodes race; `revoke-prefix` on one node reaches the
//! others by notification.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{Cluster, PROPAGATION_WAIT, database_lock, within};
use crate::jwt_issuer::KEY_A;
use crate::kube_api::{KubeApi, projected};

/// A reply wrapped on node 0 for five minutes: its wrapping token.
fn wrap_on_first_node(c: &Cluster, data: Value) -> String {
    let reply = c.nodes[0]
        .client()
        .as_token(Some(&c.root))
        .with_header("X-Vault-Wrap-TTL", "300")
        .write("sys/wrapping/wrap", data)
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["wrap_info"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Wait until node 1 has heard of `token` (it serves a token only once its
/// cache knows it).
fn known_on_second_node(c: &Cluster, token: &str) {
    within(PROPAGATION_WAIT, "wrapping token", || {
        c.nodes[1]
            .call(
                "POST",
                "sys/wrapping/lookup",
                None,
                Some(json!({ "token": token })),
            )
            .0
            == 200
    });
}

#[test]
fn two_nodes_racing_to_unwrap_one_token_give_it_to_exactly_one() {
    let _db = database_lock();
    let c = Cluster::start(2);
    for round in 0..12 {
        let secret = json!({ "round": round });
        let token = wrap_on_first_node(&c, secret.clone());
        known_on_second_node(&c, &token);
        // Half the rounds present the token; half name it in the body.
        let presented = round % 2 == 0;
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<(u16, Value)> = std::thread::scope(|s| {
            let racers: Vec<_> = c
                .nodes
                .iter()
                .map(|node| {
                    let (token, barrier) = (&token, &barrier);
                    let root = &c.root;
                    s.spawn(move || {
                        barrier.wait();
                        if presented {
                            node.call("POST", "sys/wrapping/unwrap", Some(token), None)
                        } else {
                            node.call(
                                "POST",
                                "sys/wrapping/unwrap",
                                Some(root),
                                Some(json!({ "token": token })),
                            )
                        }
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let winners: Vec<&(u16, Value)> = outcomes.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        assert_eq!(winners[0].1["data"], secret);
        for (status, body) in outcomes.iter().filter(|(s, _)| *s != 200) {
            assert!(
                [400, 403].contains(status),
                "round {round}: the loser got {status} {body}"
            );
        }
    }
}

/// Revoked on one node, a wrapping token gives up nothing on another at
/// once, before that node has heard of the revocation: the reply is gone
/// from storage, and spending the token is decided by storage too.
#[test]
fn a_wrapping_token_revoked_on_one_node_gives_up_nothing_on_another_at_once() {
    let _db = database_lock();
    let c = Cluster::start(2);
    for (round, path) in ["sys/wrapping/unwrap", "sys/wrapping/rewrap"]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        let token = wrap_on_first_node(&c, json!({ "round": round }));
        known_on_second_node(&c, &token);
        let (status, body) = c.call(
            0,
            "POST",
            "auth/token/revoke",
            Some(json!({ "token": token })),
        );
        assert_eq!(status, 204, "{body}");
        let (status, body) =
            c.nodes[1].call("POST", path, Some(&c.root), Some(json!({ "token": token })));
        assert_eq!(
            (status, body["errors"][0].as_str()),
            (400, Some("wrapping token is not valid or does not exist")),
            "round {round}: {path} on node 1 after the revocation on node 0: {body}"
        );
    }
}

/// Five times: a token `login` makes on node A is served on node B, then
/// `revoke-prefix/<prefix>` on node A; the worst time until node B refuses it
/// must stay under 100 ms.
fn revoke_prefix_reaches_node_b_within_100ms(
    c: &Cluster,
    prefix: &str,
    login: impl Fn() -> String,
) {
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let token = login();
        let alive_on_b = || {
            c.nodes[1]
                .call("GET", "auth/token/lookup-self", Some(&token), None)
                .0
                == 200
        };
        within(PROPAGATION_WAIT, "the login's token on node B", alive_on_b);
        let (status, body) = c.call(
            0,
            "POST",
            &format!("sys/leases/revoke-prefix/{prefix}"),
            None,
        );
        assert!(status < 300, "{status} {body}");
        let took = within(PROPAGATION_WAIT, "the revocation on node B", || {
            !alive_on_b()
        });
        worst = worst.max(took);
    }
    println!("revoke-prefix/{prefix} reached node B in at most {worst:?}");
    assert!(
        worst < Duration::from_millis(100),
        "a revoked token was still served on node B after {worst:?}"
    );
}

fn enable(c: &Cluster, path: &str, body: Value) {
    let (status, reply) = c.call(0, "POST", path, Some(body));
    assert!(status < 300, "{path}: {status} {reply}");
}

#[test]
fn revoke_prefix_on_one_node_is_refused_on_another_within_100ms() {
    let _db = database_lock();
    let c = Cluster::start(2);
    enable(&c, "sys/auth/userpass", json!({ "type": "userpass" }));
    enable(&c, "auth/userpass/users/web", json!({ "password": "pw" }));
    revoke_prefix_reaches_node_b_within_100ms(&c, "auth/userpass", || {
        let (status, login) = c.nodes[0].call(
            "POST",
            "auth/userpass/login/web",
            None,
            Some(json!({ "password": "pw" })),
        );
        assert_eq!(status, 200, "{login}");
        login["auth"]["client_token"].as_str().unwrap().to_owned()
    });
}

/// The case: a pod's token from a Kubernetes login on node A.
#[test]
fn a_kubernetes_login_revoked_by_prefix_on_one_node_is_refused_on_another_within_100ms() {
    const REVIEWER: &str = "reviewer-jwt";
    let _db = database_lock();
    let api = KubeApi::start(&[KEY_A], &[REVIEWER]);
    let c = Cluster::start(2);
    enable(&c, "sys/auth/kubernetes", json!({ "type": "kubernetes" }));
    enable(
        &c,
        "auth/kubernetes/config",
        json!({"kubernetes_host": api.url, "kubernetes_ca_cert": api.ca_pem,
               "token_reviewer_jwt": REVIEWER}),
    );
    enable(
        &c,
        "auth/kubernetes/role/app",
        json!({"bound_service_account_names": "app",
               "bound_service_account_namespaces": "team-a", "audience": "vault"}),
    );
    let jwt = KEY_A.sign(&projected("team-a", "app", json!({})));
    revoke_prefix_reaches_node_b_within_100ms(&c, "auth/kubernetes", || {
        let (status, login) = c.nodes[0].call(
            "POST",
            "auth/kubernetes/login",
            None,
            Some(json!({ "role": "app", "jwt": jwt })),
        );
        assert_eq!(status, 200, "{login}");
        login["auth"]["client_token"].as_str().unwrap().to_owned()
    });
}
