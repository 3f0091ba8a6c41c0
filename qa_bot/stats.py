"""What the store holds, for ``qa-bot stats`` and the UI.

Usage::

    from qa_bot.stats import store_stats
    store_stats(settings)   # {"articles": 12, "chunks": 80, ...}
"""

from __future__ import annotations

from typing import Any

from qa_bot.archive import Archive
from qa_bot.settings import Settings
from qa_bot.tuning import describe


def store_stats(settings: Settings, tune: bool = False) -> dict[str, Any]:
    """Counts and provenance, read without loading the embedder, and the model this machine runs
    (measured first with ``tune``, else as last measured)."""
    return {**Archive(settings).stats(), "model": describe(settings.generation, measure=tune)}
