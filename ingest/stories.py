"""One story, many outlets: near-copies of a stored article are grouped, not indexed again.

Usage::

    from ingest.stories import Grouping
    grouping = Grouping(archive.stories, threshold=0.5)
    sig = grouping.signature(article_text)
    grouping.similar(sig)            # (story doc_id, estimated Jaccard) or None

Each indexed article keeps a MinHash signature of its word 3-grams (datasketch), and its LSH
bands are records of their own (``qa_bot.archive.stories``), so the stories sharing a band with
a new article are found by id. A candidate counts as the same story when the signatures'
estimated Jaccard similarity reaches ``ingest.duplicate_threshold``; the new article is then
recorded as a further source of that story instead of being indexed, so it can never fill the
retrieved passages with one story told four times.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np

from qa_bot.archive.stories import Copy, StoryRecords, band_ids

NUM_PERM = 128
SHINGLE_WORDS = 3  # word 3-grams: a changed word alters 3 of them, not 5 (measured against 4 and 5)
# A text with fewer word 3-grams than this is never grouped nor grouped with: in the measurement
# (docs/experiments/2026-12-02-wire-copies.md) the only distinct texts above the threshold were
# stubs of about 45 words that were nearly all one shared banner; news stories are longer.
MIN_SHINGLES = 50
_WORD = re.compile(r"\w+")


@dataclass
class Lookup:
    """What :meth:`Grouping.lookup` found for a batch: recorded copies, band owners, their signatures."""

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


class Grouping:
    """Finds the story a new article copies, over the stored stories and this run's not yet written."""

    def __init__(self, records: StoryRecords, threshold: float) -> None:
        self.records = records
        self.threshold = threshold
        # Stories of this run whose chunks are not written yet: found by later articles of the run.
        self._pending: dict[str, np.ndarray] = {}
        self._pending_bands: dict[str, str] = {}
        self._lock = threading.Lock()  # the ingest thread finds and adds; the writer thread writes

    def signature(self, text: str) -> np.ndarray | None:
        """The text's MinHash signature; None for a text too short to group (``MIN_SHINGLES``)."""
        from datasketch import MinHash

        grams = shingles(text)
        if len(grams) < MIN_SHINGLES:
            return None
        minhash = MinHash(num_perm=NUM_PERM, seed=1)  # a fixed seed: signatures are stored and compared later
        minhash.update_batch(sorted(grams))
        return np.asarray(minhash.hashvalues, dtype=np.uint64)

    def lookup(self, doc_ids: list[str], signatures: list[np.ndarray]) -> Lookup:
        """What the store knows for a batch of new articles, in a few gets by id however large the
        archive: which of them are recorded copies, and the stored stories sharing a band with any."""
        bands = sorted({b for signature in signatures for b in band_ids(signature)})
        owners = self.records.band_owners(bands)
        return Lookup(self.records.copies(doc_ids), owners, self._signatures(sorted(set(owners.values()))))

    def similar(
        self, signature: np.ndarray, exclude: str = "", known: Lookup | None = None
    ) -> tuple[str, float] | None:
        """The most similar stored (or pending) story at or above the threshold, with its similarity.

        ``known``: a :meth:`lookup` made for a batch this signature is in; else one is made for it.
        """
        known = known if known is not None else self.lookup([], [signature])
        bands = band_ids(signature)
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
        return found | (self.records.signatures(rest) if rest else {})

    def pending(self, doc_id: str, signature: np.ndarray) -> None:
        """A story of this run, findable at once; written by :meth:`write` once its chunks are."""
        with self._lock:
            self._pending[doc_id] = signature
            for band in band_ids(signature):
                self._pending_bands.setdefault(band, doc_id)

    def write(self, doc_ids: list[str]) -> None:
        """Record these pending stories (after their chunks are in the store)."""
        with self._lock:
            signatures = {d: self._pending[d] for d in doc_ids if d in self._pending}
        if not signatures:
            return
        bands: dict[str, str] = {}
        for doc_id, signature in signatures.items():
            for band in band_ids(signature):
                bands.setdefault(band, doc_id)
        self.records.put_stories(signatures, bands)
        with self._lock:  # findable in the store now
            for doc_id in signatures:
                self._pending.pop(doc_id, None)
            for band in [b for b, d in self._pending_bands.items() if d in signatures]:
                del self._pending_bands[band]
