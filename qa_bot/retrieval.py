"""Hybrid retrieval: dense search in Chroma plus BM25 over the same chunks, fused.

Usage::

    retriever = Retriever(settings, store, embedder)
    passages = retriever.search("Why did Putin praise Trump?", k=4, filters=Filters(source=["CNN"]))

Steps: dense candidates from Chroma (cosine) and lexical candidates from BM25 (a tantivy
index on disk kept in step with the collection: qa_bot.lexical), fused by weighted
reciprocal rank fusion; a
question that names a period ("this week", "in 2024", "latest") lifts articles of that
period; near-duplicate passages (overlapping chunks of one article, syndicated copies)
are collapsed. Filters (source, published date range) apply to both searches.
"""

from __future__ import annotations

import calendar
import re
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from qa_bot.embeddings import Embedder
from qa_bot.lexical import LexicalSync, day_ts
from qa_bot.results import Filters, Passage
from qa_bot.schema import ChunkMeta
from qa_bot.settings import RetrievalSettings
from qa_bot.store import Store

RRF_K = 60


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
    in_year = re.search(r"\b(?:in|during|of)\s+((?:19|20)\d\d)\b", q)
    if in_year:
        return TimeCue(date(int(in_year.group(1)), 1, 1), date(int(in_year.group(1)), 12, 31))
    if re.search(r"\b(latest|newest|most recent|recently|recent|currently|now|nowadays)\b", q):
        return TimeCue(recent=True)
    return None


# ---------------------------------------------------------------- retriever


class Retriever:
    """Hybrid search over one store; the BM25 side catches up with the store in the background."""

    def __init__(
        self, settings: RetrievalSettings, store: Store, embedder: Embedder, lexical: LexicalSync | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._lexical = lexical
        self._lock = threading.Lock()

    def lexical(self) -> LexicalSync:
        """The BM25 index, opened once (built, the first time on this machine) and refreshed after."""
        with self._lock:
            if self._lexical is None:
                sync = LexicalSync(self.store, self.settings)
                sync.index  # noqa: B018 - opens it, building it if this machine has none
                sync.start()
                self._lexical = sync
            return self._lexical

    def refresh(self) -> None:
        """Catch up now with what was written (after this process ingested or deleted)."""
        self.lexical().catch_up()
        if self.store.is_stale():
            self.store.reopen()

    def close(self) -> None:
        if self._lexical is not None:
            self._lexical.stop()

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        context: str = "",
        today: date | None = None,
        vector: list[float] | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages for ``query``; ``context`` (earlier turns) widens recall;
        ``vector``, the query's embedding if the caller has made it already."""
        k = k or self.settings.k
        filters = filters or Filters()
        lexical = self.lexical()
        n = max(self.settings.candidates, k)
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        lists: list[tuple[float, list[str]]] = []
        queries = [(query, 1.0, vector)]
        if context:
            queries.append((f"{context}\n{query}", self.settings.context_weight, None))
        for text, weight, known in queries:
            dense_ids = self._dense(known or self.embedder.embed([text])[0], n, filters, found)
            lists.append((weight * self.settings.dense_weight, dense_ids))
            lists.append((weight * self.settings.bm25_weight, [cid for cid, _ in lexical.search(text, n, filters)]))
        fused = _rrf(lists)
        # BM25 found only ids: their text comes from the store, which also drops any since deleted.
        found.update(self.store.get([cid for cid in fused if cid not in found]))
        fused = {cid: score for cid, score in fused.items() if cid in found}
        cue = time_cue(query, today or date.today())
        if cue:
            fused = _apply_time_cue(fused, cue, found, self.settings.time_boost)
        ranked = sorted(fused.items(), key=lambda kv: -kv[1])
        return _collapse(ranked, found, k)

    def _dense(self, vector: list[float], n: int, filters: Filters, found: Found) -> list[str]:
        hits = self.store.nearest(vector, n, chroma_where(filters))
        for cid, text, meta in hits:
            found[cid] = (text, meta)
        return [cid for cid, _, _ in hits]


def _rrf(lists: list[tuple[float, list[str]]]) -> dict[str, float]:
    fused: dict[str, float] = {}
    for weight, ids in lists:
        for rank, cid in enumerate(ids):
            fused[cid] = fused.get(cid, 0.0) + weight / (RRF_K + rank + 1)
    return fused


Found = dict[str, tuple[str, dict[str, Any]]]  # chunk id -> (text, metadata)


def _published(found: Found, cid: str) -> int:
    ts = ChunkMeta.from_metadata(found[cid][1]).published_ts
    return -1 if ts is None else ts


def _apply_time_cue(fused: dict[str, float], cue: TimeCue, found: Found, boost: float) -> dict[str, float]:
    out = dict(fused)
    if cue.recent:
        dated = sorted((cid for cid in fused if _published(found, cid) >= 0), key=lambda cid: -_published(found, cid))
        for rank, cid in enumerate(dated):
            out[cid] += boost / (RRF_K + rank + 1)
        return out
    lo = day_ts(cue.since) if cue.since else -(2**62)
    hi = day_ts(cue.until) if cue.until else 2**62
    for cid in fused:
        ts = _published(found, cid)
        if ts >= 0 and lo <= ts <= hi:
            out[cid] *= 1.0 + boost
    return out


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w{3,}", text.lower()))


def _collapse(ranked: list[tuple[str, float]], found: Found, k: int) -> list[Passage]:
    """Keep the best of near-duplicates: overlapping chunks of one article, or copies."""
    kept: list[Passage] = []
    kept_tokens: list[set[str]] = []
    for cid, score in ranked:
        text, meta = found[cid]
        passage = Passage.from_chunk(cid, text, meta, score)
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
