"""A temporary qa-bot app for benchmarks: sample articles ingested, served on a free loopback port.

Usage::

    with served_app() as (url, pid):
        ...  # talk to url; read /proc/<pid>/status
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def served_app() -> Iterator[tuple[str, int]]:
    """The default config (so the default model) over the sample article and the 60 test articles."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            json.dumps(
                {"store": {"path": str(Path(tmp) / "store")}, "generation": {"cache_dir": str(ROOT / "var" / "models")}}
            )
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = [sys.executable, "-m", "ui.cli"]
        subprocess.run(
            [
                *cli,
                "ingest",
                str(ROOT / "data" / "articles"),
                str(ROOT / "tests" / "data"),
                "--config",
                str(config),
                "--quiet",
            ],
            check=True,
            env=env,
        )
        with serve_config(config) as served:
            yield served


@contextmanager
def serve_config(config: Path) -> Iterator[tuple[str, int]]:
    """``qa-bot serve --config config`` on a free loopback port, until the block ends: (URL, pid)."""
    with serve_command(lambda port: ["-m", "ui.cli", "serve", "--config", str(config), "--port", str(port)]) as served:
        yield served


@contextmanager
def serve_command(args: Callable[[int], list[str]]) -> Iterator[tuple[str, int]]:
    """``python ARGS`` (given the port) serving on a free loopback port, once it answers: (URL, pid)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, *args(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/"
    with answering(proc, url, seconds=600):
        yield url, proc.pid


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def answering(proc: subprocess.Popen, url: str, seconds: float, log: Path | None = None) -> Iterator[None]:
    """Wait until ``url`` answers (RuntimeError, with the end of ``log``, if ``proc`` exits first or
    ``seconds`` pass), then hold the block; the process is stopped when the block ends."""
    try:
        deadline = time.time() + seconds
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    said = log.read_text()[-2000:] if log is not None and log.exists() else ""
                    raise RuntimeError(f"the server at {url} did not start: {said}") from None
                time.sleep(0.3)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
