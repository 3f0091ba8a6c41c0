"""How similar wire copies are, and how similar distinct stories are: the threshold for
``ingest.duplicate_threshold``. Run from the repository root:

    .venv/bin/python docs/experiments/2026-12-02-wire-copies/measure.py [--shingle-words 3] > var/wire-copies.json

Positives: every article of ../shared/eval/ares-news (CNN / Daily Mail) and the sample article,
each under the edits outlets make to a wire story. Negatives: every pair of distinct documents
in the three eval corpora (squad2 and clapnq hold many paragraphs of one Wikipedia article:
same topic, different text); pairs above 0.3 are printed to be read by eye, since a corpus
may itself hold real copies.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

import numpy as np

import qa_bot.stories
from qa_bot.stories import MIN_SHINGLES, Stories, shingles

ROOT = Path(__file__).resolve().parents[3]
EVAL = ROOT.parent / "shared" / "eval"
THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]  # the shipped ingest.duplicate_threshold is 0.6


def paragraphs(text: str) -> list[str]:
    parts = [p for p in text.split("\n") if p.strip()]
    if len(parts) > 2:
        return parts
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences), 2)]


def substitute(text: str, share: float, rng: random.Random) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), max(1, int(len(words) * share))):
        words[i] = (
            rng.choice(["said", "told", "new", "also", "officials", "on"]) if rng.random() < 0.5 else words[i] + "s"
        )
    return " ".join(words)


def trim(text: str, share: float) -> str:
    parts = paragraphs(text)
    keep = max(1, round(len(parts) * (1 - share)))
    return "\n".join(parts[:keep])


def chrome(text: str) -> str:
    return f"LONDON (Wire) - {text}\n(Reporting by Jane Doe; Editing by Al Roe)\nOur Standards: The Trust Principles."


def edits(text: str, rng: random.Random) -> dict[str, str]:
    return {
        "exact copy": text,
        "dateline and credit line added": chrome(text),
        "last 20% of paragraphs cut": trim(text, 0.2),
        "last 40% of paragraphs cut": trim(text, 0.4),
        "3% of words changed": substitute(text, 0.03, rng),
        "credit line, 20% cut, 3% of words changed": substitute(chrome(trim(text, 0.2)), 0.03, rng),
        "a local paragraph added (+25%)": text + "\n" + substitute(text[: len(text) // 4], 0.5, rng),
    }


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / max(1, len(sa | sb))


def _signature(stories: Stories, text: str) -> np.ndarray:
    """The signature the store would keep, made for short texts too (to measure them)."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=128, seed=1)
    minhash.update_batch(sorted(shingles(text)))
    return np.asarray(minhash.hashvalues, dtype=np.uint64)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shingle-words", type=int, default=qa_bot.stories.SHINGLE_WORDS)
    qa_bot.stories.SHINGLE_WORDS = parser.parse_args().shingle_words  # read by shingles() at each call
    rng = random.Random(0)
    stories = Stories(client=None, collection="measure", threshold=0.6)  # signatures and bands only: no store
    names = ("ares-news", "squad2", "clapnq")
    corpora = {name: [json.loads(line) for line in (EVAL / name / "corpus.jsonl").open()] for name in names}
    sample = (ROOT / "data" / "articles" / "putin-congratulates-trump.txt").read_text()
    originals = [d["text"] for d in corpora["ares-news"]] + [sample]
    positives: dict[str, list[tuple[float, float]]] = {}
    for text in originals:
        sig = _signature(stories, text)
        for kind, copy in edits(text, rng).items():
            other = _signature(stories, copy)
            est = float(np.mean(sig == other))
            # Found at all only when a band is shared (the LSH step), then judged on the estimate.
            candidate = bool(set(stories.band_ids(sig)) & set(stories.band_ids(other)))
            positives.setdefault(kind, []).append((est, jaccard(text, copy), candidate))
    result: dict = {"positives": {}, "negatives": {}, "pairs_above_0.3": []}
    for kind, values in positives.items():
        est = np.array([v[0] for v in values])
        result["positives"][kind] = {
            "n": len(values),
            "estimate_min": round(float(est.min()), 3),
            "estimate_p5": round(float(np.percentile(est, 5)), 3),
            "estimate_median": round(float(np.median(est)), 3),
            "exact_jaccard_median": round(float(np.median([v[1] for v in values])), 3),
            "grouped_at": {str(t): round(float(np.mean(est >= t)), 4) for t in THRESHOLDS},
            "found_by_bands": round(float(np.mean([v[2] for v in values])), 4),
            "grouped_at_0.6_end_to_end": round(float(np.mean([v[2] and v[0] >= 0.6 for v in values])), 4),
        }
    for name, docs in corpora.items():
        # Texts under MIN_SHINGLES are never grouped; their pairs are counted apart.
        long_enough = np.array([len(shingles(d["text"])) >= MIN_SHINGLES for d in docs])
        sigs = np.stack([_signature(stories, d["text"]) for d in docs])
        n = len(docs)
        best = np.zeros(n)
        counts = dict.fromkeys(THRESHOLDS, 0)
        grouped_counts = dict.fromkeys(THRESHOLDS, 0)
        pairs = 0
        for i in range(n):
            sims = (sigs[i + 1 :] == sigs[i]).mean(axis=1)
            pairs += len(sims)
            both = long_enough[i] & long_enough[i + 1 :]
            for t in THRESHOLDS:
                counts[t] += int((sims >= t).sum())
                grouped_counts[t] += int(((sims >= t) & both).sum())
            for j in np.nonzero(sims >= 0.3)[0]:
                k = i + 1 + int(j)
                result["pairs_above_0.3"].append(
                    {
                        "corpus": name,
                        "a": docs[i]["doc_id"],
                        "b": docs[k]["doc_id"],
                        "estimate": round(float(sims[j]), 3),
                        "exact": round(jaccard(docs[i]["text"], docs[k]["text"]), 3),
                        "both_long_enough": bool(long_enough[i] and long_enough[k]),
                        "a_text": docs[i]["text"][:160],
                        "b_text": docs[k]["text"][:160],
                    }
                )
            if len(sims):
                best[i] = max(best[i], sims.max())
        result["negatives"][name] = {
            "docs": n,
            "pairs": pairs,
            "short_docs": int((~long_enough).sum()),
            "pairs_at_or_above": {str(t): counts[t] for t in THRESHOLDS},
            "pairs_at_or_above_both_long_enough": {str(t): grouped_counts[t] for t in THRESHOLDS},
            "highest_estimate": round(float(best.max()), 3),
        }
    json.dump(result, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
