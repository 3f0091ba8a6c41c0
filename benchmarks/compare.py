"""Two eval runs side by side, on the questions both asked, as a Markdown table.

Usage::

    .venv/bin/python benchmarks/compare.py var/eval-full/squad2.json var/base-full/squad2.json

Each file is the ``--json`` output of ``qa-bot eval``; the first system found in each (qa-bot,
else langchain) is compared. Figures are recomputed from the per-question results with the same
``summarise`` as ``qa-bot eval``, restricted to the questions in both runs, so a full qa-bot run
can be read against a baseline run on a sample of the same set.

Below the table, over the questions answered in both runs, the per-question median change of
the first token's wait and of the writing time (answer minus first token): this machine's
speed drifts by a third between runs, and a change that moved only the prompt should move
the first column, not the second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ui.evaluate import Result, recorded_results, summarise  # noqa: E402

ROWS = [
    ("recall@4", "recall@4"),
    ("MRR@10", "mrr@10"),
    ("answer score (answered)", "answer_score_answered"),
    ("answer score (all answerable)", "answer_score_all"),
    ("citation precision", "citation_precision"),
    ("citation recall", "citation_recall"),
    ("unsupported sentences", "unsupported_sentence_share"),
    ("unanswerable refused", "refused_unanswerable"),
    ("answerable refused", "refused_answerable"),
]
LATENCY = [("first token", "first_token", 1, 1), ("answer", "answer", 1, 1), ("retrieval", "retrieval", 1000, 0)]


def load(path: Path) -> tuple[str, dict[str, Result], int]:
    run = json.loads(path.read_text())
    system = next(s for s in ("qa-bot", "langchain") if s in run["per_question"])
    return system, {r.qid: r for r in recorded_results(run, system)}, run["k"]


def table(columns: list[tuple[str, dict[str, Any]]]) -> str:
    lines = ["| metric | " + " | ".join(name for name, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    lines.append(
        "| questions (answerable) | " + " | ".join(f"{f['questions']} ({f['answerable']})" for _, f in columns) + " |"
    )
    for label, key in ROWS:
        lines.append(f"| {label} | " + " | ".join(_fmt(f[key]) for _, f in columns) + " |")
    for label, key, scale, digits in LATENCY:
        unit = "ms" if scale == 1000 else "s"
        cells = [
            f"{f['latency_s'][key]['p50'] * scale:.{digits}f} / {f['latency_s'][key]['p95'] * scale:.{digits}f}"
            for _, f in columns
        ]
        lines.append(f"| {label} p50 / p95 ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_change(a: dict[str, Result], b: dict[str, Result], common: list[str]) -> str:
    both = [
        (a[q].timings, b[q].timings) for q in common if "first_token" in a[q].timings and "first_token" in b[q].timings
    ]
    if not both:
        return "no question was answered in both runs"
    first = statistics.median(y["first_token"] - x["first_token"] for x, y in both)
    writing = statistics.median((y["answer"] - y["first_token"]) - (x["answer"] - x["first_token"]) for x, y in both)
    return (
        f"{len(both)} questions answered in both runs; per-question median change, second run minus first: "
        f"first token {first:+.2f} s, writing {writing:+.2f} s"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs=2, metavar="EVAL_JSON")
    args = parser.parse_args()
    (name_a, a, k), (name_b, b, _) = load(args.runs[0]), load(args.runs[1])
    common = [qid for qid in a if qid in b]
    print(f"{len(common)} questions in both runs ({len(a)} and {len(b)})\n")
    label_a, label_b = (
        f"{name} ({path.parent.name}/{path.name})" for name, path in zip((name_a, name_b), args.runs, strict=True)
    )
    columns = [(label_a, summarise([a[q] for q in common], k)), (label_b, summarise([b[q] for q in common], k))]
    print(table(columns))
    print("\n" + paired_change(a, b, common))


if __name__ == "__main__":
    main()
