"""``qa-bot eval`` with every question judged by an answerability probe fitted without it.

Usage::

    .venv/bin/python benchmarks/answerability_probe.py --reuse \\
        --write-probe qa_bot/probes/qwen2.5-coder-1.5b.q8_0.npz --folds 2
    .venv/bin/python benchmarks/probe_eval.py ../shared/eval/squad2 --json var/eval-probe/squad2.json

The shipped probe was fitted on these very questions, so an evaluation with it would grade
its own homework. Here each question's fold (from its text) picks the fold probe that never
saw it (var/probe/fold-K-of-N.npz); everything else is ``qa-bot eval`` as it is, and its
arguments pass through. Then, for higher ``answer.probe_below`` thresholds (unanswerable /
answerable refused)::

    .venv/bin/python benchmarks/probe_eval.py --raise var/eval-probe/squad2.json var/eval-probe/clapnq.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.answerability_probe import SAVED, fold_of  # noqa: E402
from qa_bot.bot import QABot  # noqa: E402
from qa_bot.probe import Probe  # noqa: E402
from ui.cli import main as cli  # noqa: E402


def raised(runs: list[Path], thresholds: list[float]) -> None:
    """Refusals of finished runs at higher probe thresholds: exact, since raising the threshold
    only refuses questions that were answered (below probe_overrides, which these stay under)."""
    rows = {run: json.loads(run.read_text())["per_question"]["qa-bot"] for run in runs}
    for th in thresholds:
        parts, pooled = [], {True: [], False: []}
        for run, results in rows.items():
            by = {True: [], False: []}
            for r in results:
                probe = r["scores"].get("probe")
                by[r["answerable"]].append(r["refused"] or (probe is not None and probe < th))
            parts.append(f"{run.stem} {np.mean(by[False]):.1%} / {np.mean(by[True]):.1%}")
            for k in by:
                pooled[k] += by[k]
        both = f"pooled {np.mean(pooled[False]):.1%} / {np.mean(pooled[True]):.1%}"
        print(f"probe_below {th:.2f}: {both}; " + "; ".join(parts))


def main() -> int:
    if sys.argv[1:2] == ["--raise"]:
        raised([Path(a) for a in sys.argv[2:]], [round(0.16 + 0.04 * i, 2) for i in range(10)])
        return 0
    paths = sorted(SAVED.glob("fold-*-of-*.npz"))
    if not paths:
        sys.exit(f"no fold probes in {SAVED}: run benchmarks/answerability_probe.py --write-probe first")
    folds = int(paths[0].stem.rsplit("-", 1)[1])
    probes = [Probe.load(SAVED / f"fold-{k}-of-{folds}.npz") for k in range(folds)]
    judged = QABot._judged_unanswerable

    def out_of_fold(self: QABot, messages: list[dict], scores: dict[str, float]) -> bool:
        question = messages[-1]["content"].rsplit("\n\nQuestion: ", 1)[1]
        if self.generator.probe is None:
            sys.exit("the model in use has no probe (generation.probe off, or another model)")
        self.generator.probe = probes[fold_of(question, folds)]
        return judged(self, messages, scores)

    QABot._judged_unanswerable = out_of_fold  # type: ignore[method-assign]
    return cli(["eval", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
