"""The archive's errors, and the one line a person reads when the store fails.

Usage::

    from qa_bot.archive import StoreError, describe_failure
    try:
        ...
    except StoreError as exc:
        print(describe_failure(exc, settings))

Every storage failure is put into words here, for the command line, the page, the HTTP API and
MCP alike: a Chroma server that cannot be reached, and a disk that is full (or below
``store.min_free_mb``), whichever words Chroma, SQLite or the OS used for it.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from qa_bot.settings import Settings

MB = 1024 * 1024

# How SQLite, Chroma's Rust core and the OS say "no space": seen with the store on a full tmpfs
# ("(code: 13) database or disk is full") and in OSError's strerror.
FULL_WORDS = ("no space left on device", "database or disk is full", "disk quota exceeded")
# Chroma's words when a write or a read's catch-up fails without saying why ("Error in compaction:
# Failed to apply logs to the metadata segment" on a full tmpfs): a full disk only if it is one now.
VAGUE_WORDS = ("error in compaction", "failed to apply logs", "backfill request", "disk i/o error")
# A failed write leaves at most what it tried to take free, and the largest (1,000 chunks) takes
# about 19 MB in Chroma: a vague failure with less than this free (or a tenth of a small disk) is
# read as a full disk. After the failures seen on a 48 MB tmpfs, 24 KB to 0.8 MB was left.
NEARLY_FULL_MB = 32


class StoreError(RuntimeError):
    """The store cannot be opened or reached."""


class StoreFullError(StoreError):
    """The disk holding the store or its BM25 index is full, or below ``store.min_free_mb``."""


def describe_failure(exc: BaseException, settings: Settings) -> str:
    """One line for a person: what failed, naming Chroma where the store is what failed."""
    if settings.store.mode == "server" and _is_connection_error(exc):
        s = settings.store
        return (
            f"cannot reach the Chroma server at {s.host}:{s.port} (store.mode: server): {_root(exc)}; "
            "is `chroma run` still running there?"
        )
    full = full_disk(exc, settings)
    if full is not None:
        return full
    return str(exc) or type(exc).__name__


def full_disk(exc: BaseException, settings: Settings) -> str | None:
    """The words for ``exc`` if a full disk is what failed (ENOSPC anywhere in its chain, SQLite's or
    the OS's words for it, or Chroma's vague write errors while the disk is full now), else None."""
    certain, vague, where = False, False, None
    for e in _chain(exc):
        if isinstance(e, StoreFullError):
            return str(e)  # already in words: the free-space check before a write
        said = str(e).lower()
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            certain = True
            where = where or (Path(str(e.filename)) if e.filename else None)
        certain = certain or any(w in said for w in FULL_WORDS)
        vague = vague or type(e).__name__ == "InternalError" or any(w in said for w in VAGUE_WORDS)
    if not (certain or vague):
        return None
    s = settings.store
    if s.mode == "server" and where is None:  # a file the OS named is on this machine's disk
        if not certain:
            return None  # the server's disk cannot be measured from here
        return (
            f"the disk of the Chroma server at {s.host}:{s.port} is full ({_root(exc)}): make room on the "
            "server's disk; nothing written before this is lost"
        )
    # Which disk: the file the OS named, else the store's or the BM25 index's, whichever has less free.
    places = disk_places(settings)
    if where is not None and not any(_within(where, path) for _, path, _ in places):
        places = [("file", where, "")]
    elif where is not None:
        places = [p for p in places if _within(where, p[1])]
    measured = [(free_space(path), what, path, key) for what, path, key in places]
    (free, total), what, path, key = min(measured, key=lambda m: m[0][0])
    if not certain and free >= min(NEARLY_FULL_MB * MB, total / 10):
        return None  # Chroma failed for some other reason: its own words stand
    return disk_full_message(what, path, key, free, total)


def disk_full_message(what: str, path: Path, key: str, free: float, total: float, margin_mb: int = 0) -> str:
    """'the disk holding the store at P is full (F MB free of T MB): ...', naming what to do."""
    move = f" or move {key}" if key else ""
    state = f"full ({free / MB:.1f} MB free of {total / MB:.0f} MB)"
    after = "nothing written before this is lost"
    if margin_mb:  # the check before a write: nothing of this write was started
        below = f", below store.min_free_mb = {margin_mb}"
        state = f"{'nearly ' if free >= MB else ''}{state[:-1]}{below})"
        after = "this write was not started and nothing written before it is lost"
    return f"the disk holding the {what} at {path} is {state}: make room there{move}, and run it again; {after}"


def disk_places(settings: Settings) -> list[tuple[str, Path, str]]:
    """What an embedded store writes on this machine: (what, folder, the setting that moves it)."""
    return [
        ("store", settings.store.path, "store.path"),
        ("BM25 index", settings.retrieval.lexical_path, "retrieval.lexical_path"),
    ]


def free_space(path: Path) -> tuple[float, float]:
    """(free, total) bytes of the disk that holds ``path``, or would hold it once made."""
    for place in (path, *path.parents):
        try:
            usage = shutil.disk_usage(place)
        except OSError:  # not made yet, or gone: its nearest existing folder is on the same disk
            continue
        return float(usage.free), float(usage.total)
    return 0.0, 0.0


def _within(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def _is_connection_error(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, ConnectionError) or type(e).__name__ in (
            "ConnectError",
            "ConnectTimeout",
            "RemoteProtocolError",
        ):
            return True
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _root(exc: BaseException) -> str:
    return str(_chain(exc)[-1]) or type(exc).__name__


class StoreMismatchError(StoreError):
    """The collection was built with other embedding or chunking settings."""
