"""``qa-bot watch`` as a service: re-ingest sources round after round, politely.

Usage::

    from ingest.watch import Watcher
    with Watcher(["https://example.com/feed.xml", "data/articles"], settings) as watcher:
        result = watcher.round()
        print(result.summary())   # one line: sources due and backing off, articles, requests, bytes

* One :class:`~ingest.web.Fetcher` for every round: connections stay open and each host's
  robots.txt is read once an hour, not once a round.
* A source whose last fetch failed is backed off: left out of rounds for 1, 2, 4 … minutes after
  each failure in a row (at most 6 hours), then tried again; one success resets it. A feed item
  whose page failed is not asked again until its own back-off runs out. The state
  is kept with the source (``<collection>-fetched``), so ``qa-bot stats`` and the Articles tab
  show each source's last success and last error, and a restarted watch keeps its back-off.
* A round that fails as a whole (the store unreachable) is logged and the next one runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from ingest.fetchlog import FetchLog, now
from ingest.loaders import origin_of
from ingest.pipeline import IngestReport, ingest
from ingest.web import Fetcher
from qa_bot.archive import FETCHED, Archive, describe_failure
from qa_bot.settings import Settings


@dataclass
class RoundResult:
    number: int
    due: list[str]
    backing_off: list[tuple[str, int, float]] = field(default_factory=list)  # (source, failures, retry at)
    report: IngestReport | None = None
    error: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the log: what came of the round, what was due, what waits."""
        if self.error:
            return f"watch round {self.number} failed: {self.error}"
        done = self.report.summary() if self.report is not None else f"nothing to do in {self.seconds:.1f} s"
        line = (
            f"watch round {self.number}: {done}; {len(self.due)} of {len(self.due) + len(self.backing_off)} sources due"
        )
        if self.backing_off:
            waits = ", ".join(
                f"{source} after {failures} failure(s), next try {datetime.fromtimestamp(at).strftime('%H:%M')}"
                for source, failures, at in self.backing_off
            )
            line += f" ({len(self.backing_off)} backing off: {waits})"
        return line


class Watcher:
    """Rounds of ingest over the same sources, with one fetcher and per-source back-off."""

    def __init__(self, sources: list[str], settings: Settings, prune: bool = False) -> None:
        self.sources = sources
        self.settings = settings
        self.prune = prune
        self.fetcher = Fetcher(settings.ingest)
        self.rounds = 0

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.fetcher.close()

    def due(self) -> tuple[list[str], list[tuple[str, int, float]]]:
        """The sources to read this round, and those backing off after failures."""
        log = FetchLog(Archive(self.settings).records(FETCHED))
        origins = {source: origin_of(source) for source in self.sources}
        records = log.get(sorted(set(origins.values())), "source")
        at = now()
        due, waiting = [], []
        for source in self.sources:
            record = records.get(origins[source])
            if record is not None and record.retry_at > at:
                waiting.append((source, record.failures, record.retry_at))
            else:
                due.append(source)
        return due, waiting

    def round(self) -> RoundResult:
        self.rounds += 1
        began = time.perf_counter()
        result = RoundResult(self.rounds, due=[])
        try:
            result.due, result.backing_off = self.due()
            if result.due:
                result.report = ingest(result.due, self.settings, prune=self.prune, fetcher=self.fetcher, backoff=True)
        except Exception as exc:  # noqa: BLE001 - one failed round must not end the watch
            result.error = describe_failure(exc, self.settings)  # a full disk, a lost server: in words
        result.seconds = time.perf_counter() - began
        return result
