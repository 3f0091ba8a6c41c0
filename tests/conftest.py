"""Shared fixtures: settings in a temporary store, a loopback HTTP server, a Chroma server.

Everything here is real: the embedder, Chroma (embedded and server) and HTTP on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qa_bot.settings import Settings, settings_from_dict

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SAMPLE = ROOT / "data" / "articles" / "putin-congratulates-trump.txt"


# The fast test model. Its yes/no reading of "do the passages answer this?" carries no
# information (0.10-0.23 on answerable and unanswerable questions alike), so the answerability
# check is off for it; tests/test_answering.py runs the check with its own thresholds.
FAST_MODEL: dict[str, dict] = {
    "generation": {"model": "smollm2-135m", "max_tokens": 60},
    "answer": {"answerable_below": 0.0},
}


def make_settings(store_path: Path, **sections: dict) -> Settings:
    raw: dict = {
        "store": {"path": str(store_path), "collection": "test"},
        "retrieval": {"lexical_path": str(store_path.parent / "lexical")},
        # The tests' web servers listen on 127.0.0.1, which the address guard refuses by default
        # (tests/test_security.py turns it back on).
        "ingest": {"allow_private_addresses": True},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return settings_from_dict(raw)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "store")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Route:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    delay: float = 0.0


@dataclass
class WebServer:
    """A loopback HTTP server whose pages the test sets: ``server.routes['/a.html'] = Route(...)``."""

    port: int
    routes: dict[str, Route] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def web() -> Iterator[WebServer]:
    server_state = WebServer(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def handle(self) -> None:
            # A client that gave up (a time-out test) is not an error of the server's.
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                super().handle()

        def do_GET(self) -> None:
            route = server_state.routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404, "Not Found")
                return
            if route.delay:
                time.sleep(route.delay)
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state
    httpd.shutdown()
    httpd.server_close()


def _chroma_command() -> list[str]:
    exe = Path(sys.executable).parent / "chroma"
    return [str(exe)] if exe.exists() else [shutil.which("chroma") or "chroma"]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real ``chroma run`` server on a free loopback port, for the session."""
    import chromadb

    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [*_chroma_command(), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.time() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            break
        except Exception:  # noqa: BLE001 - not up yet, whatever the error
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail("the Chroma server did not start")
            time.sleep(0.3)
    yield "127.0.0.1", port
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def serving(folder: Path, env: dict[str, str] | None = None, **sections: dict) -> Iterator[tuple[str, Path]]:
    """``qa-bot serve`` with the fast model over the sample article, on a free loopback port:
    (its URL, its store folder). The server's log is ``folder/serve.log``; ``sections`` are
    further config, ``env`` further environment variables of the server."""
    from ingest import ingest

    store = folder / "store"
    config = folder / "config.yaml"
    if not (store / "chroma.sqlite3").exists():
        assert ingest([str(SAMPLE)], make_settings(store)).ok
    raw: dict = {"store": {"path": str(store), "collection": "test"}, **FAST_MODEL}
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    config.write_text(json.dumps(raw))
    url, proc = start_serve(config, folder / "serve.log", env)
    try:
        yield url, store
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def start_serve(config: Path, log: Path, env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """``qa-bot serve --config config`` on a free loopback port, once its page answers: (URL, process)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "serve", "--config", str(config), "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 240
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return url, proc
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail("the app did not start: " + log.read_text()[-2000:])
            time.sleep(0.5)
