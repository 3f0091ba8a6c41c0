"""Hostile and unlucky inputs on the ingest side of issue 33, each a real case through the real ingest
(real embedder, real embedded Chroma): links out of a folder (/etc/passwd, a linked folder, a loop),
malformed front matter, and a 20 MB HTML page. A bad file fails alone, named with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.security import big_page
from ingest import ingest
from ingest.articles import Article
from ingest.formats import MAX_HTML_TAGS
from ingest.loaders import max_words
from qa_bot.archive import open_store
from qa_bot.settings import Settings
from tests.conftest import Route, WebServer, make_settings
from ui.service import Service

PASSWD = Path("/etc/passwd")


def stored(settings: Settings) -> tuple[list[str], list[dict]]:
    """Every chunk's text and metadata in the store."""
    got = open_store(settings).collection.get(include=["documents", "metadatas"])
    return list(got["documents"]), list(got["metadatas"])


def passwd_lines() -> list[str]:
    """The lines of /etc/passwd that would give it away in the store (user:x:uid:gid...)."""
    if not PASSWD.is_file():
        pytest.skip("no /etc/passwd on this machine")
    return [line for line in PASSWD.read_text().splitlines() if line.count(":") >= 5]


def assert_nothing_of_passwd(settings: Settings) -> None:
    texts, metas = stored(settings)
    lines = passwd_lines()
    assert lines and not any(line in text for text in texts for line in lines)
    assert not any(text.find(":x:0:0:") >= 0 for text in texts)
    assert not any("passwd" in str(meta.get("source_path", "")) for meta in metas)


def article(folder: Path, name: str, title: str) -> Path:
    """A short article of its own words, so it is neither empty nor a copy of another."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n\nThe council of {title.lower()} met on Monday and agreed a budget for {name}.\n")
    return path


# ---------------------------------------------------------------- links out of the folder


def hostile_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with good articles and every kind of link, and the folder outside it a link leads to."""
    folder = tmp_path / "x"
    outside = tmp_path / "elsewhere"
    article(outside, "secret.txt", "Outside Secrets")  # a real article, but not of this folder
    article(folder, "good.txt", "Harbour Works")
    article(folder, "sub/inner.txt", "Inner Matters")
    (folder / "passwd-link.txt").symlink_to(PASSWD)
    (folder / "linked-dir").symlink_to(outside, target_is_directory=True)
    (folder / "loop-a.txt").symlink_to(folder / "loop-b.txt")
    (folder / "loop-b.txt").symlink_to(folder / "loop-a.txt")
    (folder / "sub" / "self").symlink_to(folder / "sub" / "self")  # a loop of one, in a subfolder
    (folder / "inside-link.txt").symlink_to(Path("sub") / "inner.txt")  # relative, resolves inside: fine
    (folder / "mirror").symlink_to(folder / "sub", target_is_directory=True)  # inside: read at its place
    return folder, outside


def test_links_that_leave_the_folder_are_refused_by_name(settings: Settings, tmp_path: Path) -> None:
    folder, outside = hostile_folder(tmp_path)
    report = ingest([str(folder)], settings)
    reasons = dict(report.failed)
    passwd = reasons.pop(str(folder / "passwd-link.txt"))
    assert passwd == f"a link to {PASSWD}, outside the folder being ingested {folder}; refused"
    linked = reasons.pop(str(folder / "linked-dir"))
    assert linked == f"a link to the folder {outside}, outside the folder being ingested {folder}; refused"
    for loop in ("loop-a.txt", "loop-b.txt", "sub/self"):
        assert reasons.pop(str(folder / loop)) == "a link that leads nowhere (round a loop); refused"
    assert not reasons  # nothing else failed
    # The rest of the batch is ingested, the link inside the folder too; the linked folder inside is
    # read once, at its own place.
    assert sorted(report.added) == ["good.txt", "inside-link.txt", "sub/inner.txt"]
    assert_nothing_of_passwd(settings)
    texts, _ = stored(settings)
    assert not any("Outside Secrets" in t for t in texts)


def test_a_link_given_as_the_folder_itself_is_followed(settings: Settings, tmp_path: Path) -> None:
    """The folder being ingested is the resolved one: a folder named through a link is read whole."""
    real = tmp_path / "real"
    article(real, "story.txt", "Linked Harbour")
    alias = tmp_path / "alias"
    alias.symlink_to(real, target_is_directory=True)
    report = ingest([str(alias)], settings)
    assert report.added == ["story.txt"] and not report.failed


def test_re_ingest_all_sources_goes_through_the_same_check(settings: Settings, tmp_path: Path) -> None:
    """The page's "Re-ingest all sources" (Service.reingest: every recorded folder again)."""
    folder = tmp_path / "x"
    article(folder, "good.txt", "Harbour Works")
    assert ingest([str(folder)], settings).ok
    (folder / "passwd-link.txt").symlink_to(PASSWD)  # planted after the folder was recorded
    outcome = Service(settings).reingest()
    assert outcome is not None and outcome.report is not None
    link = str(folder.resolve() / "passwd-link.txt")  # recorded folders are re-read by their resolved path
    assert dict(outcome.report.failed) == {
        link: f"a link to {PASSWD}, outside the folder being ingested {folder.resolve()}; refused"
    }
    assert outcome.report.unchanged == ["good.txt"]
    assert_nothing_of_passwd(settings)


def test_prune_drops_what_a_refused_link_let_in_before(settings: Settings, tmp_path: Path) -> None:
    """A store that took a file through a link before the check: a prune removes it, as a refused link
    is not a broken file whose article must be kept."""
    folder = tmp_path / "x"
    article(folder, "good.txt", "Harbour Works")
    planted = article(folder, "passwd-link.txt", "Planted Words")  # stands for what the link let in
    assert sorted(ingest([str(folder)], settings).added) == ["good.txt", "passwd-link.txt"]
    planted.unlink()
    planted.symlink_to(PASSWD)
    report = ingest([str(folder)], settings, prune=True)
    assert report.removed == ["passwd-link.txt"] and [s for s, _ in report.failed] == [str(planted)]
    texts, _ = stored(settings)
    assert not any("Planted Words" in t for t in texts)
    assert_nothing_of_passwd(settings)


# ---------------------------------------------------------------- front matter


def test_malformed_front_matter_fails_that_file_alone(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.md").write_text(
        '---\ntitle: Budget talks\npublished: "2024-03-01\nauthor: A. Writer\n---\nThe budget talks resumed.\n'
    )
    (folder / "colon.md").write_text("---\ntitle: Talks: day two: late\n---\nThe talks went on.\n")
    (folder / "prose.md").write_text("---\nJust a line of prose.\n---\nAnd then the body of it.\n")
    (folder / "unclosed.md").write_text("---\ntitle: Never closed\n\nThe body runs on without a closing line.\n")
    (folder / "good.md").write_text(
        "---\ntitle: Port strike ends\npublished: 2024-03-02\ntags: [ports, strikes]\n---\n"
        "The port strike ended on Saturday after the union accepted the offer.\n"
    )
    article(folder, "plain.txt", "Plain Words")
    report = ingest([str(folder)], settings)
    reasons = {Path(source).name: why for source, why in report.failed}
    assert reasons.pop("notes.md") == (
        "front matter is not valid YAML "
        "(line 5: found unexpected end of stream, while scanning a quoted scalar from line 3)"
    )
    assert reasons.pop("colon.md") == "front matter is not valid YAML (line 2: mapping values are not allowed here)"
    assert reasons.pop("prose.md") == (
        "front matter is not a mapping of fields (title: ..., published: ...) but plain text"
    )
    assert reasons.pop("unclosed.md") == "front matter opened by '---' on line 1 is never closed by a '---' line"
    assert not reasons
    assert sorted(report.added) == ["good.md", "plain.txt"]
    _, metas = stored(settings)
    titles = {meta["doc_id"]: meta["title"] for meta in metas}
    assert titles["good.md"] == "Port strike ends" and "---" not in titles.values()
    assert {meta["published"] for meta in metas if meta["doc_id"] == "good.md"} == {"2024-03-02"}


# ---------------------------------------------------------------- a 20 MB page


def test_a_20_mb_page_is_refused_before_extraction_and_the_rest_ingests(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    big = big_page(folder / "big.html")
    assert 19 * 1048576 < big.stat().st_size <= settings.ingest.max_file_mb * 1048576  # under max_file_mb
    (folder / "fine.html").write_text(
        "<html><head><title>Ferry timetable changes</title></head><body><article>"
        "<p>The ferry operator said on Friday that the winter timetable would start a week early, because "
        "storms had closed the harbour twice this month and the crews needed the time for repairs.</p>"
        "</article></body></html>"
    )
    report = ingest([str(folder)], settings)
    [(source, why)] = report.failed
    limit = max_words(settings.ingest)
    assert source == str(big)
    assert why.startswith("too big: about ") and "words of text in 19.5 MB" in why
    assert f"over the {limit:,} words that ingest.max_chunks_per_article chunks can hold" in why
    assert why.endswith("refused before extraction")
    assert report.added == ["fine.html"]
    texts, _ = stored(settings)
    assert not any("pensions would resume" in t for t in texts)


def tag_heavy_page(nested: int) -> str:
    """A page of little text in many elements: what an extractor's time and memory grow with."""
    block = "<div><div><span>a</span></div></div>\n"  # 6 tags
    return f"<html><body><article><p>{'word ' * 300}</p>{block * (nested // 6)}</article></body></html>"


def test_a_page_of_too_many_tags_is_refused_before_extraction(settings: Settings, tmp_path: Path) -> None:
    page = tmp_path / "tags.html"
    page.write_text(tag_heavy_page(MAX_HTML_TAGS + 6_000))
    report = ingest([str(page)], settings)
    [(source, why)] = report.failed
    assert source == str(page)
    size = f"{page.stat().st_size / 1048576:.1f} MB"
    assert why.startswith("too big: about 66,0") and f"HTML tags in {size}, over the {MAX_HTML_TAGS:,}" in why
    assert why.endswith("refused before extraction")


def test_a_fetched_page_of_too_many_tags_is_refused_too(settings: Settings, web: WebServer) -> None:
    """The tag bound is the HTML format's, so a page fetched from a URL meets it as a file does."""

    web.routes["/tags.html"] = Route(tag_heavy_page(MAX_HTML_TAGS + 6_000).encode())
    report = ingest([web.url("/tags.html")], settings)
    [(source, why)] = report.failed
    assert source == web.url("/tags.html") and "HTML tags" in why and "refused before extraction" in why


def test_a_fetched_page_of_too_many_words_is_refused_before_extraction(tmp_path: Path, web: WebServer) -> None:
    """The word bound reaches pages fetched from a URL and from a feed's items, as it does files."""
    settings = make_settings(tmp_path / "store", ingest={"allow_private_addresses": True, "max_chunks_per_article": 2})
    words = " ".join(f"word{i}" for i in range(3 * max_words(settings.ingest)))
    web.routes["/long.html"] = Route(f"<html><body><p>{words}</p></body></html>".encode())
    report = ingest([web.url("/long.html")], settings)
    [(source, why)] = report.failed
    assert source == web.url("/long.html") and why.startswith("too big: about ") and "before extraction" in why


def test_a_page_under_the_bounds_is_read(tmp_path: Path) -> None:
    """The bounds refuse only what is far out: a long but ordinary page is still an article."""
    from ingest.loaders import load_file

    settings = make_settings(tmp_path / "store")
    page = tmp_path / "long.html"
    page.write_text(tag_heavy_page(MAX_HTML_TAGS // 2))
    [found] = list(load_file(page, page.name, settings.ingest, origin=str(tmp_path)))
    assert isinstance(found, Article) and found.text.startswith("word word"), found
