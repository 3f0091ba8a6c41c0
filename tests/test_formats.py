"""The registry of formats (ingest.formats) and the frozen Article: a format is one entry, from which
the supported suffixes, the parser of a suffix and the kind of a fetched body all follow."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import feeds, formats
from ingest.articles import Article, Failure
from ingest.formats import FORMATS, REGISTRY, SUPPORTED, Format, Registry, parse_bytes
from ingest.loaders import SUPPORTED as LOADERS_SUPPORTED
from ingest.loaders import load_file
from qa_bot.settings import IngestSettings

BASE = {"origin": "here", "source_path": "here", "source": "tests"}


def _parse_csv(data: bytes, suffix: str, where: str, default_id: str, base: dict[str, str]) -> Iterator[Article]:
    """A toy format: each line "title,text" is an article."""
    for number, line in enumerate(data.decode().splitlines(), start=1):
        title, text = line.split(",", 1)
        yield Article(doc_id=f"{default_id}#{number}", text=text, title=title, **base)


CSV = Format("csv", (".csv",), _parse_csv, content_types=("text/csv",))


def test_supported_is_derived_from_the_registered_formats() -> None:
    suffixes = {suffix for fmt in FORMATS for suffix in fmt.suffixes}
    assert SUPPORTED == sorted(suffixes) == LOADERS_SUPPORTED
    assert {".txt", ".md", ".html", ".pdf", ".json", ".jsonl"} <= set(SUPPORTED)


def test_a_suffix_belongs_to_one_format() -> None:
    with pytest.raises(ValueError, match=r"\.txt is both text and notes"):
        REGISTRY.with_format(Format("notes", (".txt",), _parse_csv))


def test_a_new_format_is_one_entry() -> None:
    registry = REGISTRY.with_format(CSV)
    assert registry.supported == sorted([*SUPPORTED, ".csv"])
    [article] = registry.parse(b"Rates rise,The bank raised rates.", ".csv", "r.csv", "r.csv", BASE)
    assert isinstance(article, Article) and article.title == "Rates rise" and article.doc_id == "r.csv#1"
    assert registry.suffix_for("/export", "text/csv; charset=utf-8") == ".csv"
    assert REGISTRY.suffix_for("/export", "text/csv") is None  # the registry without it: unclaimed


def test_a_registered_format_reaches_files_and_fetched_bodies(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(formats, "REGISTRY", Registry((*FORMATS, CSV), fallback=".html"))
    assert feeds._kind("https://example.com/export", "text/csv", b"a,b") == ".csv"
    path = tmp_path / "rates.csv"
    path.write_text("Rates rise,The bank raised rates.\nRates fall,The bank cut rates.\n")
    articles = list(load_file(path, "rates.csv", IngestSettings(), origin=str(tmp_path)))
    assert [a.title for a in articles if isinstance(a, Article)] == ["Rates rise", "Rates fall"]


def test_an_unsupported_suffix_fails_with_the_list_of_supported_ones(tmp_path: Path) -> None:
    said = f"unsupported file type '.csv'; supported: {', '.join(SUPPORTED)}"
    assert list(parse_bytes(b"a,b", ".csv", "r.csv", "r.csv", BASE)) == [Failure("r.csv", said)]
    path = tmp_path / "r.csv"
    path.write_text("a,b")
    assert list(load_file(path, "r.csv", IngestSettings(), origin=str(tmp_path))) == [Failure(str(path), said)]


@pytest.mark.parametrize(
    ("path", "content_type", "body", "kind"),
    [
        ("/report.pdf", "text/plain", b"%PDF", ".pdf"),  # the path names a PDF whatever the server says
        ("/report", "application/pdf", b"%PDF", ".pdf"),
        ("/dump.jsonl", "application/json", b"{}", ".jsonl"),
        ("/dump", "application/json", b"{}", ".json"),
        ("/dump.json", "text/html", b"<html>", ".html"),  # JSON only by its content type
        ("/notes.txt", "", b"plain", ".txt"),
        ("/notes", "text/plain", b"plain", ".txt"),
        ("/feed", "text/html", b"<rss>", "feed"),
        ("/news", "application/rss+xml", b"<rss>", "feed"),
        ("/news", "text/html", b"  <?xml version='1.0'?><rss/>", "feed"),  # sniffed when nothing claims it
        ("/news", "text/html", b"<html>", ".html"),
        ("/news", "", b"<html>", ".html"),
    ],
)
def test_the_kind_of_a_fetched_body(path: str, content_type: str, body: bytes, kind: str) -> None:
    assert feeds._kind(f"https://example.com{path}", content_type, body) == kind


def test_an_article_is_frozen() -> None:
    article = Article(doc_id="a", text="The  bank\r\nraised rates.", title=" Rates  rise ")
    assert article.text == "The bank\nraised rates." and article.title == "Rates rise"
    with pytest.raises(dataclasses.FrozenInstanceError):
        article.title = "Rates fall"  # type: ignore[misc]


def test_feed_metadata_makes_a_new_article() -> None:
    article = Article(doc_id="a", text="The bank raised rates.", title="Rates", source="example.com")
    meta = {"title": " Rates  rise ", "author": "", "published": "Tue, 05 Mar 2024 10:00:00 GMT", "source": "Wire"}
    fed = article.with_feed_metadata(meta)
    assert (fed.title, fed.author, fed.published, fed.source) == ("Rates rise", "", "2024-03-05", "Wire")
    assert fed.content_hash != article.content_hash
    assert fed.content_hash == Article(**_init_fields(fed)).content_hash  # the hash of what it holds
    assert (article.title, article.published, article.source) == ("Rates", "", "example.com")


def test_a_page_that_names_its_outlet_keeps_it_over_the_feed() -> None:
    named = Article(doc_id="a", text="Rates rose.", source="Daily Planet", extra={"site_name": "Daily Planet"})
    fed = named.with_feed_metadata({"title": "Rates rise", "source": "Aggregator"})
    assert (fed.source, fed.title) == ("Daily Planet", "Rates rise")
    unnamed = Article(doc_id="a", text="Rates rose.", source="example.com")
    assert unnamed.with_feed_metadata({"source": "Aggregator"}).source == "Aggregator"


def _init_fields(article: Article) -> dict[str, object]:
    return {f.name: getattr(article, f.name) for f in dataclasses.fields(article) if f.init}
