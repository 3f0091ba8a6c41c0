"""Does the answerability probe learn more from SQuAD 2.0-style unanswerable questions made by rule?

Usage::

    .venv/bin/python benchmarks/hard_negatives.py           # perturb, read (about 12 min), fit, print
    .venv/bin/python benchmarks/hard_negatives.py --reuse   # fit and print the saved readings

SQuAD 2.0's unanswerable questions were written by changing an answerable question about the
same paragraph: a name swapped for another, an antonym ("most" for "least"), a negation, a
different number. This script does that by rule to every answerable question of squad2,
clapnq and ares-news (one change each: antonym, entity or number, picked at random among those
that apply; negation only where none does), asks each changed question as the bot would
(retrieval over the set's benchmark store, the check line appended) and copies the same
layers as benchmarks/answerability_probe.py. The readings are labelled unanswerable; some
are not (a passage may state the antonym's answer too), as some of SQuAD 2.0's own are noisy.

The probe is then cross-validated as in answerability_probe.py, trained on its default
readings (var/probe, which must exist) with and without the changed questions. A changed
question shares the fold of the question it was made from, and every figure is on the sets'
own questions, so the rows compare with that script's report.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.answerability import EVAL, bench_bot, prompt  # noqa: E402
from benchmarks.answerability_probe import (  # noqa: E402
    SAVED,
    check_reading,
    cross_validated,
    load,
    report,
    save,
    tapped_generator,
)
from qa_bot.settings import load_settings  # noqa: E402
from ui.evaluate import load_questions  # noqa: E402

PERTURBED = ROOT / "var" / "probe-perturbed"
SETS = ("squad2", "clapnq", "ares-news")
_PAIRS = (
    "first last|most least|largest smallest|biggest smallest|highest lowest|earliest latest|before after|"
    "increase decrease|increased decreased|more fewer|best worst|oldest youngest|longest shortest|north south|"
    "east west|won lost|win lose|start end|started ended|major minor|positive negative|rise fall|top bottom|"
    "early late|high low|large small|older younger|larger smaller|higher lower|inside outside|above below|"
    "male female|men women|bought sold|buy sell|allowed banned|supported opposed|support oppose|originally later|"
    "strongest weakest|common rare|success failure|accepted rejected"
)
ANTONYMS = {a: b for pair in _PAIRS.split("|") for x, y in [pair.split()] for a, b in ((x, y), (y, x))}
AUXILIARY = re.compile(r"\b(is|was|are|were|did|does|do|can|could|has|have|had|will|would|should)\b", re.I)
# A capitalised run not at the start of the question: a name, as far as a rule can tell.
NAME = re.compile(r"(?<!^)\b([A-Z][a-z]+(?:\s+(?:of\s+)?[A-Z][a-z]+)*)")
NUMBER = re.compile(r"\b\d+\b")


def _like(original: str, word: str) -> str:
    return word.capitalize() if original[0].isupper() else word


def antonym(q: str, rnd: random.Random, _names: list[str]) -> str | None:
    hits = [m for m in re.finditer(r"\b[A-Za-z]+\b", q) if m.group(0).lower() in ANTONYMS]
    if not hits:
        return None
    m = rnd.choice(hits)
    return q[: m.start()] + _like(m.group(0), ANTONYMS[m.group(0).lower()]) + q[m.end() :]


def entity(q: str, rnd: random.Random, names: list[str]) -> str | None:
    hits = list(NAME.finditer(q))
    if not hits:
        return None
    m = rnd.choice(hits)
    others = [n for n in names if n != m.group(1) and len(n.split()) == len(m.group(1).split())]
    return q[: m.start(1)] + rnd.choice(others) + q[m.end(1) :] if others else None


def number(q: str, rnd: random.Random, _names: list[str]) -> str | None:
    hits = list(NUMBER.finditer(q))
    if not hits:
        return None
    m = rnd.choice(hits)
    value = int(m.group(0))
    # A year moves by years; a count by a few.
    new = value + rnd.choice([-1, 1]) * rnd.randint(3, 25) if value > 1400 else value + rnd.randint(2, 9)
    return q[: m.start()] + str(new) + q[m.end() :]


def negation(q: str, _rnd: random.Random, _names: list[str]) -> str | None:
    m = AUXILIARY.search(q)
    if not m:
        return None
    word = m.group(0)
    negated = {"can": "can't", "will": "won't"}.get(word.lower(), word + "n't")
    return q[: m.start()] + _like(word, negated) + q[m.end() :]


RULES = {"antonym": antonym, "entity": entity, "number": number, "negation": negation}


def perturb(questions: list[dict], seed: int = 0) -> list[dict]:
    """One changed, unanswerable copy of each answerable question that a rule applies to."""
    rnd = random.Random(seed)
    names = [m.group(1) for q in questions for m in NAME.finditer(" ".join(q["question"].split()))]
    out = []
    for q in questions:
        if not q["answerable"]:
            continue
        text = " ".join(q["question"].split())
        # Negation last: SQuAD 2.0 has few, and "what wasn't ..." is the least natural change.
        kinds = ["antonym", "entity", "number"]
        rnd.shuffle(kinds)
        for kind in [*kinds, "negation"]:
            changed = RULES[kind](text, rnd, names)
            if changed and changed != text:
                out.append({**q, "question": changed, "origin": text, "kind": kind, "answerable": False})
                break
    return out


def read(layers: tuple[int, ...]) -> list[dict]:
    generator, tap = tapped_generator(layers)
    rows = []
    for name in SETS:
        bot = bench_bot(name)
        for q in perturb(load_questions(EVAL / name, 0)):
            messages, evidence = prompt(bot, q["question"])
            p_yes, state = check_reading(generator, tap, messages)
            keep = {k: q[k] for k in ("qid", "question", "origin", "kind")}
            rows.append({"set": f"{name} (changed)", **keep, "answerable": False, "evidence": evidence,
                         "p_yes": p_yes, "state": state})  # fmt: skip
            print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help=f"fit on the readings saved in {PERTURBED}")
    args = parser.parse_args()
    base, layers = load(SAVED)
    if args.reuse:
        changed, _ = load(PERTURBED)
    else:
        changed = read(layers)
        save(changed, PERTURBED, layers)
    rows = base + changed
    gate = load_settings(ROOT / "config.yaml").answer.refuse_below
    y = np.array([r["answerable"] for r in rows])
    sets = np.array([r["set"] for r in rows])
    kinds = np.array([r.get("kind", "") for r in rows])
    qids = list(dict.fromkeys(r["qid"] for r in rows))
    groups = np.array([qids.index(r["qid"]) for r in rows])  # a changed question goes with its origin
    print(f"{len(changed)} changed questions: " + ", ".join(f"{k} {n}" for k, n in Counter(kinds[len(base) :]).items()))
    for name in SETS:
        pick = [r for r in changed if r["set"] == f"{name} (changed)"]
        print(f"  {name}: {len(pick)}, mean P(yes) {np.mean([r['p_yes'] for r in pick]):.3f}")
    print(f"evidence gate {gate} first; threshold: at most 10 % of squad2's and clapnq's answerable refused\n")
    old = np.arange(len(rows)) < len(base)
    wiki = np.isin(sets, ["squad2 (changed)", "clapnq (changed)"])
    trainings = {
        "default readings": old,
        "+ every changed question": np.ones(len(rows), bool),
        "+ squad2/clapnq changed": old | wiki,
        "+ ares-news changed": old | (sets == "ares-news (changed)"),
        "+ changed, no negations": old | (~old & (kinds != "negation")),
    }
    for i, layer in enumerate(layers):
        x = np.stack([r["state"][i] for r in rows])
        for label, train in trainings.items():
            report(f"layer {layer}, {label}", cross_validated(x, y, groups, train), rows, gate)


if __name__ == "__main__":
    main()
