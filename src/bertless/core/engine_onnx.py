"""The onnxruntime engine: one shared session that turns padded token ids into the graph's output.

Everything onnxruntime-specific lives here (session options, thread spinning, the arena, checking
the graph against the manifest), so that a bundle whose model is not an ONNX graph never imports
onnxruntime at all.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from bertless.core.bundle import Bundle
from bertless.core.config import env_bool
from bertless.core.errors import BundleError


def spin_entries() -> dict[str, str]:
    """onnxruntime session entries for `BERTLESS_SPIN`: how idle intra-op threads wait.

    Unset or `0` (the default): they never spin-wait; they sleep until there is work. `1`: they
    spin between operators and for a while after each run (onnxruntime's own default).

    Chosen by benchmarks/predictor.py, each engine alone in its own process under a Lambda
    size's cgroup CPU quota, batch-1 calls one at a time, 4 rounds (2 shared cores at load
    20-29): with two intra-op threads, never spinning answered at 1.94x the raw onnxruntime loop
    at 3,008 MB (1.73 vCPU; spinning 1.05x, stopping the spin when a run returns, the former
    default, 0.97x) and 1.96x at 3,538 MB (2 vCPU; 1.09x and 1.00x). A thread that spins while
    its peer waits for a CPU burns the share the peer needs, and a function's share is a quota
    that throttles exactly that. With one thread (1,769 MB and below) there is no pool to spin
    and the setting changes nothing (46-70 texts/s unset, 53-65 with `1`). `1` can still be
    faster on cores that nothing else wants (an earlier measurement on idle cores had never
    spinning about 40% slower): set it for a dedicated machine.
    """
    spin = env_bool("BERTLESS_SPIN")
    return {"session.intra_op.allow_spinning": "1" if spin else "0"}


class OnnxEngine:
    """A bundle's `model.onnx` in one onnxruntime session, safe to share between threads."""

    def __init__(self, bundle: Bundle, threads: int) -> None:
        self.bundle = bundle
        self.session = self._open_session(threads)
        self._check_graph()
        # After each run the arena gives back what the run grew it by: kept (onnxruntime's
        # default), one request of 32 texts at full length left a process at 500 MB instead of
        # about 230 MB for as long as it lived, with no batch-1 request faster for it
        # (benchmarks/arena.py). Serving processes also cap malloc's heaps (core.allocator).
        self._run_options = ort.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The manifest's output for one padded micro-batch, given every input the graph takes."""
        manifest = self.bundle.manifest
        (out,) = self.session.run(
            [manifest.output], {name: feeds[name] for name in manifest.inputs}, self._run_options
        )
        return out

    def _open_session(self, threads: int) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # The graph was optimized at export; only cheap, hardware-specific passes remain.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for key, value in spin_entries().items():
            options.add_session_config_entry(key, value)
        try:
            return ort.InferenceSession(
                str(self.bundle.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise BundleError(
                f"{self.bundle.model_path} is not a model onnxruntime can load ({error}); "
                "re-export the bundle."
            ) from error

    def _check_graph(self) -> None:
        manifest = self.bundle.manifest
        graph_inputs = [i.name for i in self.session.get_inputs()]
        graph_outputs = [o.name for o in self.session.get_outputs()]
        if sorted(graph_inputs) != sorted(manifest.inputs):
            raise BundleError(
                f"{self.bundle.model_path} takes inputs {graph_inputs} but bundle.json says "
                f"{manifest.inputs}: the model and manifest come from different exports."
            )
        if manifest.output not in graph_outputs:
            raise BundleError(
                f"{self.bundle.model_path} has no output {manifest.output!r} (it has "
                f"{graph_outputs}): the model and manifest come from different exports."
            )
