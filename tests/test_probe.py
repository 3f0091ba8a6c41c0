"""The answerability probe: read from llama.cpp's real hidden state, and what the bot does with it.

SmolLM2 has no shipped probe, so these tests give it hand-made ones (a probe is a file of
numbers; the reading path, the tap and the decisions are the real ones).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa_bot import REFUSAL, EarlyAnswer, QABot
from qa_bot import generation as generation_module
from qa_bot.probe import PROBES, Probe, shipped_probe
from qa_bot.prompts import ANSWERABLE_CHECK, with_line
from tests.conftest import FAST_MODEL, make_settings
from tests.test_answering import store_path  # noqa: F401 - the module's ingested store fixture

SMOLLM2_WIDTH = 576
QUESTION = "Why did Putin praise Trump?"
ELSEWHERE = "Who won the 2022 World Cup?"  # the store's evidence for it is below refuse_below


def probe_file(tmp_path: Path, intercept: float, coef: np.ndarray | None = None) -> Path:
    path = tmp_path / f"probe-{intercept}.npz"
    coef = np.zeros(SMOLLM2_WIDTH) if coef is None else coef
    Probe(20, np.zeros(SMOLLM2_WIDTH), np.ones(SMOLLM2_WIDTH), coef, intercept).save(path)
    return path


def bot_with_probe(store: Path, probe: Path, monkeypatch: pytest.MonkeyPatch, **answer: float) -> QABot:
    monkeypatch.setattr(generation_module, "shipped_probe", lambda model, weights: probe)
    # A generator is built with its probe: this test's own, in a cache of its own, so that
    # no other test is handed a SmolLM2 with a probe.
    monkeypatch.setattr(generation_module, "_cache", {})
    settings = make_settings(store, generation=FAST_MODEL["generation"], answer={"answerable_below": 0.01, **answer})
    return QABot(settings)


def test_the_shipped_probe_fits_the_default_model() -> None:
    path = shipped_probe("qwen2.5-coder-1.5b", "q8_0")
    assert path is not None and path.parent == PROBES
    probe = Probe.load(path)
    assert probe.layer == 20 and probe.coef.shape == probe.mean.shape == probe.scale.shape == (1536,)
    assert np.isfinite(probe.coef).all() and (probe.scale > 0).all()
    assert shipped_probe("smollm2-135m", "q8_0") is None  # any other model reads P(yes) alone
    assert shipped_probe("qwen2.5-coder-0.5b", "as-shipped") is None
    # The shipped Q4_K_M weights' states are read by the same probe (docs/experiments).
    assert shipped_probe("qwen2.5-coder-1.5b", "as-shipped") == path


def test_the_probe_reads_llama_cpps_hidden_state(
    store_path: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    direction = np.full(SMOLLM2_WIDTH, 1e-3)  # small: the reading stays off the sigmoid's flat ends
    bot = bot_with_probe(store_path, probe_file(tmp_path, 0.0, direction), monkeypatch)
    vector = bot.embed_question(QUESTION)
    evidence = bot.weigh_evidence(QUESTION, vector, bot.retrieve(QUESTION, vector=vector))
    prompt = bot.build_prompt(QUESTION, vector, evidence, evidence.passages)
    first = bot.generator.judge(with_line(prompt, ANSWERABLE_CHECK))
    again = bot.generator.judge(with_line(prompt, ANSWERABLE_CHECK))
    other = bot.generator.judge(with_line(prompt, "\n\nIs this about sport? Yes or no."))
    assert first.probe is not None and 0.0 < first.probe < 1.0
    assert again.probe == pytest.approx(first.probe, abs=0.02)  # the same state, read again
    assert other.probe != pytest.approx(first.probe, abs=1e-5)  # another prompt, another state
    # The tap only watches: P(yes) is what a generator without it reads.
    monkeypatch.setattr(generation_module, "shipped_probe", lambda model, weights: None)
    plain = generation_module.LlamaCppGenerator(bot.settings.generation)
    assert plain.probe is None
    assert plain.judge(with_line(prompt, ANSWERABLE_CHECK)).yes == pytest.approx(first.yes, abs=0.02)


def test_a_low_probe_reading_refuses_before_the_model_writes(
    store_path: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot = bot_with_probe(store_path, probe_file(tmp_path, -50.0), monkeypatch)
    parts = list(bot.stream(QUESTION))
    # The quoted early answer, then the refusal: no text was generated.
    assert len(parts) == 2 and isinstance(parts[0], EarlyAnswer)
    assert parts[1].refused and parts[1].text == REFUSAL
    assert parts[1].scores["probe"] < 0.01 and "answerable" in parts[1].scores


def test_a_sure_probe_overrides_weak_evidence_and_its_absence_does_not(
    store_path: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sure = bot_with_probe(store_path, probe_file(tmp_path, 50.0), monkeypatch)
    answer = sure.ask(ELSEWHERE)
    assert answer.scores["evidence"] < sure.settings.answer.refuse_below
    assert answer.scores["probe"] > 0.99 and "check" in answer.timings  # the model was asked
    assert not answer.refused and answer.citations  # a model refusal gives way to an extractive answer

    unsure = bot_with_probe(store_path, probe_file(tmp_path, 50.0), monkeypatch, probe_overrides=1.0)
    answer = unsure.ask(ELSEWHERE)
    assert answer.refused and answer.text == REFUSAL


def test_without_llama_cpps_ggml_bindings_the_check_falls_back_to_p_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import llama_cpp._ggml

    monkeypatch.setattr(generation_module, "shipped_probe", lambda model, weights: probe_file(tmp_path, 0.0))
    monkeypatch.delattr(llama_cpp._ggml, "libggml")  # as in a llama-cpp-python without them
    settings = make_settings(tmp_path / "store", generation=FAST_MODEL["generation"])
    with caplog.at_level("WARNING", logger="qa_bot"):
        generator = generation_module.LlamaCppGenerator(settings.generation)
    assert generator.probe is None and "answerability probe is off" in caplog.text
    judgement = generator.judge([{"role": "user", "content": "Is Paris in France? Reply yes or no."}])
    assert judgement.probe is None and judgement.yes is not None
