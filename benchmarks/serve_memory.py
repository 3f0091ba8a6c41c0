"""Peak memory of the served app with the default model after 20 questions.

Usage::

    .venv/bin/python -m benchmarks.serve_memory [--questions 20]

Starts ``qa-bot serve`` (default config, so the default Qwen model) on a free loopback port
over a temporary store holding the sample article and the 60 test articles, asks 20
questions through its HTTP API with gradio_client, then reads the server's peak resident
memory (VmHWM) from /proc.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.served import served_app

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    "Why did Putin praise Trump?",
    "What did Putin say about Ukraine?",
    "When could Putin and Trump talk?",
    "What does the Kremlin think of the United States?",
    "Where did Putin speak?",
    "What did Putin say about Trump's final term?",
    "Who is Dmitry Peskov?",
    "What did Amri pledge?",
    "Where was Anis Amri killed?",
    "What happened at the Berlin Christmas market?",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()
    from gradio_client import Client

    with served_app() as (url, pid):
        client = Client(url, verbose=False)
        began = time.perf_counter()
        for i in range(args.questions):
            client.predict(QUESTIONS[i % len(QUESTIONS)], [], [], "", "", api_name="/ask")
        seconds = time.perf_counter() - began
        status = Path(f"/proc/{pid}/status").read_text()
        peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        rss = next(line for line in status.splitlines() if line.startswith("VmRSS"))
        print(
            f"{args.questions} questions in {seconds:.0f} s; server {peak.split(':')[1].strip()} peak, "
            f"{rss.split(':')[1].strip()} now"
        )


if __name__ == "__main__":
    main()
