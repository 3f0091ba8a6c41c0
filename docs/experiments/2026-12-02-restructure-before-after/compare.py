"""Before/after of issue 21: the same answers, refusals and citations, question by question."""

import json
from pathlib import Path

FIELDS = ("answer", "refused", "cited", "retrieved", "unsupported", "kept_sentences", "answer_score", "early_score")
KEYS = (
    "recall@4",
    "mrr@10",
    "answer_score_all",
    "citation_precision",
    "citation_recall",
    "unsupported_sentence_share",
    "early_answer_score_all",
    "refused_unanswerable",
    "refused_answerable",
)
for name in ("squad2", "clapnq", "ares-news"):
    a = json.loads(Path(f"docs/experiments/2026-12-02-restructure-before-after/before-{name}.json").read_text())
    b = json.loads(Path(f"docs/experiments/2026-12-02-restructure-before-after/after-{name}.json").read_text())
    qa, qb = a["per_question"]["qa-bot"], b["per_question"]["qa-bot"]
    assert [r["qid"] for r in qa] == [r["qid"] for r in qb]
    diffs = [(r["qid"], f) for r, s in zip(qa, qb, strict=True) for f in FIELDS if r[f] != s[f]]
    scores = [
        (r["qid"], k)
        for r, s in zip(qa, qb, strict=True)
        for k in set(r["scores"]) | set(s["scores"])
        if abs(r["scores"].get(k, -1) - s["scores"].get(k, -1)) > 1e-9
    ]
    print(f"{name}: {len(qa)} questions; differing fields: {diffs or 'none'}; differing scores: {scores or 'none'}")
    for k in KEYS:
        print(f"  {k:28} before {a['qa-bot'][k]!s:>8}  after {b['qa-bot'][k]!s:>8}")
    for k in ("first_token", "answer"):
        print(
            f"  latency {k} p50 (s)        before {a['qa-bot']['latency_s'][k]['p50']!s:>8}  after {b['qa-bot']['latency_s'][k]['p50']!s:>8}"
        )
