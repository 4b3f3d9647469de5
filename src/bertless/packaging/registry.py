"""A client of the OCI distribution API: pull a base image, push an image, layer by layer.

The calls are the specification's (https://github.com/opencontainers/distribution-spec/blob/main/
spec.md): `GET /v2/<name>/manifests/<reference>` and `/blobs/<digest>` to pull; to push, `HEAD`
each blob (one the registry holds already is not sent again: a changed bundle re-pushes only its
own layer), `POST /blobs/uploads/` then `PUT <location>?digest=` for the rest, and last `PUT` the
manifest. A blob missing here but held by another repository of the same registry is mounted
from it (`POST /blobs/uploads/?mount=&from=`) instead of sent: a second model's image in its own
repository sends only its own layer. Authentication follows the registry's `WWW-Authenticate`
challenge: Basic with the user and password given, or Bearer, whose token comes from the realm it
names (with the user and password, if any, as Basic credentials; or, given an OAuth2 refresh
token such as ACR's, posted to the realm as the distribution spec's OAuth2 flow), the flows
Docker Hub, ECR's public gallery, Artifact Registry and ACR answer; `registry_login.py` gets each
cloud's credentials. Plain HTTP only for a registry on localhost or 127.0.0.1, as docker allows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bertless.packaging.oci import INDEX, LAYERS, MANIFESTS, Blob, Image
from bertless.packaging.report import PackagingError

if TYPE_CHECKING:
    import requests

LOCAL_HOSTS = ("localhost", "127.0.0.1")
DOCKER_HUB_API = "registry-1.docker.io"  # where docker.io/library/python:3.12-slim is served
INDEXES = (INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")
TIMEOUT_S = 300


@dataclass(frozen=True)
class Reference:
    """`host[:port]/name[:tag]`, as `docker push` takes it."""

    host: str
    name: str
    tag: str = "latest"

    @classmethod
    def parse(cls, text: str) -> Reference:
        match = re.fullmatch(
            r"([^/]+\.[^/]+|[^/]+:\d+|localhost)/([a-z0-9._/-]+)(?::([\w.-]+))?", text
        )
        if not match:
            raise PackagingError(
                f"{text!r} is not an image reference: write HOST[:PORT]/NAME[:TAG], e.g. "
                "localhost:5000/minilm:v1."
            )
        return cls(match.group(1), match.group(2), match.group(3) or "latest")

    @property
    def base_url(self) -> str:
        scheme = "http" if self.host.split(":")[0] in LOCAL_HOSTS else "https"
        host = DOCKER_HUB_API if self.host == "docker.io" else self.host
        return f"{scheme}://{host}/v2/{self.name}"

    def __str__(self) -> str:
        return f"{self.host}/{self.name}:{self.tag}"


class Registry:
    """One repository of a registry, with the credentials to answer its challenge."""

    def __init__(
        self,
        reference: Reference,
        user: str | None = None,
        password: str | None = None,
        refresh_token: str | None = None,
    ):
        import requests

        self.reference = reference
        self.credentials = (user, password) if user else None
        self.refresh_token = refresh_token
        self.session = requests.Session()
        self.pushed_bytes = 0  # blob bytes this client sent
        self.mounted: list[str] = []  # digests mounted from another repository, not sent

    def pull(self, arch: str = "x86_64") -> Image:
        """The reference's image for `arch` (from a multi-platform index, the matching entry):
        its config and layer blobs, which must be gzipped tarballs."""
        accept = {"Accept": ", ".join((*MANIFESTS, *INDEXES))}
        manifest = self._send("GET", f"/manifests/{self.reference.tag}", headers=accept).json()
        if manifest.get("mediaType") in INDEXES or "manifests" in manifest:
            wanted = {"x86_64": "amd64", "arm64": "arm64"}[arch]
            chosen = [
                m["digest"]
                for m in manifest["manifests"]
                if m.get("platform", {}).get("architecture") == wanted
                and m.get("platform", {}).get("os") == "linux"
            ]
            if not chosen:
                raise PackagingError(f"{self.reference} has no linux/{wanted} image.")
            manifest = self._send("GET", f"/manifests/{chosen[0]}", headers=accept).json()
        if manifest.get("mediaType", MANIFESTS[0]) not in MANIFESTS:
            raise PackagingError(
                f"{self.reference} is a {manifest.get('mediaType')}, not one image manifest; name "
                "one platform's image (its digest or a single-platform tag) as --base."
            )
        config = json.loads(self._send("GET", f"/blobs/{manifest['config']['digest']}").content)
        layers = []
        for layer in manifest["layers"]:
            if layer["mediaType"] not in LAYERS:
                raise PackagingError(f"{self.reference} has a {layer['mediaType']} layer.")
            layers.append(
                Blob(layer["mediaType"], self._send("GET", f"/blobs/{layer['digest']}").content)
            )
        return Image(config, tuple(layers))

    def push(self, image: Image, mount_from: tuple[str, ...] = ()) -> str:
        """Every blob the repository lacks (mounted from a repository of `mount_from` that holds
        it, else sent), then the manifest under the tag; returns the digest."""
        for blob in (*image.layers, image.config_blob):
            if self._send("HEAD", f"/blobs/{blob.digest}", ok=(200, 404)).status_code == 200:
                continue
            start = None
            for source in mount_from:
                mount = f"/blobs/uploads/?mount={blob.digest}&from={source}"
                start = self._send("POST", mount, ok=(201, 202))
                if start.status_code == 201:  # mounted; 202: an upload begun instead
                    break
            if start is not None and start.status_code == 201:
                self.mounted.append(blob.digest)
                continue
            start = start or self._send("POST", "/blobs/uploads/", ok=(202,))
            location = start.headers["Location"]
            if location.startswith("/"):
                location = self.reference.base_url.split("/v2/")[0] + location
            joiner = "&" if "?" in location else "?"
            self._send(
                "PUT",
                f"{location}{joiner}digest={blob.digest}",
                ok=(201,),
                data=blob.data,
                headers={"Content-Type": "application/octet-stream"},
            )
            self.pushed_bytes += blob.size
        manifest = image.manifest_blob
        self._send(
            "PUT",
            f"/manifests/{self.reference.tag}",
            ok=(201,),
            data=manifest.data,
            headers={"Content-Type": manifest.media_type},
        )
        return manifest.digest

    def _send(
        self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> requests.Response:
        """One request, answering an authentication challenge once; other answers are sentences."""
        import requests

        url = path if path.startswith("http") else self.reference.base_url + path
        try:
            answer = self.session.request(method, url, timeout=TIMEOUT_S, **kwargs)
            if answer.status_code == 401 and self._authenticate(answer):
                answer = self.session.request(method, url, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as error:
            raise PackagingError(
                f"cannot reach the registry of {self.reference}: {error}"
            ) from None
        if answer.status_code not in ok:
            raise PackagingError(
                f"the registry answered {method} {path.split('?')[0]} of {self.reference} with "
                f"{answer.status_code}: {answer.text[:200]}"
            )
        return answer

    def _authenticate(self, challenge: requests.Response) -> bool:
        """Set the session's credentials for the challenge; False when there are none to give."""
        header = challenge.headers.get("WWW-Authenticate", "")
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "basic":
            if self.credentials is None:
                raise PackagingError(
                    f"the registry of {self.reference} asks for a user and password: set "
                    "BERTLESS_REGISTRY_USER and BERTLESS_REGISTRY_PASSWORD."
                )
            self.session.auth = self.credentials
            return True
        if scheme.lower() == "bearer":
            params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
            scopes = params.get("scope", "").split()
            if self.refresh_token:  # the OAuth2 flow: the refresh token posted as a form
                form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
                form.update(service=params.get("service", ""), scope=" ".join(scopes))
                form["client_id"] = "bertless"
                answer = self.session.post(params["realm"], data=form, timeout=TIMEOUT_S)
            else:
                query = [("service", params.get("service", ""))] + [("scope", s) for s in scopes]
                answer = self.session.get(
                    params["realm"], params=query, auth=self.credentials, timeout=TIMEOUT_S
                )
            if answer.status_code != 200:
                raise PackagingError(
                    f"the token server of {self.reference} answered {answer.status_code}: "
                    f"{answer.text[:200]}"
                )
            body = answer.json()
            token = body.get("token") or body.get("access_token")
            self.session.headers["Authorization"] = f"Bearer {token}"
            return True
        return False
