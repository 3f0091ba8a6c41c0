"""Follow-up questions over the sample article: does the answer answer the follow-up?

Usage::

    .venv/bin/python benchmarks/follow_ups.py            # the bot as it is
    .venv/bin/python benchmarks/follow_ups.py --as-turn  # the earlier prompt: the last turn as a chat turn

Each pair's first question is asked alone, then the follow-up with that exchange as history,
over a fresh store holding only data/articles (var/bench/follow-ups). Printed for each: the
refusal, the probe's reading and the answer, with whether it quotes what the follow-up asks
for (``expect``: a phrase of the sample article that a right answer carries, None where the
article does not say). ``--as-turn`` puts the earlier question and answer before the
passages as a user and an assistant message, as the bot did until 2026-11-28.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import ingest  # noqa: E402
from qa_bot import QABot  # noqa: E402
from qa_bot.citations import strip_citations  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402

# (first question, follow-up, a phrase of the right answer or None when the article lacks it)
PAIRS = [
    ("Why did Putin praise Trump?", "What did he say about Ukraine?", "24 hours"),
    ("Why did Putin praise Trump?", "What did the Kremlin say about the 24 hours claim?", "concrete actions"),
    ("Who congratulated Trump on his victory?", "When did he do it?", "Thursday"),
    ("Who won the 2022 World Cup?", "What did Putin say about Ukraine?", "24 hours"),
    ("What did Putin say about Trump's bravery?", "And about relations between the US and Russia?", "relations"),
    ("Who praised Trump's courage?", "Where did he speak?", "Sochi"),
    ("Why did Putin praise Trump?", "Who won the 2022 World Cup?", None),
]


def as_turn(original: Callable[..., list[dict]]) -> Callable[..., list[dict]]:
    """QABot._messages as it was: the last exchange as a user and an assistant message."""

    def messages(self: QABot, question: str, q_vec: Any, prepared: list, history: Any, share: Any = None) -> list[dict]:
        out = original(self, question, q_vec, prepared, None, share)
        if history:
            last_q, last_a = history[-1]
            turn = [
                {"role": "user", "content": last_q},
                {"role": "assistant", "content": strip_citations(last_a)[:400]},
            ]
            out = out[:1] + turn + out[1:]
        return out

    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-turn", action="store_true", help="the earlier prompt format, for comparison")
    args = parser.parse_args()
    base = load_settings(ROOT / "config.yaml")
    settings = base.model_copy(
        update={"store": base.store.model_copy(update={"path": ROOT / "var" / "bench" / "follow-ups"})}
    )
    ingest([str(ROOT / "data" / "articles")], settings)
    bot = QABot(settings)
    firsts = {q: bot.ask(q).text for q in dict.fromkeys(q for q, _, _ in PAIRS)}
    if args.as_turn:
        QABot._messages = as_turn(QABot._messages)  # type: ignore[method-assign]
    right = 0
    for first, follow_up, expect in PAIRS:
        answer = bot.ask(follow_up, history=[(first, firsts[first])])
        ok = answer.refused if expect is None else (not answer.refused and expect.lower() in answer.text.lower())
        right += ok
        probe = answer.scores.get("probe")
        print(f"{'right' if ok else 'WRONG'}  {first!r} -> {follow_up!r}")
        print(f"       refused={answer.refused} probe={probe if probe is None else round(probe, 2)}: {answer.text}")
    print(f"{right} of {len(PAIRS)} follow-ups answered as expected")


if __name__ == "__main__":
    main()
