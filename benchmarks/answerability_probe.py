"""A linear probe on the 1.5B model's hidden state: does it tell unanswerable questions better than P(yes)?

Usage::

    .venv/bin/python benchmarks/answerability_probe.py           # read (about 25 min), fit, print
    .venv/bin/python benchmarks/answerability_probe.py --reuse   # fit and print the saved readings

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
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.answerability import EVAL, bench_bot, prompt  # noqa: E402
from qa_bot.bot import ANSWERABLE_CHECK, with_line  # noqa: E402
from qa_bot.generation import LlamaCppGenerator  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402
from ui.evaluate import load_questions  # noqa: E402

SAVED = ROOT / "var" / "probe"
LAYERS = (18, 20, 24)  # of 28; a first look at 4..27 found the middle-late layers best
GOLD_LEFT_OUT = "ares-news (gold left out)"


class LayerTap:
    """Copies layers' outputs for the last token of each llama.cpp evaluation (ggml eval callback)."""

    def __init__(self, layers: tuple[int, ...]) -> None:
        import ctypes

        import llama_cpp
        from llama_cpp._ggml import libggml

        self.wanted = {f"l_out-{i}".encode(): i for i in layers}
        self.states: dict[int, np.ndarray] = {}
        self._lib = libggml
        libggml.ggml_get_name.restype = ctypes.c_char_p
        libggml.ggml_get_name.argtypes = [ctypes.c_void_p]
        for fn in (libggml.ggml_nelements, libggml.ggml_nrows):
            fn.restype, fn.argtypes = ctypes.c_int64, [ctypes.c_void_p]
        libggml.ggml_get_data_f32.restype = ctypes.POINTER(ctypes.c_float)
        libggml.ggml_get_data_f32.argtypes = [ctypes.c_void_p]
        self.callback = llama_cpp.ggml_backend_sched_eval_callback(self._observe)

    def _observe(self, tensor: int, ask: bool, _data: int) -> bool:
        layer = self.wanted.get(self._lib.ggml_get_name(tensor))
        if ask or layer is None:
            return layer is not None  # asked: observe only the wanted layers
        n, rows = self._lib.ggml_nelements(tensor), self._lib.ggml_nrows(tensor)
        values = np.ctypeslib.as_array(self._lib.ggml_get_data_f32(tensor), shape=(n,))
        self.states[layer] = values.reshape(rows, n // rows)[-1].copy()  # the batch's last token
        return True

    @contextmanager
    def installed(self):
        """llama-cpp-python takes no eval callback, so its default context parameters carry it."""
        import llama_cpp.llama_cpp as low

        original = low.llama_context_default_params

        def with_callback():
            params = original()
            params.cb_eval = self.callback
            return params

        low.llama_context_default_params = with_callback
        try:
            yield
        finally:
            low.llama_context_default_params = original


def read(names: list[str], ares_limit: int) -> list[dict]:
    tap = LayerTap(LAYERS)
    with tap.installed():
        generator = LlamaCppGenerator(load_settings(ROOT / "config.yaml").generation)
    rows = []
    for name in names:
        bot = bench_bot(name)
        for q in load_questions(EVAL / name, ares_limit if name == "ares-news" else 0):
            asks = [(name, q["answerable"], None)]
            if name == "ares-news":
                gold = set(q["gold_doc_ids"])
                rest = [p for p in bot.retrieve(q["question"], k=12) if p.doc_id not in gold][:4]
                asks.append((GOLD_LEFT_OUT, False, rest))
            for label, answerable, passages in asks:
                messages, evidence = prompt(bot, q["question"], passages)
                tap.states.clear()
                p_yes = generator.yes_probability(with_line(messages, ANSWERABLE_CHECK))
                state = np.stack([tap.states[i] for i in LAYERS])
                rows.append(
                    {
                        "set": label,
                        "qid": q["qid"],
                        "answerable": answerable,
                        "evidence": evidence,
                        "p_yes": p_yes,
                        "state": state,
                    }
                )
            print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return rows


def save(rows: list[dict]) -> None:
    SAVED.mkdir(parents=True, exist_ok=True)
    np.save(SAVED / "states.npy", np.stack([r["state"] for r in rows]))
    (SAVED / "rows.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "state"} for r in rows]))


def load() -> list[dict]:
    states = np.load(SAVED / "states.npy")
    return [{**r, "state": s} for r, s in zip(json.loads((SAVED / "rows.json").read_text()), states, strict=True)]


def cross_validated(x: np.ndarray, y: np.ndarray, groups: np.ndarray, train: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fold = np.random.RandomState(0).randint(0, 10, size=groups.max() + 1)[groups]
    out = np.zeros(len(y))
    for k in range(10):
        if not (fold == k).any():
            continue
        fit = (fold != k) & train
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.001, max_iter=5000)).fit(x[fit], y[fit])
        out[fold == k] = model.predict_proba(x[fold == k])[:, 1]
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
    parser.add_argument("--ares-limit", type=int, default=120)
    parser.add_argument("--reuse", action="store_true", help=f"fit on the readings saved in {SAVED}")
    args = parser.parse_args()
    rows = load() if args.reuse else read(args.sets, args.ares_limit)
    if not args.reuse:
        save(rows)
    gate = load_settings(ROOT / "config.yaml").answer.refuse_below
    y = np.array([r["answerable"] for r in rows])
    sets = np.array([r["set"] for r in rows])
    qids = list(dict.fromkeys(r["qid"] for r in rows))
    groups = np.array([qids.index(r["qid"]) for r in rows])
    print(f"{len(rows)} readings: " + ", ".join(f"{s} {(sets == s).sum()}" for s in dict.fromkeys(sets)))
    print(f"evidence gate {gate} first; threshold: at most 10 % of squad2's and clapnq's answerable refused\n")
    report("P(yes), as the bot reads it", np.array([r["p_yes"] for r in rows]), rows, gate)
    wikipedia = (sets == "squad2") | (sets == "clapnq")
    for i, layer in enumerate(LAYERS):
        x = np.stack([r["state"][i] for r in rows])
        for label, train in (("squad2+clapnq", wikipedia), ("all three", np.ones(len(rows), bool))):
            if len(set(y[train])) < 2:
                continue  # a run over fewer sets (a quick look) has nothing to fit this on
            report(f"probe, layer {layer}, fit on {label}", cross_validated(x, y, groups, train), rows, gate)


if __name__ == "__main__":
    main()
