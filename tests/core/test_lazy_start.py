"""A cold start builds only what its first request needs; what is built later is built once.

Each check runs in a fresh interpreter: this test process has built every model long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys

FIRST_REQUEST = r"""
import json, sys
from bertless.core import http
from bertless.core.service import Request, Service

service = Service.from_bundle(sys.argv[1])
body = json.dumps({"inputs": ["a text"]}).encode()
request = Request("POST", "/embed", {"Content-Type": "application/json"}, body)
status = service.handle(request).status
decoders = http._decoder.cache_info().currsize
document = service._openapi is not None
pydantic = sorted({name.split(".")[0] for name in sys.modules} & {"pydantic", "pydantic_core"})
seen = {"status": status, "decoders": decoders, "document": document, "pydantic": pydantic}
print(json.dumps(seen))
"""

CONCURRENT_FIRSTS = r"""
import json, sys
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from bertless.core.service import Request, Service

service = Service.from_bundle(sys.argv[1])
calls = [
    ("POST", "/embed", {"inputs": ["a text"]}),
    ("POST", "/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b", "c"]}}),
    ("POST", "/rerank", {"query": "a", "texts": ["b", "c"]}),
    ("POST", "/v1/embeddings", {"input": "a text"}),
    ("POST", "/", {"inputs": "a text"}),
    ("GET", "/openapi.json", None),
    ("GET", "/openapi.json", None),
    ("GET", "/info", None),
] * 2
start = Barrier(len(calls))

def call(method, path, body):
    data = json.dumps(body).encode() if body is not None else b""
    start.wait()
    return service.handle(Request(method, path, {"Content-Type": "application/json"}, data))

with ThreadPoolExecutor(len(calls)) as pool:
    answers = list(pool.map(lambda c: call(*c), calls))
documents = {a.body for a, c in zip(answers, calls) if c[1] == "/openapi.json"}
print(json.dumps({"statuses": [a.status for a in answers], "documents": len(documents)}))
"""


def run(script: str, bundle) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, str(bundle)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_cold_start_builds_only_the_decoder_of_its_first_request(minilm_bundle):
    """...and imports no pydantic: its import and first model were about 62 ms of a 450 ms cold
    start (issue 21); the contract and the manifest are msgspec's."""
    result = run(FIRST_REQUEST, minilm_bundle)
    assert result == {"status": 200, "decoders": 1, "document": False, "pydantic": []}


def test_first_requests_of_every_route_at_once_all_answer(minilm_bundle):
    result = run(CONCURRENT_FIRSTS, minilm_bundle)
    assert result == {"statuses": [200] * 16, "documents": 1}
