"""Each cloud's registry login, against Debian's docker-registry on 127.0.0.1, and blob mounts.

- ECR: boto3's `GetAuthorizationToken` against moto's server; moto's password for account
  123456789012 is `123456789012-auth-token` (its documented stand-in value), so the registry's
  htpasswd holds `AWS` with that password: the push passes only if the token was decoded right.
- Artifact Registry: google-auth refreshes a service-account key (made here) at a STAND-IN
  OAuth token endpoint (Google's cannot be reached); the htpasswd holds `oauth2accesstoken` with
  the token that stand-in issues.
- ACR: docker-registry with token auth, whose realm is a STAND-IN of ACR's token server (the
  `/oauth2/exchange` of an Entra token for a refresh token, and `/oauth2/token` issuing the JWT
  the registry verifies against the certificate made here).
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from deploy_fixtures import _serve, _serve_stand_in
from test_image import skopeo_digest

from bertless.local.server import free_port
from bertless.packaging import oci
from bertless.packaging.registry import Reference, Registry
from bertless.packaging.registry_login import ACR_USER, Login, kind_of, login
from bertless.packaging.report import PackagingError

MOTO_ECR_PASSWORD = "123456789012-auth-token"  # moto's GetAuthorizationToken, account 123456789012
GOOGLE_TOKEN = "ya29.stand-in-access-token"
ENTRA_TOKEN = "entra-stand-in-access-token"
ISSUER = "bertless-stand-in-acr-token-server"
SERVICE = "stand-in.azurecr.io"


def start(folder: Path, auth: str) -> Iterator[str]:
    port = free_port()
    (folder / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {folder / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    command = ["docker-registry", "serve", str(folder / "config.yml")]
    for _ in _serve(command, f"http://127.0.0.1:{port}/v2/", folder / "log", "registry"):
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def password_registry(tmp_path_factory) -> Iterator[str]:
    """htpasswd with ECR's user (moto's password) and Artifact Registry's (the stand-in's)."""
    folder = tmp_path_factory.mktemp("password-registry")
    htpasswd = folder / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "AWS", MOTO_ECR_PASSWORD], check=True)
    subprocess.run(
        ["htpasswd", "-Bb", str(htpasswd), "oauth2accesstoken", GOOGLE_TOKEN], check=True
    )
    auth = f"auth:\n  htpasswd:\n    realm: bertless-tests\n    path: {htpasswd}\n"
    yield from start(folder, auth)


def small_image(seed: str, shared: bytes = b"shared runtime\n") -> oci.Image:
    """Two layers: one shared between images, one of their own."""
    empty = oci.Image({"architecture": "amd64", "os": "linux", "config": {}}, ())
    layers = [oci.tar_layer([("runtime", shared)]), oci.tar_layer([("own", seed.encode())])]
    return oci.append(empty, layers, cmd=["true"], env={}, workdir="/")


def test_login_kinds_follow_the_registry_host():
    cases = {
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/minilm": "ecr",
        "europe-west1-docker.pkg.dev/project/repo/minilm": "gcp",
        "gcr.io/project/minilm": "gcp",
        "team.azurecr.io/minilm": "acr",
        "localhost:5000/minilm": "password",
    }
    assert {ref: kind_of(Reference.parse(ref)) for ref in cases} == cases


def test_ecr_login_from_get_authorization_token_pushes(
    password_registry, moto_endpoint, monkeypatch, tmp_path
):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_ENDPOINT_URL_ECR": moto_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    reference = Reference.parse(f"{password_registry}/minilm-ecr:1")
    # the real host would be ACCOUNT.dkr.ecr.REGION.amazonaws.com: the region comes from it
    assert login(Reference.parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/x"), "ecr") == Login(
        "AWS", MOTO_ECR_PASSWORD
    )
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    credentials = login(reference, "ecr")
    image = small_image("ecr")
    assert Registry(reference, credentials.user, credentials.password).push(image) == image.digest
    creds = f"--creds=AWS:{MOTO_ECR_PASSWORD}"
    assert skopeo_digest(str(reference), creds) == image.digest


def service_account(token_uri: str, folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "bertless-tests",
        "private_key_id": "stand-in",
        "private_key": pem,
        "client_email": "pusher@bertless-tests.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path = folder / "key.json"
    path.write_text(json.dumps(info))
    return path


def test_artifact_registry_login_is_an_access_token_for_oauth2accesstoken(
    password_registry, monkeypatch, tmp_path
):
    def google_token_endpoint(call):
        """STAND-IN of oauth2.googleapis.com/token: a JWT-bearer grant gets a fixed token."""
        form = parse_qs(call.body.decode())
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        claims = jwt.decode(form["assertion"][0], options={"verify_signature": False})
        assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
        return 200, {"access_token": GOOGLE_TOKEN, "expires_in": 3600, "token_type": "Bearer"}

    with _serve_stand_in(google_token_endpoint) as google:
        key = service_account(google.url + "/token", tmp_path)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        reference = Reference.parse(f"{password_registry}/minilm-gcp:1")
        credentials = login(reference, "gcp")
    assert credentials == Login("oauth2accesstoken", GOOGLE_TOKEN) and not google.violations
    image = small_image("gcp")
    assert Registry(reference, credentials.user, credentials.password).push(image) == image.digest


def test_a_wrong_password_is_one_sentence(password_registry):
    reference = Reference.parse(f"{password_registry}/minilm:1")
    with pytest.raises(PackagingError, match=r"answered HEAD /blobs/sha256:\w+ .* with 401"):
        Registry(reference, "AWS", "not-the-password").push(small_image("x"))


class AcrStandIn:
    """STAND-IN of ACR's token server: Entra token → refresh token → registry JWT."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .sign(self.key, hashes.SHA256())
        )
        self.refresh_token = str(uuid.uuid4())
        self.granted: list[list[str]] = []
        self.violations: list[str] = []  # the requests it refused, and why

    def route(self, call):
        form = parse_qs(call.body.decode()) if isinstance(call.body, bytes) else {}
        if call.path == "/oauth2/exchange":
            assert form["grant_type"] == ["access_token"] and form["service"] == [SERVICE]
            assert form["access_token"] == [ENTRA_TOKEN], "not the Entra token"
            return 200, {"refresh_token": self.refresh_token}
        assert call.path == "/oauth2/token" and call.method == "POST", "ACR's OAuth2 flow posts"
        assert form["grant_type"] == ["refresh_token"]
        assert form["refresh_token"] == [self.refresh_token], "not the exchanged refresh token"
        scopes = form.get("scope", [""])[0].split()
        self.granted.append(scopes)
        return 200, {"access_token": self.token(scopes)}

    def token(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": ACR_USER, "aud": SERVICE, "exp": now + 600}
        claims.update(nbf=now - 60, iat=now, jti=str(uuid.uuid4()), access=access)
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"x5c": [base64.b64encode(der).decode()]}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=header)


@pytest.fixture(scope="module")
def acr_registry(tmp_path_factory) -> Iterator[tuple[str, AcrStandIn]]:
    folder = tmp_path_factory.mktemp("token-registry")
    stand_in = AcrStandIn()
    bundle = folder / "root.pem"
    bundle.write_bytes(stand_in.cert.public_bytes(serialization.Encoding.PEM))
    with _serve_stand_in(stand_in.route) as server:
        auth = (
            f"auth:\n  token:\n    realm: {server.url}/oauth2/token\n    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"
        )
        stand_in.violations = server.violations
        for host in start(folder, auth):
            yield host, stand_in


class EntraStandIn:
    """What azure-identity's credentials offer: `get_token(scope)`."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, scope: str):
        self.scopes.append(scope)
        return type("AccessToken", (), {"token": ENTRA_TOKEN, "expires_on": 0})()


def test_acr_login_exchanges_the_entra_token_and_pushes_through_the_token_server(acr_registry):
    host, stand_in = acr_registry
    reference = Reference.parse(f"{host}/minilm-acr:1")
    entra = EntraStandIn()
    credentials = login(reference, "acr", entra_credential=entra)
    assert credentials == Login(ACR_USER, refresh_token=stand_in.refresh_token)
    assert entra.scopes == ["https://management.azure.com/.default"]
    image = small_image("acr")
    registry = Registry(reference, credentials.user, refresh_token=credentials.refresh_token)
    assert registry.push(image) == image.digest
    # The registry's challenge names the actions in no fixed order ("pull,push" or "push,pull").
    granted = [
        {(s.rpartition(":")[0], frozenset(s.rpartition(":")[2].split(","))) for s in g}
        for g in stand_in.granted
    ]
    assert {("repository:minilm-acr", frozenset({"pull", "push"}))} in granted
    assert not stand_in.violations
    with pytest.raises(PackagingError, match=r"token server .* answered 400"):
        Registry(reference, ACR_USER, refresh_token="stale").push(small_image("y"))
    assert "not the exchanged refresh token" in stand_in.violations.pop()


def test_a_second_repository_mounts_the_shared_layer_instead_of_sending_it(acr_registry):
    host, stand_in = acr_registry
    credentials = login(Reference.parse(f"{host}/a:1"), "acr", entra_credential=EntraStandIn())
    first, second = small_image("first"), small_image("second")

    def registry(name: str) -> Registry:
        return Registry(
            Reference.parse(f"{host}/{name}:1"), refresh_token=credentials.refresh_token
        )

    registry("mount-a").push(first)
    mounted = registry("mount-b")
    mounted.push(second, mount_from=("mount-a",))
    shared = first.layers[0]
    assert mounted.mounted == [shared.digest]  # the shared layer: mounted, not sent
    own = second.layers[1].size + second.config_blob.size
    assert mounted.pushed_bytes == own
    # the mount asked for pull on the source repository, push on the target
    assert any("repository:mount-a:pull" in scopes for scopes in stand_in.granted)

    resent = registry("mount-c")
    resent.push(second)  # no repository named to mount from: every blob travels
    assert resent.mounted == [] and resent.pushed_bytes == own + shared.size
    assert not stand_in.violations
