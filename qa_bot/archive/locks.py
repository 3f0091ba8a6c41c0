"""One advisory lock file, shared by the archive's parts (the Chroma store and the BM25 index).

Usage::

    from qa_bot.archive.locks import file_lock
    with file_lock(folder / "qa-bot.lock"):
        ...  # no other process holds this lock meanwhile
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block.

    A flock, not a lock-file's existence: the kernel drops it when a holder is killed, so a
    crashed writer never leaves the archive locked.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
