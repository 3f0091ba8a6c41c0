import itertools
import threading
import time
from collections.abc import Callable

from ingest.chunking import chunk_text
from qa_bot.embeddings import get_embedder
from qa_bot.settings import EmbeddingSettings
from qa_bot.text import split_sentences
from tests.conftest import SAMPLE


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
