"""The BM25 index kept in place (qa_bot/archive/lexical.py), against a real Chroma and a real tantivy index.

* adding, updating and deleting articles keeps the BM25 and dense sides the same set of chunks;
* an ingest SIGKILLed between its Chroma write and its BM25 write, or between a deletion's
  record and the deletion, is repaired by the next run (and by a catch-up alone);
* a running retriever finds an article that another process ingested, without a restart;
* two ``qa-bot serve`` processes on their own BM25 folders, against one ``chroma run`` server,
  both find an article ingested by a third process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest import ingest
from qa_bot import Filters, QABot
from qa_bot.archive import now_ms, open_store
from qa_bot.archive.lexical import LexicalIndex, LexicalSync, index_folder
from qa_bot.settings import Settings, load_settings
from tests.conftest import FAST_MODEL, ROOT, make_settings, start_serve

TOPICS = [
    ("Harbour", "The harbour authority in Valdoria opened a new container terminal on Monday."),
    ("Orchard", "Apple growers near Kestrel Valley reported a record harvest after a mild spring."),
    ("Bridge", "Engineers closed the Marlow suspension bridge after cracks were found in a cable."),
    ("Museum", "The Ostrander museum returned three bronze statues to their country of origin."),
    ("Election", "Voters in the canton of Brisa elected their first independent mayor in forty years."),
]


def write_articles(folder: Path, n: int, tag: str = "") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        title, lead = TOPICS[i % len(TOPICS)]
        body = " ".join(f"{lead} Paragraph {j} of report {i}{tag} adds detail number {i * 7 + j}." for j in range(12))
        path = folder / f"{title.lower()}-{i}.txt"
        path.write_text(f"{title} report {i}{tag}\n\n{body}\n")
        paths.append(path)
    return paths


def chroma_ids(settings: Settings) -> set[str]:
    return set(open_store(settings).collection.get(include=[])["ids"])


def lexical_ids(settings: Settings) -> set[str]:
    """The ids a fresh process would see, after catching up."""
    sync = LexicalSync(open_store(settings), settings.retrieval)
    sync.catch_up()
    return sync.index.ids()


def test_add_update_delete_keep_both_sides_the_same_chunks(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store")
    folder = tmp_path / "articles"
    paths = write_articles(folder, 4)
    assert ingest([str(folder)], settings).ok
    first = chroma_ids(settings)
    assert len(first) > 4 and lexical_ids(settings) == first

    bot = QABot(settings)
    assert bot.retrieve("Valdoria container terminal")[0].title.startswith("Harbour")
    # Update one article (new words, new chunk ids) and remove another.
    paths[0].write_text("Harbour report 0\n\nThe Valdoria terminal was renamed Quillon Quay by the port board.\n")
    paths[1].unlink()
    report = ingest([str(folder)], settings, prune=True)
    assert report.updated == [paths[0].name] and report.removed == [paths[1].name]
    second = chroma_ids(settings)
    assert second != first
    assert lexical_ids(settings) == second
    # The running bot's index was kept in step by the ingest (same machine): no stale hits.
    bot.retriever.refresh()
    hits = bot.retriever.lexical().search("Quillon Quay", 10, Filters())
    assert hits and all(cid in second for cid, _ in hits)
    assert all(cid in second for cid, _ in bot.retriever.lexical().search("Kestrel harvest", 10, Filters()))
    passages = bot.retrieve("What was the Valdoria terminal renamed?")
    assert "Quillon Quay" in passages[0].text
    assert all(p.doc_id != paths[1].name for p in bot.retrieve("Kestrel Valley apple harvest"))


KILLER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from ingest import ingest
from qa_bot.archive import lexical, store as st
from tests.conftest import make_settings

point, path, folder = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)

def die_after_record(self, ids):
    # The deletion is recorded, the chunks are not yet deleted.
    records = [{{st.DELETED_AT: st.now_ms()}}] * len(ids)
    self.tombstones.upsert(ids=ids, embeddings=[[0.0]] * len(ids), metadatas=records)
    die()

if point == "recorded":
    st.Store.delete = die_after_record
else:  # Chroma is written (or deleted from); the BM25 index is not
    setattr(lexical.LexicalSync, point, die)
ingest([folder], make_settings(path), prune=True)
"""


@pytest.mark.parametrize("point", ["written", "deleted", "recorded"])
def test_killed_ingest_is_repaired(tmp_path: Path, point: str) -> None:
    settings = make_settings(tmp_path / "store")
    folder = tmp_path / "articles"
    write_articles(folder, 3)
    assert ingest([str(folder)], settings).ok  # the BM25 index exists and is level
    paths = write_articles(folder, 6)  # the same three again, and three new ones
    if point != "written":
        for path in paths[:2]:  # changed: new chunks written, then the old ones deleted
            path.write_text(path.read_text().replace("report", "dispatch"))
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(root=str(ROOT)))
    run = subprocess.run(
        [sys.executable, str(script), point, str(tmp_path / "store"), str(folder)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -9, run.stderr[-2000:]
    killed = chroma_ids(settings)
    assert {cid.split("::")[0] for cid in killed} == {p.name for p in paths}  # it died after Chroma's write

    if point != "recorded":
        # A catch-up alone (any process, no re-run) brings BM25 level with what Chroma holds.
        assert lexical_ids(settings) == killed
    # The re-run converges both sides on the whole, current set.
    report = ingest([str(folder)], settings, prune=True)
    assert report.ok
    final = chroma_ids(settings)
    assert lexical_ids(settings) == final
    docs = open_store(settings).documents(doc_ids=[p.name for p in paths])
    assert sorted(docs) == sorted(p.name for p in paths)
    assert all(d.is_current(d.article.content_hash) for d in docs.values())
    assert sum(len(d.chunks) for d in docs.values()) == len(final)


def test_running_retriever_finds_an_article_another_process_ingested(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store", retrieval={"refresh_seconds": 0.5})
    assert ingest([str(p) for p in write_articles(tmp_path / "first", 3)], settings).ok
    bot = QABot(settings)
    question = "What did the Zephyrine lighthouse keepers discover?"
    assert all("Zephyrine" not in p.text for p in bot.retrieve(question))
    new = tmp_path / "later" / "lighthouse.txt"
    new.parent.mkdir()
    new.write_text(
        "Lighthouse keepers find shipwreck\n\nThe Zephyrine lighthouse keepers discovered the wreck of "
        "a nineteenth-century schooner after a storm shifted the sandbanks off the cape.\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"path": str(tmp_path / "store"), "collection": "test"},
                "retrieval": {"lexical_path": str(tmp_path / "lexical")},
            }
        )
    )
    subprocess.run(
        [sys.executable, "-m", "ui.cli", "ingest", str(new), "--config", str(config), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=300,
    )
    done = time.monotonic()
    while not any("Zephyrine" in p.text for p in bot.retrieve(question)):
        assert time.monotonic() - done < 5, "not found within 5 s of the other process's ingest"
        time.sleep(0.2)


def _indexed(folder: Path) -> set[str]:
    state = json.loads((folder / "state.json").read_text())
    return LexicalIndex(folder / state["index"]).ids()


def test_two_servers_on_one_chroma_server_find_what_a_third_process_ingested(
    tmp_path: Path, chroma_server: tuple[str, int]
) -> None:
    from gradio_client import Client

    host, port = chroma_server
    store = {"mode": "server", "host": host, "port": port, "collection": "shared-news"}
    configs = []
    for name in ("a", "b", "writer"):  # as on three machines: a BM25 folder each
        config = tmp_path / f"{name}.yaml"
        retrieval = {"lexical_path": str(tmp_path / name / "lexical"), "refresh_seconds": 0.5}
        config.write_text(json.dumps({"store": store, "retrieval": retrieval, **FAST_MODEL}))
        configs.append(config)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = write_articles(tmp_path / "first", 2)
    subprocess.run(
        [sys.executable, "-m", "ui.cli", "ingest", *map(str, first), "--config", str(configs[2]), "--quiet"],
        env=env,
        check=True,
        timeout=300,
    )
    servers = []
    try:
        for config in configs[:2]:
            log = config.with_suffix(".log")
            servers.append((*start_serve(config, log), log))
        new = tmp_path / "later" / "glacier.txt"
        new.parent.mkdir()
        new.write_text(
            "Glacier retreat measured\n\nSurveyors on the Tharsk glacier measured a retreat of 41 metres "
            "this summer, the largest since records began at the Tharsk station.\n"
        )
        subprocess.run(
            [sys.executable, "-m", "ui.cli", "ingest", str(new), "--config", str(configs[2]), "--quiet"],
            env=env,
            check=True,
            timeout=300,
        )
        done = time.monotonic()
        for url, _, log in servers:
            client = Client(url, verbose=False)
            while True:
                # The source cards of every step of the answer (the quoted early answer comes first,
                # so the fast test model's own wording cannot hide what retrieval found).
                job = client.submit("How far did the Tharsk glacier retreat?", [], [], "", "", api_name="/ask")
                job.result()
                if any("Tharsk" in str(out[-1]) for out in job.outputs()):
                    break
                said = job.outputs()[-1][0] if job.outputs() else ""
                assert time.monotonic() - done < 30, f"{url} did not find it: {said!r}; log: {log.read_text()[-1500:]}"
                time.sleep(0.5)
        # And each machine's own BM25 index caught up with it from the Chroma server.
        for config in configs[:2]:
            folder = index_folder(load_settings(config))
            while not any(cid.startswith("glacier.txt::") for cid in _indexed(folder)):
                assert time.monotonic() - done < 30, f"{folder} did not catch up"
                time.sleep(0.5)
    finally:
        for _, proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)


def test_reconcile_mends_what_no_catch_up_can_see(tmp_path: Path) -> None:
    """Chunks written unstamped (or landing later than the lookback) and a delete that left no record."""
    settings = make_settings(tmp_path / "store")
    assert ingest([str(p) for p in write_articles(tmp_path / "a", 3)], settings).ok
    store = open_store(settings)
    sync = LexicalSync(store, settings.retrieval)
    sync.catch_up()
    got = store.collection.get(include=["documents", "metadatas", "embeddings"])
    # Behind the index's back: one chunk deleted without a record, one written with an old stamp.
    store.collection.delete(ids=[got["ids"][0]])
    old = {**got["metadatas"][1], "indexed_at": 1}
    store.collection.upsert(
        ids=["late::0", "late::1"],
        embeddings=[got["embeddings"][1]] * 2,
        documents=["Late words", "Tardy sentence"],
        metadatas=[old, old],
    )
    assert sync.catch_up().indexed == 0  # the watermark cannot see either
    assert not sync.check_count()  # a first disagreement may be an ingest in flight
    assert sync.check_count()  # the same one again: stuck
    done = sync.reconcile()
    assert (done.indexed, done.deleted) == (2, 1)
    assert sync.index.ids() == chroma_ids(settings)
    assert [cid for cid, _ in sync.search("late words", 5, Filters())] == ["late::0"]


WRITER = """
import sys
import numpy as np
sys.path.insert(0, {root!r})
from pathlib import Path
from qa_bot.archive import now_ms, open_store
from tests.conftest import make_settings

store = open_store(make_settings(Path(sys.argv[1])), 384)
vectors = np.random.default_rng(1).normal(size=(2500, 384))
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
meta = {{"doc_id": "other", "title": "Other", "n_chunks": 2500, "start": 0, "end": 5}}
for start in range(0, 2500, 100):  # many small writes, as a watch makes
    ids = [f"{{sys.argv[2]}}::{{i}}" for i in range(start, start + 100)]
    store.upsert(ids, vectors[start : start + 100].tolist(), ["words"] * 100, [meta] * 100)
"""

READER = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from qa_bot.archive import now_ms, open_store
from tests.conftest import make_settings

store = open_store(make_settings(Path(sys.argv[1])), 384)
print(store.count(), len(store.collection.query(query_embeddings=[[0.05] * 384], n_results=5)["ids"][0]))
"""


def test_embedded_store_survives_a_process_that_deletes_what_another_wrote(tmp_path: Path) -> None:
    """Chroma's embedded client keeps vectors per process; the store reopens before it writes."""
    settings = make_settings(tmp_path / "store")
    assert ingest([str(p) for p in write_articles(tmp_path / "a", 2)], settings).ok
    bot = QABot(settings)
    assert bot.retrieve("Valdoria harbour terminal")  # this process has loaded the vectors
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, code in (("writer.py", WRITER), ("reader.py", READER)):
        (tmp_path / name).write_text(code.format(root=str(ROOT)))
    writer = [sys.executable, str(tmp_path / "writer.py"), str(tmp_path / "store")]
    subprocess.run([*writer, "other"], env=env, check=True)
    # Dense search here sees the other process's vectors once refreshed.
    assert bot.store.is_stale()
    bot.retriever.refresh()
    assert not bot.store.is_stale()
    probe = bot.store.collection.get(ids=["other::7"], include=["embeddings"])["embeddings"][0]
    found = bot.store.collection.query(query_embeddings=[probe], n_results=1)["ids"][0]
    assert found == ["other::7"]
    # Deleting what the other process wrote (as the UI's delete or an update does)...
    subprocess.run([*writer, "later"], env=env, check=True)
    bot.store.delete([f"later::{i}" for i in range(2500)])
    # ...leaves the store readable by every process (without the reopen: "Error finding id").
    read = subprocess.run(
        [sys.executable, str(tmp_path / "reader.py"), str(tmp_path / "store")], env=env, capture_output=True, text=True
    )
    assert read.returncode == 0, read.stderr[-1500:]
    chunks, hits = map(int, read.stdout.split())
    assert chunks == len(chroma_ids(settings)) and hits == 5


RELOADER = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from qa_bot.archive import now_ms, open_store
from tests.conftest import make_settings

store = open_store(make_settings(Path(sys.argv[1])), 384)
done = Path(sys.argv[2])
reloads = 0
while not done.exists():
    store.reopen()  # as a serving process does when another process wrote
    store.collection.query(query_embeddings=[[0.05] * 384], n_results=3)
    reloads += 1
print(reloads)
"""


def test_reloading_while_another_process_writes_does_not_crash(tmp_path: Path) -> None:
    """Loading embedded Chroma's vectors while another process wrote them crashed (SIGSEGV)."""
    settings = make_settings(tmp_path / "store")
    assert ingest([str(p) for p in write_articles(tmp_path / "a", 2)], settings).ok
    before = len(chroma_ids(settings))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    (tmp_path / "writer.py").write_text(WRITER.format(root=str(ROOT)))
    (tmp_path / "reloader.py").write_text(RELOADER.format(root=str(ROOT)))
    done = tmp_path / "done"
    reloader = subprocess.Popen(
        [sys.executable, str(tmp_path / "reloader.py"), str(tmp_path / "store"), str(done)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for batch in range(4):  # 10,000 vectors written in batches while the other reloads
            writer = [sys.executable, str(tmp_path / "writer.py"), str(tmp_path / "store"), f"w{batch}"]
            subprocess.run(writer, env=env, check=True, timeout=300)
    finally:
        done.touch()
        out, err = reloader.communicate(timeout=300)
    assert reloader.returncode == 0, err[-1500:]
    assert int(out) > 0
    assert len(chroma_ids(settings)) == before + 10_000


def test_journals_list_recent_changes_and_forget_old_ones(tmp_path: Path) -> None:
    """What the catch-up reads: the writes and deletions since a time, not the chunks themselves."""
    settings = make_settings(tmp_path / "store")
    folder = tmp_path / "articles"
    paths = write_articles(folder, 3)
    before = now_ms()
    assert ingest([str(folder)], settings).ok
    store = open_store(settings)
    first = set(store.changed_since(before))
    assert first == chroma_ids(settings) and {cid.split("::")[0] for cid in first} == {p.name for p in paths}
    paths[0].unlink()
    assert ingest([str(folder)], settings, prune=True).ok
    gone = set(store.deleted_since(before))
    assert gone < first and {cid.split("::")[0] for cid in gone} == {paths[0].name}
    assert set(store.changed_since(before)) == first - gone  # the write record left with the chunk
    assert store.changed_since(now_ms()) == {} and store.deleted_since(now_ms()) == []

    # Records older than store.tombstone_days go at the next write (and an index that old rebuilds).
    short = settings.model_copy(update={"store": settings.store.model_copy(update={"tombstone_days": 1e-9})})
    pruner = open_store(short)
    time.sleep(0.01)
    write_articles(folder, 4)
    assert ingest([str(folder)], short).ok
    assert not set(pruner.changed_since(0)) & first and pruner.deleted_since(0) == []


def test_a_delete_through_the_page_leaves_the_bm25_side_at_once(tmp_path: Path) -> None:
    """One call deletes an article everywhere: the page's delete tells the BM25 index itself,
    not only the journal a later catch-up reads (the archive's delete_articles, issue 31)."""
    from qa_bot.archive import Archive
    from ui.app import App

    settings = make_settings(tmp_path / "store")
    folder = tmp_path / "articles"
    paths = write_articles(folder, 3)
    assert ingest([str(folder)], settings).ok
    gone = paths[0].name
    chunks = sorted(Archive(settings).articles(doc_ids=[gone])[gone].chunks)
    assert chunks and set(chunks) <= lexical_ids(settings)

    # The archive alone, with no catch-up after it: the index on disk has lost the chunks.
    archive = Archive(settings)
    assert archive.delete_articles([paths[1].name]) == [paths[1].name]
    index = LexicalIndex(
        index_folder(settings) / json.loads((index_folder(settings) / "state.json").read_text())["index"]
    )
    assert not {c for c in index.ids() if c.startswith(f"{paths[1].name}::")}
    assert paths[1].name not in archive.articles(doc_ids=[paths[1].name])

    # Through the page: gone from Chroma, from BM25 and from answers.
    app = App(settings)
    assert app.delete(gone).startswith("Deleted")
    assert not set(chunks) & chroma_ids(settings)
    assert not set(chunks) & lexical_ids(settings)
    assert all(cid not in chunks for cid, _ in app.bot.retriever.lexical().search("Valdoria harbour", 10, Filters()))
    assert chroma_ids(settings) == lexical_ids(settings)
