"""AWS Signature Version 4 for Function URLs with AWS_IAM auth: one signer for every caller.

bench, batch and deploy all call such URLs (a benchmark, a scoring run, the smoke request after
a deploy); botocore does the signing, and this is the one place that says how.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Sign = Callable[[str, str, bytes | None, dict[str, str]], dict[str, str]]
"""(method, url, body, headers) -> the headers with the signature added."""


def signer(region: str, credentials: Any = None) -> Sign | None:
    """A signer for the `lambda` service in `region`, or None when no credentials are found.

    `credentials` are botocore's; None means botocore's own chain (profile, environment, role).
    A request is signed when it is sent, so a retry gets a fresh signature.
    """
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = credentials or botocore.session.get_session().get_credentials()
    if credentials is None:
        return None
    auth = SigV4Auth(credentials, "lambda", region)

    def sign(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        auth.add_auth(request)
        return dict(request.headers.items())

    return sign
