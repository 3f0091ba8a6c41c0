"""The qa-bot command as a user runs it: real subprocesses, real store, real kill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from tests.conftest import DATA, FAST_MODEL, ROOT, SAMPLE, make_settings
from tests.test_ingest import snapshot


def config(tmp_path: Path, name: str = "config.yaml", **chunking: int) -> Path:
    path = tmp_path / name
    data = {"store": {"path": f"store-{path.stem}", "collection": "cli"}}
    if chunking:
        data["chunking"] = chunking
    path.write_text(yaml.safe_dump(data))
    return path


def qa_bot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


def test_ingest_and_stats_commands(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"doc_id": "x1", "text": "Fine text here."}\n{oops\n')
    run = qa_bot("ingest", str(SAMPLE), str(tmp_path / "bad.jsonl"), "--config", str(cfg), cwd=tmp_path)
    assert run.returncode == 1  # something failed
    assert "FAILED" in run.stderr and "bad.jsonl line 2: malformed JSON" in run.stderr
    assert "Traceback" not in run.stderr
    assert "2 added" in run.stdout
    stats = qa_bot("stats", "--config", str(cfg), cwd=tmp_path)
    assert stats.returncode == 0
    assert re.search(r"articles: 2\b", stats.stdout) and "all-MiniLM-L6-v2" in stats.stdout
    again = qa_bot("ingest", str(SAMPLE), "--config", str(cfg), cwd=tmp_path)
    assert again.returncode == 0 and "1 unchanged" in again.stdout and "0 chunks written" in again.stdout


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("store:\n  mode: cloud\n")
    run = qa_bot("stats", "--config", str(cfg), cwd=tmp_path)
    assert run.returncode == 2
    assert "store.mode" in run.stderr and "Traceback" not in run.stderr


def test_mismatch_on_the_command_line_says_how_to_rebuild(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert qa_bot("ingest", str(SAMPLE), "--config", str(cfg), "--quiet", cwd=tmp_path).returncode == 0
    data = yaml.safe_load(cfg.read_text())
    data["chunking"] = {"max_tokens": 100, "overlap_tokens": 10}
    cfg.write_text(yaml.safe_dump(data))
    run = qa_bot("ingest", str(SAMPLE), "--config", str(cfg), cwd=tmp_path)
    assert run.returncode == 1 and "qa-bot ingest --reindex" in run.stderr and "Traceback" not in run.stderr
    assert qa_bot("ingest", "--reindex", "--config", str(cfg), "--quiet", cwd=tmp_path).returncode == 0


def test_killed_ingest_converges_to_a_clean_run(tmp_path: Path) -> None:
    """SIGKILL mid-run, run again: the same store as one uninterrupted run."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # Three copies of the 60 articles under other ids, in small chunks: about 1,600 chunks, seven
    # write batches, so the kill after the first lands with most of the run still to come.
    articles = [json.loads(line) for line in (DATA / "ares-60.jsonl").read_text().splitlines()]
    copies = [{**a, "doc_id": f"{a['doc_id']}-{n}"} for n in range(3) for a in articles]
    (corpus / "dump.jsonl").write_text("".join(json.dumps(a) + "\n" for a in copies))
    small = {"max_tokens": 32, "overlap_tokens": 4}
    killed_cfg, clean_cfg = config(tmp_path, "killed.yaml", **small), config(tmp_path, "clean.yaml", **small)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "ingest", str(corpus), "--config", str(killed_cfg)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    first_write = threading.Event()

    def watch_progress() -> None:
        buffer = ""
        while char := proc.stderr.read(1):
            buffer = (buffer + char)[-200:]
            if not first_write.is_set() and re.search(r"\b([1-9]\d*) articles", buffer):
                # At once: the next batches take well under a second to embed on a fast CPU.
                proc.send_signal(signal.SIGKILL)
                first_write.set()

    threading.Thread(target=watch_progress, daemon=True).start()
    assert first_write.wait(180), "the ingest never wrote a batch"
    proc.wait()
    settings_killed = make_settings(tmp_path / "store-killed", chunking=small, store={"collection": "cli"})
    partial = snapshot(settings_killed)
    assert len(partial) > 0
    resumed = qa_bot("ingest", str(corpus), "--config", str(killed_cfg), "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    clean = qa_bot("ingest", str(corpus), "--config", str(clean_cfg), "--quiet", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    settings_clean = make_settings(tmp_path / "store-clean", chunking=small, store={"collection": "cli"})
    resumed_snap, clean_snap = snapshot(settings_killed), snapshot(settings_clean)
    assert len(partial) < len(clean_snap)  # the kill really cut the run short
    for snap in (resumed_snap, clean_snap):
        for chunk in snap.values():
            chunk.pop("origin"), chunk.pop("source_path")  # the two runs read from the same path anyway
    assert resumed_snap == clean_snap


def test_watch_survives_a_failed_round(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "a.txt").write_text("First article\nBody of the first article.")
    (folder / "b.txt").write_text("Second article\nBody of the second article.")
    # The store's path is a file: round 1 fails. Broken before the start, not between rounds:
    # a first round that loads the embedder can outlast --every, and the next one then starts
    # at once, before a break made after round 1 (a clean-clone CI run saw round 2 succeed).
    store_path = tmp_path / "store-config"
    store_path.write_text("not a folder")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "watch", str(folder), "--every", "2s", "--rounds", "4", "--config", str(cfg)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    log = ""
    while "round 1" not in log:
        log += proc.stderr.readline()
    store_path.unlink()  # mended: round 2 may still fail if it began before this, round 3 cannot
    _, rest = proc.communicate(timeout=120)
    log += rest
    assert proc.returncode == 0
    assert "watch round 1 failed" in log
    assert "watch round 4: 0 added, 0 updated, 2 unchanged" in log


def test_ask_prints_the_quoted_early_answer_first(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"path": "store", "collection": "cli"}, **FAST_MODEL}))
    assert qa_bot("ingest", str(SAMPLE), "--config", str(cfg), cwd=tmp_path).returncode == 0
    run = qa_bot("ask", "Why did Putin praise Trump?", "--config", str(cfg), cwd=tmp_path)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Quoted from the articles:" and re.search(r"\[1\]", lines[1])
    article = " ".join(SAMPLE.read_text().split())
    quotes = [line.strip()[1:-1] for line in lines if line.startswith('    "')]
    assert quotes and all(" ".join(q.split()) in article for q in quotes)  # exact sentences of the article
    as_json = qa_bot("ask", "Why did Putin praise Trump?", "--json", "--config", str(cfg), cwd=tmp_path)
    answer = json.loads(as_json.stdout)
    assert answer["early"]["citations"] and answer["early"]["seconds"] <= answer["timings"]["answer"]
    stats = qa_bot("stats", "--config", str(cfg), cwd=tmp_path)
    assert re.search(r"model: smollm2-135m \(as-shipped\), \d+ threads, \d+-token passages", stats.stdout), stats.stdout
