"""One story, many outlets: near-copies of a stored article are grouped, not indexed again.

Usage::

    from qa_bot.stories import Stories
    stories = Stories(client, "news", threshold=0.5)
    sig = stories.signature(article_text)
    stories.similar(sig)            # (story doc_id, estimated Jaccard) or None
    stories.copies_of(["doc-1"])    # {"doc-1": [Copy(source="Daily Planet", url=..., ...)]}

A wire story (AP, Reuters, AFP) republished by ten outlets is one story. Each indexed article
keeps a MinHash signature of its word 3-grams (datasketch); its locality-sensitive-hashing
bands are records of their own, ``band:<i>:<hash>``, so finding the stories that share a band
with a new article is a get by id, about 1 ms however large the archive grows, never a scan.
A candidate counts as the same story when the signatures' estimated Jaccard similarity reaches
``ingest.duplicate_threshold``; the new article is then recorded as a further source of that
story (``copy:<doc_id>``, and on the story's own record, for its source card) instead of being
indexed, so it can never fill the retrieved passages with one story told four times.

Records live in ``<collection>-stories``, beside the collection; ``--reindex`` drops them with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

STORIES = "stories"
NUM_PERM = 128
SHINGLE_WORDS = 3  # word 3-grams: a changed word alters 3 of them, not 5 (measured against 4 and 5)
# A text with fewer word 3-grams than this is never grouped nor grouped with: in the measurement
# (docs/experiments/2026-12-02-wire-copies.md) the only distinct texts above the threshold were
# stubs of about 45 words that were nearly all one shared banner; news stories are longer.
MIN_SHINGLES = 50
# Locality-sensitive hashing: 32 bands of 4 rows. A pair becomes a candidate when any band is
# equal: for a Jaccard similarity of 0.6 that is 99% of pairs, for 0.65 99.8%; datasketch's own
# choice for a 0.6 threshold (18 bands of 7) finds only 40% and 60% of them. The candidates are
# then compared on the whole signature, so the looser bands cost a few more gets by id, not errors.
BANDS, ROWS = 32, 4
_WORD = re.compile(r"\w+")


@dataclass
class Copy:
    """A further source of a story: an article grouped with the one that is indexed."""

    doc_id: str
    story: str  # the doc_id of the indexed article
    title: str = ""
    source: str = ""
    url: str = ""
    content_hash: str = ""
    origin: str = ""
    source_path: str = ""
    similarity: float = 0.0


@dataclass
class Lookup:
    """What :meth:`Stories.lookup` found for a batch: recorded copies, band owners, their signatures."""

    copies: dict[str, Copy]
    owners: dict[str, str]  # band id -> the story that first had it
    signatures: dict[str, np.ndarray]


def shingles(text: str) -> set[bytes]:
    """The article's lower-cased word 3-grams (its words, for a text shorter than three)."""
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)}


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The estimated Jaccard similarity of two MinHash signatures."""
    return float(np.mean(a == b))


class Stories:
    """The ``<collection>-stories`` records of one collection, and this run's stories not yet written."""

    def __init__(self, client: Any, collection: str, threshold: float) -> None:
        self.client = client
        self.name = f"{collection}-{STORIES}"
        self.threshold = threshold
        self.bands, self.rows = BANDS, ROWS
        self._collection: Any | None = None
        # Stories of this run whose chunks are not written yet: found by later articles of the run.
        self._pending: dict[str, np.ndarray] = {}
        self._pending_bands: dict[str, str] = {}
        self._lock = threading.Lock()  # the ingest thread finds and adds; the writer thread writes

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = self.client.get_or_create_collection(self.name, embedding_function=None)
        return self._collection

    # ------------------------------------------------------------ signatures

    def signature(self, text: str) -> np.ndarray | None:
        """The text's MinHash signature; None for a text too short to group (``MIN_SHINGLES``)."""
        from datasketch import MinHash

        grams = shingles(text)
        if len(grams) < MIN_SHINGLES:
            return None
        minhash = MinHash(num_perm=NUM_PERM, seed=1)  # a fixed seed: signatures are stored and compared later
        minhash.update_batch(sorted(grams))
        return np.asarray(minhash.hashvalues, dtype=np.uint64)

    def band_ids(self, signature: np.ndarray) -> list[str]:
        ids = []
        for band in range(self.bands):
            part = signature[band * self.rows : (band + 1) * self.rows].tobytes()
            ids.append(f"band:{band}:{hashlib.blake2b(part, digest_size=8).hexdigest()}")
        return ids

    # ------------------------------------------------------------ finding a story

    def lookup(self, doc_ids: list[str], signatures: list[np.ndarray]) -> Lookup:
        """What the store knows for a batch of new articles, in two gets by id however large the
        archive: which of them are recorded copies, and the stored stories sharing a band with any."""
        bands = sorted({b for signature in signatures for b in self.band_ids(signature)})
        got = self.collection.get(ids=[f"copy:{d}" for d in doc_ids] + bands, include=["metadatas"])
        copies: dict[str, Copy] = {}
        owners: dict[str, str] = {}
        for record_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            if record_id.startswith("copy:"):
                copies[record_id.removeprefix("copy:")] = Copy(**meta)
            else:
                owners[record_id] = str(meta["story"])
        return Lookup(copies, owners, self._signatures(sorted(set(owners.values()))))

    def similar(
        self, signature: np.ndarray, exclude: str = "", known: Lookup | None = None
    ) -> tuple[str, float] | None:
        """The most similar stored (or pending) story at or above the threshold, with its similarity.

        ``known``: a :meth:`lookup` made for a batch this signature is in; else one is made for it.
        """
        known = known if known is not None else self.lookup([], [signature])
        bands = self.band_ids(signature)
        with self._lock:
            candidates = {self._pending_bands[b] for b in bands if b in self._pending_bands}
            pending = {d: self._pending[d] for d in candidates}
        candidates |= {known.owners[b] for b in bands if b in known.owners}
        candidates.discard(exclude)
        best: tuple[str, float] | None = None
        for doc_id in sorted(candidates):
            other = pending.get(doc_id)
            other = other if other is not None else known.signatures.get(doc_id)
            if other is None:
                continue
            score = similarity(signature, other)
            if score >= self.threshold and (best is None or score > best[1]):
                best = (doc_id, score)
        return best

    def _signatures(self, doc_ids: list[str]) -> dict[str, np.ndarray]:
        with self._lock:
            found = {d: self._pending[d] for d in doc_ids if d in self._pending}
        rest = [d for d in doc_ids if d not in found]
        if rest:
            got = self.collection.get(ids=[f"story:{d}" for d in rest], include=["metadatas"])
            for record_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                found[record_id.removeprefix("story:")] = _decode(str(meta["signature"]))
        return found

    # ------------------------------------------------------------ recording

    def pending(self, doc_id: str, signature: np.ndarray) -> None:
        """A story of this run, findable at once; written by :meth:`write` once its chunks are."""
        with self._lock:
            self._pending[doc_id] = signature
            for band in self.band_ids(signature):
                self._pending_bands.setdefault(band, doc_id)

    def write(self, doc_ids: list[str]) -> None:
        """Record these pending stories (after their chunks are in the store)."""
        with self._lock:
            signatures = {d: self._pending[d] for d in doc_ids if d in self._pending}
        mine = list(signatures)
        if not mine:
            return
        bands: dict[str, str] = {}
        for doc_id in mine:
            for band in self.band_ids(signatures[doc_id]):
                bands.setdefault(band, doc_id)
        # One get: the stories' records (a re-indexed story keeps its list of copies) and the bands
        # already owned (a band keeps the first story that had it).
        got = self.collection.get(ids=[f"story:{d}" for d in mine] + sorted(bands), include=["metadatas"])
        found = dict(zip(got["ids"], got["metadatas"] or [], strict=True))
        ids = [f"story:{d}" for d in mine]
        metas: list[dict[str, Any]] = [
            {"signature": _encode(signatures[d]), "copies": (found.get(f"story:{d}") or {}).get("copies", "[]")}
            for d in mine
        ]
        new = [b for b in sorted(bands) if b not in found]
        self._upsert(ids + new, metas + [{"story": bands[b]} for b in new])
        with self._lock:  # findable in the store now
            for doc_id in mine:
                self._pending.pop(doc_id, None)
            for band in [b for b, d in self._pending_bands.items() if d in signatures]:
                del self._pending_bands[band]

    def add_copies(self, copies: list[Copy]) -> None:
        """Record further sources of stories, on the copies' own records and on each story's list."""
        if not copies:
            return
        stories = self._story_meta(sorted({c.story for c in copies}))
        listed: dict[str, list[dict[str, Any]]] = {d: json.loads(m.get("copies", "[]")) for d, m in stories.items()}
        for c in copies:
            if c.story not in stories:
                continue  # the story went meanwhile; the copy is read again as new next time
            entries = [e for e in listed[c.story] if e["doc_id"] != c.doc_id]
            listed[c.story] = [*entries, {"doc_id": c.doc_id, "title": c.title, "source": c.source, "url": c.url}]
        kept = [c for c in copies if c.story in stories]
        self._upsert(
            [f"copy:{c.doc_id}" for c in kept] + [f"story:{d}" for d in listed],
            [asdict(c) for c in kept]
            + [{**stories[d], "copies": json.dumps(listed[d], ensure_ascii=False)} for d in listed],
        )

    def copies_present(self, doc_ids: list[str]) -> set[str]:
        """Which of these articles are recorded as further sources of a story."""
        got = self.collection.get(ids=[f"copy:{d}" for d in doc_ids], include=[])
        return {i.removeprefix("copy:") for i in got["ids"]}

    def copies_of(self, doc_ids: list[str]) -> dict[str, list[Copy]]:
        """Each story's further sources (for source cards): one get by id."""
        result: dict[str, list[Copy]] = {}
        for doc_id, meta in self._story_meta(list(dict.fromkeys(doc_ids))).items():
            entries = json.loads(meta.get("copies", "[]"))
            if entries:
                result[doc_id] = [Copy(story=doc_id, **e) for e in entries]
        return result

    def copies_from(self, origins: list[str]) -> list[Copy]:
        """The copies read through these sources (for ``--prune``; not on any question's path)."""
        got = self.collection.get(where={"origin": {"$in": origins}}, include=["metadatas"])
        return [Copy(**m) for m in got["metadatas"] or [] if "story" in m and "doc_id" in m]

    def forget(self, doc_ids: list[str]) -> None:
        """Drop stories that left the store and copies whose source went. A story's copies are
        dropped with it, so the next ingest of their sources reads them as new and indexes one."""
        if not doc_ids:
            return
        # A handful of gets by id whatever the number of articles: the stories, the bands they may
        # own, the copy records, and the stories those copies belong to.
        stories = self._story_meta(doc_ids)
        gone = {f"story:{d}" for d in stories}
        for meta in stories.values():
            gone |= {f"copy:{e['doc_id']}" for e in json.loads(meta.get("copies", "[]"))}
        bands = sorted({b for meta in stories.values() for b in self.band_ids(_decode(str(meta["signature"])))})
        owned = self.collection.get(ids=bands, include=["metadatas"]) if bands else {"ids": [], "metadatas": []}
        gone |= {b for b, m in zip(owned["ids"], owned["metadatas"] or [], strict=True) if m["story"] in stories}
        copies = self.collection.get(ids=[f"copy:{d}" for d in doc_ids], include=["metadatas"])["metadatas"] or []
        gone |= {f"copy:{m['doc_id']}" for m in copies}
        # The copies' own stories, when they stay, lose those copies from their lists.
        dropped: dict[str, set[str]] = {}
        for m in copies:
            if m["story"] not in stories:
                dropped.setdefault(str(m["story"]), set()).add(str(m["doc_id"]))
        kept = self._story_meta(sorted(dropped))
        self._upsert(
            [f"story:{d}" for d in kept],
            [
                {
                    **meta,
                    "copies": json.dumps(
                        [e for e in json.loads(meta.get("copies", "[]")) if e["doc_id"] not in dropped[d]]
                    ),
                }
                for d, meta in kept.items()
            ],
        )
        if gone:
            self.collection.delete(ids=sorted(gone))

    # ------------------------------------------------------------ records

    def _story_meta(self, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not doc_ids:
            return {}
        got = self.collection.get(ids=[f"story:{d}" for d in doc_ids], include=["metadatas"])
        return {i.removeprefix("story:"): dict(m) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)}

    def _upsert(self, ids: list[str], metas: list[dict[str, Any]]) -> None:
        for start in range(0, len(ids), 1000):
            end = start + 1000
            self.collection.upsert(
                ids=ids[start:end], embeddings=[[0.0]] * len(ids[start:end]), metadatas=metas[start:end]
            )


def _encode(signature: np.ndarray) -> str:
    return base64.b64encode(signature.astype("<u8").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<u8").astype(np.uint64)
