"""A small evaluation in CI: floors on retrieval recall and on refusing unanswerable questions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import answer_score, normalise
from tests.conftest import FAST_MODEL, ROOT

SQUAD2 = ROOT.parent / "shared" / "eval" / "squad2"


def test_answer_scoring() -> None:
    assert normalise("The Eiffel Tower!") == "eiffel tower"
    assert answer_score("It was built by the Eiffel company in 1889 [1].", ["1889"], short=True) == 1.0
    assert answer_score("It opened in 1890 [1].", ["1889", "in 1889"], short=True) == 0.0
    assert answer_score("Seasonality uses averages [1].", ["Seasonality uses calendar averages"], short=False) == 0.75


@pytest.mark.skipif(not SQUAD2.is_dir(), reason="../shared/eval is not beside the checkout")
def test_small_squad2_eval_keeps_its_floors(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(FAST_MODEL))
    out = tmp_path / "eval.json"
    run = _eval([str(SQUAD2), "--limit", "10", "--json", str(out)], config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "recall@4" in run.stdout and "refused_unanswerable" in run.stdout
    result = json.loads(out.read_text())
    figures = result["qa-bot"]
    assert figures["questions"] == 10 and figures["unanswerable"] >= 3
    assert figures["recall@4"] >= 0.9  # measured 1.000 on this sample
    assert figures["refused_unanswerable"] >= 0.2  # measured 0.4 with SmolLM2-135M
    assert figures["refused_answerable"] <= 0.6  # measured 0.4: SmolLM2 is weak, Qwen is measured in docs/benchmarks.md
    assert len(result["per_question"]["qa-bot"]) == 10
    # The run records the settings it ran with (rethreshold.py reads the threshold back).
    assert result["settings"]["answer"]["answerable_below"] == FAST_MODEL["answer"]["answerable_below"]
    assert result["settings"]["generation"]["model"] == "smollm2-135m"
    assert result["settings"]["generation"]["passage_margin"] == 0.2  # recorded: it moves the figures
    assert all(1 <= len(r["retrieved"]) <= 10 for r in result["per_question"]["qa-bot"])


def _eval(args: list[str], config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", "eval", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.skipif(not SQUAD2.is_dir(), reason="../shared/eval is not beside the checkout")
def test_langchain_baseline_through_the_same_metrics(tmp_path: Path) -> None:
    """The tutorial pipeline (1000/200 splitter, Chroma.from_documents, similarity_search k=4), alone."""
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(FAST_MODEL))
    out = tmp_path / "base.json"
    run = _eval([str(SQUAD2), "--limit", "4", "--baseline", "langchain", "--baseline-only", "--json", str(out)], config)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert "qa-bot" not in result and set(result["per_question"]) == {"langchain"}
    figures = result["langchain"]
    assert figures["questions"] == 4 and figures["ingest_seconds"] > 0
    assert figures["recall@4"] >= 0.5  # the baseline's recall@4 on all of squad2 is 0.905
    rows = result["per_question"]["langchain"]
    assert all(r["timings"]["answer"] >= r["timings"]["first_token"] > 0 for r in rows)
    assert all(len(r["retrieved"]) == 10 for r in rows)
    assert "langchain" in run.stdout.splitlines()[2]  # the table's header names the system it ran


def test_baseline_only_without_a_baseline_is_a_usage_error(tmp_path: Path) -> None:
    run = _eval([str(tmp_path), "--baseline-only"], ROOT / "config.yaml")
    assert (
        run.returncode == 2
        and "--baseline-only needs --baseline langchain" in run.stderr
        and "Traceback" not in run.stderr
    )
