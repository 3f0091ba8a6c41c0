"""Turn source arguments (files, folders, article URLs, feed URLs) into articles.

Usage::

    from ingest.loaders import load_sources
    for item in load_sources(["data/articles", "https://example.com/feed.xml"], settings.ingest):
        ...  # an Article, or a Failure naming its source and the reason

Each file, JSON line, URL and feed item is loaded on its own: whatever goes wrong with one
becomes a :class:`Failure` and the rest are still loaded. Files are read by their format
(:mod:`ingest.formats`, the registry of formats); URLs and feeds are fetched by :mod:`ingest.feeds`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

from ingest import formats
from ingest.articles import Failure
from ingest.feeds import fetch_head, load_head
from ingest.fetchlog import FetchRecord
from ingest.formats import SUPPORTED, max_words
from ingest.items import FetchMemory, Item, Unchanged, is_url
from ingest.web import Fetcher
from qa_bot.settings import IngestSettings

# Imported from here by the pipeline, watch and the UI: the way in to loading, whatever module holds each.
__all__ = [
    "SUPPORTED",
    "FetchMemory",
    "Item",
    "Unchanged",
    "is_url",
    "load_file",
    "load_sources",
    "max_words",
    "origin_of",
    "walk_folder",
]


def origin_of(source: str) -> str:
    """The stable key a source argument is recorded under (prune scope)."""
    return source if is_url(source) else str(Path(source).expanduser().resolve())


def load_sources(
    sources: list[str],
    settings: IngestSettings,
    fetcher: Fetcher | None = None,
    memory: FetchMemory | None = None,
) -> Iterator[Item]:
    """Every article of every source, in order; URL sources and feed items are fetched concurrently."""
    memory = memory or FetchMemory()
    own = fetcher is None
    fetcher = fetcher or Fetcher(settings)
    try:
        # Every URL source's first request at once; their articles still come in the given order.
        urls = list(dict.fromkeys(s for s in sources if is_url(s)))
        known = memory.records(urls, "source")
        heads = {url: fetcher.submit(fetch_head, fetcher, url, known.get(url)) for url in urls}
        for source in sources:
            if source in heads:
                record = known.get(source) or FetchRecord(source, kind="source")
                yield from load_head(source, record, heads.pop(source).result(), fetcher, memory)
            elif not is_url(source):
                yield from _load_path(source, settings, memory)
    finally:
        if own:
            fetcher.close()


def _load_path(source: str, settings: IngestSettings, memory: FetchMemory) -> Iterator[Item]:
    origin = origin_of(source)
    record = memory.records([origin], "source").get(origin) or FetchRecord(origin, kind="source")
    path = Path(source).expanduser()
    if path.is_dir():
        for entry in walk_folder(path, source):
            if isinstance(entry, Failure):
                yield entry
            else:
                yield from load_file(entry, entry.relative_to(path).as_posix(), settings, origin)
        record.succeeded()
    elif path.is_file():
        items = list(load_file(path, path.name, settings, origin))
        failures = [i for i in items if isinstance(i, Failure)]
        if items and len(failures) == len(items):  # a file whose every article failed has failed
            record.failed(failures[0].reason)
        else:
            record.succeeded()
        yield from items
    else:
        record.failed("no such file or folder")
        yield Failure(source, "no such file or folder")
    memory.note(record)


# ---------------------------------------------------------------- folders


def walk_folder(folder: Path, shown: str) -> Iterator[Path | Failure]:
    """Every file of a folder to read, in path order, or a Failure naming an entry that may not be read.

    The one place a folder is walked: a source argument and the page's "Re-ingest all sources" (which
    passes each recorded folder back through :func:`load_sources`) both come here, so every file read
    from a folder has passed :func:`_refusal`. ``shown`` is the folder as the user named it.
    """
    root = folder.resolve()
    unreadable: list[Failure] = []
    entries: list[Path] = []

    def note(exc: OSError) -> None:
        unreadable.append(Failure(str(exc.filename), f"cannot read folder: {exc.strerror or exc}"))

    # Links are not followed, so a linked folder (or a loop of them) is listed once and never entered.
    for parent, dirs, files in os.walk(folder, onerror=note, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .git and the like hold no articles
        entries += (Path(parent) / name for name in (*dirs, *files) if not name.startswith("."))
    yield from unreadable
    for entry in sorted(entries):
        refused = _refusal(entry, root, shown)
        if refused is not None:
            yield refused
        elif entry.is_file():  # a file, or a link to one inside the folder
            yield entry
        # else: a folder, walked above; or a link to a folder inside this one, whose files are read there


def _refusal(entry: Path, root: Path, shown: str) -> Failure | None:
    """The path-safety check: an entry of the folder ``root`` whose resolved path lies outside it (a
    link to /etc/passwd, a linked folder elsewhere), or that leads round a loop or nowhere, is refused
    by name. None when it may be read."""
    try:
        target = entry.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: pathlib's word for a loop (ELOOP) before 3.13
        return Failure(str(entry), _unresolved(entry, exc))
    if target.is_relative_to(root):
        return None
    kind = "the folder " if target.is_dir() else ""
    # The Failure belongs to the target, not the link: a refusal is not a broken file whose stored
    # article --prune must keep, so what was read through this link before the check is dropped.
    return Failure(
        str(entry), f"a link to {kind}{target}, outside the folder being ingested {shown}; refused", str(target)
    )


def _unresolved(entry: Path, exc: OSError | RuntimeError) -> str:
    if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
        return "a link that leads nowhere (round a loop); refused"
    if isinstance(exc, FileNotFoundError) and entry.is_symlink():
        return f"a link that leads nowhere ({_link_text(entry)} does not exist)"
    return f"cannot read: {exc.strerror or exc}"


def _link_text(entry: Path) -> str:
    try:
        return os.readlink(entry)
    except OSError:
        return "its target"


# ---------------------------------------------------------------- files


def load_file(path: Path, rel: str, settings: IngestSettings, origin: str) -> Iterator[Item]:
    suffix = path.suffix.lower()
    where = str(path)
    if suffix not in formats.REGISTRY.by_suffix:
        yield Failure(where, formats.REGISTRY.unsupported(suffix or path.name))
        return
    size = path.stat().st_size
    limit = int(settings.max_file_mb * 1024 * 1024)
    if size > limit:
        mb = size / 1048576
        yield Failure(where, f"file is {mb:.1f} MB, over the limit ingest.max_file_mb = {settings.max_file_mb:g}")
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield Failure(where, f"cannot read file: {exc.strerror or exc}")
        return
    base = {"origin": origin, "source_path": where, "source": path.parent.name}
    yield from formats.parse_bytes(data, suffix, where, default_id=rel, base=base, max_words=max_words(settings))
