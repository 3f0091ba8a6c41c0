"""The model tuned to the machine: the picking rule (pure, with given speeds), the speed cache,
a real measurement of the small model, and config overrides winning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_bot import tuning
from qa_bot.generation import get_generator
from qa_bot.models import smollm2_file
from qa_bot.settings import GenerationSettings
from qa_bot.tuning import BIG, BUDGETS, SMALL, Speed, SpeedCache, expected_first_token, pick, tune

# Speeds as llm_speed.py measured them (tokens/s, prompt / generation), by machine class.
AMX = {  # Xeon with AMX, llama.cpp built with AMX: Q8_0 has the fast kernels
    (BIG, "as-shipped"): Speed(90.0, 10.0),
    (BIG, "q8_0"): Speed(140.0, 11.0),
    (SMALL, "as-shipped"): Speed(300.0, 30.0),
    (SMALL, "q8_0"): Speed(420.0, 32.0),
}
AVX2 = {  # EPYC with AVX2 only: the shipped Q4_K_M is faster than Q8_0
    (BIG, "as-shipped"): Speed(19.8, 9.7),
    (BIG, "q8_0"): Speed(14.5, 7.6),
    (SMALL, "as-shipped"): Speed(70.0, 25.0),
    (SMALL, "q8_0"): Speed(55.0, 20.0),
}


def speeds(table: dict[tuple[str, str], Speed], asked: list[tuple[str, str]] | None = None) -> tuning.SpeedOf:
    def speed_of(model: str, weights: str, threads: int) -> Speed:
        if asked is not None:
            asked.append((model, weights))
        return table[(model, weights)]

    return speed_of


def test_an_amx_machine_runs_the_big_model_on_q8_and_never_measures_the_small_one() -> None:
    asked: list[tuple[str, str]] = []
    choice = pick(GenerationSettings(), speeds(AMX, asked), threads=2)
    assert (choice.model, choice.weights, choice.prompt_tokens) == (BIG, "q8_0", 350)
    assert choice.first_token == pytest.approx(expected_first_token(AMX[(BIG, "q8_0")], 350))
    assert choice.first_token <= 3.0 and "fits" in choice.reason
    assert all(model == BIG for model, _ in asked)


def test_an_avx2_machine_runs_the_small_model_on_the_shipped_weights() -> None:
    choice = pick(GenerationSettings(), speeds(AVX2), threads=2)
    # The 1.5B's first token here: about 22 s on its faster (shipped) weights, past the 6 s limit.
    big = expected_first_token(AVX2[(BIG, "as-shipped")], BUDGETS[-1])
    assert big > tuning.FIRST_TOKEN_LIMIT
    assert (choice.model, choice.weights) == (SMALL, "as-shipped")
    assert choice.first_token is not None and choice.first_token < big
    assert "limit" in choice.reason


def test_the_budget_shrinks_only_as_far_as_the_target_needs() -> None:
    # A 1.5B that reads 115 tokens/s: 350 passage tokens miss 3 s, fewer fit.
    table = {**AMX, (BIG, "q8_0"): Speed(115.0, 11.0), (BIG, "as-shipped"): Speed(80.0, 10.0)}
    choice = pick(GenerationSettings(), speeds(table), threads=2)
    assert choice.model == BIG and BUDGETS[-1] <= choice.prompt_tokens < 350
    assert choice.first_token is not None and choice.first_token <= 3.0
    bigger = choice.prompt_tokens + 10
    assert expected_first_token(table[(BIG, "q8_0")], bigger) > 3.0


def test_between_target_and_limit_the_quality_margin_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    # The 1.5B at about 4.5 s: over the 3 s target, under the 6 s limit.
    table = {**AMX, (BIG, "as-shipped"): Speed(95.0, 10.0), (BIG, "q8_0"): Speed(90.0, 10.0)}
    assert 3.0 < expected_first_token(table[(BIG, "as-shipped")], BUDGETS[-1]) < tuning.FIRST_TOKEN_LIMIT
    assert pick(GenerationSettings(), speeds(table), threads=2).model == BIG  # the 0.5B loses too much
    monkeypatch.setitem(tuning.ANSWER_SCORE, SMALL, tuning.ANSWER_SCORE[BIG] - 0.01)
    assert pick(GenerationSettings(), speeds(table), threads=2).model == SMALL


def test_values_set_in_the_config_win() -> None:
    g = GenerationSettings(model=BIG, weights="q8_0", prompt_tokens=200, threads=1)
    choice = pick(g, speeds(AVX2), threads=1)
    assert (choice.model, choice.weights, choice.prompt_tokens, choice.threads) == (BIG, "q8_0", 200, 1)
    # Only the weights left to the machine: the faster here, with the model and budget as set.
    choice = pick(GenerationSettings(model=BIG, prompt_tokens=320), speeds(AVX2), threads=2)
    assert (choice.model, choice.weights, choice.prompt_tokens) == (BIG, "as-shipped", 320)


def test_the_small_model_is_measured_once_then_read_from_the_cache(tmp_path: Path) -> None:
    g = GenerationSettings(model="smollm2-135m", tuning_cache=tmp_path)
    measured: list[Path] = []

    def measure(path: Path, threads: int) -> Speed:
        measured.append(path)
        return tuning.measure_speed(path, threads)  # the real measurement: llama.cpp, this CPU

    first = tuning._tune(g, measure)
    assert measured == [smollm2_file()]
    speed = SpeedCache(tmp_path).read()[f"smollm2-135m/as-shipped/{first.settings.threads}"]
    assert speed.prompt > 50 and speed.generation > 5  # a 135M model on any x86-64 CPU of this decade
    cached = json.loads(next(tmp_path.glob("speeds-*.json")).read_text())
    assert cached["cpu"] == tuning.machine()["cpu"] and "llama-cpp-python" in cached["build"]
    again = tuning._tune(g, measure)
    assert measured == [smollm2_file()]  # not measured again
    assert again.settings == first.settings
    assert first.settings.weights == "as-shipped" and first.settings.threads == tuning.physical_cores()
    assert first.settings.prompt_tokens in BUDGETS and first.choice.first_token is not None


def test_a_tuned_generator_runs_what_was_picked_and_a_config_value_overrides_it(tmp_path: Path) -> None:
    auto = GenerationSettings(model="smollm2-135m", tuning_cache=tmp_path)
    tuned = tune(auto)
    generator = get_generator(auto)
    assert generator.settings == tuned.settings
    assert generator.llm.n_threads == tuned.settings.threads  # type: ignore[attr-defined]
    fixed = GenerationSettings(model="smollm2-135m", tuning_cache=tmp_path, threads=1, prompt_tokens=120)
    assert get_generator(fixed).settings.threads == 1
    assert get_generator(fixed).settings.prompt_tokens == 120
    assert get_generator(fixed).llm.n_threads == 1  # type: ignore[attr-defined]


def test_real_prompt_reads_replace_the_measured_speed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "OBSERVE_EVERY", 2)
    g = GenerationSettings(model="smollm2-135m", tuning_cache=tmp_path)
    generator = get_generator(g)
    key = f"smollm2-135m/as-shipped/{generator.settings.threads}"
    measured = SpeedCache(tmp_path).read()[key]
    assert measured.observed == 0
    for topic in ("the harbour festival", "the council budget"):
        text = f"A long report about {topic}. " + "The committee met again and agreed on the next steps. " * 12
        generator.judge([{"role": "user", "content": text + "Is this about sport? Yes or no."}])
    observed = SpeedCache(tmp_path).read()[key]
    assert observed.observed == 2 and observed.prompt > 0 and observed.prompt != measured.prompt
    assert observed.generation == measured.generation
    assert tuning._tune(g, None).choice.first_token == pytest.approx(
        expected_first_token(observed, tuning._tune(g, None).choice.prompt_tokens)
    )
