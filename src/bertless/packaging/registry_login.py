"""Registry credentials from each cloud's own login, as `docker login` would be given them.

- **ECR**: `GetAuthorizationToken` returns base64 of `AWS:<password>`, good for 12 hours
  (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html).
- **Artifact Registry**: user `oauth2accesstoken`, password an OAuth access token of the Google
  credentials found the usual way (Application Default Credentials)
  (https://cloud.google.com/artifact-registry/docs/docker/authentication#token).
- **ACR**: an Entra access token exchanged at the registry's `/oauth2/exchange` for an ACR refresh
  token (https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md); the registry's Bearer
  challenge is then answered with that refresh token through the distribution spec's OAuth2 flow
  (https://distribution.github.io/distribution/spec/auth/oauth/), as docker does with an
  identity token. The exchange endpoint sits beside the token realm the registry's challenge
  names, so it is found from the challenge, not from the host name.

`login` picks the flow from the host (`*.dkr.ecr.*.amazonaws.com`, `*-docker.pkg.dev` or
`gcr.io`, `*.azurecr.io`) unless told, and otherwise takes the user and password given.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from bertless.packaging.registry import TIMEOUT_S, Reference
from bertless.packaging.report import PackagingError

LOGINS = ("password", "ecr", "gcp", "acr")
ARTIFACT_REGISTRY_USER = "oauth2accesstoken"
ACR_USER = "00000000-0000-0000-0000-000000000000"  # ACR's user for a refresh token
ENTRA_SCOPE = "https://management.azure.com/.default"  # what `az acr login` exchanges
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class Login:
    """What `Registry` answers a challenge with: a user and password, or an OAuth2 refresh
    token (ACR's), which the Bearer flow posts to the token realm instead."""

    user: str | None = None
    password: str | None = None
    refresh_token: str | None = None


def kind_of(reference: Reference) -> str:
    """The login flow a registry host calls for: ecr, gcp, acr, or password."""
    host = reference.host.split(":")[0]
    if re.fullmatch(r"\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?", host):
        return "ecr"
    if host.endswith("-docker.pkg.dev") or host == "gcr.io" or host.endswith(".gcr.io"):
        return "gcp"
    if host.endswith(".azurecr.io"):
        return "acr"
    return "password"


def login(
    reference: Reference,
    kind: str | None = None,
    user: str | None = None,
    password: str | None = None,
    entra_credential: Any = None,
) -> Login:
    """The credentials for `reference`'s registry by the flow `kind` (default: by host)."""
    kind = kind or kind_of(reference)
    if kind == "password":
        return Login(user, password)
    if kind == "ecr":
        return ecr(_ecr_region(reference.host))
    if kind == "gcp":
        return artifact_registry()
    if kind == "acr":
        return acr(reference, entra_credential)
    raise PackagingError(f"unknown registry login {kind!r}; choose one of {', '.join(LOGINS)}.")


def ecr(region: str | None) -> Login:
    """ECR's user and password from `GetAuthorizationToken` (boto3's credentials and endpoint,
    so AWS_ENDPOINT_URL_ECR points it elsewhere)."""
    import boto3
    import botocore.exceptions

    try:
        answer = boto3.client("ecr", region_name=region).get_authorization_token()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise PackagingError(f"ECR's GetAuthorizationToken failed: {error}") from None
    token = answer["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    return Login(user, password)


def artifact_registry() -> Login:
    """`oauth2accesstoken` and a fresh access token of the Application Default Credentials."""
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests

    try:
        credentials, _ = google.auth.default(scopes=[GOOGLE_SCOPE])
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as error:
        raise PackagingError(f"no Google access token for Artifact Registry: {error}") from None
    return Login(ARTIFACT_REGISTRY_USER, credentials.token)


def acr(reference: Reference, entra_credential: Any = None) -> Login:
    """An ACR refresh token for an Entra access token, from the registry's exchange endpoint."""
    import requests

    if entra_credential is None:
        from azure.identity import DefaultAzureCredential

        entra_credential = DefaultAzureCredential()
    registry = reference.base_url.split("/v2/")[0]
    challenge = requests.get(registry + "/v2/", timeout=TIMEOUT_S)
    scheme, _, rest = challenge.headers.get("WWW-Authenticate", "").partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    if scheme.lower() != "bearer" or not params.get("realm", "").endswith("/oauth2/token"):
        raise PackagingError(
            f"{reference.host} does not challenge as ACR does (Bearer, realm …/oauth2/token): "
            f"{challenge.headers.get('WWW-Authenticate') or challenge.status_code}"
        )
    exchange = params["realm"].removesuffix("/token") + "/exchange"
    answer = requests.post(
        exchange,
        data={
            "grant_type": "access_token",
            "service": params.get("service", reference.host),
            "access_token": entra_credential.get_token(ENTRA_SCOPE).token,
        },
        timeout=TIMEOUT_S,
    )
    if answer.status_code != 200:
        raise PackagingError(
            f"ACR's token exchange at {exchange} answered {answer.status_code}: {answer.text[:200]}"
        )
    return Login(ACR_USER, refresh_token=answer.json()["refresh_token"])


def _ecr_region(host: str) -> str | None:
    """The region in an ECR host name; None (boto3's own default) for any other host."""
    match = re.search(r"\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com", host)
    return match.group(1) if match else None
