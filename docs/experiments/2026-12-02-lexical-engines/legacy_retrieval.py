"""Hybrid retrieval: dense search in Chroma plus BM25 over the same chunks, fused.

Usage::

    retriever = Retriever(settings, store, embedder)
    passages = retriever.search("Why did Putin praise Trump?", k=4, filters=Filters(source=["CNN"]))

Steps: dense candidates from Chroma (cosine) and lexical candidates from BM25 (bm25s, an
index kept in step with the collection), fused by weighted reciprocal rank fusion; a
question that names a period ("this week", "in 2024", "latest") lifts articles of that
period; near-duplicate passages (overlapping chunks of one article, syndicated copies)
are collapsed. Filters (source, published date range) apply to both searches.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from qa_bot.embeddings import Embedder
from qa_bot.results import Filters, Passage
from qa_bot.settings import RetrievalSettings
from qa_bot.store import Store

RRF_K = 60


def day_ts(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def chroma_where(filters: Filters) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if filters.source:
        clauses.append({"source": {"$in": list(filters.source)}})
    if filters.since:
        clauses.append({"published_ts": {"$gte": day_ts(filters.since)}})
    if filters.until:
        clauses.append({"published_ts": {"$lte": day_ts(filters.until)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


# ---------------------------------------------------------------- lexical index


class LexicalIndex:
    """BM25 over every chunk (title + text), rebuilt when the collection changes."""

    def __init__(self, store: Store) -> None:
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        self.stemmer = Stemmer.Stemmer("english")
        rows = store.rows(["documents", "metadatas"])
        self.ids = [r[0] for r in rows]
        self.texts = [r[1] for r in rows]
        self.metas = [r[2] for r in rows]
        self.position = {cid: i for i, cid in enumerate(self.ids)}
        self.sources = np.array([str(m.get("source", "")) for m in self.metas], dtype=object)
        self.published = np.array([int(m.get("published_ts", -1)) for m in self.metas], dtype=np.int64)
        self.model = bm25s.BM25()
        if rows:
            corpus = [f"{m.get('title', '')}\n{t}" for t, m in zip(self.texts, self.metas, strict=True)]
            tokens = bm25s.tokenize(corpus, stopwords="en", stemmer=self.stemmer, show_progress=False)
            self.model.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def mask(self, filters: Filters) -> np.ndarray | None:
        if filters.empty:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        if filters.source:
            keep &= np.isin(self.sources, list(filters.source))
        if filters.since:
            keep &= self.published >= day_ts(filters.since)
        if filters.until:
            keep &= self.published <= day_ts(filters.until)
        return keep

    def search(self, query: str, n: int, filters: Filters) -> list[tuple[int, float]]:
        """(row, score) of the best ``n`` chunks with a positive score."""
        if not self.ids:
            return []
        tokens = self._bm25s.tokenize(
            [query], stopwords="en", stemmer=self.stemmer, show_progress=False, return_ids=False
        )[0]
        tokens = [t for t in tokens if t in self.model.vocab_dict]
        if not tokens:
            return []
        scores = self.model.get_scores(tokens)
        mask = self.mask(filters)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]


# ---------------------------------------------------------------- time cues


@dataclass(frozen=True)
class TimeCue:
    since: date | None = None
    until: date | None = None
    recent: bool = False


_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}


def time_cue(question: str, today: date) -> TimeCue | None:
    """The period a question names, as a soft preference (never a hard filter)."""
    q = question.lower()
    if re.search(r"\btoday\b", q):
        return TimeCue(today, today)
    if re.search(r"\byesterday\b", q):
        return TimeCue(today - timedelta(days=1), today - timedelta(days=1))
    if re.search(r"\bthis week\b", q):
        return TimeCue(today - timedelta(days=today.weekday()), today)
    if re.search(r"\blast week\b", q):
        start = today - timedelta(days=today.weekday() + 7)
        return TimeCue(start, start + timedelta(days=6))
    if re.search(r"\bthis month\b", q):
        return TimeCue(today.replace(day=1), today)
    if re.search(r"\blast month\b", q):
        end = today.replace(day=1) - timedelta(days=1)
        return TimeCue(end.replace(day=1), end)
    if re.search(r"\bthis year\b", q):
        return TimeCue(date(today.year, 1, 1), today)
    if re.search(r"\blast year\b", q):
        return TimeCue(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))
    month_year = re.search(r"\b(?:in|during|since)\s+(" + "|".join(_MONTHS) + r")\s+((?:19|20)\d\d)\b", q)
    if month_year:
        year, month = int(month_year.group(2)), _MONTHS[month_year.group(1)]
        return TimeCue(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))
    year = re.search(r"\b(?:in|during|of)\s+((?:19|20)\d\d)\b", q)
    if year:
        return TimeCue(date(int(year.group(1)), 1, 1), date(int(year.group(1)), 12, 31))
    if re.search(r"\b(latest|newest|most recent|recently|recent|currently|now|nowadays)\b", q):
        return TimeCue(recent=True)
    return None


# ---------------------------------------------------------------- retriever


class Retriever:
    def __init__(self, settings: RetrievalSettings, store: Store, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._index: LexicalIndex | None = None
        self._index_count = -1
        self._index_checked = 0.0
        self._lock = threading.Lock()

    def lexical(self) -> LexicalIndex:
        """The BM25 index, rebuilt when the chunk count changed (cheap to check each query).

        An update that keeps the count is caught by a full re-read at most every
        ``retrieval.index_ttl`` seconds; in-process ingestion calls :meth:`invalidate`.
        """
        with self._lock:
            count = self.store.count()
            stale = time.monotonic() - self._index_checked > self.settings.index_ttl
            if self._index is None or count != self._index_count or stale:
                self._index = LexicalIndex(self.store)
                self._index_count = count
                self._index_checked = time.monotonic()
            return self._index

    def invalidate(self) -> None:
        with self._lock:
            self._index = None

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        context: str = "",
        today: date | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages for ``query``; ``context`` (earlier turns) widens recall."""
        k = k or self.settings.k
        filters = filters or Filters()
        index = self.lexical()
        if not len(index):
            return []
        n = max(self.settings.candidates, k)
        lists: list[tuple[float, list[str]]] = []
        queries = [(query, 1.0)] + ([(f"{context}\n{query}", self.settings.context_weight)] if context else [])
        for text, weight in queries:
            lists.append((weight * self.settings.dense_weight, self._dense(text, n, filters)))
            lists.append(
                (weight * self.settings.bm25_weight, [index.ids[i] for i, _ in index.search(text, n, filters)])
            )
        fused = _rrf(lists)
        cue = time_cue(query, today or date.today())
        if cue:
            fused = _apply_time_cue(fused, cue, index, self.settings.time_boost)
        ranked = sorted(fused.items(), key=lambda kv: -kv[1])
        return _collapse(ranked, index, k)

    def _dense(self, text: str, n: int, filters: Filters) -> list[str]:
        vector = self.embedder.embed([text])[0]
        got = self.store.collection.query(
            query_embeddings=[vector], n_results=n, where=chroma_where(filters), include=["distances"]
        )
        return list(got["ids"][0])


def _rrf(lists: list[tuple[float, list[str]]]) -> dict[str, float]:
    fused: dict[str, float] = {}
    for weight, ids in lists:
        for rank, cid in enumerate(ids):
            fused[cid] = fused.get(cid, 0.0) + weight / (RRF_K + rank + 1)
    return fused


def _apply_time_cue(fused: dict[str, float], cue: TimeCue, index: LexicalIndex, boost: float) -> dict[str, float]:
    out = dict(fused)
    if cue.recent:
        dated = sorted(
            (cid for cid in fused if index.published[index.position[cid]] >= 0),
            key=lambda cid: -index.published[index.position[cid]],
        )
        for rank, cid in enumerate(dated):
            out[cid] += boost / (RRF_K + rank + 1)
        return out
    lo = day_ts(cue.since) if cue.since else -(2**62)
    hi = day_ts(cue.until) if cue.until else 2**62
    for cid in fused:
        ts = index.published[index.position[cid]]
        if ts >= 0 and lo <= ts <= hi:
            out[cid] *= 1.0 + boost
    return out


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w{3,}", text.lower()))


def _collapse(ranked: list[tuple[str, float]], index: LexicalIndex, k: int) -> list[Passage]:
    """Keep the best of near-duplicates: overlapping chunks of one article, or copies."""
    kept: list[Passage] = []
    kept_tokens: list[set[str]] = []
    for cid, score in ranked:
        row = index.position.get(cid)
        if row is None:  # written after the index was built; next query picks it up
            continue
        passage = Passage.from_chunk(cid, index.texts[row], index.metas[row], score)
        tokens = _tokens(passage.text)
        if any(
            _near_duplicate(passage, tokens, other, other_tokens)
            for other, other_tokens in zip(kept, kept_tokens, strict=True)
        ):
            continue
        kept.append(passage)
        kept_tokens.append(tokens)
        if len(kept) == k:
            break
    return kept


def _near_duplicate(a: Passage, a_tokens: set[str], b: Passage, b_tokens: set[str]) -> bool:
    if a.doc_id == b.doc_id:
        overlap = min(a.end, b.end) - max(a.start, b.start)
        if overlap > 0.5 * min(a.end - a.start, b.end - b.start):
            return True
    if not a_tokens or not b_tokens:
        return False
    return len(a_tokens & b_tokens) / len(a_tokens | b_tokens) >= 0.8
