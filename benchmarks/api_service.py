"""What the HTTP API costs: latency against Python, 8 streaming clients during an ingest, memory.

Usage::

    .venv/bin/python -m benchmarks.api_service [--questions 20] [--clients 8] [--json OUT]

Over a temporary store of the sample article and the 60 test articles, with the default config
(so the default model):

1. **Python**: each question through ``Service.stream`` in this process: seconds to the first
   model token and to the checked answer.
2. **HTTP**: the same questions through ``qa-bot serve``'s ``/v1/chat/completions`` with the
   official ``openai`` client, streaming: seconds to the first content token and to the last
   chunk. The API's cost is the difference of the medians.
3. **Load**: ``--clients`` clients stream a question each at once while ``POST /api/ingest``
   uploads 60 new articles as files (:func:`new_articles`): each client's status, first token
   and total, and the ingest job's state and time.
4. **Memory**: the server's peak resident memory (VmHWM) after the same questions, with the
   API and MCP mounted and without (``ui.server.build_server(api=False)``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.serve_memory import QUESTIONS
from benchmarks.served import serve_command

ROOT = Path(__file__).resolve().parent.parent
RUNNER = """
import sys, uvicorn
from qa_bot.settings import load_settings
from ui.server import build_server
settings = load_settings(sys.argv[1])
root = build_server(settings, "127.0.0.1", None, None, api=sys.argv[3] == "1")
root.state.service.bot.generator, root.state.service.bot.embedder
uvicorn.run(root, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", timeout_graceful_shutdown=5)
"""


def server(config: Path, api: bool = True) -> AbstractContextManager[tuple[str, int]]:
    """The whole server (page, and API and MCP when ``api``) on a free loopback port: (URL, pid)."""
    return serve_command(lambda port: ["-c", RUNNER, str(config), str(port), "1" if api else "0"])


def python_times(config: Path, questions: list[str]) -> list[dict[str, float]]:
    from qa_bot import Answer
    from qa_bot.settings import load_settings
    from ui.service import Service

    service = Service(load_settings(config))
    service.ask(questions[0])  # models loaded and warm, as in the server
    out = []
    for q in questions:
        began, first = time.perf_counter(), None
        for part in service.stream(q):
            if isinstance(part, str) and first is None:
                first = time.perf_counter() - began
            elif isinstance(part, Answer):
                out.append({"first": first if first is not None else float("nan"), "last": time.perf_counter() - began})
    return out


def http_stream(url: str, question: str) -> dict[str, Any]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}v1", api_key="local", max_retries=0, timeout=900)
    began, first = time.perf_counter(), None
    try:
        stream = client.chat.completions.create(
            model="qa-bot", stream=True, messages=[{"role": "user", "content": question}]
        )
        for chunk in stream:
            text = chunk.choices[0].delta.content if chunk.choices else None
            extra = chunk.model_extra or {}
            # The first model token: a content delta before the last chunk (which carries qa_bot).
            if text and first is None and "qa_bot" not in extra:
                first = time.perf_counter() - began
        return {"status": "ok", "first": first if first is not None else float("nan"),
                "last": time.perf_counter() - began}  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a client's failure is a result here
        return {"status": f"error: {exc}", "first": float("nan"), "last": time.perf_counter() - began}


def median(values: list[float]) -> float:
    values = [v for v in values if v == v]  # NaN: no model token (a refusal before the model)
    return round(statistics.median(values), 3) if values else float("nan")


def peak_memory(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) // 1024


def load(url: str, clients: int) -> dict[str, Any]:
    stories = new_articles(60)
    files = [("files", (f"new-{i}.txt", f"{s['title']}\n{s['text']}".encode(), "text/plain"))
             for i, s in enumerate(stories)]  # fmt: skip
    results: list[dict[str, Any]] = [{} for _ in range(clients)]

    def client(i: int) -> None:
        results[i] = http_stream(url, QUESTIONS[i % len(QUESTIONS)])

    began = time.perf_counter()
    job = httpx.post(f"{url}api/ingest", files=files, timeout=300).json()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    while job["state"] in ("queued", "running"):
        time.sleep(0.5)
        job = httpx.get(f"{url}api/jobs/{job['id']}").json()
    ingest_seconds = time.perf_counter() - began
    for t in threads:
        t.join()
    return {
        "clients": results,
        "answered": sum(r["status"] == "ok" for r in results),
        "first_p50": median([r["first"] for r in results]),
        "last_max": round(max(r["last"] for r in results), 2),
        "ingest": {"state": job["state"], "seconds": round(ingest_seconds, 1),
                   "report": {k: len(v) if isinstance(v, list) else v for k, v in (job["report"] or {}).items()}},
    }  # fmt: skip


def new_articles(n: int) -> list[dict[str, str]]:
    """``n`` articles not in the store, so the ingest embeds and writes while the clients ask: the
    first of ../shared/eval/realtimeqa-2024 where it is beside the checkout, else the test articles
    again (then they are grouped as copies and little is written)."""
    corpus = ROOT.parent / "shared" / "eval" / "realtimeqa-2024" / "corpus.jsonl"
    source = corpus if corpus.exists() else ROOT / "tests" / "data" / "ares-60.jsonl"
    with source.open(encoding="utf-8") as lines:
        return [json.loads(line) for line, _ in zip(lines, range(n), strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--parts", default="latency,load,memory", help="which parts to run (comma-separated)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.questions)]
    out: dict[str, Any] = {"cpu": cpu()}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(json.dumps({
            "store": {"path": str(Path(tmp) / "store")},
            "generation": {"cache_dir": str(ROOT / "var" / "models")},
            "api": {"conversations_path": str(Path(tmp) / "conversations.sqlite3")},
        }))  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        folders = [str(ROOT / "data" / "articles"), str(ROOT / "tests" / "data")]
        cli = [sys.executable, "-m", "ui.cli", "ingest", *folders, "--config", str(config), "--quiet"]
        subprocess.run(cli, check=True, env=env)
        if "latency" in parts:
            py = python_times(config, questions)
            out["python"] = {"first_p50": median([t["first"] for t in py]), "last_p50": median([t["last"] for t in py])}
            print("python", out["python"], flush=True)
        with server(config, api=True) as (url, pid):
            http_stream(url, questions[0])  # warm, as the Python side was
            web = [http_stream(url, q) for q in questions]
            out["http"] = {"first_p50": median([t["first"] for t in web]), "last_p50": median([t["last"] for t in web]),
                           "errors": sum(t["status"] != "ok" for t in web)}  # fmt: skip
            print("http", out["http"], flush=True)
            out["memory_mb"] = {"with_api": peak_memory(pid)}
            if "load" in parts:
                out["load"] = load(url, args.clients)
                print("load", {k: v for k, v in out["load"].items() if k != "clients"}, flush=True)
        if "memory" in parts:
            with server(config, api=False) as (url, pid):
                from gradio_client import Client

                page = Client(url, verbose=False)
                for q in questions:
                    page.predict(q, [], [], "", "", api_name="/ask")
                out["memory_mb"]["without_api"] = peak_memory(pid)
                page.close()
    if "python" in out:
        out["api_adds_ms"] = {
            "first": round((out["http"]["first_p50"] - out["python"]["first_p50"]) * 1000),
            "last": round((out["http"]["last_p50"] - out["python"]["last_p50"]) * 1000),
        }
    print(json.dumps({k: v for k, v in out.items() if k != "load"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    return next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))


if __name__ == "__main__":
    main()
