"""A linear probe on the 1.5B model's hidden state: does it tell unanswerable questions better than P(yes)?

Usage::

    .venv/bin/python benchmarks/answerability_probe.py           # read (about 15 min), fit, print
    .venv/bin/python benchmarks/answerability_probe.py --reuse   # fit and print the saved readings
    .venv/bin/python benchmarks/answerability_probe.py --ares-limit 0 --left-out all \
        --saved var/probe-more                                    # 1,151 readings (about 30 min)

Every question of squad2 and clapnq and a seeded 120 of ares-news is put to the model as the
bot puts it: the prompt ``QABot.stream`` builds with the check line appended
(benchmarks/answerability.py). While llama.cpp reads it, a ggml eval callback copies the
output of a few layers at the last token, the state from which the yes/no comes, and P(yes)
is read as the bot reads it. ares-news has no unanswerable questions, so each of its 120 is
asked again over the passages retrieval finds with its gold article left out: news
questions whose passages are on-topic but lack the answer, as clapnq's were made (the label
is a little noisy: another article may tell the same story).

A logistic regression (standardised states, C=0.001) on one layer is scored by 10-fold
cross-validation, folded by question (an ares-news question's two readings share a fold).
Printed per layer and training set: the AUC on each set, beside P(yes)'s; and at the
threshold that refuses at most 10 % of the answerable questions of squad2 and clapnq (the
evidence gate first, as in the bot), the unanswerable refused there and the ares-news
questions refused, answerable and gold-left-out. The model's own refusals would come on top.
Needs the stores built by benchmarks/retrieval_recall.py, and scikit-learn.

More training readings: ``--ares-limit 0`` reads all 319 ares-news questions, and ``--left-out
all`` asks every answerable question of squad2 and clapnq again with its gold passage left out
(as "<set> (gold left out)", unanswerable). Those readings only train: the figures are always
on the sets' own questions, so that they compare with the shipped probe's (trained on the
default readings). ``--C`` sets the regression's inverse strength for the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.answerability import EVAL, bench_bot, prompt  # noqa: E402
from qa_bot.bot import ANSWERABLE_CHECK, with_line  # noqa: E402
from qa_bot.generation import LlamaCppGenerator  # noqa: E402
from qa_bot.probe import LayerTap, Probe  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402
from ui.evaluate import load_questions  # noqa: E402

SAVED = ROOT / "var" / "probe"
LAYERS = (18, 20, 24)  # of 28; a first look at 4..27 found the middle-late layers best
SHIPPED_LAYER = 20  # the best of them cross-validated (README "Known limits")
GOLD_LEFT_OUT = "ares-news (gold left out)"


def left_out_label(name: str) -> str:
    return GOLD_LEFT_OUT if name == "ares-news" else f"{name} (gold left out)"


def tapped_generator(layers: tuple[int, ...]) -> tuple[LlamaCppGenerator, LayerTap]:
    """The default model, loaded with a tap that copies ``layers`` at the last token of each evaluation."""
    tap = LayerTap(layers)
    settings = load_settings(ROOT / "config.yaml").generation.model_copy(update={"probe": False})
    with tap.installed():
        return LlamaCppGenerator(settings), tap


def check_reading(generator: LlamaCppGenerator, tap: LayerTap, messages: list[dict]) -> tuple[float, np.ndarray]:
    """P(yes) of the bot's check over ``messages``, and the tapped layers' states (float16) at its last token."""
    tap.states.clear()
    p_yes = generator.yes_probability(with_line(messages, ANSWERABLE_CHECK))
    return p_yes, np.stack([tap.states[i] for i in tap.wanted.values()]).astype(np.float16)


def read(names: list[str], ares_limit: int, left_out: str, layers: tuple[int, ...]) -> list[dict]:
    generator, tap = tapped_generator(layers)
    rows = []
    for name in names:
        bot = bench_bot(name)
        for q in load_questions(EVAL / name, ares_limit if name == "ares-news" else 0):
            asks = [(name, q["answerable"], None)]
            if q["answerable"] and (name == "ares-news" or left_out == "all"):
                gold = set(q["gold_doc_ids"])
                rest = [p for p in bot.retrieve(q["question"], k=12) if p.doc_id not in gold][:4]
                asks.append((left_out_label(name), False, rest))
            for label, answerable, passages in asks:
                messages, evidence = prompt(bot, q["question"], passages)
                p_yes, state = check_reading(generator, tap, messages)
                rows.append(
                    {
                        "set": label,
                        "qid": q["qid"],
                        "question": q["question"],
                        "answerable": answerable,
                        "evidence": evidence,
                        "p_yes": p_yes,
                        "state": state,
                    }
                )
            print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return rows


def save(rows: list[dict], saved: Path, layers: tuple[int, ...]) -> None:
    """States as float16 (half the disk; the fit standardises them in float32)."""
    saved.mkdir(parents=True, exist_ok=True)
    np.save(saved / "states.npy", np.stack([r["state"] for r in rows]))
    (saved / "layers.json").write_text(json.dumps(list(layers)))
    (saved / "rows.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "state"} for r in rows]))


def load(saved: Path) -> tuple[list[dict], tuple[int, ...]]:
    states = np.load(saved / "states.npy")
    layers = tuple(json.loads((saved / "layers.json").read_text()))
    rows = json.loads((saved / "rows.json").read_text())
    return [{**r, "state": s.astype(np.float32)} for r, s in zip(rows, states, strict=True)], layers


def fit(x: np.ndarray, y: np.ndarray, layer: int, c: float = 0.001) -> Probe:
    """The probe the bot reads: standardised states, L2 logistic regression (the shipped one: c=0.001)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x), y)
    return Probe(layer, scaler.mean_, scaler.scale_, model.coef_[0], float(model.intercept_[0]))


def fold_of(question: str, folds: int) -> int:
    """A question's fold, from its text as the bot puts it (spaces collapsed): benchmarks/probe_eval.py
    finds it from the prompt."""
    return zlib.crc32(" ".join(question.split()).encode("utf-8")) % folds


def write_probes(rows: list[dict], layers: tuple[int, ...], target: Path, folds: int) -> None:
    """The bot's probe, fitted on every reading; and one per fold, each fitted without it."""
    layer = SHIPPED_LAYER
    i = layers.index(layer)
    x = np.stack([r["state"][i] for r in rows])
    y = np.array([r["answerable"] for r in rows])
    fit(x, y, layer).save(target)
    print(f"wrote {target} (layer {layer}, {len(rows)} readings)")
    if folds:
        fold = np.array([fold_of(r["question"], folds) for r in rows])
        for k in range(folds):
            path = SAVED / f"fold-{k}-of-{folds}.npz"  # where benchmarks/probe_eval.py looks
            fit(x[fold != k], y[fold != k], layer).save(path)
            print(f"wrote {path}, fitted without the {(fold == k).sum()} readings of fold {k}")


def cross_validated(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, train: np.ndarray, c: float = 0.001
) -> np.ndarray:
    """Each reading scored by the probe :func:`fit` makes without its fold (10 folds by question)."""
    fold = np.random.RandomState(0).randint(0, 10, size=groups.max() + 1)[groups]
    out = np.zeros(len(y))
    for k in range(10):
        if not (fold == k).any():
            continue
        probe = fit(x[(fold != k) & train], y[(fold != k) & train], layer=0, c=c)
        out[fold == k] = [probe(state) for state in x[fold == k]]
    return out


def report(label: str, score: np.ndarray, rows: list[dict], gate: float) -> None:
    from sklearn.metrics import roc_auc_score

    sets = np.array([r["set"] for r in rows])
    y = np.array([r["answerable"] for r in rows])
    evidence = np.array([r["evidence"] for r in rows])
    aucs = []
    for name, negatives in (("squad2", "squad2"), ("clapnq", "clapnq"), ("ares-news", GOLD_LEFT_OUT)):
        pick = (sets == name) | (sets == negatives)
        if len(set(y[pick])) == 2:
            aucs.append(f"{name} {roc_auc_score(y[pick], score[pick]):.3f}")
    tuned = (sets == "squad2") | (sets == "clapnq")
    refused = evidence < gate
    for th in np.unique(score[tuned]):  # the highest threshold within 10 % answerable refused
        candidate = (evidence < gate) | (score < th)
        if candidate[tuned & y].mean() <= 0.10:
            refused = candidate
    parts = [
        f"squad2+clapnq unanswerable {refused[tuned & ~y].mean():.1%}",
        f"answerable {refused[tuned & y].mean():.1%}",
    ]
    for name in ("ares-news", GOLD_LEFT_OUT):
        if (sets == name).any():
            parts.append(f"{name} {refused[sets == name].mean():.1%}")
    print(f"{label:34} AUC {', '.join(aucs)}\n{'':34} refused: {'; '.join(parts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["squad2", "clapnq", "ares-news"])
    parser.add_argument("--ares-limit", type=int, default=120, help="0: every ares-news question")
    parser.add_argument("--left-out", choices=["ares", "all"], default="ares", help="which sets to ask gold-left-out")
    parser.add_argument("--layers", type=int, nargs="+", default=list(LAYERS))
    parser.add_argument("--saved", type=Path, default=SAVED, help="where the readings are kept")
    parser.add_argument("--reuse", action="store_true", help="fit on the readings saved in --saved")
    parser.add_argument("--C", type=float, default=0.001, help="the report's regression strength (inverse)")
    parser.add_argument("--write-probe", type=Path, help="fit SHIPPED_LAYER on every reading, write the probe here")
    parser.add_argument("--folds", type=int, default=2, help="with --write-probe: also one probe per fold")
    args = parser.parse_args()
    if args.reuse:
        rows, layers = load(args.saved)
    else:
        layers = tuple(args.layers)
        rows = read(args.sets, args.ares_limit, args.left_out, layers)
        save(rows, args.saved, layers)
    if args.write_probe:
        write_probes(rows, layers, args.write_probe, args.folds)
        return
    gate = load_settings(ROOT / "config.yaml").answer.refuse_below
    y = np.array([r["answerable"] for r in rows])
    sets = np.array([r["set"] for r in rows])
    qids = list(dict.fromkeys(r["qid"] for r in rows))
    groups = np.array([qids.index(r["qid"]) for r in rows])
    print(f"{len(rows)} readings: " + ", ".join(f"{s} {(sets == s).sum()}" for s in dict.fromkeys(sets)))
    print(f"evidence gate {gate} first; threshold: at most 10 % of squad2's and clapnq's answerable refused")
    print(f"probes: C={args.C}; figures on the sets' own questions (and ares-news's gold left out)\n")
    report("P(yes), as the bot reads it", np.array([r["p_yes"] for r in rows]), rows, gate)
    wikipedia = (sets == "squad2") | (sets == "clapnq")
    wiki_left_out = np.isin(sets, [left_out_label("squad2"), left_out_label("clapnq")])
    everything = np.ones(len(rows), bool)
    trainings = {"squad2+clapnq": wikipedia, "all three": everything & ~wiki_left_out}
    if wiki_left_out.any():
        trainings |= {"squad2+clapnq, gold left out too": wikipedia | wiki_left_out, "every reading": everything}
    for i, layer in enumerate(layers):
        x = np.stack([r["state"][i] for r in rows])
        for label, train in trainings.items():
            if len(set(y[train])) < 2:
                continue  # a run over fewer sets (a quick look) has nothing to fit this on
            report(f"probe, layer {layer}, fit on {label}", cross_validated(x, y, groups, train, args.C), rows, gate)


if __name__ == "__main__":
    main()
