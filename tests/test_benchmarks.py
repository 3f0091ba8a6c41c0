"""Every maintained benchmark still starts: imported as a module, its options parsed.

The benchmarks themselves take minutes to hours and are run by `make bench`, not here; this
catches the breakage a refactor leaves behind (a moved import, a renamed stage).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

MAKEFILE_BENCH = re.findall(r"\$\(PY\) -m benchmarks\.(\w+)", (ROOT / "Makefile").read_text())


def test_make_bench_runs_every_benchmark_in_the_folder() -> None:
    # served: the loopback `qa-bot serve` the others start; newsroom: the loopback news sites
    helpers = {"__init__", "served", "newsroom"}
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - helpers
    assert scripts == set(MAKEFILE_BENCH)


@pytest.mark.parametrize("name", sorted(set(MAKEFILE_BENCH) - {"security"}))
def test_benchmark_starts(name: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-2000:]
