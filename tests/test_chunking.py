import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest import ingest
from ingest.chunking import chunk_text
from qa_bot.archive import StoreMismatchError, open_store
from qa_bot.archive import store as store_module
from qa_bot.embeddings import get_embedder
from qa_bot.settings import EmbeddingSettings
from qa_bot.text import SPLITTER_VERSION, split_sentences
from tests.conftest import ROOT, SAMPLE, make_settings


def embedder():
    return get_embedder(EmbeddingSettings())


def test_sentences_respect_abbreviations() -> None:
    text = "Mr. Smith went to the U.S. on Monday. He met Dr. Jones at 3 p.m. in Washington. It rained!"
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    assert sentences == [
        "Mr. Smith went to the U.S. on Monday.",
        "He met Dr. Jones at 3 p.m. in Washington.",
        "It rained!",
    ]


def test_chunks_are_exact_slices_within_budget_and_overlap() -> None:
    text = SAMPLE.read_text() * 3
    count = embedder().count_tokens
    chunks = chunk_text(text, count, max_tokens=60, overlap_tokens=20)
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert count([chunk.text])[0] <= 60 + 2  # joining sentences can add a word-piece or two
    # consecutive chunks overlap (the next one starts before the previous one ends)
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks))
    # every sentence is in some chunk
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for s in split_sentences(text) for i in (s.start, s.end - 1))


def test_overlong_sentence_is_cut_at_words() -> None:
    text = " ".join(["word"] * 500) + "."
    chunks = chunk_text(text, embedder().count_tokens, max_tokens=100, overlap_tokens=10)
    assert len(chunks) >= 5
    assert all(c.tokens <= 100 for c in chunks)
    assert all(text[c.start : c.end] == c.text and not c.text.startswith(" ") for c in chunks)


def test_counting_tokens_while_another_thread_embeds_breaks_neither() -> None:
    """Two people asking at once: one question's prompt is being sized while another's is embedded.

    The fast tokenizer's padding and truncation settings are shared; before count_tokens took
    the encode lock, this failed within seconds ("Unable to create tensor").
    """
    e = embedder()
    texts = ["Putin praised Trump's courage.", "short", "a longer sentence about the Kremlin " * 8]
    errors: list[Exception] = []
    stop = threading.Event()

    def repeat(call: Callable[[list[str]], object]) -> None:
        while not stop.is_set():
            try:
                call(texts)
            except Exception as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(exc)
                stop.set()

    threads = [threading.Thread(target=repeat, args=(f,)) for f in (e.embed, e.count_tokens)]
    for t in threads:
        t.start()
    time.sleep(8)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert e.count_tokens(texts)[1] == 1


# The sentence spans of the sample article and the 60 test articles, hashed. A change to
# qa_bot/text.py that moves any span changes how articles are chunked: raise SPLITTER_VERSION
# (stores built before then ask for `qa-bot ingest --reindex`) and record the new fingerprint.
SPLITTER_FINGERPRINT = {1: "d838c11d8583af85"}


def test_a_change_to_the_splitter_needs_a_new_splitter_version() -> None:
    texts = [SAMPLE.read_text()]
    texts += [json.loads(line)["text"] for line in (ROOT / "tests" / "data" / "ares-60.jsonl").read_text().splitlines()]
    digest = hashlib.sha256()
    for text in texts:
        for span in split_sentences(text):
            digest.update(f"{span.start}:{span.end};".encode())
    assert SPLITTER_FINGERPRINT.get(SPLITTER_VERSION) == digest.hexdigest()[:16], (
        "split_sentences cuts text differently: raise qa_bot.text.SPLITTER_VERSION and record the new fingerprint"
    )


def test_a_store_chunked_by_another_splitter_asks_for_a_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "store")
    assert ingest([str(SAMPLE)], settings).ok
    monkeypatch.setattr(store_module, "SPLITTER_VERSION", SPLITTER_VERSION + 1)
    with pytest.raises(StoreMismatchError, match=r"splitter is 1 in the store but 2 in the settings.*--reindex"):
        open_store(settings)
