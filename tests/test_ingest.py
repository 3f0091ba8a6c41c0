"""The write path against a real embedded Chroma, a real Chroma server and the real embedder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ingest import ingest
from qa_bot.archive import STAMP, StoreMismatchError, open_store
from qa_bot.settings import Settings
from tests.conftest import DATA, SAMPLE, make_settings


def snapshot(settings: Settings) -> dict[str, dict]:
    """Every chunk id with its text and metadata: what 'the same store' means (less when it was written)."""
    got = open_store(settings).collection.get(include=["metadatas", "documents"])
    rows = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
    return {cid: {"text": text, **{k: v for k, v in meta.items() if k != STAMP}} for cid, text, meta in rows}


def corpus(tmp_path: Path, n: int = 12) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    lines = (DATA / "ares-60.jsonl").read_text().splitlines()[:n]
    (folder / "dump.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    return folder


def test_first_ingest_stores_chunks_with_metadata_and_offsets(settings: Settings, tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    report = ingest([str(folder)], settings)
    assert report.ok, report.failed
    assert len(report.added) == 13 and report.chunks_written > 13
    snap = snapshot(settings)
    assert len(snap) == report.chunks_written
    first_id = json.loads((folder / "dump.jsonl").read_text().splitlines()[0])["doc_id"]
    assert first_id in report.added  # a given doc_id is kept unchanged
    sample = [c for c in snap.values() if c["doc_id"] == SAMPLE.name]
    text = SAMPLE.read_text()
    assert sample and all(text[c["start"] : c["end"]] == c["text"] for c in sample)
    assert sample[0]["title"].startswith("Russian President Vladimir Putin")  # first line is the title
    assert {c["n_chunks"] for c in sample} == {len(sample)}


def test_unchanged_reingest_is_a_no_op(settings: Settings, tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    ingest([str(folder)], settings)
    before = snapshot(settings)
    again = ingest([str(folder)], settings)
    assert again.chunks_written == 0 and not again.added and not again.updated
    assert len(again.unchanged) == 13
    assert snapshot(settings) == before


def test_changed_article_replaces_its_chunks(settings: Settings, tmp_path: Path) -> None:
    folder = corpus(tmp_path, n=2)
    ingest([str(folder)], settings)
    before = snapshot(settings)
    article = folder / SAMPLE.name
    article.write_text(article.read_text() + "\nPeskov added that a call with Trump was not yet planned.\n")
    report = ingest([str(folder)], settings)
    assert report.updated == [SAMPLE.name] and len(report.unchanged) == 2
    after = snapshot(settings)
    sample = [c for c in after.values() if c["doc_id"] == SAMPLE.name]
    assert any("call with Trump was not yet planned" in c["text"] for c in sample)
    assert len({c["content_hash"] for c in sample}) == 1  # no stale chunks left
    others_before = {k: v for k, v in before.items() if v["doc_id"] != SAMPLE.name}
    assert {k: v for k, v in after.items() if v["doc_id"] != SAMPLE.name} == others_before


def test_prune_removes_only_articles_whose_source_is_gone(settings: Settings, tmp_path: Path) -> None:
    folder = corpus(tmp_path, n=3)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("A separate folder\nIts article must survive a prune of another folder.")
    ingest([str(folder), str(other)], settings)
    (folder / SAMPLE.name).unlink()
    without = ingest([str(folder)], settings)
    assert without.removed == []  # no --prune, nothing removed
    report = ingest([str(folder)], settings, prune=True)
    assert report.removed == [SAMPLE.name]
    docs = {c["doc_id"] for c in snapshot(settings).values()}
    assert SAMPLE.name not in docs and "keep.txt" in docs and len(docs) == 4


def test_bad_inputs_fail_alone(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "good.txt")
    (folder / "empty.txt").write_text("   \n")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "latin1.txt").write_bytes("Caf\xe9 society\nbody".encode("latin-1"))
    (folder / "slides.docx").write_bytes(b"PK\x03\x04")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    good = json.dumps({"doc_id": "j1", "title": "Fine", "text": "A fine article body."})
    (folder / "dump.jsonl").write_text(good + "\n{not json\n" + json.dumps({"doc_id": "j3", "title": "No text"}) + "\n")
    (folder / "big.txt").write_text("x" * 2_000_000)
    small = make_settings(settings.store.path, ingest={"max_file_mb": 1})
    report = ingest([str(folder), str(tmp_path / "missing.txt")], small)
    reasons = {
        Path(src.split(" line ")[0]).name + ("#" + src.split(" line ")[1] if " line " in src else ""): why
        for src, why in report.failed
    }
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"] and "0xe9" in reasons["latin1.txt"]
    assert "unsupported file type '.docx'" in reasons["slides.docx"] and ".txt" in reasons["slides.docx"]
    assert "PDF" in reasons["broken.pdf"]
    assert "malformed JSON" in reasons["dump.jsonl#2"]
    assert "no 'text'" in reasons["dump.jsonl#3"]
    assert "max_file_mb" in reasons["big.txt"]
    assert "no such file" in reasons["missing.txt"]
    assert sorted(report.added) == ["good.txt", "j1"]


def test_model_mismatch_stops_with_rebuild_hint_and_reindex_rebuilds(settings: Settings, tmp_path: Path) -> None:
    folder = corpus(tmp_path, n=2)
    ingest([str(folder)], settings)
    changed = make_settings(settings.store.path, chunking={"max_tokens": 120, "overlap_tokens": 20})
    with pytest.raises(StoreMismatchError, match="qa-bot ingest --reindex"):
        ingest([str(folder)], changed)
    report = ingest([], changed, reindex=True)  # no sources: the recorded ones
    assert len(report.added) == 3
    assert open_store(changed).count() == report.chunks_written


def test_server_mode_shares_one_store(chroma_server: tuple[str, int], tmp_path: Path) -> None:
    host, port = chroma_server
    remote = make_settings(
        tmp_path / "unused", store={"mode": "server", "host": host, "port": port, "collection": "server-test"}
    )
    folder = corpus(tmp_path, n=3)
    first = ingest([str(folder)], remote)
    assert len(first.added) == 4
    again = ingest([str(folder)], remote)
    assert len(again.unchanged) == 4 and again.chunks_written == 0
    assert open_store(remote).count() == first.chunks_written
    assert not (tmp_path / "unused").exists()  # nothing went to a local store


def catalogue(settings: Settings) -> dict[str, set[str]]:
    got = open_store(settings).catalogue.get(include=["metadatas"])
    return {doc: set(json.loads(meta["chunks"])) for doc, meta in zip(got["ids"], got["metadatas"], strict=True)}


def by_article(settings: Settings) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for cid, chunk in snapshot(settings).items():
        found.setdefault(chunk["doc_id"], set()).add(cid)
    return found


def test_the_catalogue_lists_every_articles_chunks_through_changes(settings: Settings, tmp_path: Path) -> None:
    """An ingest finds an article's chunks by id through the catalogue; it must list them exactly."""
    folder = corpus(tmp_path, n=3)
    ingest([str(folder)], settings)
    assert catalogue(settings) == by_article(settings)
    article = folder / SAMPLE.name
    article.write_text(article.read_text() + "\nPeskov added that a call with Trump was not yet planned.\n")
    ingest([str(folder)], settings)
    assert catalogue(settings) == by_article(settings)  # the new version's chunks, not the old
    article.unlink()
    ingest([str(folder)], settings, prune=True)
    assert SAMPLE.name not in catalogue(settings) and catalogue(settings) == by_article(settings)
    store = open_store(settings)
    found = store.documents(doc_ids=[doc for doc in by_article(settings)][:2])
    assert {doc: set(info.chunks) for doc, info in found.items()} == {
        doc: ids for doc, ids in by_article(settings).items() if doc in found
    } and len(found) == 2


def test_a_store_from_before_the_catalogue_is_catalogued_once(settings: Settings, tmp_path: Path) -> None:
    folder = corpus(tmp_path, n=3)
    ingest([str(folder)], settings)
    before = snapshot(settings)
    store = open_store(settings)
    store.client.delete_collection(f"{settings.store.collection}-articles")  # as a store written before it
    report = ingest([str(folder)], settings)  # the next ingest lists every article first
    assert len(report.unchanged) == 4 and not report.added and not report.updated
    assert snapshot(settings) == before and catalogue(settings) == by_article(settings)
