"""The model configured for the machine it runs on.

Usage::

    from qa_bot.tuning import tune
    tuned = tune(settings.generation)   # measured once per machine, then read from the cache
    tuned.settings                      # GenerationSettings with no "auto" left
    print(tuned.choice.summary())       # "qwen2.5-coder-1.5b (q8_0), 2 threads, 350-token passages: ..."

Where ``generation.model``, ``weights``, ``threads`` or ``prompt_tokens`` say ``auto`` (the
default), this module measures how fast this machine reads a prompt and writes tokens with each
candidate (a few seconds a candidate, once), keeps the figures under ``generation.tuning_cache``
keyed by the CPU model, its instruction-set flags and the llama.cpp build, and picks by
:func:`pick`, a pure function of those speeds. Any value set in ``config.yaml`` wins.

Why measure instead of a table of CPUs: the same model reads a prompt 5-8x slower on an AVX2
EPYC than on an AMX Xeon, and which weights are faster flips between them (Q8_0 has AMX and
AVX-512 VNNI kernels; on plain AVX2 the shipped Q4_K_M is faster).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from qa_bot.models import model_file
from qa_bot.settings import AUTO, GenerationSettings

log = logging.getLogger(__name__)

BIG, SMALL = "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"
# Answer score of each bundled model with the bot's defaults over all answerable questions, mean
# of squad2 and clapnq (a fixed 40-question sample of each, `python -m benchmarks.profiles`,
# 2026-12-02; docs/benchmarks.md, "Profiles"): 0.708 and 0.465 for the 1.5B, 0.458 and 0.289 for
# the 0.5B.
ANSWER_SCORE = {BIG: 0.59, SMALL: 0.37}
# The 0.5B is picked where the 1.5B misses first_token_target, if it loses at most this much
# answer score, or whatever it loses where the 1.5B's first token would be past FIRST_TOKEN_LIMIT.
QUALITY_MARGIN = 0.05
FIRST_TOKEN_LIMIT = 6.0
# The passage budgets "auto" may choose from, largest first: below 300 the 1.5B refused more
# answerable questions and lost clapnq answer score (docs/experiments/2026-11-28-prompt-budget.md).
BUDGETS = (350, 340, 330, 320, 310, 300)
# Prompt tokens a question makes the model read per token of passage budget: its passages with
# their headers, the question and the answerability line (the system prompt stays in the KV
# cache). Measured with benchmarks.answer_latency over the sample article: 306 tokens a
# question at a budget of 300 (2026-12-02); fewer where the passage margin leaves passages out.
TOKENS_PER_BUDGET = 0.95
# The bot's own work before the model starts: retrieval, sentence embedding, evidence.
PIPELINE_SECONDS = 0.2
# What one measurement reads and writes: long enough for a steady rate, short enough for a start.
PROBE_PROMPT_TOKENS = 96
PROBE_NEW_TOKENS = 12
# Reads of the prompt, of which the slowest counts: the estimate must not promise a first token
# the machine then misses. Single measurements ran up to 40 % fast against the same model read
# in the bot (0.5B Q8_0, AVX2 build: 136, 92, 94 tokens/s in three fresh runs; 1.5B Q4_K_M:
# 65.6 measured, 45.0 in the bot; docs/benchmarks.md).
PROBE_READS = 3
# Real prompt reads (ObservedReading): how many make a figure, and the least that counts as one.
OBSERVE_EVERY = 8
OBSERVE_MIN_TOKENS = 64


@dataclass(frozen=True)
class Speed:
    """Tokens per second: reading a prompt, and writing; ``observed``, how many real questions'
    prompt reads the prompt figure comes from (0: the start-up measurement)."""

    prompt: float
    generation: float
    observed: int = 0


@dataclass(frozen=True)
class Choice:
    """What runs here, why, and the first token it should give."""

    model: str
    weights: str
    threads: int
    prompt_tokens: int
    first_token: float | None  # expected seconds to the first model token; None where not measured
    reason: str

    def summary(self) -> str:
        expected = f"first token expected in {self.first_token:.1f} s" if self.first_token else "speed not measured"
        name = self.model if self.model != AUTO else "the GGUF of generation.model_path"
        return (
            f"{name} ({self.weights}), {self.threads} threads, {self.prompt_tokens}-token passages: "
            f"{expected} ({self.reason})"
        )


@dataclass(frozen=True)
class Tuned:
    settings: GenerationSettings
    choice: Choice


SpeedOf = Callable[[str, str, int], Speed]  # (model, weights, threads) -> Speed
Measure = Callable[[Path, int], Speed]  # (GGUF file, threads) -> Speed


def expected_first_token(speed: Speed, budget: int) -> float:
    """Seconds from the question to the model's first token at this passage budget."""
    return PIPELINE_SECONDS + budget * TOKENS_PER_BUDGET / speed.prompt + 1 / speed.generation


def pick(g: GenerationSettings, speed_of: SpeedOf, threads: int) -> Choice:
    """The model, weights and prompt budget for this machine, by a stated rule.

    1. For each model, the weights with the earlier expected first token (Q4_K_M as shipped or
       Q8_0), and the largest passage budget in ``BUDGETS`` whose first token fits
       ``g.first_token_target`` (else the smallest).
    2. The 1.5B where its first token fits the target.
    3. Else the 0.5B, if it is faster and either loses at most ``QUALITY_MARGIN`` answer score or
       the 1.5B's first token would be past ``FIRST_TOKEN_LIMIT``.
    4. Else the 1.5B: better answers, a longer wait (the cited quotes come first anyway).

    A value set in ``g`` (not "auto") is kept as it is; ``speed_of`` is called only for what
    the rule needs, so the 0.5B is not measured where the 1.5B fits.
    """
    # A GGUF of the user's (generation.model_path) is the only model there is to run.
    models = [g.model] if g.model != AUTO or g.model_path is not None else [BIG, SMALL]
    big = _plan(g, models[0], speed_of, threads)
    if len(models) == 1:
        return big
    if big.first_token is not None and big.first_token <= g.first_token_target:
        return _because(big, f"the 1.5B fits the {g.first_token_target:g} s target")
    small = _plan(g, models[1], speed_of, threads)
    if big.first_token is None or small.first_token is None or small.first_token >= big.first_token:
        return _because(big, "the 0.5B is no faster here")
    loss = ANSWER_SCORE[BIG] - ANSWER_SCORE[SMALL]
    if loss <= QUALITY_MARGIN:
        return _because(small, f"the 1.5B misses the target and the 0.5B loses only {loss:.2f} answer score")
    if big.first_token > FIRST_TOKEN_LIMIT:
        return _because(
            small, f"the 1.5B's first token would take {big.first_token:.1f} s, past the {FIRST_TOKEN_LIMIT:g} s limit"
        )
    return _because(big, f"the 1.5B misses the target but stays within {FIRST_TOKEN_LIMIT:g} s")


def _plan(g: GenerationSettings, model: str, speed_of: SpeedOf, threads: int) -> Choice:
    """The fastest weights for ``model`` and the passage budget that fits the target."""
    if g.weights != AUTO:
        options = [g.weights]
    elif model in (BIG, SMALL) and g.model_path is None:
        options = ["as-shipped", "q8_0"]
    else:
        options = ["as-shipped"]  # SmolLM2 or a GGUF of the user's: run as it is
    fixed_budget = None if g.prompt_tokens == AUTO else int(g.prompt_tokens)
    best: Choice | None = None
    for weights in options:
        speed = speed_of(model, weights, threads)
        budget = fixed_budget or next(
            (b for b in BUDGETS if expected_first_token(speed, b) <= g.first_token_target), BUDGETS[-1]
        )
        candidate = Choice(model, weights, threads, budget, expected_first_token(speed, budget), "set in config.yaml")
        if best is None or _rank(candidate) < _rank(best):
            best = candidate
    assert best is not None
    return best


def _rank(c: Choice) -> tuple[float, int]:
    # Earlier first token first; at equal time, more passage text.
    return (round(c.first_token or 0.0, 2), -c.prompt_tokens)


def _because(c: Choice, reason: str) -> Choice:
    return Choice(c.model, c.weights, c.threads, c.prompt_tokens, c.first_token, reason)


# ---------------------------------------------------------------- the machine


def physical_cores() -> int:
    """CPUs this process may run on, counting one per physical core (SMT siblings share the
    vector units that prompt processing saturates)."""
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in usable:
        try:
            cores.add(Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


@cache
def machine() -> dict[str, str]:
    """What decides the speed: the CPU model, its vector flags, and llama.cpp's build."""
    cpu, flags = "unknown CPU", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown CPU":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                wanted = ("avx", "amx", "fma", "f16c", "sse4", "vnni", "bf16")
                flags = " ".join(sorted(f for f in line.split(":", 1)[1].split() if f.startswith(wanted)))
    except OSError:
        pass
    return {"cpu": cpu, "flags": flags, "build": llama_build(), "cores": str(physical_cores())}


def llama_build() -> str:
    """The CPU features llama.cpp was built with, as it reports them, and its version."""
    try:
        import llama_cpp
    except ImportError:
        return "no llama.cpp"
    return f"llama-cpp-python {llama_cpp.__version__}: {llama_features()}"


def llama_features() -> str:
    """The CPU features of the llama.cpp that is imported (with PYTHONPATH, maybe not the venv's)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    return " ".join(part.split("=")[0].strip() for part in info.split("|") if "= 1" in part)


def machine_key() -> str:
    return hashlib.sha256(json.dumps(machine(), sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- measuring, once


class NotMeasuredError(LookupError):
    """A speed the rule needs has not been measured on this machine yet."""


# One lock for every SpeedCache of this process: each call site makes its own instance, and their
# read-modify-write of the same file must not interleave.
_cache_lock = threading.Lock()


class SpeedCache:
    """Measured speeds for this machine, in ``folder/speeds-<machine key>.json``."""

    def __init__(self, folder: Path) -> None:
        # expanduser: settings built in code, not loaded from a file, keep the default's "~" as is
        self.path = Path(folder).expanduser() / f"speeds-{machine_key()}.json"

    def read(self) -> dict[str, Speed]:
        try:
            raw = json.loads(self.path.read_text())
            return {k: Speed(**v) for k, v in raw.get("speeds", {}).items()}
        except (OSError, ValueError, TypeError):
            return {}

    def write(self, speeds: dict[str, Speed]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {**machine(), "speeds": {k: asdict(v) for k, v in sorted(speeds.items())}}
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.path)  # atomic: another process reads the old file or the new one

    def record_prompt(self, key: str, prompt: float, observed: int) -> None:
        """Replace the prompt speed recorded under ``key`` (if any) with one seen in real use."""
        with _cache_lock:
            known = self.read()
            if key in known:
                known[key] = Speed(round(prompt, 2), known[key].generation, observed)
                self.write(known)

    def speed_of(self, g: GenerationSettings, measure: Measure | None) -> SpeedOf:
        """A ``SpeedOf`` that reads the cache and measures (then records) only what is missing;
        with no ``measure``, what is missing raises :class:`NotMeasuredError`."""

        def speed(model: str, weights: str, threads: int) -> Speed:
            key = speed_key(g, model, weights, threads)
            with _cache_lock:
                known = self.read()
                if key not in known:
                    if measure is None:
                        raise NotMeasuredError(key)
                    path = model_file(g.model_copy(update={"model": model, "weights": weights}))
                    log.info("measuring %s on this machine once (%s)", key, machine()["cpu"])
                    known[key] = measure(path, threads)
                    self.write(known)
                return known[key]

        return speed


def speed_key(g: GenerationSettings, model: str, weights: str, threads: int) -> str:
    return f"{model}/{weights}/{threads}" if g.model_path is None else f"{g.model_path}/{threads}"


def measure_speed(path: Path, threads: int) -> Speed:
    """Prompt and generation tokens/s of the GGUF at ``path``: a few seconds, on a thread of its own
    (llama.cpp's AMX kernels want their thread's tile state to themselves, qa_bot.generation)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp-probe") as worker:
        return worker.submit(_measure, path, threads).result()


def _measure(path: Path, threads: int) -> Speed:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=512, n_threads=threads, n_batch=512, use_mmap=False, verbose=False)
    try:
        text = " ".join(["The minister said on Monday that talks with the union would resume next week."] * 12)
        tokens = llm.tokenize(text.encode())[:PROBE_PROMPT_TOKENS]
        llm.eval(tokens[:8])  # warm-up: the first evaluation pays for buffers and repacking
        reads = []
        for _ in range(PROBE_READS):
            llm.reset()
            began = time.perf_counter()
            llm.eval(tokens)
            reads.append(len(tokens) / (time.perf_counter() - began))
        prompt = min(reads)
        began = time.perf_counter()
        for _ in range(PROBE_NEW_TOKENS):
            llm.eval([llm.sample(temp=0.0)])
        generation = PROBE_NEW_TOKENS / (time.perf_counter() - began)
    finally:
        llm.close()
    return Speed(round(prompt, 2), round(generation, 2))


class ObservedReading:
    """The model's real prompt reads, fed back into the speed cache.

    The start-up measurement is a few seconds on an idle machine; real questions are read after
    the embedder has run, over longer prompts, and their speed is what the first token waits
    for. Every ``OBSERVE_EVERY`` reads of at least ``OBSERVE_MIN_TOKENS`` tokens, their speed
    replaces the cached prompt speed of the running model, so the next start picks by it (on the
    AVX2 build here the measurement said 66.6 tokens/s and the bot read at 45.0).
    """

    def __init__(self, g: GenerationSettings) -> None:
        self.g = g
        self.reads: list[tuple[int, float]] = []
        self.count = 0

    def observe(self, tokens: int, seconds: float) -> None:
        if tokens < OBSERVE_MIN_TOKENS or seconds <= 0 or AUTO in (self.g.model, self.g.weights, self.g.threads):
            return
        self.reads = [*self.reads[-(OBSERVE_EVERY - 1) :], (tokens, seconds)]
        self.count += 1
        if self.count % OBSERVE_EVERY == 0:
            # Tokens over seconds, as the wait for a first token adds them up; not a median of rates.
            speed = sum(t for t, _ in self.reads) / sum(s for _, s in self.reads)
            try:
                SpeedCache(self.g.tuning_cache).record_prompt(
                    speed_key(self.g, self.g.model, self.g.weights, int(self.g.threads)), speed, self.count
                )
            except OSError as exc:  # a read-only home: the next start measures again, no harm
                log.warning("cannot record the model's speed in %s: %s", self.g.tuning_cache, exc)


# ---------------------------------------------------------------- the entry point

_tuned: dict[str, Tuned] = {}
_tuned_lock = threading.Lock()


def tune(g: GenerationSettings, measure: Measure = measure_speed) -> Tuned:
    """``g`` with every "auto" replaced by this machine's choice (once per process and settings)."""
    key = g.model_dump_json()
    with _tuned_lock:
        if key not in _tuned:
            _tuned[key] = _tune(g, measure)
        return _tuned[key]


def describe(g: GenerationSettings, measure: bool = False) -> str:
    """One line on what runs here and the first token to expect, for ``qa-bot stats`` and ``serve``.

    Without ``measure`` nothing is loaded: a machine not measured yet is said to be so.
    """
    try:
        return (tune(g) if measure else _tune(g, None)).choice.summary()
    except NotMeasuredError:
        return "not measured on this machine yet (qa-bot stats --tune, qa-bot serve or the first question does it once)"


def _tune(g: GenerationSettings, measure: Measure | None) -> Tuned:
    threads = physical_cores() if g.threads == AUTO else int(g.threads)
    if g.backend != "llama_cpp":
        # A server's speed is its own: the defaults, nothing measured here.
        budget = BUDGETS[0] if g.prompt_tokens == AUTO else int(g.prompt_tokens)
        choice = Choice(g.openai_model, "server", threads, budget, None, "an OpenAI-compatible server")
        return Tuned(g.model_copy(update={"threads": threads, "prompt_tokens": budget}), choice)
    cache = SpeedCache(g.tuning_cache)
    if AUTO in (g.model, g.weights, g.prompt_tokens):
        choice = pick(g, cache.speed_of(g, measure), threads)
    else:
        # Nothing to decide: no start-up spent measuring; the expected time only if once measured.
        budget = int(g.prompt_tokens)
        known = cache.read().get(speed_key(g, g.model, g.weights, threads))
        first = expected_first_token(known, budget) if known else None
        choice = Choice(g.model, g.weights, threads, budget, first, "set in config.yaml")
    update = {
        "model": choice.model,
        "weights": choice.weights,
        "threads": choice.threads,
        "prompt_tokens": choice.prompt_tokens,
    }
    return Tuned(g.model_copy(update=update), choice)
