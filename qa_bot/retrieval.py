"""Hybrid retrieval: dense search in Chroma plus BM25 over the same chunks, fused.

Usage::

    retriever = Retriever(settings, store, embedder)
    passages = retriever.search("Why did Putin praise Trump?", k=4, filters=Filters(source=["CNN"]))

Steps: dense candidates from Chroma (cosine) and lexical candidates from BM25 (a tantivy
index on disk kept in step with the collection: qa_bot.archive.lexical), fused by weighted
reciprocal rank fusion; a
question that names a period ("this week", "in 2024", "latest") lifts articles of that
period; near-duplicate passages (overlapping chunks of one article, syndicated copies)
are collapsed. Filters (source, published date range) apply to both searches.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import date
from typing import Any

from qa_bot.archive import LexicalSync, Store
from qa_bot.embeddings import Embedder
from qa_bot.results import Filters, Passage
from qa_bot.schema import STAMP, ChunkMeta, day_ts, stored_day
from qa_bot.settings import RetrievalSettings
from qa_bot.timeframe import TimeScope, moment_of, resolve

RRF_K = 60


def chroma_where(filters: Filters, as_of: date | None = None) -> dict[str, Any] | None:
    """Chroma's ``where`` for the filters and, if given, the moment: an article dated after it is
    not searched, nor an undated one ingested after it (:func:`visible` checks every hit again)."""
    clauses: list[dict[str, Any]] = []
    if filters.source:
        clauses.append({"source": {"$in": list(filters.source)}})
    if filters.since:
        clauses.append({"published_ts": {"$gte": day_ts(filters.since)}})
    if filters.until:
        clauses.append({"published_ts": {"$lte": day_ts(filters.until)}})
    if as_of is not None and not (filters.until and filters.until <= as_of):
        # Chroma cannot ask for a missing key, so an undated chunk is let in by its ingest time.
        clauses.append({"$or": [{"published_ts": {"$lte": day_ts(as_of)}}, {STAMP: {"$lt": _day_end_ms(as_of)}}]})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _day_end_ms(day: date) -> int:
    return (day_ts(day) + 86400) * 1000


def visible(meta: dict[str, Any], moment: date) -> bool:
    """Whether a chunk existed at ``moment``: published on or before its day; an undated article
    counts as published when it was ingested (docs/architecture.md, "Time")."""
    day = stored_day(meta)
    if day is not None:
        return day <= day_ts(moment)
    return ChunkMeta.from_metadata(meta).indexed_at < _day_end_ms(moment)


# ---------------------------------------------------------------- retriever


class Retriever:
    """Hybrid search over one store; the BM25 side catches up with the store in the background."""

    def __init__(
        self, settings: RetrievalSettings, store: Store, embedder: Embedder, lexical: LexicalSync | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._lexical = lexical  # the archive's, so its writes and deletes reach this one at once
        self._started = False
        self._lock = threading.Lock()

    def lexical(self) -> LexicalSync:
        """The BM25 index, opened once (built, the first time on this machine) and refreshed after."""
        with self._lock:
            if self._lexical is None:
                self._lexical = LexicalSync(self.store, self.settings)
            if not self._started:
                self._lexical.index  # noqa: B018 - opens it, building it if this machine has none
                self._lexical.start()
                self._started = True
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
        as_of: date | None = None,
        vector: list[float] | None = None,
        scope: TimeScope | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages for ``query`` as of ``as_of`` (None: today); ``context``
        (earlier turns) widens recall; ``vector``, the query's embedding if the caller has made it
        already; ``scope``, the period the question names if the caller has read it already.

        Nothing published after the moment is returned. Time in the ranking (docs/architecture.md,
        "Time"): a period the question names is searched on its own as well and lifted; otherwise
        the newest evidence is preferred by a decay with the article's age at the moment.
        """
        k = k or self.settings.k
        filters = filters or Filters()
        moment = moment_of(as_of)
        if scope is None:
            scope = resolve(query, moment)
        lexical = self.lexical()
        n = max(self.settings.candidates, k)
        found: Found = {}
        lists: list[tuple[float, list[str]]] = []
        window = self._window(scope, moment, filters)
        searches = [(query, 1.0, vector)]
        if context:
            searches.append((f"{context}\n{query}", self.settings.context_weight, None))
        for i, (text, weight, known) in enumerate(searches):
            if known is None:
                known = self.embedder.embed([text])[0]
            # The period's dense list is the period's part of a wider unfiltered search: a date
            # range in Chroma's filter costs a scan of the range's ids (200 ms a question at
            # 100,000 chunks), a wider search a few milliseconds.
            wide = self.settings.period_candidates if window is not None and i == 0 else n
            dense_ids = self._dense(known, max(n, wide), filters, as_of, found)
            lists.append((weight * self.settings.dense_weight, dense_ids[:n]))
            lists.append((weight * self.settings.bm25_weight, self._bm25(lexical, text, n, filters, as_of)))
            if window is not None and i == 0:
                in_window = [cid for cid in dense_ids if _within(found[cid][1], window)][:n]
                lists.append((self.settings.period_weight * self.settings.dense_weight, in_window))
                period_ids = self._bm25(lexical, text, n, window, as_of)
                lists.append((self.settings.period_weight * self.settings.bm25_weight, period_ids))
        fused = _rrf(lists)
        # BM25 found only ids: their text comes from the store, which also drops any since deleted.
        found.update(self.store.get([cid for cid in fused if cid not in found]))
        fused = {cid: score for cid, score in fused.items() if cid in found and visible(found[cid][1], moment)}
        fused = self._in_time(fused, found, moment, scope)
        ranked = sorted(fused.items(), key=lambda kv: -kv[1])
        return _collapse(ranked, found, k)

    @staticmethod
    def _bm25(lexical: LexicalSync, text: str, n: int, filters: Filters, as_of: date | None) -> list[str]:
        """BM25's ids for ``text`` (tantivy filters a date range on a fast field, cheaply)."""
        if as_of is not None and not (filters.until and filters.until <= as_of):
            filters = replace(filters, until=as_of)
        return [cid for cid, _ in lexical.search(text, n, filters)]

    def _window(self, scope: TimeScope | None, moment: date, filters: Filters) -> Filters | None:
        """The filters of the extra search within the period the question is about: the period it
        names, else the last ``retrieval.recent_days`` before the moment; None for none."""
        if scope is not None and scope.kind != "recent":
            since, until = scope.since, scope.until
        elif self.settings.recent_days > 0 and self.settings.period_weight > 0:
            since, until = date.fromordinal(moment.toordinal() - self.settings.recent_days + 1), moment
        else:
            return None
        if filters.since and (since is None or filters.since > since):
            since = filters.since
        if filters.until and (until is None or filters.until < until):
            until = filters.until
        if since and until and since > until:
            return None
        return replace(filters, since=since, until=until)

    def _in_time(
        self, fused: dict[str, float], found: Found, moment: date, scope: TimeScope | None
    ) -> dict[str, float]:
        """Scores with time in them: a named period's articles lifted by ``retrieval.time_boost``;
        unless the question names a calendar period, each article's score times
        ``(1 - w) + w * 0.5 ** (age / half_life)`` (``retrieval.recency_weight``,
        ``retrieval.recency_half_life_days``; an undated article's age is from its ingest)."""
        s = self.settings
        weight = s.recency_weight_recent if scope is not None and scope.kind == "recent" else s.recency_weight
        days = {cid: published_day(found[cid][1]) for cid in fused}
        # Age is counted from the newest dated candidate (at most the moment), so that an archive
        # whose news stopped a year before the moment still prefers the newest of what it has.
        anchor = min(moment, max((d for d in days.values() if d is not None), default=moment))
        out: dict[str, float] = {}
        for cid, score in fused.items():
            day = days[cid]
            if scope is not None and scope.kind != "recent" and scope.holds(day):
                score *= 1.0 + s.time_boost
            if scope is None or scope.kind != "named":
                # An undated article is as old as its ingest, the latest it can have been published.
                age = (anchor - (day or ingested_day(found[cid][1]))).days
                score *= (1.0 - weight) + weight * 0.5 ** (max(0, age) / s.recency_half_life_days)
            out[cid] = score
        return out

    def _dense(self, vector: list[float], n: int, filters: Filters, as_of: date | None, found: Found) -> list[str]:
        """The nearest chunks that existed at ``as_of``. Asked first without the moment in the
        filter: a filter that admits most of the archive makes Chroma list the admitted ids, work
        that grows with the archive, for nothing when the moment is recent. Only when fewer than
        half the nearest existed then (a question about an archive's past) is it asked again
        with the moment in the filter."""
        hits = self.store.nearest(vector, n, chroma_where(filters))
        if as_of is not None and sum(visible(meta, as_of) for _, _, meta in hits) < len(hits) / 2:
            hits = self.store.nearest(vector, n, chroma_where(filters, as_of))
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


def _within(meta: dict[str, Any], window: Filters) -> bool:
    day = published_day(meta)
    return (
        day is not None
        and (window.since is None or day >= window.since)
        and (window.until is None or day <= window.until)
    )


def published_day(meta: dict[str, Any]) -> date | None:
    ts = stored_day(meta)
    return None if ts is None else date.fromordinal(_EPOCH + ts // 86400)


def ingested_day(meta: dict[str, Any]) -> date:
    return date.fromordinal(_EPOCH + ChunkMeta.from_metadata(meta).indexed_at // 86_400_000)


_EPOCH = date(1970, 1, 1).toordinal()


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
