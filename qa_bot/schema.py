"""The one description of what a chunk's metadata in Chroma holds.

Usage::

    from qa_bot.schema import ArticleMeta, ChunkMeta
    article = ArticleMeta(doc_id="a.txt", content_hash=h, title="...", published="2024-03-01")
    meta = ChunkMeta(article, n_chunks=3, chunk_index=0, start=0, end=412)
    store.upsert(ids, vectors, texts, [meta.to_metadata()])    # the ingest writes it, flat
    ChunkMeta.from_metadata(got["metadatas"][0]).article.title  # everything else reads it

Chroma keeps flat metadata (str, int, float, bool); a chunk carries its article's metadata so
that the collection alone is the record of what was ingested. Reading is lenient: a key that
is missing (a chunk written before it existed) reads as its default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any

# Metadata key: when the chunk was written, in ms since the epoch by the writer's clock
# (qa_bot.archive.store stamps it; every process's BM25 index catches up by it).
STAMP = "indexed_at"


def day_ts(day: date) -> int:
    """A published day as stored and filtered on (``published_ts``): its midnight UTC, in seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def published_ts(published: str) -> int | None:
    """``day_ts`` of an ISO date (YYYY-MM-DD), None for an undated article."""
    return day_ts(date.fromisoformat(published)) if published else None


def stored_day(meta: dict[str, Any]) -> int | None:
    """The published day a chunk was stored with (``published_ts``): the number Chroma's date
    filters compare, so a reader that filters in Python reads the same one; None if undated."""
    value = meta.get("published_ts")
    return None if value is None else int(value)


def _read(cls: type, meta: dict[str, Any]) -> dict[str, Any]:
    """The fields of dataclass ``cls`` found in flat ``meta``, as their declared types."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.type in ("str", "int") and meta.get(f.name) is not None:
            values[f.name] = str(meta[f.name]) if f.type == "str" else int(meta[f.name])
    return values


@dataclass(frozen=True)
class ArticleMeta:
    """An article's own metadata: the one record of it that chunks, the catalogue's answers
    (``DocInfo``), retrieved passages and a story's further sources (``Copy``) hold."""

    doc_id: str = ""
    content_hash: str = ""  # the article version's hash; part of its chunks' ids
    title: str = ""
    source: str = ""
    url: str = ""
    published: str = ""  # ISO date (YYYY-MM-DD) where it could be read, else ""
    author: str = ""
    origin: str = ""  # the source named to the ingest (folder, feed, URL): what prune works by
    source_path: str = ""  # the file or URL it was read from

    @property
    def published_ts(self) -> int | None:
        """The published day as a number (stored beside it, so date ranges can filter)."""
        return published_ts(self.published)

    def to_metadata(self) -> dict[str, Any]:
        """Flat, as Chroma keeps it; an undated article has no ``published_ts``."""
        meta: dict[str, Any] = asdict(self)
        if self.published_ts is not None:
            meta["published_ts"] = self.published_ts
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, Any] | None) -> ArticleMeta:
        return cls(**_read(cls, meta or {}))


@dataclass(frozen=True)
class ChunkMeta:
    """One chunk's metadata: its article's, and where the chunk sits in that article."""

    article: ArticleMeta = field(default_factory=ArticleMeta)
    n_chunks: int = 0  # how many chunks this version of the article has
    chunk_index: int = 0
    start: int = 0  # character offsets of the chunk in the article's text
    end: int = -1  # -1: not recorded, the chunk's own length
    indexed_at: int = 0  # STAMP

    def to_metadata(self) -> dict[str, Any]:
        """What the ingest writes (the store adds the stamp)."""
        return {
            **self.article.to_metadata(),
            "n_chunks": self.n_chunks,
            "chunk_index": self.chunk_index,
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any] | None) -> ChunkMeta:
        meta = meta or {}
        return cls(article=ArticleMeta.from_metadata(meta), **_read(cls, meta))
