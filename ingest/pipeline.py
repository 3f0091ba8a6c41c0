"""The write path: load, chunk, embed and index articles, skipping what has not changed.

Usage::

    from ingest import ingest
    report = ingest(["data/articles", "https://example.com/feed.xml"])
    report.added, report.updated, report.unchanged, report.removed, report.failed

Guarantees:

* An unchanged article (same content hash, all its chunks present) costs no embedding.
* A changed article's new chunks are written before its stale ones are removed, and chunk
  ids are content-addressed, so a failure in between never leaves the article missing.
* Ids are deterministic, so an ingest killed at any point and run again converges to the
  store an uninterrupted run makes: an incomplete article simply reads as not current.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.articles import Article, Failure
from ingest.chunking import Chunk, chunk_text
from ingest.fetchlog import FetchLog
from ingest.loaders import FetchMemory, Unchanged, is_url, load_sources, origin_of
from ingest.stories import Grouping
from ingest.web import Fetcher, Traffic
from qa_bot.archive import FETCHED, Archive, Copy, DocInfo, StoreMismatchError, chunk_id
from qa_bot.embeddings import Embedder, get_embedder
from qa_bot.schema import ChunkMeta
from qa_bot.settings import Settings, load_settings

# Chunks gathered before one embed + write; large enough to keep the encoder busy.
FLUSH_CHUNKS = 256
# Articles looked up in the archive together: one catalogue get and one chunk get for the lot, where
# two gets an article were 65-75 % of an unchanged re-ingest (docs/experiments/2026-12-06-reingest-profile.md).
LOOKUP_ARTICLES = 256


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # (article, the story it is a copy of): recorded as a further source, not indexed
    grouped: list[tuple[str, str]] = field(default_factory=list)
    chunks_written: int = 0
    seconds: float = 0.0
    traffic: Traffic = field(default_factory=Traffic)  # requests, 304s, bodies and their bytes

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        grouped = f", {len(self.grouped)} grouped as copies" if self.grouped else ""
        t = self.traffic
        fetched = (
            f"; {t.requests} requests ({t.not_modified} not modified, {t.bodies} with a body of "
            f"{t.bytes / 1024:.1f} KB in all)"
            if t.requests
            else ""
        )
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged{grouped}, "
            f"{len(self.removed)} removed, {len(self.failed)} failed; "
            f"{self.chunks_written} chunks written{fetched} in {self.seconds:.1f} s"
        )


@dataclass
class _Pending:
    article: Article
    chunks: list[Chunk]
    previous: DocInfo | None
    signature: np.ndarray | None = None  # a new article's MinHash, to tell whether it is a copy


Progress = Callable[[int, int], None]  # (articles done, chunks written)


def ingest(
    sources: Iterable[str] | str,
    settings: Settings | None = None,
    *,
    prune: bool = False,
    reindex: bool = False,
    progress: Progress | None = None,
    fetcher: Fetcher | None = None,
    backoff: bool = False,
) -> IngestReport:
    """Ingest files, folders, article URLs and feed URLs into the configured store.

    ``prune`` removes articles that came through one of these sources but whose source has
    gone. ``reindex`` drops the collection and rebuilds it with the current settings; with
    no sources it re-ingests every source the collection had recorded. ``fetcher`` is kept
    across calls by ``watch``, so connections and robots.txt rules are reused; by default each
    call makes its own. ``backoff`` (``watch``) leaves a feed item whose page failed alone until
    its back-off has run out, as ``watch`` does with sources.
    """
    began = time.perf_counter()
    settings = settings or load_settings()
    sources = [sources] if isinstance(sources, str) else list(sources)
    # The embedder loads when the first new or changed article needs it: loading it was 4.4 s of a
    # 5 s unchanged re-ingest from a fresh process (2-core EPYC), and the archive's dimension check
    # reads the collection's record of its model instead when that model is the configured one.
    archive = Archive(settings)
    if reindex:
        sources = sources or archive.recorded_origins()
        archive.drop()
    if archive.has():
        archive.store  # noqa: B018 - opens the chunks, checked against the settings, before any fetch
    # A new store is created at its first write: its vector size is the embedder's, and loading the
    # embedder for a run whose every file is refused cost 7-10 s (benchmarks.security, a 19.5 MB page).
    grouping = Grouping(archive.stories, settings.ingest.duplicate_threshold)
    writer = _Writer(settings, archive, lambda: get_embedder(settings.embedding), grouping, progress)
    fetch_log = FetchLog(archive.records(FETCHED))
    memory = FetchMemory(fetch_log, archive.present, backoff)
    own_fetcher = fetcher is None
    fetcher = fetcher or Fetcher(settings.ingest)
    traffic_before = fetcher.traffic.snapshot()
    seen: set[str] = set()
    failed_paths: set[str] = set()
    try:
        for item in load_sources(sources, settings.ingest, fetcher, memory):
            if isinstance(item, Unchanged):
                seen.add(item.doc_id)
                writer.report.unchanged.append(item.doc_id)
                writer.tick()
                continue
            if isinstance(item, Failure):
                writer.report.failed.append((item.source, item.reason))
                failed_paths.add(item.path or item.source)
                continue
            if item.doc_id in seen:
                reason = f"duplicate document id {item.doc_id!r} in this run; kept the first"
                writer.report.failed.append((item.source_path, reason))
                continue
            seen.add(item.doc_id)
            writer.add(item)
        writer.flush()
        failed_paths |= writer.failed_paths
        writer.close()  # every write done before prune reads the store
        archive.stories.add_copies(writer.copies)
        # Only now that what they describe is written: a run killed earlier reads it all again.
        fetch_log.put(list(memory.notes.values()))
        if prune:
            _prune(archive, sources, seen, failed_paths, writer.report)
        # Builds the BM25 index if this machine has none; else takes in what other processes wrote.
        if archive.has():  # nothing was written to a store that did not exist: no index to build
            archive.lexical.catch_up()
    finally:
        writer.close()
        if own_fetcher:
            fetcher.close()
    writer.report.traffic = _traffic_since(traffic_before, fetcher.traffic.snapshot())
    writer.report.seconds = time.perf_counter() - began
    return writer.report


def _traffic_since(before: Traffic, after: Traffic) -> Traffic:
    return Traffic(
        after.requests - before.requests,
        after.not_modified - before.not_modified,
        after.bytes - before.bytes,
        after.bodies - before.bodies,
    )


class _Writer:
    """Batches new and changed articles, embeds them together and writes them.

    Writing a batch to Chroma runs in one background thread while the next batch is
    embedded, so the two cores stay on the encoder; at most one write is in flight, and
    each article's stale chunks are deleted in the same task, after its new ones.
    """

    def __init__(
        self,
        settings: Settings,
        archive: Archive,
        embedder: Callable[[], Embedder],
        grouping: Grouping,
        progress: Progress | None,
    ) -> None:
        self.settings = settings
        self.archive = archive
        self.grouping = grouping
        self.copies: list[Copy] = []  # recorded once the run's writes are done
        self._embedder = embedder  # loaded on first use (get_embedder keeps one per process)
        self.progress = progress
        self.report = IngestReport()
        self.incoming: list[Article] = []  # not yet looked up in the archive
        self.pending: list[_Pending] = []  # new or changed, chunked, waiting to be embedded
        self.failed_paths: set[str] = set()  # the files of articles refused here (kept by prune)
        self.articles_done = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-bot-write")
        self._in_flight: Future[None] | None = None
        self._tick_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        return self._embedder()

    def add(self, article: Article) -> None:
        """Take one loaded article; it is looked up, with the others of its batch, at the next
        :meth:`flush` or once ``LOOKUP_ARTICLES`` have gathered."""
        self.incoming.append(article)
        if len(self.incoming) >= LOOKUP_ARTICLES:
            self._sort_incoming()

    def _sort_incoming(self) -> None:
        """Count the gathered articles the archive holds as they are; chunk and queue the others."""
        batch, self.incoming = self.incoming, []
        if not batch:
            return
        stored = self.archive.articles(doc_ids=[a.doc_id for a in batch])
        for article in batch:
            previous = stored.get(article.doc_id)
            if previous is not None and previous.is_current(article.content_hash):
                self.report.unchanged.append(article.doc_id)
                self.tick()
                continue
            refused = self._queue(article, previous)
            if refused is not None:
                self.report.failed.append((refused.source, refused.reason))
                self.failed_paths.add(refused.path or refused.source)

    def _queue(self, article: Article, previous: DocInfo | None) -> Failure | None:
        """Queue a new or changed article's chunks for embedding; a Failure if it is too big to take."""
        c, cap = self.settings.chunking, self.settings.ingest.max_chunks_per_article
        # Every word is at least one token, so this many words cannot fit in the cap: refused
        # before the tokenizer spends minutes on a 15 MB one-line file.
        words = sum(1 for _ in _WORDS.finditer(article.text))
        if words > cap * c.max_tokens:
            return _too_big(article, f"{words:,} words", cap)
        chunks = chunk_text(article.text, self.embedder.count_tokens, c.max_tokens, c.overlap_tokens)
        if len(chunks) > cap:
            return _too_big(article, f"{len(chunks):,} chunks", cap)
        grouping = previous is None and self.settings.ingest.group_duplicates
        signature = self.grouping.signature(article.text) if grouping else None
        self.pending.append(_Pending(article, chunks, previous, signature))
        if sum(len(p.chunks) for p in self.pending) >= FLUSH_CHUNKS:
            self._embed_pending()
        return None

    def _ungrouped(self, batch: list[_Pending]) -> list[_Pending]:
        """The batch without its near-copies of stored stories, which are recorded as further sources.

        Decided per batch, not per article: two gets by id for the whole batch (its recorded copies,
        the stories sharing a band with it). An article already indexed stays indexed: only a new
        one is grouped, and one too short to tell from a shared banner is never.
        """
        new = [p for p in batch if p.signature is not None]
        if not new:
            return batch
        known = self.grouping.lookup(
            [p.article.doc_id for p in new], [p.signature for p in new if p.signature is not None]
        )
        kept = []
        for p in batch:
            if p.signature is None:
                kept.append(p)
                continue
            article = p.article
            recorded = known.copies.get(article.doc_id)
            if recorded is not None and recorded.article.content_hash == article.content_hash:
                self.report.unchanged.append(article.doc_id)
                self.tick()
                continue
            match = self.grouping.similar(p.signature, exclude=article.doc_id, known=known)
            if match is None:
                self.grouping.pending(article.doc_id, p.signature)  # later articles of the run find it
                kept.append(p)
                continue
            self.copies.append(_copy(article, *match))
            self.report.grouped.append((article.doc_id, match[0]))
            self.tick()
        return kept

    def flush(self) -> None:
        """Look up what has gathered and send every queued article to be embedded and written."""
        self._sort_incoming()
        self._embed_pending()

    def _embed_pending(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        batch = self._ungrouped(batch)
        if not batch:
            return
        # The write checks the disk too; asked here as well so a full disk costs no embedding first.
        self.archive.ensure_room()
        ids, texts, embed_texts, metas = [], [], [], []
        for p in batch:
            for chunk in p.chunks:
                ids.append(chunk_id(p.article.doc_id, p.article.content_hash, chunk.index))
                texts.append(chunk.text)
                embed_texts.append(self._embed_text(p.article, chunk))
                metas.append(_metadata(p.article, chunk, len(p.chunks)))
        vectors = self.embedder.embed(embed_texts)
        self.wait()
        self._in_flight = self._pool.submit(self._write, batch, ids, vectors, texts, metas)

    def wait(self) -> None:
        """Block until the write in flight is done; re-raise its error here."""
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def _write(
        self,
        batch: list[_Pending],
        ids: list[str],
        vectors: list[list[float]],
        texts: list[str],
        metas: list[dict[str, Any]],
    ) -> None:
        for start in range(0, len(ids), 1000):
            end = start + 1000
            self.archive.write(ids[start:end], vectors[start:end], texts[start:end], metas[start:end])
        # Only now that the new version is whole do the old chunks go.
        written = set(ids)
        stale = [cid for p in batch if p.previous for cid in p.previous.chunks if cid not in written]
        self.archive.delete_chunks(stale)
        self.grouping.write([p.article.doc_id for p in batch])  # findable as stories once whole
        self.report.chunks_written += len(ids)
        for p in batch:
            (self.report.updated if p.previous else self.report.added).append(p.article.doc_id)
            self.tick()

    def _embed_text(self, article: Article, chunk: Chunk) -> str:
        if self.settings.chunking.title_in_embedding and article.title and not chunk.text.startswith(article.title):
            return f"{article.title}\n{chunk.text}"
        return chunk.text

    def tick(self) -> None:
        with self._tick_lock:  # the writer thread and the main thread both count
            self.articles_done += 1
        if self.progress:
            self.progress(self.articles_done, self.report.chunks_written)


_WORDS = re.compile(r"\S+")


def _copy(article: Article, story: str, score: float) -> Copy:
    return Copy(article.meta, story, round(score, 3))


def _too_big(article: Article, size: str, cap: int) -> Failure:
    return Failure(
        article.source_path or article.doc_id,
        f"too big: {size}, over the limit ingest.max_chunks_per_article = {cap:,} chunks",
        article.source_path,
    )


def _metadata(article: Article, chunk: Chunk, n_chunks: int) -> dict[str, Any]:
    return ChunkMeta(article.meta, n_chunks, chunk.index, chunk.start, chunk.end).to_metadata()


def _prune(archive: Archive, sources: list[str], seen: set[str], failed_paths: set[str], report: IngestReport) -> None:
    """Remove articles ingested through these sources whose source is gone.

    An article whose file failed to load this time is kept: a broken file is not a deleted one.
    """
    origins = sorted({origin_of(s) for s in sources})
    gone = [
        a.doc_id
        for a in (doc.article for doc in archive.articles(origins=origins).values())
        if a.doc_id not in seen
        and a.source_path not in failed_paths
        and not (is_url(a.origin) and a.origin in failed_paths)
    ]
    copies = [
        c.article.doc_id
        for c in archive.stories.copies_from(origins)
        if c.article.doc_id not in seen and c.article.source_path not in failed_paths
    ]
    archive.delete_articles(gone + copies)
    report.removed += gone + copies


__all__ = ["IngestReport", "StoreMismatchError", "ingest"]
