"""The stories' records: which stored article is a story, and which articles are its further sources.

Usage::

    stories = archive.stories
    stories.copies_of(["doc-1"])    # {"doc-1": [Copy(ArticleMeta(source="Daily Planet", ...), story="doc-1")]}
    stories.forget(["doc-1"])       # the story, its bands and its copies' records go with the article

A wire story (AP, Reuters, AFP) republished by ten outlets is one story: the ingest
(``ingest.stories``) indexes the first and records the others as its copies. The records, in
``<collection>-stories``:

* ``story:<doc_id>``: an indexed article's MinHash signature and the list of its copies (for
  its source card);
* ``band:<i>:<hash>``: a locality-sensitive-hashing band of a signature and the story that first
  had it, so finding the stories that share a band with a new article is a get by id, about
  1 ms however large the archive grows, never a scan;
* ``copy:<doc_id>``: an article grouped with a story instead of being indexed.

This module holds what reading and deleting need; finding a story is the write side's.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa_bot.archive.records import Meta, Records
from qa_bot.schema import ArticleMeta

STORIES = "stories"
# Locality-sensitive hashing: 32 bands of 4 rows. A pair becomes a candidate when any band is
# equal: for a Jaccard similarity of 0.6 that is 99% of pairs, for 0.65 99.8%; datasketch's own
# choice for a 0.6 threshold (18 bands of 7) finds only 40% and 60% of them. The candidates are
# then compared on the whole signature, so the looser bands cost a few more gets by id, not errors.
BANDS, ROWS = 32, 4


@dataclass(frozen=True)
class Copy:
    """A further source of a story: an article grouped with the one that is indexed."""

    article: ArticleMeta  # the copy's own
    story: str  # the doc_id of the indexed article
    similarity: float = 0.0

    def to_metadata(self) -> Meta:
        return {**self.article.to_metadata(), "story": self.story, "similarity": self.similarity}

    @classmethod
    def from_metadata(cls, meta: Meta, story: str = "") -> Copy:
        return cls(
            ArticleMeta.from_metadata(meta), story or str(meta.get("story", "")), float(meta.get("similarity", 0.0))
        )


def band_ids(signature: np.ndarray) -> list[str]:
    """The record ids of a signature's LSH bands."""
    ids = []
    for band in range(BANDS):
        part = signature[band * ROWS : (band + 1) * ROWS].tobytes()
        ids.append(f"band:{band}:{hashlib.blake2b(part, digest_size=8).hexdigest()}")
    return ids


def encode(signature: np.ndarray) -> str:
    return base64.b64encode(signature.astype("<u8").tobytes()).decode("ascii")


def decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<u8").astype(np.uint64)


class StoryRecords:
    """The ``<collection>-stories`` records of one collection."""

    def __init__(self, records: Records) -> None:
        self.records = records

    def story_meta(self, doc_ids: list[str]) -> dict[str, Meta]:
        """{doc_id: its story record} of those of ``doc_ids`` that are stories."""
        got = self.records.get([f"story:{d}" for d in doc_ids])
        return {i.removeprefix("story:"): m for i, m in got.items()}

    def signatures(self, doc_ids: list[str]) -> dict[str, np.ndarray]:
        return {d: decode(str(m["signature"])) for d, m in self.story_meta(doc_ids).items()}

    def band_owners(self, bands: list[str]) -> dict[str, str]:
        """{band id: the story that first had it} of those bands that are recorded."""
        return {b: str(m["story"]) for b, m in self.records.get(bands).items()}

    def copies(self, doc_ids: list[str]) -> dict[str, Copy]:
        """{doc_id: its copy record} of those of ``doc_ids`` recorded as further sources."""
        return {
            i.removeprefix("copy:"): Copy.from_metadata(m)
            for i, m in self.records.get([f"copy:{d}" for d in doc_ids]).items()
        }

    def copies_present(self, doc_ids: list[str]) -> set[str]:
        """Which of these articles are recorded as further sources of a story."""
        return {i.removeprefix("copy:") for i in self.records.present([f"copy:{d}" for d in doc_ids])}

    def copies_of(self, doc_ids: list[str]) -> dict[str, list[Copy]]:
        """Each story's further sources (for source cards): one get by id."""
        result: dict[str, list[Copy]] = {}
        for doc_id, meta in self.story_meta(list(dict.fromkeys(doc_ids))).items():
            entries = json.loads(meta.get("copies", "[]"))
            if entries:
                result[doc_id] = [Copy.from_metadata(e, story=doc_id) for e in entries]
        return result

    def copies_from(self, origins: list[str]) -> list[Copy]:
        """The copies read through these sources (for ``--prune``; not on any question's path)."""
        return [
            Copy.from_metadata(m)
            for m in self.records.where("origin", origins).values()
            if "story" in m and "doc_id" in m
        ]

    def put_stories(self, signatures: dict[str, np.ndarray], bands: dict[str, str]) -> None:
        """Record stories (a re-indexed story keeps its list of copies) and the bands not owned yet
        (a band keeps the first story that had it): one get and one write."""
        found = self.records.get([f"story:{d}" for d in signatures] + sorted(bands))
        rows: dict[str, Meta] = {
            f"story:{d}": {"signature": encode(sig), "copies": (found.get(f"story:{d}") or {}).get("copies", "[]")}
            for d, sig in signatures.items()
        }
        rows |= {b: {"story": story} for b, story in sorted(bands.items()) if b not in found}
        self.records.put(rows)

    def add_copies(self, copies: list[Copy]) -> None:
        """Record further sources of stories, on the copies' own records and on each story's list."""
        if not copies:
            return
        stories = self.story_meta(sorted({c.story for c in copies}))
        listed: dict[str, list[dict[str, Any]]] = {d: json.loads(m.get("copies", "[]")) for d, m in stories.items()}
        for c in copies:
            if c.story not in stories:
                continue  # the story went meanwhile; the copy is read again as new next time
            a = c.article
            entries = [e for e in listed[c.story] if e["doc_id"] != a.doc_id]
            listed[c.story] = [*entries, {"doc_id": a.doc_id, "title": a.title, "source": a.source, "url": a.url}]
        rows: dict[str, Meta] = {f"copy:{c.article.doc_id}": c.to_metadata() for c in copies if c.story in stories}
        rows |= {f"story:{d}": {**stories[d], "copies": json.dumps(listed[d], ensure_ascii=False)} for d in listed}
        self.records.put(rows)

    def forget(self, doc_ids: list[str]) -> None:
        """Drop stories that left the store and copies whose source went. A story's copies are
        dropped with it, so the next ingest of their sources reads them as new and indexes one."""
        if not doc_ids:
            return
        # A handful of gets by id whatever the number of articles: the stories, the bands they may
        # own, the copy records, and the stories those copies belong to.
        stories = self.story_meta(doc_ids)
        gone = {f"story:{d}" for d in stories}
        for meta in stories.values():
            gone |= {f"copy:{e['doc_id']}" for e in json.loads(meta.get("copies", "[]"))}
        bands = sorted({b for meta in stories.values() for b in band_ids(decode(str(meta["signature"])))})
        gone |= {b for b, story in self.band_owners(bands).items() if story in stories}
        copies = self.copies(doc_ids).values()
        gone |= {f"copy:{c.article.doc_id}" for c in copies}
        # The copies' own stories, when they stay, lose those copies from their lists.
        dropped: dict[str, set[str]] = {}
        for c in copies:
            if c.story not in stories:
                dropped.setdefault(c.story, set()).add(c.article.doc_id)
        kept = self.story_meta(sorted(dropped))
        self.records.put(
            {
                f"story:{d}": {
                    **meta,
                    "copies": json.dumps(
                        [e for e in json.loads(meta.get("copies", "[]")) if e["doc_id"] not in dropped[d]]
                    ),
                }
                for d, meta in kept.items()
            }
        )
        self.records.delete(sorted(gone))
