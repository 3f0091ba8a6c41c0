"""Top-60 BM25 latency of SQLite FTS5, tantivy and bm25s at N chunks, on the same analysed text.

Usage::

    .venv/bin/python docs/experiments/2026-12-02-lexical-engines/engines_speed.py 1000000 tantivy,fts5,bm25s

The chunks are ~120-word windows of the eval corpora, analysed once (bm25s tokens, English
stopwords, Snowball stems) and repeated with a copy marker up to N. The questions are 200 eval
questions. Each engine is timed on the lexical search alone (what qa_bot.lexical replaces);
indexes are written under /tmp/lexical-engines and kept for a rerun.
"""

from __future__ import annotations

import json
import random
import resource
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

EVAL = Path(__file__).resolve().parents[4] / "shared" / "eval"
SETS = ["ares-news", "clapnq", "squad2"]
OUT = Path("/tmp/lexical-engines")
STEM = Stemmer.Stemmer("english")


def analyse(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en", stemmer=STEM, show_progress=False, return_ids=False)


def windows() -> list[str]:
    out = []
    for name in SETS:
        for line in (EVAL / name / "corpus.jsonl").read_text().splitlines():
            doc = json.loads(line)
            words = f"{doc.get('title', '')}\n{doc['text']}".split()
            out += [" ".join(words[s : s + 120]) for s in range(0, len(words), 90)]
    return out


def timed(search: Callable[[list[str]], object], queries: list[list[str]]) -> tuple[float, float]:
    for q in queries[:5]:
        search(q)
    times = []
    for q in queries:
        began = time.perf_counter()
        search(q)
        times.append(1000 * (time.perf_counter() - began))
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def fts5(n: int, body: Callable[[int], str]) -> Callable[[list[str]], object]:
    path = OUT / f"fts5-{n}.db"
    new = not path.exists()
    db = sqlite3.connect(path)
    if new:
        db.execute("create virtual table f using fts5(body, tokenize='unicode61')")
        began = time.perf_counter()
        for s in range(0, n, 10_000):
            db.executemany(
                "insert into f(rowid, body) values (?, ?)", ((i, body(i)) for i in range(s, min(n, s + 10_000)))
            )
            db.commit()
        print(f"fts5 built in {time.perf_counter() - began:.0f} s, {path.stat().st_size / 1e6:.0f} MB")

    def search(terms: list[str]) -> object:
        match = " OR ".join(f'"{t}"' for t in terms)
        return db.execute("select rowid, bm25(f) from f where f match ? order by rank limit 60", (match,)).fetchall()

    return search


def tantivy_engine(n: int, body: Callable[[int], str]) -> Callable[[list[str]], object]:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("row", stored=True, fast=True, indexed=True)
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
    schema = builder.build()
    path = OUT / f"tantivy-{n}"
    new = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(schema, path=str(path))
    if new:
        began = time.perf_counter()
        writer = index.writer(200_000_000, 2)
        for i in range(n):
            writer.add_document(tantivy.Document(row=i, body=body(i)))
        writer.commit()
        writer.wait_merging_threads()
        print(f"tantivy built in {time.perf_counter() - began:.0f} s")
    index.reload()
    searcher = index.searcher()

    def search(terms: list[str]) -> object:
        should = [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in terms]
        return searcher.search(tantivy.Query.boolean_query(should), 60).hits

    return search


def bm25s_engine(n: int, body: Callable[[int], str]) -> Callable[[list[str]], object]:
    began = time.perf_counter()
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(w, len(vocab)) for w in body(i).split()] for i in range(n)]
    model = bm25s.BM25()
    model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    print(f"bm25s built in {time.perf_counter() - began:.0f} s")

    def search(terms: list[str]) -> object:
        terms = [t for t in terms if t in model.vocab_dict]
        scores = model.get_scores(terms)
        top = np.argpartition(-scores, 59)[:60]
        return top[np.argsort(-scores[top])]

    return search


def main() -> None:
    n, engines = int(sys.argv[1]), sys.argv[2].split(",")
    OUT.mkdir(exist_ok=True)
    base = [" ".join(t) for t in analyse(windows())]
    questions = [
        json.loads(line)["question"] for s in SETS for line in (EVAL / s / "questions.jsonl").read_text().splitlines()
    ]
    random.Random(0).shuffle(questions)
    queries = [q for q in analyse(questions[:200]) if q]

    def body(i: int) -> str:
        copy = i // len(base)
        return base[i % len(base)] + (f" c{copy}" if copy else "")

    makers = {"fts5": fts5, "tantivy": tantivy_engine, "bm25s": bm25s_engine}
    for engine in engines:
        p50, p99 = timed(makers[engine](n, body), queries)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{engine} at {n} chunks: p50 {p50:.1f} ms, p99 {p99:.1f} ms; process peak {rss:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
