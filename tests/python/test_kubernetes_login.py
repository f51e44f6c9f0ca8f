"""hvac's and the bao CLI's Kubernetes login against transitd: a Python
HTTPS server answers TokenReview as the Kubernetes API server does (it
checks the reviewer's bearer token and knows which service-account tokens
it issued); hvac configures the method and a role, then pods log in."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import hvac
import pytest

from conftest import bao_bin
from login_fixtures import Signer, TlsServer

REVIEWER = "reviewer-" + uuid.uuid4().hex


class KubeApi:
    def __init__(self):
        self.signer = Signer()
        self.issued: dict[str, tuple[str, str, str]] = {}

        def handle(method, path, headers, body):
            if (method, path) != ("POST", "/apis/authentication.k8s.io/v1/tokenreviews"):
                return 404, {"kind": "Status", "status": "Failure", "code": 404}
            if headers.get("authorization") != f"Bearer {REVIEWER}":
                return 401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
            spec = json.loads(body)["spec"]
            account = self.issued.get(spec["token"])
            if account is None:
                status = {"authenticated": False, "error": "invalid bearer token"}
            else:
                ns, name, uid = account
                status = {"authenticated": True, "audiences": spec.get("audiences") or [],
                          "user": {"username": f"system:serviceaccount:{ns}:{name}", "uid": uid}}
            return 201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                         "spec": spec, "status": status}

        self.server = TlsServer(handle)

    def token(self, namespace: str, name: str) -> str:
        """A projected service-account token the API server knows."""
        uid = str(uuid.uuid4())
        now = int(time.time())
        jwt = self.signer.sign({
            "iss": "https://kubernetes.default.svc", "aud": ["vault"], "iat": now, "nbf": now,
            "exp": now + 600, "sub": f"system:serviceaccount:{namespace}:{name}",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        })
        self.issued[jwt] = (namespace, name, uid)
        return jwt


@pytest.fixture
def kube_api():
    api = KubeApi()
    yield api
    api.server.stop()


def test_hvac_and_bao_kubernetes_login(transitd, client, kube_api, tmp_path):
    mount = "k8s-" + uuid.uuid4().hex[:8]
    client.sys.enable_auth_method("kubernetes", path=mount)
    client.auth.kubernetes.configure(
        kubernetes_host=kube_api.server.url,
        kubernetes_ca_cert=kube_api.server.ca_pem,
        token_reviewer_jwt=REVIEWER,
        mount_point=mount,
    )
    config = client.auth.kubernetes.read_config(mount_point=mount)
    assert config["token_reviewer_jwt_set"] is True
    client.auth.kubernetes.create_role(
        "app",
        bound_service_account_names=["app"],
        bound_service_account_namespaces=["team-*"],
        audience="vault",
        policies=["deploy"],
        ttl="15m",
        mount_point=mount,
    )

    pod = hvac.Client(url=transitd.url)
    auth = pod.auth.kubernetes.login("app", kube_api.token("team-a", "app"), mount_point=mount)["auth"]
    assert auth["policies"] == ["default", "deploy"]
    assert auth["metadata"]["service_account_namespace"] == "team-a"
    assert auth["metadata"]["role"] == "app"
    assert auth["lease_duration"] == 900
    assert pod.is_authenticated()

    stranger = hvac.Client(url=transitd.url)
    with pytest.raises(hvac.exceptions.Forbidden, match="namespace not authorized"):
        stranger.auth.kubernetes.login("app", kube_api.token("kube-system", "app"), mount_point=mount)
    # Claims that look right, but a token the API server never issued.
    forged = Signer().sign({"aud": ["vault"], "kubernetes.io": {
        "namespace": "team-a", "serviceaccount": {"name": "app", "uid": "x"}}})
    with pytest.raises(hvac.exceptions.Forbidden):
        stranger.auth.kubernetes.login("app", forged, mount_point=mount)
    assert not stranger.is_authenticated()

    # The bao CLI, unchanged.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    env.update(HOME=str(tmp_path), BAO_ADDR=transitd.url)
    out = subprocess.run(
        [str(bao_bin()), "write", "-format=json", f"auth/{mount}/login", "role=app",
         f"jwt={kube_api.token('team-b', 'app')}"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["auth"]["metadata"]["service_account_namespace"] == "team-b"
