"""Where an answer's time goes, in one process as `qa-bot serve` runs it (embedder and model together).

Usage::

    .venv/bin/python -m benchmarks.answer_latency [--rounds 2] [--weights as-shipped]

Ingests the sample article into a temporary store, asks one warm-up question, then asks the
same six questions ``--rounds`` times and prints the medians of each step's time from
``Answer.timings``: the answerability check (which processes the whole prompt), the first
token, the whole answer, and the writing (answer minus first token). To compare two builds
of llama-cpp-python, install the other wheel with ``pip install --target DIR`` and run this
script with ``PYTHONPATH=DIR`` in alternation with a plain run; the build's CPU features are
printed with the figures. ``--weights`` compares the model's weights the same way.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.llm_speed import bench_settings, build_features
from ingest.pipeline import ingest
from qa_bot import QABot
from qa_bot.settings import WEIGHTS

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    "Why did Putin praise Trump?",
    "What did Putin say about Ukraine?",
    "Where did Putin speak?",
    "What did Putin say about the assassination attempt?",
    "Who did Putin congratulate?",
    "What did Putin say about relations with the United States?",
]
STEPS = ("check", "first_token", "answer", "writing")


def read_speed(bot: QABot) -> list[tuple[int, float]]:
    """Record (tokens, seconds) of every prompt read (an evaluation of over 8 tokens) from now on."""
    llm = bot.generator.llm  # type: ignore[attr-defined]
    reads: list[tuple[int, float]] = []
    real_eval = llm.eval

    def timed(tokens: list[int]) -> None:
        began = time.perf_counter()
        real_eval(tokens)
        if len(tokens) > 8:
            reads.append((len(tokens), time.perf_counter() - began))

    llm.eval = timed
    return reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--weights", choices=WEIGHTS, help="override generation.weights")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(args.weights)
        store = settings.store.model_copy(update={"path": Path(tmp) / "store"})
        settings = settings.model_copy(update={"store": store})
        ingest(str(ROOT / "data" / "articles"), settings)
        bot = QABot(settings)
        bot.ask("What is the article about?")  # loads the model; the system prompt is cached after
        reading = read_speed(bot)
        seen: dict[str, list[float]] = {step: [] for step in STEPS}
        for _ in range(args.rounds):
            for question in QUESTIONS:
                timings = dict(bot.ask(question).timings)
                if "answer" in timings:
                    timings["writing"] = timings["answer"] - timings["first_token"]
                for step in STEPS:
                    if step in timings:
                        seen[step].append(timings[step])
    print(f"llama.cpp build: {build_features()}")
    print(f"model: {bot.generator.name}, {bot.generator.settings.threads} threads")
    tokens, seconds = sum(n for n, _ in reading), sum(t for _, t in reading)
    # Compare with llm_speed.py's prompt tokens/s: a gap is other work on the CPU while the model reads.
    print(f"prompt reading in the bot: {tokens / seconds:.1f} tokens/s ({tokens} tokens in {len(reading)} reads)")
    for step in STEPS:
        if seen[step]:
            print(f"{step:12s} p50 {statistics.median(seen[step]):5.2f} s  ({len(seen[step])} answers)")


if __name__ == "__main__":
    main()
