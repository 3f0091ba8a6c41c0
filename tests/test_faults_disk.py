"""A disk that fills during an ingest: the store on a real 48 MB tmpfs, and a fake ENOSPC beside it.

The real case mounts a tmpfs (root only, else skipped with the reason), puts the store and its BM25
index on it, fills it with a file, and runs the real ``qa-bot`` command: an ingest below
``store.min_free_mb`` is refused before it writes, an ingest that runs the disk out of space says so
in words, ``stats`` and ``ask`` answer or say why, and once the file is gone a re-ingest completes
with every article present. The fakes check :func:`describe_failure`'s reading of ENOSPC alone.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from qa_bot.archive import Archive, describe_failure
from qa_bot.archive.errors import StoreFullError
from qa_bot.settings import Settings, SettingsError, settings_from_dict
from tests.conftest import DATA, FAST_MODEL, ROOT, SAMPLE, make_settings
from tests.test_cli import qa_bot

MB = 1024 * 1024
ARTICLES = DATA / "ares-60.jsonl"  # 60 real articles of ../shared/eval/ares-news: 139 chunks, about 3 MB stored


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs mounted for the test, unmounted after it whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 48 MB tmpfs for the full-disk case needs root; the fakes below still run")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        # This process may still hold the store's files open (Chroma keeps one system per path), so a
        # plain umount can be refused as busy: the lazy one detaches now and frees the memory on close.
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path, name: str, leave: int) -> None:
    """Take all but ``leave`` bytes of the disk's free space with one file."""
    size = shutil.disk_usage(disk).free - leave
    with open(disk / name, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(size, 1))


def disk_config(tmp_path: Path, disk: Path, min_free_mb: int) -> tuple[Path, Settings]:
    """A config file with the store and its BM25 index on ``disk``, and the same settings in-process."""
    raw: dict[str, Any] = {
        "store": {"path": str(disk / "chroma"), "collection": "disk", "min_free_mb": min_free_mb},
        "retrieval": {"lexical_path": str(disk / "lexical")},
        **FAST_MODEL,
    }
    path = tmp_path / f"config-{min_free_mb}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, settings_from_dict(raw)


def test_a_full_disk_is_said_in_words_and_nothing_is_lost(tmp_path: Path, small_disk: Path) -> None:
    guarded, _ = disk_config(tmp_path, small_disk, min_free_mb=20)
    unguarded, settings = disk_config(tmp_path, small_disk, min_free_mb=0)
    store = small_disk / "chroma"
    first = qa_bot("ingest", str(SAMPLE), "--config", str(guarded), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr

    # Below the margin: no batch is started, and the run says why, naming the disk's folder.
    fill(small_disk, "filler-1", leave=10 * MB)
    refused = qa_bot("ingest", str(ARTICLES), "--config", str(guarded), "--quiet", cwd=tmp_path)
    said = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert said.startswith(f"qa-bot: the disk holding the store at {store} is nearly full ("), said
    assert "MB free of 48 MB, below store.min_free_mb = 20" in said and "this write was not started" in said

    # With the check off, the disk runs out mid-write (Chroma: "Error in compaction: ..." or SQLite's
    # "database or disk is full"): the same words, with the free space at the moment it failed.
    fill(small_disk, "filler-2", leave=1 * MB)
    ran_out = qa_bot("ingest", str(ARTICLES), "--config", str(unguarded), "--quiet", cwd=tmp_path)
    said = ran_out.stderr.strip().splitlines()[-1]
    assert ran_out.returncode == 1 and "Traceback" not in ran_out.stderr, ran_out.stderr
    assert said.startswith(f"qa-bot: the disk holding the store at {store} is full ("), said
    assert "MB free of 48 MB): make room there or move store.path" in said

    # While it is full, stats and ask answer, or say in words that the disk is full: no traceback.
    for command in (["stats"], ["ask", "Who is Anis Amri?"]):
        run = qa_bot(*command, "--config", str(unguarded), cwd=tmp_path)
        assert "Traceback" not in run.stderr and "InternalError" not in run.stderr, run.stderr
        if run.returncode == 0:
            assert run.stdout.strip(), run.stderr
        else:
            assert f"the disk holding the store at {store} is full" in run.stderr, run.stderr

    # The page and the API read through the service: a search either answers or raises the store's
    # error in the same words, which every door already shows (never Chroma's InternalError). In a
    # process of its own, as a server is: a Chroma opened on the full disk stays broken in its process.
    search = (
        "import sys; from ui.service import Service; from qa_bot.archive import StoreError; "
        "from qa_bot.settings import load_settings\n"
        f"try: print('found', len(Service(load_settings({str(unguarded)!r})).search('Who is Anis Amri?')))\n"
        "except StoreError as exc: print('said', exc)"
    )
    run = subprocess.run(
        [sys.executable, "-c", search], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert run.stdout.startswith("found ") or f"said the disk holding the store at {store} is full" in run.stdout

    # Room made: the re-ingest completes, and the article written before the disk filled is still there.
    (small_disk / "filler-1").unlink()
    (small_disk / "filler-2").unlink()
    again = qa_bot("ingest", str(ARTICLES), "--config", str(guarded), "--quiet", cwd=tmp_path)
    assert again.returncode == 0 and "0 failed" in again.stdout, again.stderr
    expected = {json.loads(line)["doc_id"] for line in ARTICLES.read_text().splitlines()} | {SAMPLE.name}
    assert set(Archive(settings).articles()) == expected


# ---------------------------------------------------------------- fakes: the words alone


class InternalError(Exception):
    """Named as chromadb's is: Chroma's vague write failure, read by its type's name."""


def raised(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` as if raised from ``inner`` (``raise outer from inner``): a library's error over the OS's."""
    outer.__cause__ = inner
    return outer


def test_enospc_anywhere_in_the_chain_is_a_full_disk(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store")
    enospc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "store" / "chroma.sqlite3"))
    said = describe_failure(raised(RuntimeError("Error in compaction"), enospc), settings)
    assert said.startswith(f"the disk holding the store at {tmp_path / 'store'} is full ("), said
    assert "MB free of" in said and "move store.path" in said
    # The BM25 index's folder is named when the OS names a file in it.
    in_index = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "lexical" / "seg.idx"))
    assert describe_failure(in_index, settings).startswith(f"the disk holding the BM25 index at {tmp_path / 'lexical'}")
    # SQLite's words for it, without an errno.
    said = describe_failure(InternalError("Database error: (code: 13) database or disk is full"), settings)
    assert said.startswith("the disk holding the store at"), said


def test_a_vague_chroma_error_with_room_on_the_disk_keeps_its_words(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store")
    vague = InternalError("Error in compaction: Failed to apply logs to the metadata segment")
    if shutil.disk_usage(tmp_path).free < 64 * MB:
        pytest.skip("this disk is nearly full itself: the vague error would rightly read as a full disk")
    assert describe_failure(vague, settings) == str(vague)


def test_a_full_server_disk_names_the_server(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store", store={"mode": "server", "port": 8123})
    said = describe_failure(InternalError("database or disk is full"), settings)
    assert said.startswith("the disk of the Chroma server at 127.0.0.1:8123 is full"), said


class _FullStore:
    """A store whose disk is full: every write raises ENOSPC, as SQLite's would."""

    def upsert(self, *args: object) -> list[dict[str, Any]]:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_write_that_fills_the_disk_raises_the_words(tmp_path: Path) -> None:
    archive = Archive(make_settings(tmp_path / "store", store={"min_free_mb": 0}))
    archive._store = _FullStore()  # type: ignore[assignment]
    with pytest.raises(StoreFullError, match=r"the disk holding the store at .* is full"):
        archive.write(["a::h::0"], [[0.0]], ["text"], [{}])


def test_no_write_starts_below_the_margin(tmp_path: Path) -> None:
    free_mb = shutil.disk_usage(tmp_path).free // MB
    archive = Archive(make_settings(tmp_path / "store", store={"min_free_mb": free_mb + 1024}))
    with pytest.raises(
        StoreFullError,
        match=rf"store at {re.escape(str(tmp_path / 'store'))} is nearly full .* below store.min_free_mb",
    ):
        archive.ensure_room()  # nothing opened: the store's folder need not exist yet
    Archive(make_settings(tmp_path / "store", store={"min_free_mb": 0})).ensure_room()  # 0: off
    server = make_settings(tmp_path / "store", store={"mode": "server", "min_free_mb": free_mb + 1024})
    Archive(server).ensure_room()  # a server's disk is not measured from here


def test_min_free_mb_is_validated() -> None:
    with pytest.raises(SettingsError, match=r"store\.min_free_mb"):
        settings_from_dict({"store": {"min_free_mb": -1}})
