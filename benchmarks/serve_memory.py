"""Peak memory of the served app with the default model after 20 questions.

Usage::

    .venv/bin/python benchmarks/serve_memory.py [--questions 20]

Starts ``qa-bot serve`` (default config, so the default Qwen model) on a free loopback port
over a temporary store holding the sample article and the 60 test articles, asks 20
questions through its HTTP API with gradio_client, then reads the server's peak resident
memory (VmHWM) from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            json.dumps(
                {"store": {"path": str(Path(tmp) / "store")}, "generation": {"cache_dir": str(ROOT / "var" / "models")}}
            )
        )
        qa_bot = [sys.executable, "-m", "ui.cli"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [
                *qa_bot,
                "ingest",
                str(ROOT / "data" / "articles"),
                str(ROOT / "tests" / "data"),
                "--config",
                str(config),
                "--quiet",
            ],
            check=True,
            env=env,
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [*qa_bot, "serve", "--config", str(config), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(240):
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            client = Client(url, verbose=False)
            began = time.perf_counter()
            for i in range(args.questions):
                client.predict(QUESTIONS[i % len(QUESTIONS)], [], [], "", "", api_name="/respond")
            seconds = time.perf_counter() - began
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            rss = next(line for line in status.splitlines() if line.startswith("VmRSS"))
            print(
                f"{args.questions} questions in {seconds:.0f} s; server {peak.split(':')[1].strip()} peak, "
                f"{rss.split(':')[1].strip()} now"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
