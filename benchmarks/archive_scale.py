"""Retrieval as the archive grows: latency, freshness, start-up and memory at 100k and 1M chunks.

Usage::

    .venv/bin/python -m benchmarks.archive_scale [--sizes 100000 1000000] [--engine new legacy]
        [--queries 200] [--skip-serve] [--json var/bench/archive-scale.json]

The archive is built from the real chunks of the three eval sets, as benchmarks.query_latency
builds its corpus (ingest them first with benchmarks.retrieval_recall), written through
``Store.upsert`` into ``var/bench/archive-<size>`` and kept for the next run. Each figure is the
whole ``Retriever.search`` (query embedding, Chroma, BM25, fusion, collapse) on real eval questions.

Engines: ``new`` is qa_bot.archive.lexical (tantivy, kept in place); ``legacy`` is the bm25s index
rebuilt from every chunk that qa_bot/retrieval.py used until 2026-12-02, kept for this comparison in
docs/experiments/2026-12-02-lexical-engines/legacy_retrieval.py. Measured, per engine and size:

* open: the first search of a process; for ``new``, also the build of the index that a machine's
  first open of the store makes;
* search p50 / p99 over ``--queries`` questions;
* the first search after a one-article ingest in this process, and after ``index_ttl`` with no change;
* freshness: from the end of a ``qa-bot ingest`` of one article in another process to a running
  retriever finding it;
* search p50 / p99 while another process ingests 1,000 articles into the same store;
* an idle background catch-up, and an ingest's lookup of one article (through the catalogue);
* with ``--quick``: open, p50 / p99, the catch-up and the lookup only;
* run with ``ATEN_CPU_CAPABILITY=avx2`` for torch's AVX2 kernels (the query embedding) on a CPU
  that has AVX-512;
* (new, unless --skip-serve) ``qa-bot ask`` from process start to answer, and ``qa-bot serve``'s
  resident memory after one question.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.query_latency import SETS, build, real_chunks
from qa_bot.archive import LexicalSync, open_store
from qa_bot.embeddings import get_embedder
from qa_bot.retrieval import Retriever
from qa_bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
LEGACY = ROOT / "docs" / "experiments" / "2026-12-02-lexical-engines" / "legacy_retrieval.py"
CLI = [sys.executable, "-m", "ui.cli"]


def settings_for(folder: Path) -> Settings:
    base = load_settings(ROOT / "config.yaml")
    return base.model_copy(
        update={
            "store": base.store.model_copy(update={"path": folder / "chroma", "collection": "news"}),
            "retrieval": base.retrieval.model_copy(
                update={
                    "lexical_path": folder / "lexical",
                    "refresh_seconds": float(os.environ.get("QA_BOT_BENCH_REFRESH", base.retrieval.refresh_seconds)),
                }
            ),
        }
    )


def prepare(size: int) -> Settings:
    """A fresh copy of the archive (and of its BM25 index, once one exists) for one run.

    Every run writes (its own articles), and Chroma's embedded store is single-process: the
    run's process deleting after another process wrote left the store unreadable ("Error
    finding id"). So each run works on a copy at a fixed path, and the original stays as built.
    """
    pristine = ROOT / "var" / "bench" / f"archive-{size}"
    ensure_archive(settings_for(pristine), size)
    run = pristine / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(pristine / "chroma", run / "chroma")
    if (pristine / "lexical").exists():
        shutil.copytree(pristine / "lexical", run / "lexical")
    return settings_for(run)


def config_file(settings: Settings, folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(
        json.dumps(
            {
                "store": {"path": str(settings.store.path), "collection": settings.store.collection},
                "retrieval": {"lexical_path": str(settings.retrieval.lexical_path)},
                "generation": {"cache_dir": str(ROOT / "var" / "models")},
            }
        )
    )
    return path


def ensure_archive(settings: Settings, size: int) -> None:
    store = open_store(settings)
    have = store.count()
    if have >= size:
        print(f"archive-{size}: {have} chunks already written", flush=True)
        catalogue(store, size)
        return
    c = settings.chunking
    tag = f"{c.max_tokens}-{c.overlap_tokens}-{int(c.title_in_embedding)}"
    began = time.perf_counter()
    build(store, size, real_chunks(tag), np.random.default_rng(0))
    print(f"archive-{size}: {store.count()} chunks written in {time.perf_counter() - began:.0f} s", flush=True)
    catalogue(store, size)


def catalogue(store: Any, size: int) -> None:
    """The store's article catalogue, built from its chunks the first time (as for a store from
    before the catalogue existed) and kept with the archive."""
    began = time.perf_counter()
    store.catalogue  # noqa: B018 - builds it if missing
    print(f"archive-{size}: article catalogue ready in {time.perf_counter() - began:.1f} s", flush=True)


def articles(folder: Path, n: int, tag: str) -> list[Path]:
    """``n`` real eval articles as text files with ids of their own (``tag``-i)."""
    docs = [json.loads(line) for name in SETS for line in (EVAL / name / "corpus.jsonl").read_text().splitlines()]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        doc = docs[i % len(docs)]
        path = folder / f"{tag}-{i:04d}.txt"
        path.write_text(f"{doc.get('title', '')} ({tag} {i})\n\n{doc['text']}\n\nReference {tag}{i}zq.\n")
        paths.append(path)
    return paths


def make_retriever(engine: str, settings: Settings) -> Any:
    embedder = get_embedder(settings.embedding)
    store = open_store(settings, embedder.dimension)
    if engine == "new":
        return Retriever(settings.retrieval, store, embedder)
    spec = importlib.util.spec_from_file_location("legacy_retrieval", LEGACY)
    assert spec and spec.loader
    legacy = importlib.util.module_from_spec(spec)
    sys.modules["legacy_retrieval"] = legacy  # dataclasses look their module up there
    spec.loader.exec_module(legacy)
    rs = settings.retrieval
    return legacy.Retriever(legacy_settings(rs), store, embedder)


def legacy_settings(rs: Any) -> Any:
    class S:  # the fields the legacy retriever read, with its 60 s index_ttl
        k, candidates, dense_weight, bm25_weight = rs.k, rs.candidates, rs.dense_weight, rs.bm25_weight
        context_weight, time_boost, index_ttl = rs.context_weight, rs.time_boost, 60.0

    return S()


def timed(fn: Any) -> float:
    began = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - began)


def percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def run(
    engine: str, size: int, questions: list[str], batch_size: int, skip_serve: bool, quick: bool = False
) -> dict[str, Any]:
    settings = prepare(size)
    out: dict[str, Any] = {"engine": engine, "size": size}
    run_id = f"{engine}{os.getpid()}"  # articles of their own each run, never found in the store already
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = config_file(settings, folder)
        retriever = make_retriever(engine, settings)
        kept = settings.store.path.parent.parent / "lexical"
        builds = engine == "new" and not kept.exists()
        out["open_ms"] = timed(lambda: retriever.search(questions[0]))
        if builds:  # this open built the index, as a machine's first open of the store does
            shutil.copytree(settings.retrieval.lexical_path, kept)  # kept for the next runs
            out["build_s"] = out["open_ms"] / 1000
        for q in questions[:5]:
            retriever.search(q)
        out["p50_ms"], out["p99_ms"] = percentiles([timed(lambda q=q: retriever.search(q)) for q in questions])
        head = f"[{engine} {size}]"
        print(f"{head} open {out['open_ms']:.0f} ms; p50 {out['p50_ms']:.1f} p99 {out['p99_ms']:.1f}", flush=True)
        if engine == "new":  # what a background catch-up costs when nothing changed (the server-mode wait)
            out["idle_catch_up_ms"] = statistics.median(timed(retriever.lexical().catch_up) for _ in range(5))
            out["stale_check_ms"] = statistics.median(timed(retriever.store.is_stale) for _ in range(5))
            print(f"{head} idle catch-up {out['idle_catch_up_ms']:.0f} ms, store check {out['stale_check_ms']:.0f} ms")
            # What an ingest asks the store of each article it is given: its chunks, by its id.
            docs = [m["doc_id"] for m in retriever.store.collection.get(limit=5, include=["metadatas"])["metadatas"]]
            out["article_lookup_ms"] = statistics.median(
                timed(lambda d=d: retriever.store.documents(doc_ids=[d])) for d in docs
            )
            print(f"{head} an ingest's lookup of one article {out['article_lookup_ms']:.1f} ms", flush=True)
        if quick:
            return out

        # One article ingested by this process, then the next question.
        from ingest import ingest

        one = articles(folder / "one", 1, f"inproc{run_id}")
        ingest([str(p) for p in one], settings)
        if engine == "legacy":
            retriever.invalidate()  # what the UI did after its own ingest
        out["after_ingest_ms"] = timed(lambda: retriever.search(questions[1]))
        # index_ttl passing with no change: the legacy index re-read everything after 60 s.
        if engine == "legacy":
            retriever._index_checked -= 61  # as if 61 s had passed
        else:
            time.sleep(5)  # several background catch-ups with nothing to do
        out["after_ttl_ms"] = timed(lambda: retriever.search(questions[2]))
        print(
            f"[{engine} {size}] after a one-article ingest {out['after_ingest_ms']:.0f} ms; "
            f"after index_ttl {out['after_ttl_ms']:.0f} ms",
            flush=True,
        )

        # Freshness: another process ingests one article; how soon does this one find it?
        other = articles(folder / "other", 1, f"otherproc{run_id}")
        subprocess.run([*CLI, "ingest", str(other[0]), "--config", str(config), "--quiet"], check=True, env=_env())
        ingested = time.perf_counter()
        marker = f"Reference otherproc{run_id}0zq"
        while time.perf_counter() - ingested < 600:
            if any(marker in p.text for p in retriever.search(marker, k=4)):
                break
            time.sleep(0.1)
        out["fresh_s"] = time.perf_counter() - ingested
        print(f"{head} found an article ingested by another process {out['fresh_s']:.1f} s after", flush=True)

        # Questions while another process ingests 1,000 articles.
        batch = articles(folder / "batch", batch_size, f"batch{run_id}")
        proc = subprocess.Popen([*CLI, "ingest", str(folder / "batch"), "--config", str(config), "--quiet"], env=_env())
        times: list[float] = []
        began = time.perf_counter()
        i = 0
        while proc.poll() is None:
            times.append(timed(lambda i=i: retriever.search(questions[i % len(questions)])))
            i += 1
        out["ingest_1000_s"] = time.perf_counter() - began
        out["during_ingest_p50_ms"], out["during_ingest_p99_ms"] = percentiles(times) if times else (0, 0)
        out["during_ingest_questions"] = len(times)
        print(
            f"[{engine} {size}] during a {len(batch)}-article ingest ({out['ingest_1000_s']:.0f} s): "
            f"{len(times)} searches, p50 {out['during_ingest_p50_ms']:.0f} p99 {out['during_ingest_p99_ms']:.0f} ms",
            flush=True,
        )
        store = retriever.store
        if engine == "new":
            retriever.close()
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if engine == "new" and "build_s" not in out:  # the one wait: a machine's first open builds it
            fresh = settings.retrieval.model_copy(update={"lexical_path": folder / "fresh-lexical"})
            began = time.perf_counter()
            LexicalSync(store, fresh).catch_up()
            out["build_s"] = time.perf_counter() - began
            print(f"{head} a new machine's BM25 index built in {out['build_s']:.0f} s", flush=True)
        if engine == "new" and not skip_serve:
            out.update(start_figures(config, questions[0]))
    return out


def start_figures(config: Path, question: str) -> dict[str, float]:
    """``qa-bot ask`` start to answer; ``qa-bot serve`` memory after one question."""
    began = time.perf_counter()
    ask = [*CLI, "ask", question, "--config", str(config), "--json"]
    subprocess.run(ask, check=True, env=_env(), capture_output=True)
    ask_s = time.perf_counter() - began
    from benchmarks.served import serve_config

    with serve_config(config) as (url, pid):
        from gradio_client import Client

        Client(url, verbose=False).predict(question, [], [], "", "", api_name="/ask")
        status = Path(f"/proc/{pid}/status").read_text()
        kb = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith("Vm")}
    rss, peak = kb["VmRSS"] / 1024, kb["VmHWM"] / 1024
    print(f"ask: {ask_s:.1f} s start to answer; serve: {rss:.0f} MB resident, peak {peak:.0f} MB", flush=True)
    return {"ask_start_to_answer_s": ask_s, "serve_rss_mb": kb["VmRSS"] / 1024, "serve_peak_mb": kb["VmHWM"] / 1024}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engine", nargs="+", default=["new", "legacy"], choices=["new", "legacy"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000, help="articles in the concurrent ingest")
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--build-only", action="store_true", help="write the archives, measure nothing")
    parser.add_argument("--quick", action="store_true", help="search latency only")
    parser.add_argument("--refresh-seconds", type=float, help="retrieval.refresh_seconds for the run")
    args = parser.parse_args()
    if args.refresh_seconds:
        os.environ["QA_BOT_BENCH_REFRESH"] = str(args.refresh_seconds)
    if args.build_only:
        for size in args.sizes:
            ensure_archive(settings_for(ROOT / "var" / "bench" / f"archive-{size}"), size)
        return
    questions = [
        json.loads(line)["question"]
        for name in SETS
        for line in (EVAL / name / "questions.jsonl").read_text().splitlines()
    ][: args.queries]
    results = []
    for size in args.sizes:
        for engine in args.engine:
            # Each engine in a process of its own, so its memory is its own.
            if len(args.engine) > 1:
                cmd = [sys.executable, "-m", "benchmarks.archive_scale", "--sizes", str(size), "--engine", engine]
                cmd += ["--queries", str(args.queries), "--batch", str(args.batch)]
                cmd += ["--skip-serve"] if args.skip_serve else []
                cmd += ["--quick"] if args.quick else []
                cmd += ["--refresh-seconds", str(args.refresh_seconds)] if args.refresh_seconds else []
                with tempfile.NamedTemporaryFile(suffix=".json") as f:
                    subprocess.run([*cmd, "--json", f.name], check=True, env=_env())
                    results += json.loads(Path(f.name).read_text())
            else:
                results.append(run(engine, size, questions, args.batch, args.skip_serve, args.quick))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
