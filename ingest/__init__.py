"""The write path: loading, extraction, chunking, embedding and indexing of articles.

Usage::

    from ingest import ingest
    report = ingest(["data/articles"], prune=True)
    print(report.summary())
"""

from ingest.pipeline import IngestReport, ingest

__all__ = ["IngestReport", "ingest"]
