"""Prompt processing and generation speed of the configured llama.cpp model on this machine.

Usage::

    .venv/bin/python -m benchmarks.llm_speed [--runs 3] [--prompt-chars 1800] [--weights as-shipped]

Each run clears the KV cache, evaluates the opening of the sample article as one prompt
(timed: prompt tokens/s), then generates up to 40 tokens from it (timed: generated tokens/s).
The figures are medians over the runs; the installed build's CPU features are printed with
them, since they decide the speed (see scripts/llama-cmake-args.sh).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from qa_bot.generation import LlamaCppGenerator, get_generator
from qa_bot.settings import WEIGHTS, Settings, load_settings
from qa_bot.tuning import llama_features

ROOT = Path(__file__).resolve().parent.parent


def bench_settings(weights: str | None) -> Settings:
    """The repository's config.yaml, with generation.weights replaced for an A/B run."""
    settings = load_settings(ROOT / "config.yaml")
    if weights is None:
        return settings
    generation = settings.generation.model_copy(update={"weights": weights})
    return settings.model_copy(update={"generation": generation})


def build_features() -> str:
    """The CPU features the installed llama.cpp was built with (not those the script would pick
    now: with PYTHONPATH, another wheel may be the one running)."""
    return llama_features()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompt-chars", type=int, default=1800)
    parser.add_argument("--weights", choices=WEIGHTS, help="override generation.weights")
    args = parser.parse_args()
    settings = bench_settings(args.weights)
    generator = get_generator(settings.generation)
    if not isinstance(generator, LlamaCppGenerator):
        raise SystemExit("llm_speed measures llama.cpp: generation.backend must be llama_cpp")
    llm = generator.llm
    sample = next((ROOT / "data" / "articles").glob("*.txt")).read_text()[: args.prompt_chars]
    prompt = llm.tokenize(sample.encode("utf-8"))
    prompt_speed, gen_speed = [], []
    for _ in range(args.runs):
        llm.reset()
        began = time.perf_counter()
        llm.eval(prompt)
        prompt_speed.append(len(prompt) / (time.perf_counter() - began))
        began, n = time.perf_counter(), 0
        for token in llm.generate(prompt, temp=0.0):  # the prompt is cached: only new tokens run
            n += 1
            if n == 40 or token == llm.token_eos():
                break
        gen_speed.append(n / (time.perf_counter() - began))
    print(f"model: {Path(llm.model_path).name}, threads {generator.settings.threads}")
    print(f"llama.cpp build: {build_features()}")
    print(f"prompt: {len(prompt)} tokens, {statistics.median(prompt_speed):.1f} tokens/s (median of {args.runs})")
    print(f"generation: {statistics.median(gen_speed):.1f} tokens/s (median of {args.runs}, up to 40 tokens)")


if __name__ == "__main__":
    main()
