"""Keyed records beside the chunks: one Chroma collection of metadata rows, read and written by id.

Usage::

    records = archive.records("fetched")          # the "<collection>-fetched" records
    records.put({"page:https://a.example/1": {"etag": '"x"'}})
    records.get(["page:https://a.example/1"])     # {id: metadata}
    records.where("kind", ["source"])             # a filtered read: for small record sets only

The fetch log (ingest.fetchlog) and the stories (qa_bot.archive.stories) keep their records this
way. They hold no real vectors: Chroma needs one, so each row has a one-dimensional zero.
Reads and writes by id cost about 1 ms at any size; :meth:`where` scans and is kept off every
question's path.
"""

from __future__ import annotations

from typing import Any

Meta = dict[str, Any]
# Rows written per Chroma call: its batch limit is far above, and a page keeps memory flat.
PAGE = 1000


def fetch_id(kind: str, url: str) -> str:
    """A fetch-log record's id. A source argument and a page may share a URL (an article URL given
    on the command line), so the kind is part of it."""
    return f"{kind}:{url}"


class Records:
    """The ``<collection>-<kind>`` records of one collection, created on first use."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self._collection: Any | None = None

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = self.client.get_or_create_collection(self.name, embedding_function=None)
        return self._collection

    def get(self, ids: list[str]) -> dict[str, Meta]:
        """{id: metadata} of those of ``ids`` that are recorded."""
        if not ids:
            return {}
        got = self.collection.get(ids=list(dict.fromkeys(ids)), include=["metadatas"])
        return {i: dict(m or {}) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}

    def present(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are recorded (no metadata read)."""
        if not ids:
            return set()
        return set(self.collection.get(ids=list(dict.fromkeys(ids)), include=[])["ids"])

    def where(self, key: str, values: list[Any]) -> dict[str, Meta]:
        """{id: metadata} of the records whose ``key`` is one of ``values`` (a filtered scan)."""
        if not values:
            return {}
        got = self.collection.get(where={key: {"$in": list(values)}}, include=["metadatas"])
        return {i: dict(m or {}) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}

    def put(self, rows: dict[str, Meta]) -> None:
        """Write (insert or replace) these records."""
        items = list(rows.items())
        for start in range(0, len(items), PAGE):
            page = items[start : start + PAGE]
            self.collection.upsert(
                ids=[i for i, _ in page], embeddings=[[0.0]] * len(page), metadatas=[m for _, m in page]
            )

    def delete(self, ids: list[str]) -> None:
        if ids:
            self.collection.delete(ids=sorted(set(ids)))
