"""Answerability read from the model's hidden state, not from its yes/no.

Usage::

    probe = Probe.load(shipped_probe("qwen2.5-coder-1.5b", "q8_0"))
    tap = LayerTap([probe.layer])        # installed in llama.cpp's context (LlamaCppGenerator)
    ...                                  # evaluate the check prompt
    probe(tap.states[probe.layer])       # P(the passages answer the question)

A logistic regression on one layer's output at the answerability check's last token, the
state the model's yes/no is read from. Fitted by ``benchmarks/answerability_probe.py
--write-probe`` (a study script, removed on 2026-12-02; read it at 7a479f9) on squad2, clapnq and
ares-news (with gold-left-out news questions as unanswerable); cross-validated there it separated
answerable from unanswerable questions better than P(yes) (docs/experiments/2026-11-27-refusals.md).
A probe belongs to one model and one set of
weights: any other model falls back to P(yes).
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROBES = Path(__file__).parent / "probes"


# Weights whose hidden states a probe fitted on other weights of the same model reads as well:
# the 1.5B's shipped Q4_K_M and the Q8_0 derived from it gave probe readings 0.017 apart on
# average (correlation 0.997) and the same refusal decision for 39 of 40 squad2 and clapnq
# questions (docs/experiments/2026-12-02-probe-on-shipped-weights.md).
SAME_STATES = {"as-shipped": "q8_0"}


def shipped_probe(model: str, weights: str) -> Path | None:
    """The probe file fitted for this bundled model and weights (or weights of the same states)."""
    for candidate in (weights, SAME_STATES.get(weights)):
        path = PROBES / f"{model}.{candidate}.npz"
        if candidate and path.is_file():
            return path
    return None


@dataclass(frozen=True)
class Probe:
    layer: int
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def __call__(self, state: np.ndarray) -> float:
        z = float(((state - self.mean) / self.scale) @ self.coef + self.intercept)
        return float(1.0 / (1.0 + np.exp(-z)))

    @classmethod
    def load(cls, path: Path) -> Probe:
        with np.load(path) as f:
            return cls(int(f["layer"]), f["mean"], f["scale"], f["coef"], float(f["intercept"]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, layer=self.layer, mean=self.mean, scale=self.scale, coef=self.coef, intercept=self.intercept)


class LayerTap:
    """Copies layers' outputs for the last token of each llama.cpp evaluation.

    Through ggml's eval callback, which llama-cpp-python does not expose: :meth:`installed`
    hands it to the context through llama.cpp's default context parameters. Asked only for
    the wanted layers, the scheduler stops there and nowhere else (no measurable cost:
    docs/experiments/2026-11-28-answerability-probe.md).
    """

    def __init__(self, layers: list[int] | tuple[int, ...]) -> None:
        import llama_cpp
        from llama_cpp._ggml import libggml

        self.wanted = {f"l_out-{i}".encode(): i for i in layers}
        self.states: dict[int, np.ndarray] = {}
        self._lib = libggml
        libggml.ggml_get_name.restype = ctypes.c_char_p
        libggml.ggml_get_name.argtypes = [ctypes.c_void_p]
        for fn in (libggml.ggml_nelements, libggml.ggml_nrows):
            fn.restype, fn.argtypes = ctypes.c_int64, [ctypes.c_void_p]
        libggml.ggml_get_data_f32.restype = ctypes.POINTER(ctypes.c_float)
        libggml.ggml_get_data_f32.argtypes = [ctypes.c_void_p]
        self.callback = llama_cpp.ggml_backend_sched_eval_callback(self._observe)

    def _observe(self, tensor: int, ask: bool, _data: int) -> bool:
        layer = self.wanted.get(self._lib.ggml_get_name(tensor))
        if ask or layer is None:
            return layer is not None  # asked: observe only the wanted layers
        n, rows = self._lib.ggml_nelements(tensor), self._lib.ggml_nrows(tensor)
        values = np.ctypeslib.as_array(self._lib.ggml_get_data_f32(tensor), shape=(n,))
        self.states[layer] = values.reshape(rows, n // rows)[-1].copy()  # the batch's last token
        return True

    @contextmanager
    def installed(self) -> Any:
        """While a llama.cpp context is created in this block, it calls back here."""
        import llama_cpp.llama_cpp as low

        original = low.llama_context_default_params

        def with_callback() -> Any:
            params = original()
            params.cb_eval = self.callback
            return params

        low.llama_context_default_params = with_callback
        try:
            yield
        finally:
            low.llama_context_default_params = original
