"""Attacks and faults, against real servers on loopback that the tests start themselves:
the address guard (SSRF), redirects, a slow-drip server, a huge one-line file, a file path
sent to the UI's API, a store deleted under a running server, and a Chroma server that dies."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest import ingest
from qa_bot.archive import describe_failure, open_store
from qa_bot.settings import Settings
from tests.conftest import ROOT, SAMPLE, _chroma_command, free_port, make_settings, serving
from ui.app import App, LoginThrottle, build_app

ARTICLE = (
    b"<html><body><article><h1>Secret</h1><p>"
    + b"The internal secret is swordfish. " * 20
    + b"</p></article></body></html>"
)


@dataclass
class Site:
    """A loopback HTTP server on ``host``; ``pages`` maps a path to (status, headers, body)."""

    host: str
    port: int = 0
    pages: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    drip: set[str] = field(default_factory=set)  # paths whose body comes one byte every 0.3 s

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"


@pytest.fixture
def sites() -> Iterator[list[Site]]:
    """Two servers: 127.0.0.1 (the 'internal' one) and 127.0.0.2 (a host a config may allow)."""
    made: list[tuple[Site, http.server.ThreadingHTTPServer]] = []
    for host in ("127.0.0.1", "127.0.0.2"):
        site = Site(host)

        class Handler(http.server.BaseHTTPRequestHandler):
            served = site

            def do_GET(self) -> None:
                self.served.hits.append(self.path)
                status, headers, body = self.served.pages.get(self.path, (404, {}, b"not here"))
                self.send_response(status)
                for key, value in {"Content-Type": "text/html", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)):
                    if self.path not in self.served.drip:
                        self.wfile.write(body[i:])
                        break
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.3)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        site.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append((site, server))
    yield [site for site, _ in made]
    for _, server in made:
        server.shutdown()
        server.server_close()


def guarded(tmp_path: Path, allow: bool | list[str] = False, **ingest_settings: float) -> Settings:
    return make_settings(tmp_path / "store", ingest={"allow_private_addresses": allow, **ingest_settings})


def test_internal_addresses_are_refused_by_default_in_every_spelling(sites: list[Site], tmp_path: Path) -> None:
    internal = sites[0]
    internal.pages["/secret"] = (200, {}, ARTICLE)
    urls = [
        internal.url("/secret"),
        internal.url("/secret", host="localhost"),
        internal.url("/secret", host="2130706433"),  # 127.0.0.1 as one decimal number
        internal.url("/secret", host="[::ffff:127.0.0.1]"),
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata address: never connected to
        "http://10.0.0.1/",
    ]
    report = ingest(urls, guarded(tmp_path))
    reasons = dict(report.failed)
    assert not report.added and internal.hits == []  # nothing was even requested
    for url in urls:
        assert reasons[url].startswith("refused:") and "ingest.allow_private_addresses" in reasons[url], reasons
    assert "a loopback address" in reasons[urls[0]] and "a link-local address" in reasons[urls[4]]
    assert reasons[urls[1]].startswith("refused: localhost (") and "2130706433 (127.0.0.1)" in reasons[urls[2]]
    assert "a private address" in reasons[urls[5]]


def test_internal_addresses_are_fetched_when_the_config_allows(sites: list[Site], tmp_path: Path) -> None:
    sites[0].pages["/secret"] = (200, {}, ARTICLE)
    report = ingest([sites[0].url("/secret")], guarded(tmp_path, allow=True))
    assert len(report.added) == 1 and sites[0].hits == ["/robots.txt", "/secret"]  # robots.txt read first


def test_a_redirect_from_an_allowed_host_to_an_internal_one_is_refused(sites: list[Site], tmp_path: Path) -> None:
    internal, allowed = sites
    internal.pages["/secret"] = (200, {}, ARTICLE)
    allowed.pages["/story"] = (302, {"Location": internal.url("/secret")}, b"")
    allowed.pages["/feed.xml"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        f"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
        <item><title>Inside</title><link>{internal.url("/secret")}</link></item></channel></rss>""".encode(),
    )
    settings = guarded(tmp_path, allow=["127.0.0.2/32"])
    report = ingest([allowed.url("/story"), allowed.url("/feed.xml")], settings)
    reasons = dict(report.failed)
    assert not report.added and internal.hits == []
    assert reasons[allowed.url("/story")].startswith("refused: 127.0.0.1 is a loopback address")
    assert reasons[internal.url("/secret")].startswith("refused:")  # the feed's item link, guarded too


def test_redirects_are_capped_with_one_line(sites: list[Site], tmp_path: Path) -> None:
    site = sites[0]
    for i in range(8):
        site.pages[f"/hop{i}"] = (302, {"Location": site.url(f"/hop{i + 1}")}, b"")
    site.pages["/hop8"] = (200, {}, ARTICLE)
    report = ingest([site.url("/hop0")], guarded(tmp_path, allow=True))
    reason = dict(report.failed)[site.url("/hop0")]
    assert reason == f"more than 5 redirects (the next to {site.url('/hop6')})"
    assert "/hop7" not in site.hits


def test_a_slow_drip_server_is_cut_off_at_the_whole_request_deadline(sites: list[Site], tmp_path: Path) -> None:
    site = sites[0]
    site.pages["/drip"] = (200, {}, ARTICLE)  # 700 bytes at one every 0.3 s: 3.5 minutes
    site.drip.add("/drip")
    site.pages["/fine"] = (200, {}, ARTICLE.replace(b"secret", b"public"))
    began = time.monotonic()
    report = ingest([site.url("/drip"), site.url("/fine")], guarded(tmp_path, allow=True, fetch_timeout=2))
    assert time.monotonic() - began < 15
    assert dict(report.failed)[site.url("/drip")] == "timed out: no whole response within 2 s (ingest.fetch_timeout)"
    assert len(report.added) == 1  # the other URL in the batch is not held up


def test_a_huge_one_line_file_fails_alone_and_fast(tmp_path: Path) -> None:
    huge = tmp_path / "huge.txt"
    huge.write_text("Minutes of the meeting " + "and the committee agreed to meet again " * 390_000)  # 15 MB
    assert huge.stat().st_size > 15_000_000 and huge.read_text().count("\n") == 0
    began = time.monotonic()
    report = ingest([str(huge), str(SAMPLE)], make_settings(tmp_path / "store"))
    seconds = time.monotonic() - began
    assert report.added == [SAMPLE.name]
    [(source, reason)] = report.failed
    # Refused on an estimate before the text is parsed (issue 33); the pipeline's exact count stays behind it.
    assert source == str(huge) and reason.startswith("too big: about 2,730,0") and "14.5 MB" in reason
    assert "over the 1,024,000 words that ingest.max_chunks_per_article chunks can hold" in reason
    assert seconds < 60, seconds  # was hours: a chunking pass of minutes, then a hash per chunk


def test_the_chunk_cap_counts_real_chunks(tmp_path: Path) -> None:
    # 337 words: past the word bound only at a cap of 2, so this counts the chunks themselves.
    capped = make_settings(tmp_path / "store", ingest={"max_chunks_per_article": 3})
    report = ingest([str(SAMPLE)], capped)
    [(source, reason)] = report.failed
    assert source == str(SAMPLE) and "chunks, over the limit ingest.max_chunks_per_article = 3 chunks" in reason


# ---------------------------------------------------------------- the served app


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with serving(tmp_path_factory.mktemp("served")) as (url, store):
        yield url, store


def call(url: str, api: str, *data: object) -> list:
    """Gradio's HTTP API, raw: no client that might upload a file on its own."""
    request = urllib.request.Request(
        f"{url}gradio_api/call/{api}", data=json.dumps({"data": list(data)}).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    event = json.loads(urllib.request.urlopen(request, timeout=30).read())["event_id"]
    stream = urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event}", timeout=300).read().decode()
    last = [line for line in stream.splitlines() if line.startswith("data:")][-1]
    return json.loads(last[5:])


def test_the_ui_api_refuses_a_server_path_and_copies_nothing(app_server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = app_server
    secret = tmp_path / "secret.txt"
    secret.write_text("Launch codes\nThe launch code is 0000, said the general on Monday.")
    uploads = Path(tempfile.gettempdir())
    before = set(uploads.glob("qa-bot-uploads-*/*")) | set(uploads.glob("gradio/*/secret.txt"))
    fake = {"path": str(secret), "meta": {"_type": "gradio.FileData"}, "orig_name": "secret.txt"}
    result = call(url, "ingest", [fake], "")
    # Gradio 6 itself refuses to move a file it did not receive (an error event); where it lets
    # one through, App.save_uploads refuses it (the next test). Either way nothing is read.
    assert "0000" not in json.dumps(result)
    if isinstance(result, list):
        assert "refused: not a file uploaded through this page" in result[0] and "0 added" in result[0]
    after = set(uploads.glob("qa-bot-uploads-*/*")) | set(uploads.glob("gradio/*/secret.txt"))
    assert after == before  # nothing copied
    reply = call(url, "ask", "What is the launch code?", [], [], "", "")
    assert "0000" not in json.dumps(reply)


def test_the_app_takes_only_files_in_the_upload_folders(tmp_path: Path) -> None:
    """App.save_uploads, the check behind the UI's ingest: real files, links resolved, nothing copied."""
    from gradio.utils import get_upload_folder

    app = App(make_settings(tmp_path / "store"))
    outside = tmp_path / "secret.txt"
    outside.write_text("Launch codes\nThe launch code is 0000.")
    uploaded_dir = Path(get_upload_folder()) / f"qa-bot-test-{os.getpid()}"
    uploaded_dir.mkdir(parents=True, exist_ok=True)
    try:
        uploaded = uploaded_dir / "story.txt"
        uploaded.write_text("A story\nThe council met on Monday and agreed to build a bridge.")
        sneaky = uploaded_dir / "link.txt"
        sneaky.symlink_to(outside)  # inside the upload folder, pointing out of it
        program = uploaded_dir / "setup.exe"
        program.write_bytes(b"MZ\x90\x00")
        saved, failed = app.save_uploads([str(outside), str(sneaky), str(uploaded), "/etc/passwd", str(program)])
        assert list(saved.values()) == ["story.txt"]
        reasons = dict(failed)
        assert reasons.pop("setup.exe").startswith("unsupported file type '.exe'; supported: ")  # named, not dropped
        assert set(reasons) == {"secret.txt", "link.txt", "passwd"}
        assert all(reason == "refused: not a file uploaded through this page" for reason in reasons.values())
        assert [p.name for p in app.upload_dir.iterdir()] == [Path(next(iter(saved))).name]  # one copy
    finally:
        shutil.rmtree(uploaded_dir)


def test_a_store_deleted_under_the_server_is_said_not_hidden(app_server: tuple[str, Path]) -> None:
    url, store = app_server
    moved = store.with_name("store-moved")
    shutil.move(store, moved)
    try:
        result = call(url, "ingest", [], "")
        log = (store.parent / "serve.log").read_text()[-3000:]
        assert isinstance(result, list), f"an error event, not a message: {result}\n{log}"
        report = result[0]
        assert report.startswith("⚠️ Ingest failed: the store folder") and "has gone" in report
        chat = call(url, "ask", "Why did Putin praise Trump?", [], [], "", "")
        assert "has gone" in json.dumps(chat, ensure_ascii=False)
    finally:
        shutil.move(moved, store)


def test_a_chroma_server_that_died_is_named_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*_chroma_command(), "run", "--path", str(tmp_path / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"store": {"mode": "server", "port": port, "collection": "dying"}}))
    settings = make_settings(tmp_path, store={"mode": "server", "port": port, "collection": "dying"})
    cli = [sys.executable, "-m", "ui.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        deadline = time.time() + 60
        while subprocess.run([*cli, "stats", "--config", str(config)], env=env, capture_output=True).returncode:
            assert time.time() < deadline, "the Chroma server did not start"
            time.sleep(0.5)
        store = open_store(settings, 384)  # a process that was using the server when it died
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(Exception) as raised:
        store.count()
    said = describe_failure(raised.value, settings)
    assert said.startswith(f"cannot reach the Chroma server at 127.0.0.1:{port} (store.mode: server)"), said
    run = subprocess.run(
        [*cli, "ingest", str(SAMPLE), "--config", str(config)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert f"Chroma server at 127.0.0.1:{port}" in last, run.stderr


def test_wrong_passwords_are_throttled(tmp_path: Path) -> None:
    now = [0.0]
    check = LoginThrottle("ann", "right horse", max_failures=5, window=60, clock=lambda: now[0])
    assert check("ann", "right horse")
    assert not any(check("ann", f"guess {i}") for i in range(5))
    assert not check("ann", "right horse")  # locked for the rest of the window
    now[0] = 61.0
    assert check("ann", "right horse") and not check("bob", "right horse")


def test_the_served_login_is_throttled(tmp_path: Path) -> None:
    """Gradio's real /login route, with the throttle as its auth: 100 guesses no longer fit in a second."""
    demo = build_app(make_settings(tmp_path / "store"))
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        auth=LoginThrottle("ann", "right horse"),
        prevent_thread_lock=True,
        quiet=True,
    )
    try:

        def login(password: str) -> int:
            body = urllib.parse.urlencode({"username": "ann", "password": password}).encode()
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/login", data=body, timeout=10).status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert login("right horse") == 200
        assert [login(f"guess {i}") for i in range(5)] == [400] * 5
        assert login("right horse") == 400  # the sixth try in the minute is refused, right or not
    finally:
        demo.close()


def test_a_link_loop_in_a_folder_is_named_not_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "story.txt")
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    (folder / "gone.md").symlink_to(tmp_path / "deleted.md")
    report = ingest([str(folder)], make_settings(tmp_path / "store"))
    assert report.added == ["story.txt"]
    reasons = dict(report.failed)
    assert set(reasons) == {str(folder / "loop.txt"), str(folder / "gone.md")}
    assert all("a link that leads nowhere" in r for r in reasons.values())


def test_a_read_only_store_is_said_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert ingest([str(SAMPLE)], make_settings(store)).ok
    # A read-only bind mount: file modes do not stop root, which these tests may run as.
    if subprocess.run(["mount", "--bind", str(store), str(store)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(store)], capture_output=True)
        if remount.returncode:
            pytest.skip("cannot remount read-only here")
        config = tmp_path / "config.yaml"
        config.write_text(json.dumps({"store": {"path": str(store), "collection": "test"}}))
        run = subprocess.run(
            [sys.executable, "-m", "ui.cli", "stats", "--config", str(config)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
    finally:
        subprocess.run(["umount", str(store)], capture_output=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "is read-only here" in run.stderr and str(store) in run.stderr


def test_the_upload_folder_goes_with_the_server(tmp_path: Path) -> None:
    code = (
        "from tests.conftest import make_settings; from ui.app import App; from pathlib import Path; "
        f"app = App(make_settings(Path({str(tmp_path)!r}) / 'store')); print(app.upload_dir)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    folder = Path(run.stdout.strip().splitlines()[-1])
    assert folder.name.startswith("qa-bot-uploads-") and not folder.exists()
