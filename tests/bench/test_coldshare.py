"""A cold start split into the floor and bertless's own share: phases from hand-made stamps, the
import profile from a hand-written `-X importtime` report, and a real run of an AWS artifact whose
phases add up to its total."""

from __future__ import annotations

import pytest

from bertless.bench.coldshare import (
    END_MARKER,
    FLOOR,
    MARKER,
    OWN,
    import_profile,
    phases,
    share_cold_starts,
)
from bertless.packaging.layer import unpack
from bertless.packaging.proof import find_interpreter


def test_phases_from_stamps_by_hand():
    stamps = {
        "began": 100.010,
        "marks": {
            "import numpy": 100.060,
            "import onnxruntime": 100.100,
            "import tokenizers": 100.110,
            "import msgspec or pydantic": 100.150,
            "bertless imports": 100.170,
            "loaded": 100.300,
            "answered": 100.320,
        },
        "spent": {
            "predictor": 0.120,
            "bundle check": 0.010,
            "session open": 0.090,
            "model run": 0.015,
        },
    }
    ms = phases(100.000, stamps)

    expected = {
        "interpreter start": 10,
        "import numpy": 50,
        "import onnxruntime": 40,
        "import tokenizers": 10,
        "import msgspec or pydantic": 40,
        "bertless imports": 20,
        "bundle check": 10,
        "session open": 90,
        "tokenizer load": 20,  # the predictor's 120 less the check and the session
        "service build": 10,  # 130 from the imports to loaded, less the predictor's 120
        "first request: model run": 15,
        "first request: the rest": 5,
        "floor": 10 + 50 + 40 + 10 + 40 + 20 + 90 + 15,
        "own": 20 + 10 + 10 + 5,
        "total": 320,
    }
    assert ms == pytest.approx(expected, abs=1e-6)


def test_import_profile_keeps_the_bertless_phase_only_and_sorts_by_self_time():
    report = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      9000 |       9000 | numpy",
            MARKER,
            "import time:      1200 |       1200 |   logging",
            "import time:       300 |       1500 | bertless.core.errors",
            "import time:      4100 |       5600 | bertless.core.service",
            END_MARKER,
            "import time:      7000 |       7000 | bertless.core.engine_onnx",
        ]
    )
    assert import_profile(report, top=2) == [("bertless.core.service", 4.1), ("logging", 1.2)]


def test_an_aws_artifacts_phases_add_up_to_its_cold_start(bench_aws_artifact, tmp_path):
    interpreter = find_interpreter(bench_aws_artifact.python)
    assert interpreter, f"CPython {bench_aws_artifact.python} is needed to run the artifact"
    root = unpack(bench_aws_artifact.path, bench_aws_artifact.layer, tmp_path / "task")

    result = share_cold_starts(interpreter, root, root / "bundle", 1, "a text")

    (run,) = result.runs
    assert set(run) == {*FLOOR, *OWN, "floor", "own", "total"}
    assert all(run[name] >= 0 for name in (*FLOOR, *OWN))
    assert run["floor"] + run["own"] == pytest.approx(run["total"], abs=1e-6)
    assert result.modules and all(ms >= 0 for _, ms in result.modules)
    assert any(name.startswith("bertless.core") for name, _ in result.modules)
