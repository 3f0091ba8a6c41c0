"""How well the yes/no answerability check separates answerable from unanswerable questions.

Usage::

    .venv/bin/python benchmarks/answerability.py --sets squad2 clapnq --limit 40

For each question of a seeded sample (the same sample as ``qa-bot eval --limit N``), the
passages and prompt are exactly those ``QABot.stream`` builds; each candidate wording is
appended to the prompt and the model's P(yes) read from its logits. The prompt's passages
stay in the KV cache, so every extra wording costs only its own tokens. Prints, per wording,
the AUC (answerable above unanswerable) and the threshold that refuses the most unanswerable
questions while refusing at most 10 % of the answerable ones, with the evidence gate applied
first as in the bot. Needs the stores built by benchmarks/retrieval_recall.py.

Two arms that were tried and not kept (README "Known limits"):

- ``--demo``: a worked example of answering and declining, appended to the system prompt.
  The system prompt stays in the KV cache between questions, so it would cost no time.
- ``--confidence``: the model also writes its answer (greedy, as the bot does), and the mean
  entropy of its next-token distributions is read while it writes: a model unsure of an
  answer the passages lack might show it. Printed: its AUC, and the most unanswerable
  questions refused at no more than 10 % of the answerable ones when it is added to the gate,
  the check and the model's own refusals (both thresholds searched). llama_cpp backend only.
  With ``--fit-on N`` (and ``--limit 0``, every question) the thresholds are searched on the
  N-question sample that ``--limit N`` reads and applied, as found, to the other questions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_bot import QABot  # noqa: E402
from qa_bot.bot import ANSWERABLE_CHECK, with_line  # noqa: E402
from qa_bot.citations import looks_like_refusal  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402
from ui.evaluate import load_questions  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
WORDINGS = {
    "state": "\n\nDo the passages state the answer to this question? Reply yes or no.",
    "exact": "\n\nIs the answer to this exact question stated in the passages? Check that the passages "
    "talk about the same thing the question asks about. Reply yes or no.",
    "specific (default)": ANSWERABLE_CHECK,
    "facts": "\n\nReply yes or no: can the question be answered using only facts written in the passages?",
}
MEAN = "mean(specific, state)"
ENTROPY = "answer entropy"
# Made up, so that no evaluation set leaks into the prompt.
DEMO = (
    "\n\nAn example of passages and of answers to questions about them.\n"
    "Passages:\n<<<\n[1] Harbour town opens its new bridge (Coast News, 2024-03-05)\n"
    "The Kestrel Bridge opened on Tuesday after three years of work. Mayor Ana Ruiz said it cost "
    "40 million euros, paid by the region.\n>>>\n"
    "Question: How much did the Kestrel Bridge cost? Answer: It cost 40 million euros [1].\n"
    "Question: How much did the Kestrel Tunnel cost? Answer: The articles do not say; they are about a bridge.\n"
    "Question: Who paid for the bridge before Ruiz became mayor? Answer: The articles do not say.\n"
    "A question that changes a name, a date or a detail of the passages is not answered by them."
)


def bench_bot(name: str) -> QABot:
    """A bot over the set's store as benchmarks/retrieval_recall.py built it, default settings."""
    base = load_settings(ROOT / "config.yaml")
    store = base.store.model_copy(update={"path": ROOT / "var" / "bench" / f"{name}-128-32-1"})
    return QABot(base.model_copy(update={"store": store}))


def prompt(bot: QABot, question: str, passages: list | None = None) -> tuple[list[dict], float]:
    """The messages ``QABot.stream`` builds for a question (over ``passages`` if given), and its evidence."""
    passages = bot.retrieve(question) if passages is None else passages
    prepared = bot.scorer.prepare(passages)
    q_vec = np.asarray(bot.embedder.embed([question]), dtype=np.float32)[0]
    evidence = bot._evidence(question, q_vec, prepared)
    _, messages = bot._prompt(question, q_vec, prepared, evidence, None)
    return messages, max(evidence)


def readings(name: str, limit: int, demo: bool = False, confidence: bool = False) -> list[dict]:
    bot = bench_bot(name)
    rows = []
    for q in load_questions(EVAL / name, limit):
        messages, evidence = prompt(bot, q["question"])
        if demo:
            messages[0] = {**messages[0], "content": messages[0]["content"] + DEMO}
        row = {"qid": q["qid"], "answerable": q["answerable"], "evidence": evidence}
        for label, wording in WORDINGS.items():
            row[label] = bot.generator.yes_probability(with_line(messages, wording))
        row[MEAN] = (row["specific (default)"] + row["state"]) / 2  # two readings, one more line's cost
        if confidence:
            row[ENTROPY], row["model refused"] = answer_entropy(bot, messages)
        rows.append(row)
        print(".", end="", flush=True, file=sys.stderr)
    return rows


def answer_entropy(bot: QABot, messages: list[dict]) -> tuple[float, bool]:
    """Minus the mean entropy of the model's next-token distributions while it answers."""
    from llama_cpp import LogitsProcessorList

    entropies: list[float] = []

    def record(_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        logp = scores.astype(np.float64) - np.logaddexp.reduce(scores.astype(np.float64))
        entropies.append(float(-(np.exp(logp) * logp).sum()))
        return scores  # greedy decoding is unchanged

    def write() -> str:
        reply = bot.generator.llm.create_chat_completion(
            messages=messages,
            max_tokens=bot.settings.generation.max_tokens,
            temperature=0.0,
            logits_processor=LogitsProcessorList([record]),
        )
        return reply["choices"][0]["message"]["content"] or ""

    text = bot.generator._worker.submit(write).result()  # llama.cpp's own thread, as the bot uses it
    steps = entropies[:-1] or entropies  # the last step only ends the reply
    return -float(np.mean(steps)), looks_like_refusal(text)


def with_entropy(
    rows: list[dict], gate: float, strong: float, entropy: bool = True
) -> tuple[float, float, float, float]:
    """Check and entropy thresholds together: the most unanswerable refused at <= 10 % answerable."""
    best = (0.0, -np.inf, 0.0, 0.0)
    floors = [-np.inf, *sorted({r[ENTROPY] for r in rows})] if entropy else [-np.inf]
    for th in np.arange(0.30, 0.80, 0.02):
        for floor in floors:
            u, a = refusals(rows, gate, strong, float(th), floor)
            if a <= 0.10 and u > best[2]:
                best = (float(th), float(floor), u, a)
    return best


def refusals(rows: list[dict], gate: float, strong: float, th: float, floor: float) -> tuple[float, float]:
    """Unanswerable and answerable refused by the gate, the check, the model, and the entropy floor."""
    return rates(
        rows,
        [
            r["evidence"] < gate
            or r["specific (default)"] < th
            or (r["model refused"] and r["evidence"] < strong)
            or r[ENTROPY] < floor
            for r in rows
        ],
    )


def rates(rows: list[dict], refused: list[bool]) -> tuple[float, float]:
    """The share of unanswerable and of answerable questions refused."""
    u = np.mean([x for x, r in zip(refused, rows, strict=True) if not r["answerable"]])
    return float(u), float(np.mean([x for x, r in zip(refused, rows, strict=True) if r["answerable"]]))


def held_out(rows: list[dict], gate: float, strong: float) -> None:
    """Thresholds searched on the fitting sample, then applied as found to the other questions."""
    fit, rest = [r for r in rows if r["fit"]], [r for r in rows if not r["fit"]]
    print(f"\nthresholds fitted on {len(fit)} questions, applied to the other {len(rest)}:")
    for label, entropy in ((f"with {ENTROPY}", True), ("without it", False)):
        th, floor, u, a = with_entropy(fit, gate, strong, entropy)
        other_u, other_a = refusals(rest, gate, strong, th, floor)
        print(f"  {label}: P(yes) < {th:.2f}, entropy floor {floor:.2f}; fitted {u:.2f} / {a:.2f}")
        print(f"  {'':20} other questions: unanswerable refused {other_u:.2f}, answerable refused {other_a:.2f}")


def auc(rows: list[dict], key: str) -> float:
    pos = [r[key] for r in rows if r["answerable"]]
    neg = [r[key] for r in rows if not r["answerable"]]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


def best_threshold(rows: list[dict], key: str, gate: float) -> tuple[float, float, float]:
    best = (0.0, 0.0, 0.0)
    for th in np.arange(0.30, 0.80, 0.01):
        u, a = rates(rows, [r["evidence"] < gate or r[key] < th for r in rows])
        if a <= 0.10 and u > best[1]:
            best = (float(th), float(u), float(a))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["squad2", "clapnq"])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--demo", action="store_true", help="a worked example in the system prompt")
    parser.add_argument("--confidence", action="store_true", help="also write answers and read their entropy")
    parser.add_argument("--fit-on", type=int, help="with --confidence: search thresholds on this sample only")
    args = parser.parse_args()
    answer = load_settings(ROOT / "config.yaml").answer
    gate = answer.refuse_below
    every = []
    for name in args.sets:
        rows = readings(name, args.limit, args.demo, args.confidence)
        if args.fit_on:
            sample = {q["qid"] for q in load_questions(EVAL / name, args.fit_on)}
            rows = [{**r, "fit": r["qid"] in sample} for r in rows]
        every += rows
        print(f"\n{name}: {len(rows)} questions, {sum(r['answerable'] for r in rows)} answerable")
        print(f"  evidence score alone: AUC {auc(rows, 'evidence'):.3f}")
        for label in [*WORDINGS, MEAN] + ([ENTROPY] if args.confidence else []):
            print(f"  {label:20} AUC {auc(rows, label):.3f}")
    print(f"\npooled ({len(every)} questions), evidence gate {gate} first, answerable refused <= 10 %:")
    for label in [*WORDINGS, MEAN]:
        th, u, a = best_threshold(every, label, gate)
        print(f"  {label:20} P(yes) < {th:.2f}: unanswerable refused {u:.2f}, answerable refused {a:.2f}")

    if args.confidence and args.fit_on:
        held_out(every, gate, answer.strong_evidence)
    elif args.confidence:
        th, floor, u, a = with_entropy(every, gate, answer.strong_evidence)
        print(f"  with the model's refusals (as the bot) and {ENTROPY} < {floor:.2f}, P(yes) < {th:.2f}:")
        print(f"  {'':20} unanswerable refused {u:.2f}, answerable refused {a:.2f}")
        th, _, u, a = with_entropy(every, gate, answer.strong_evidence, entropy=False)
        print(f"  the same without it, P(yes) < {th:.2f}: unanswerable refused {u:.2f}, answerable refused {a:.2f}")


if __name__ == "__main__":
    main()
