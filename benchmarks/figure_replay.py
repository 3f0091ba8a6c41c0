"""How often the figure rule of citation checking fires on a finished eval run's answers.

Usage::

    .venv/bin/python benchmarks/figure_replay.py ../shared/eval/clapnq var/eval-full/clapnq.json [-v]

Citation checking holds that a passage which never states a sentence's figure does not support
it (``qa_bot.citations``). This replays that rule on the final answers an eval run recorded,
without the model: each kept sentence's digit figures against the figures (digits and number
words) of the articles of the run's top-4 passages. Whole articles are a wider pool than the
passages the model saw, so this counts at most as often as the rule would have fired.

It also counts, for comparison, sentences with a capitalised name (not sentence-initial) that
the same articles never mention: what a name rule, which qa-bot does not have, would drop.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_bot.citations import strip_citations  # noqa: E402
from qa_bot.text import digit_figures, figures, split_sentences  # noqa: E402

NAME = re.compile(r"(?<=\w[\s,;:(\"'])([A-Z][A-Za-z]{2,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("eval_json", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true", help="print each sentence the rule drops")
    args = parser.parse_args()
    articles = {}
    for line in (args.dataset / "corpus.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            articles[row["doc_id"]] = f"{row.get('title', '')}\n{row['text']}\n{row.get('published', '')}"
    sentences = with_figures = dropped = unnamed = 0
    for result in json.loads(args.eval_json.read_text())["per_question"]["qa-bot"]:
        if result["refused"]:
            continue
        top = set(result["retrieved"][:4])
        pool = set().union(*(figures(articles[d]) for d in top))
        words = " ".join(articles[d] for d in top).lower()
        for span in split_sentences(result["answer"]):
            claim = strip_citations(result["answer"][span.start : span.end])
            sentences += 1
            stated = digit_figures(claim)
            with_figures += bool(stated)
            if any(not (readings & pool) for readings in stated):
                dropped += 1
                if args.verbose:
                    print(f"  figure: {result['qid']}: {claim}")
            missing = [name for name in NAME.findall(claim) if name.lower() not in words]
            if missing:
                unnamed += 1
                if args.verbose:
                    print(f"  name {missing}: {result['qid']}: {claim}")
    name = args.dataset.name
    print(f"{name}: {sentences} answer sentences, {with_figures} state a figure, {dropped} would be dropped")
    print(f"{name}: {unnamed} sentences name something the retrieved articles do not")


if __name__ == "__main__":
    main()
