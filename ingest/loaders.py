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

from collections.abc import Iterator
from pathlib import Path

from ingest import formats
from ingest.articles import Failure
from ingest.feeds import fetch_head, load_head
from ingest.fetchlog import FetchRecord
from ingest.formats import SUPPORTED
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
    "origin_of",
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
        for file in sorted(path.rglob("*")):
            rel = file.relative_to(path)
            if any(part.startswith(".") for part in rel.parts):
                continue  # hidden files and folders (.git, .DS_Store) are not articles
            if file.is_symlink() and not file.exists():
                yield Failure(str(file), "a link that leads nowhere (a link loop, or its target is gone)")
            elif file.is_file():
                yield from load_file(file, rel.as_posix(), settings, origin)
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
    yield from formats.parse_bytes(data, suffix, where, default_id=rel, base=base)
