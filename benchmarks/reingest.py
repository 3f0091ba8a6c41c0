"""What an ingest costs when little or nothing is new: an unchanged re-ingest against the first
ingest, and a one-article ingest as the archive grows.

Usage::

    .venv/bin/python -m benchmarks.reingest [--articles 200] [--sizes 1000 100000] [--profile]
        [--keep var/bench/reingest] [--json var/bench/reingest.json]

Prints, each on a fresh temporary store:

* ``ratio``: ``ingest()`` of ``--articles`` ares-news articles (one text file each, the embedder
  loaded beforehand, so the first ingest is not charged for it), then the same call unchanged,
  three times: seconds and the median's share of the first. With ``--profile``, the functions
  that take the unchanged run's time (cProfile, cumulative).
* ``scale``: for each size, an archive of that many chunks (real article texts written through
  ``Archive.write`` with random unit vectors: what is measured here is the archive's work, not the
  encoder's), then five one-article ingests of new articles in this process (as ``watch`` and
  ``serve`` run them) and one ``qa-bot ingest`` of one article from a fresh process: seconds
  (with ``--profile``, its cProfile). ``--keep`` builds the archives in a folder and reuses them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ingest import ingest
from qa_bot.archive import Archive, chunk_id
from qa_bot.embeddings import get_embedder
from qa_bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "eval" / "ares-news" / "corpus.jsonl"


def settings_for(folder: Path) -> Settings:
    base = load_settings(ROOT / "config.yaml")
    return base.model_copy(
        update={
            "store": base.store.model_copy(update={"path": folder / "chroma", "collection": "news"}),
            "retrieval": base.retrieval.model_copy(update={"lexical_path": folder / "lexical"}),
        }
    )


def write_articles(folder: Path, n: int, tag: str, skip: int = 0) -> list[Path]:
    """``n`` ares-news articles as text files (title line, blank line, body), ids of their own."""
    docs = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(skip, skip + n):
        doc = docs[i % len(docs)]
        path = folder / f"{tag}-{i:05d}.txt"
        path.write_text(f"{doc.get('title', '')} ({tag} {i})\n\n{doc['text']}\n")
        paths.append(path)
    return paths


def ratio(n: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp))
        folder = Path(tmp) / "articles"
        write_articles(folder, n, "ratio")
        get_embedder(settings.embedding).embed(["warm up"])
        began = time.perf_counter()
        first = ingest([str(folder)], settings)
        first_s = time.perf_counter() - began
        again = []
        for _ in range(3):
            began = time.perf_counter()
            report = ingest([str(folder)], settings)
            again.append(time.perf_counter() - began)
            assert len(report.unchanged) == n and not report.added, report.summary()
        result: dict[str, Any] = {
            "articles": n,
            "chunks": first.chunks_written,
            "first_s": round(first_s, 3),
            "unchanged_s": [round(s, 3) for s in again],
            "share": round(statistics.median(again) / first_s, 4),
        }
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            ingest([str(folder)], settings)
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
            result["profile"] = out.getvalue()
        return result


def fill(archive: Archive, size: int, texts: list[str], rng: np.random.Generator) -> None:
    """``size`` chunks of real text in articles of 4 chunks, with random unit vectors."""
    dim = archive.store.signature["embedding_dim"]
    for start in range(0, size, 2000):
        ids, vectors, docs, metas = [], [], [], []
        for i in range(start, min(size, start + 2000)):
            doc, index = f"filler-{i // 4:06d}.txt", i % 4
            ids.append(chunk_id(doc, f"{i // 4:064x}", index))
            vec = rng.normal(size=dim)
            vectors.append((vec / np.linalg.norm(vec)).tolist())
            docs.append(texts[i % len(texts)])
            day = f"20{10 + (i // 4) % 15:02d}-{1 + (i // 40) % 12:02d}-{1 + (i // 4) % 28:02d}"
            metas.append(
                {"doc_id": doc, "content_hash": f"{i // 4:064x}", "n_chunks": 4, "chunk_index": index,
                 "start": 0, "end": len(docs[-1]), "title": f"Filler {i // 4}", "source": "Filler",
                 "published": day, "published_ts": int(time.mktime(time.strptime(day, "%Y-%m-%d"))),
                 "origin": "filler", "source_path": doc}
            )  # fmt: skip
        archive.write(ids, vectors, docs, metas)


def one_article_cli(settings: Settings, path: Path, folder: Path, profile: Path | None = None) -> float:
    config = folder / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"path": str(settings.store.path), "collection": settings.store.collection},
                "retrieval": {"lexical_path": str(settings.retrieval.lexical_path)},
            }
        )
    )
    began = time.perf_counter()
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    subprocess.run(
        [sys.executable, *prof, "-m", "ui.cli", "ingest", str(path), "--config", str(config)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return time.perf_counter() - began


def scale(sizes: list[int], keep: Path | None, profile: bool) -> list[dict[str, Any]]:
    texts = [json.loads(line)["text"][:1200] for line in CORPUS.read_text().splitlines()]
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as scratch:
            tmp = Path(scratch) if keep is None else keep / f"archive-{size}"
            settings = settings_for(tmp)
            archive = Archive(settings)
            began = time.perf_counter()
            if archive.store.count() < size:  # a kept archive is filled once
                fill(archive, size, texts, np.random.default_rng(0))
            archive.lexical.catch_up()
            built = time.perf_counter() - began
            archive.close()
            tag = f"{size}-{int(time.time())}"
            # Articles this archive has not seen: a kept archive's earlier runs ingested theirs, and the
            # same text again is grouped as a copy of its story, not written.
            runs = tmp / "runs"
            done = int(runs.read_text()) if runs.exists() else 0
            runs.write_text(str(done + 1))
            new = write_articles(Path(scratch) / "new", 6, f"new{tag}", skip=7 * done)
            get_embedder(settings.embedding).embed(["warm up"])
            ingest([str(new[0])], settings)  # this process opens the store and its index once, as watch does
            times = []
            for path in new[1:]:
                began = time.perf_counter()
                report = ingest([str(path)], settings)
                times.append(time.perf_counter() - began)
                assert report.added, report.summary()
            one = write_articles(Path(scratch) / "cli", 1, f"cli{tag}", skip=7 * done + 6)[0]
            prof = Path(scratch) / "cli.prof" if profile else None
            cli = one_article_cli(settings, one, Path(scratch), prof)
            if prof is not None:
                out = io.StringIO()
                ours = r"qa_bot|ingest/|chromadb/api"  # the product's calls and Chroma's, not the imports
                pstats.Stats(str(prof), stream=out).sort_stats("cumulative").print_stats(ours, 30)
                print(out.getvalue(), flush=True)
            results.append(
                {
                    "chunks": size,
                    "build_s": round(built, 1),
                    "one_article_in_process_s": [round(t, 3) for t in times],
                    "median_s": round(statistics.median(times), 3),
                    "one_article_fresh_process_s": round(cli, 2),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 100_000])
    parser.add_argument("--parts", nargs="+", default=["ratio", "scale"], choices=["ratio", "scale"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="build the archives here and reuse them (e.g. var/bench/reingest)")
    args = parser.parse_args()
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    out: dict[str, Any] = {"cpu": cpu}
    if "ratio" in args.parts:
        out["ratio"] = ratio(args.articles, args.profile)
        print(out["ratio"].pop("profile", ""))
        print(json.dumps(out["ratio"]), flush=True)
    if "scale" in args.parts:
        out["scale"] = scale(args.sizes, args.keep, args.profile)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
