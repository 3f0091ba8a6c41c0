"""The one description of what a chunk's metadata in Chroma holds.

Usage::

    from qa_bot.schema import ChunkMeta
    meta = ChunkMeta(doc_id="a.txt", content_hash=h, n_chunks=3, chunk_index=0, start=0, end=412, title="...")
    store.upsert(ids, vectors, texts, [meta.to_metadata()])    # the ingest writes it
    ChunkMeta.from_metadata(got["metadatas"][0]).published_ts  # everything else reads it

Chroma keeps flat metadata (str, int, float, bool); a chunk carries its article's metadata so
that the collection alone is the record of what was ingested. Reading is lenient: a key that
is missing (a chunk written before it existed) reads as its default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
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


@dataclass(frozen=True)
class ChunkMeta:
    """One chunk's metadata: where it sits in its article, and the article's own metadata."""

    doc_id: str = ""
    content_hash: str = ""  # the article version's hash; part of the chunk id
    n_chunks: int = 0  # how many chunks this version of the article has
    chunk_index: int = 0
    start: int = 0  # character offsets of the chunk in the article's text
    end: int = -1  # -1: not recorded, the chunk's own length
    title: str = ""
    source: str = ""
    url: str = ""
    published: str = ""  # as the article gave it, ISO date where it could be read
    published_ts: int | None = None  # the published day as a number, so date ranges can filter
    author: str = ""
    origin: str = ""  # the source named to the ingest (folder, feed, URL): what prune works by
    source_path: str = ""
    indexed_at: int = 0  # STAMP

    def to_metadata(self) -> dict[str, Any]:
        """What the ingest writes (the store adds the stamp; an undated article has no ``published_ts``)."""
        meta = asdict(self)
        del meta["indexed_at"]
        if self.published_ts is None:
            del meta["published_ts"]
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, Any] | None) -> ChunkMeta:
        meta = meta or {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            if meta.get(f.name) is None:
                continue
            values[f.name] = str(meta[f.name]) if f.type == "str" else int(meta[f.name])
        return cls(**values)
