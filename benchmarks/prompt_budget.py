"""How many prompt tokens the passages cost, and whether the answer's evidence gets into them.

Usage::

    .venv/bin/python benchmarks/prompt_budget.py [--sets squad2 clapnq] [--budgets 350 300 250 230]
    .venv/bin/python benchmarks/prompt_budget.py --budgets 350 --margins 0.35 0.25 0.2

For every question of each set, the passages are those ``QABot`` retrieves; their text for the
prompt is chosen several ways at each budget (``generation.prompt_tokens``, in the embedder's
tokens): ``even``, every passage with an even share of the budget (each its closest sentences
within its share); ``shared``, one budget for all passages, each keeping its closest sentence
(tried in the bot at 681e11f and reverted: README "Known limits"); with ``--margins``,
``margin M``, the bot's own selection (``QABot._shown``: passages whose evidence is more than
M below the best one's are left out, unless they come from the best one's article, and their
share is saved), and ``plain M``, the same without the article rule. No model writes
anything, so the comparison takes a minute or two. Printed per set and budget: the passages'
length in the LLM's tokens (p50, mean; the first token waits for these) and, over the
answerable questions, the share whose evidence reached the prompt: clapnq's gold sentences
(each counted when 80 % of its content words are there, averaged per question), or else the
reference answer verbatim (SQuAD's short spans). Needs the stores built by
benchmarks/retrieval_recall.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_bot import QABot  # noqa: E402
from qa_bot.bot import INSTRUCTION_LIKE  # noqa: E402
from qa_bot.citations import PassageSentences, content_words  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402
from ui.evaluate import load_questions, normalise  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


Selection = Callable[[QABot, str, list[PassageSentences], np.ndarray, int], list[str]]


def even_split(
    bot: QABot, question: str, prepared: list[PassageSentences], q_vec: np.ndarray, budget: int
) -> list[str]:
    """Every passage, the budget divided evenly, each passage its closest sentences."""
    bot.settings.generation.prompt_tokens = budget
    return bot._passage_texts(prepared, q_vec)


def shared(bot: QABot, question: str, prepared: list[PassageSentences], q_vec: np.ndarray, budget: int) -> list[str]:
    """One budget for all passages: each keeps its closest sentence, the rest go to the closest anywhere.

    Tried in QABot at commit 681e11f and reverted (README "Known limits").
    """
    candidates = [
        (float(ps.vectors[i] @ q_vec), n, i)
        for n, ps in enumerate(prepared)
        for i in range(len(ps.spans))
        if not INSTRUCTION_LIKE.search(ps.sentence(i))
    ]
    candidates.sort(key=lambda c: -c[0])
    lengths = bot.embedder.count_tokens([prepared[n].sentence(i) for _, n, i in candidates])
    chosen: list[set[int]] = [set() for _ in prepared]
    used = 0
    for first_pass in (True, False):
        for (_, n, i), length in zip(candidates, lengths, strict=True):
            if (first_pass and not chosen[n]) or (not first_pass and i not in chosen[n] and used + length <= budget):
                chosen[n].add(i)
                used += length
    return [" ".join(ps.sentence(i) for i in sorted(c)) for ps, c in zip(prepared, chosen, strict=True)]


def by_margin(value: float, article_rule: bool = True) -> Selection:
    """The bot's selection with ``generation.passage_margin`` = value (without the article rule: plain)."""

    def select(
        bot: QABot, question: str, prepared: list[PassageSentences], q_vec: np.ndarray, budget: int
    ) -> list[str]:
        bot.settings.generation.prompt_tokens = budget
        bot.settings.generation.passage_margin = value
        evidence = bot._evidence(question, q_vec, prepared)
        if article_rule:
            shown = bot._shown(prepared, evidence)
        else:
            shown = [ps for ps, e in zip(prepared, evidence, strict=True) if e >= max(evidence) - value]
        return bot._passage_texts(shown, q_vec, bot._share(len(prepared)))

    return select


def evidence_in(question: dict, text: str) -> float:
    if question.get("gold_sentences"):
        words = set(content_words(text))
        found = [len(g & words) >= 0.8 * len(g) for g in (set(content_words(s)) for s in question["gold_sentences"])]
        return float(np.mean(found))
    return float(any(normalise(a) in normalise(text) for a in question["answers"]))


def run(name: str, budgets: list[int], margins: list[float]) -> None:
    base = load_settings(ROOT / "config.yaml")
    store = base.store.model_copy(update={"path": ROOT / "var" / "bench" / f"{name}-128-32-1"})
    bot = QABot(base.model_copy(update={"store": store}))
    figures: dict[tuple[str, int], tuple[list[int], list[float]]] = {}
    selections: list[tuple[str, Selection]] = [("even", even_split), ("shared", shared)]
    for m in margins:
        selections += [(f"margin {m:.2f}", by_margin(m)), (f"plain {m:.2f}", by_margin(m, article_rule=False))]
    for q in load_questions(EVAL / name, None):
        prepared = bot.scorer.prepare(bot.retrieve(q["question"]))
        q_vec = np.asarray(bot.embedder.embed([q["question"]]), dtype=np.float32)[0]
        for budget in budgets:
            for label, select in selections:
                text = "\n".join(select(bot, q["question"], prepared, q_vec, budget))
                tokens, found = figures.setdefault((label, budget), ([], []))
                tokens.append(bot.generator.count_tokens(text))
                if q["answerable"]:
                    found.append(evidence_in(q, text))
    for (label, budget), (tokens, found) in sorted(figures.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        print(
            f"{name:10s} {label:12s} {budget:4d}  LLM tokens p50 {statistics.median(tokens):5.0f} "
            f"mean {np.mean(tokens):5.0f}   evidence in prompt {np.mean(found):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["squad2", "clapnq"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[350, 300, 250, 230])
    parser.add_argument("--margins", nargs="*", type=float, default=[])
    args = parser.parse_args()
    for name in args.sets:
        run(name, args.budgets, args.margins)


if __name__ == "__main__":
    main()
