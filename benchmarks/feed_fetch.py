"""Feed ingestion against news sites on loopback with injected latency (issue: news-grade feeds).

Usage::

    .venv/bin/python -m benchmarks.feed_fetch [--items 100] [--delay 0.3] [--feeds 20] [--per-feed 10]
        [--baseline-commit 648470d] [--json var/feed_fetch.json]

Prints, from one run on fresh temporary stores:

1. **One feed of ``--items`` items whose pages each take ``--delay`` s**: the wall time to fetch and
   extract every item (``load_sources``, no embedding), with the default pool, against the
   loader of ``--baseline-commit`` (the sequential urllib fetch this replaces), run from a git
   worktree of that commit in a subprocess, against the same server. Once with every page on one
   host (a publisher's own feed) and once spread over four hosts (an aggregator's).
2. **A second ``watch`` round on ``--feeds`` unchanged feeds** of ``--per-feed`` items each: page
   requests, bytes the servers sent, and the time, against the first round (full ingest: fetch,
   extract, embed, write). The baseline's two rounds of ``load_sources`` are counted the same way.
3. **Wire copies**: ``--stories`` distinct real stories (ares-news), each published once, half of
   them copied by other outlets (exact, and lightly edited: dateline, credit line, the last 15% of
   the words cut, 3% of the words changed): how many copies are grouped, and whether any distinct story was merged.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.newsroom import NewsSite, article_html, rss
from ingest import ingest
from ingest.loaders import load_sources
from ingest.watch import Watcher
from qa_bot.settings import Settings, settings_from_dict

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "eval" / "ares-news" / "corpus.jsonl"

# Run by the baseline checkout's Python path: its own load_sources, timed, one line of JSON out.
BASELINE = """
import json, sys, time
from ingest.loaders import load_sources
from qa_bot.settings import settings_from_dict
urls, rounds = json.loads(sys.argv[1]), int(sys.argv[2])
settings = settings_from_dict({"ingest": {"allow_private_addresses": True}})
times = []
for _ in range(rounds):
    began = time.perf_counter()
    items = list(load_sources(urls, settings.ingest))
    times.append(time.perf_counter() - began)
import ingest.loaders
articles = sum(hasattr(i, "doc_id") for i in items)
print(json.dumps({"seconds": times, "articles": articles, "code": ingest.loaders.__file__}))
"""


def texts() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines()]


def settings_for(store: Path, **ingest_options: Any) -> Settings:
    return settings_from_dict(
        {
            "store": {"path": str(store), "collection": "bench"},
            "retrieval": {"lexical_path": str(store.parent / "lexical")},
            "ingest": {"allow_private_addresses": True, **ingest_options},
        }
    )


def publish(site: NewsSite, docs: list[dict[str, Any]], first: int, n: int, delay: float, sites: list[NewsSite]) -> str:
    """A feed on ``site`` of ``n`` articles whose pages are spread over ``sites``."""
    items = []
    for i in range(first, first + n):
        host = sites[i % len(sites)]
        path = f"/story/{i}.html"
        host.add(path, article_html(docs[i]["title"] or f"Story {i}", docs[i]["text"]), delay=delay)
        items.append((docs[i]["title"] or f"Story {i}", host.url(path)))
    feed = f"/feed-{first}.xml"
    site.add(feed, rss(f"Wire {first}", items), content_type="application/rss+xml")
    return site.url(feed)


def baseline(commit: str, urls: list[str], rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qa-bot-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True, capture_output=True
        )
        try:
            run = subprocess.run(
                [sys.executable, "-c", BASELINE, json.dumps(urls), str(rounds)],
                cwd=tree,
                env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
        found = json.loads(run.stdout.strip().splitlines()[-1])
        assert found["code"].startswith(str(tree)), found  # the baseline's own loader, not this one
        return found


def time_loader(urls: list[str], settings: Settings) -> tuple[float, int]:
    began = time.perf_counter()
    items = list(load_sources(urls, settings.ingest))
    return time.perf_counter() - began, sum(hasattr(i, "text") for i in items)


def one_feed(docs: list[dict[str, Any]], args: argparse.Namespace, tmp: Path, hosts: int) -> dict[str, Any]:
    with ExitStack() as stack:
        sites = [stack.enter_context(NewsSite(f"127.0.0.{i + 1}")) for i in range(hosts)]
        url = publish(sites[0], docs, 0, args.items, args.delay, sites)
        options = {"per_host_connections": args.per_host} if args.per_host else {}
        seconds, articles = time_loader([url], settings_for(tmp / f"one-{hosts}", **options))
        in_flight = max(s.max_in_flight for s in sites)
        old = baseline(args.baseline_commit, [url], 1) if args.baseline_commit else None
    result = {"hosts": hosts, "items": args.items, "page_delay_s": args.delay, "seconds": round(seconds, 2)}
    result["per_host_connections"] = args.per_host or settings_for(tmp).ingest.per_host_connections
    result |= {"articles": articles, "max_in_flight_one_host": in_flight}
    if old:
        result |= {"baseline_seconds": round(old["seconds"][0], 2), "baseline_articles": old["articles"]}
        result["speed_up"] = round(old["seconds"][0] / seconds, 1)
    return result


def unchanged_round(docs: list[dict[str, Any]], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    settings = settings_for(tmp / "watch")
    with NewsSite("127.0.0.1") as site:
        urls = [publish(site, docs, f * args.per_feed, args.per_feed, args.delay, [site]) for f in range(args.feeds)]
        result: dict[str, Any] = {"feeds": args.feeds, "items_per_feed": args.per_feed, "page_delay_s": args.delay}
        with Watcher(urls, settings) as watcher:
            for number in (1, 2):
                site.reset()
                began = time.perf_counter()
                outcome = watcher.round()
                took = time.perf_counter() - began
                report = outcome.report
                assert report is not None and not outcome.error, outcome.summary()
                result[f"round_{number}"] = {
                    "seconds": round(took, 2),
                    "feed_requests": sum(1 for p in site.page_hits() if p.startswith("/feed-")),
                    "page_requests": sum(1 for p in site.page_hits() if p.startswith("/story/")),
                    "not_modified": sum(1 for _, status in site.hits if status == 304),
                    "bytes_sent": site.bytes_sent,
                    "added": len(report.added),
                    "unchanged": len(report.unchanged),
                    "summary": outcome.summary(),
                }
        result["round_2_share_of_round_1"] = round(result["round_2"]["seconds"] / result["round_1"]["seconds"], 4)
        if args.baseline_commit:
            site.reset()
            old = baseline(args.baseline_commit, urls, 2)
            result["baseline"] = {
                "loader_seconds_round_1": round(old["seconds"][0], 2),
                "loader_seconds_round_2": round(old["seconds"][1], 2),
                "page_requests_two_rounds": sum(1 for p in site.page_hits() if p.startswith("/story/")),
                "bytes_sent_two_rounds": site.bytes_sent,
            }
    return result


def edit(text: str, rng: random.Random) -> str:
    """A light edit of a wire story: a dateline, a credit line, the last 15% of the words cut (to
    fit), 3% of the rest changed. (These passages end mid-story, so their "last sentence" can be
    half the text: the cut is by words.)"""
    words = text.split(" ")
    words = words[: max(1, len(words) * 85 // 100)]
    for i in rng.sample(range(len(words)), max(1, len(words) * 3 // 100)):
        words[i] = rng.choice(["said", "told", "new", "also", "officials", "on"])
    return f"NEW YORK (Wire) - {' '.join(words)}\n(Reporting by Jane Doe; Editing by Al Roe)"


def wire_copies(docs: list[dict[str, Any]], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(0)
    stories = docs[: args.stories]
    with NewsSite("127.0.0.1") as first, NewsSite("127.0.0.2") as second, NewsSite("127.0.0.3") as third:
        originals, copies = [], {}
        for i, d in enumerate(stories):
            originals.append(first.url(f"/s/{i}.html"))
            first.add(f"/s/{i}.html", article_html(d["title"] or f"Story {i}", d["text"], "Daily Planet"))
            if i % 2 == 0:  # half the stories are copied by two outlets
                second.add(f"/c/{i}.html", article_html("Copy", d["text"], "Gotham Gazette"))
                third.add(f"/c/{i}.html", article_html("Edited", edit(d["text"], rng), "Metropolis Times"))
                copies[second.url(f"/c/{i}.html")] = originals[-1]
                copies[third.url(f"/c/{i}.html")] = originals[-1]
        report = ingest(originals + list(copies), settings_for(tmp / "wire"))
    grouped = dict(report.grouped)
    wrong = [(c, s) for c, s in grouped.items() if copies.get(c) != s]
    return {
        "distinct_stories": len(originals),
        "copies": len(copies),
        "exact_copies": len(copies) // 2,
        "edited_copies": len(copies) // 2,
        "exact_copies_grouped": sum(1 for c in grouped if "127.0.0.2" in c),
        "edited_copies_grouped": sum(1 for c in grouped if "127.0.0.3" in c),
        "grouped": len(grouped),
        "grouped_with_the_wrong_story": len(wrong),
        "distinct_stories_merged": sum(1 for u in originals if u in grouped),
        "indexed": len(report.added),
        "failed": report.failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100, help="items in the one feed (default 100)")
    parser.add_argument("--delay", type=float, default=0.3, help="seconds each page takes (default 0.3)")
    parser.add_argument("--feeds", type=int, default=20, help="feeds in the watch rounds (default 20)")
    parser.add_argument("--per-feed", type=int, default=10, help="items per watched feed (default 10)")
    parser.add_argument("--stories", type=int, default=200, help="distinct stories for the wire-copy check")
    parser.add_argument("--baseline-commit", default="648470d", help="the loader to compare with ('' for none)")
    parser.add_argument("--per-host", type=int, help="ingest.per_host_connections for part 1 (default: the config's)")
    parser.add_argument("--only", choices=["one-feed", "watch", "wire"], help="run one part only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    docs = texts()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qa-bot-feeds-") as tmp:
        for hosts in (1, 4) if args.only in (None, "one-feed") else ():
            figures[f"one_feed_{hosts}_hosts"] = one_feed(docs, args, Path(tmp), hosts)
            print(json.dumps(figures[f"one_feed_{hosts}_hosts"]), flush=True)
        if args.only in (None, "watch"):
            figures["unchanged_watch_round"] = unchanged_round(docs, args, Path(tmp))
            print(json.dumps(figures["unchanged_watch_round"], indent=2), flush=True)
        if args.only in (None, "wire"):
            figures["wire_copies"] = wire_copies(docs, args, Path(tmp))
            print(json.dumps(figures["wire_copies"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
