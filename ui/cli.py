"""The ``qa-bot`` command line: a thin layer over the Python API.

Usage::

    qa-bot ingest data/articles https://example.com/feed.xml [--prune] [--reindex]
    qa-bot stats
    qa-bot watch https://example.com/feed.xml --every 15m

Every command takes ``--config F`` (default: $QA_BOT_CONFIG, else ./config.yaml). Errors
are printed as one line on stderr with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa_bot.archive import StoreError, describe_failure
from qa_bot.embeddings import EmbeddingError
from qa_bot.generation import GenerationError
from qa_bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("qa_bot")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


NOISY = ("httpx", "httpcore", "sentence_transformers", "chromadb", "bm25s")


def _quiet_libraries(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or not record.name.startswith(NOISY)


def main(argv: list[str] | None = None) -> int:
    # transformers draws a "Loading weights" bar for a local model that loads in well under a
    # second; read from the environment when huggingface_hub is imported, so set before that.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    # These chatter at INFO; bm25s even sets its logger to DEBUG when it is first imported,
    # after this runs, so the filter sits on the handler, where no library resets it.
    for handler in logging.getLogger().handlers:
        handler.addFilter(_quiet_libraries)
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
        return int(args.func(args, settings))
    except SettingsError as exc:
        print(f"qa-bot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreError, EmbeddingError, GenerationError) as exc:
        # A store that cannot even be opened may be on a full disk: the same words as any storage failure.
        print(f"qa-bot: {describe_failure(exc, settings) if settings is not None else exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("qa-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        said = describe_failure(exc, settings) if settings is not None else ""
        print(f"qa-bot: {said if said != str(exc) else f'{type(exc).__name__}: {exc}'}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="F", help="config file (default: $QA_BOT_CONFIG or ./config.yaml)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(prog="qa-bot", description="Question answering over news articles, offline.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[common], help="add or update articles from files, folders, URLs and feeds")
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="file, folder, article URL or RSS/Atom feed URL")
    p.add_argument("--prune", action="store_true", help="remove articles whose source has gone")
    p.add_argument("--reindex", action="store_true", help="rebuild the collection with the current settings")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("stats", parents=[common], help="what the store holds, and the model this machine runs")
    p.add_argument("--tune", action="store_true", help="measure this machine's model speed now if not yet measured")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("ask", parents=[common], help="ask a question of the ingested articles")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    p.add_argument("--source", action="append", default=[], metavar="S", help="only articles from source S")
    p.add_argument("--since", metavar="DATE", help="only articles published on or after DATE (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="only articles published on or before DATE (YYYY-MM-DD)")
    p.add_argument(
        "--as-of",
        metavar="DATE",
        help="ask as of DATE (YYYY-MM-DD): nothing published after it; 'this week' is its week",
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("timeline", parents=[common], help="a topic's events in date order, each quoted and cited")
    p.add_argument("topic")
    p.add_argument("--since", metavar="DATE", help="events on or after DATE (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="events on or before DATE (YYYY-MM-DD)")
    p.add_argument("--as-of", metavar="DATE", help="as of DATE: nothing published after it (default: today)")
    p.add_argument("--source", action="append", default=[], metavar="S", help="only articles from source S")
    p.add_argument("--limit", type=int, default=20, help="at most N events (default 20)")
    p.add_argument("--json", action="store_true", help='print [{"date", "text", "citations": [...]}]')
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("eval", parents=[common], help="measure retrieval, answers, citations, refusals, latency")
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="folder with corpus.jsonl and questions.jsonl")
    p.add_argument("--limit", type=int, help="a fixed random sample of N questions")
    p.add_argument("--k", type=int, default=4, help="passages per question (default 4)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write every figure and per-question result here")
    p.add_argument("--baseline", choices=["langchain"], help="also run the LangChain tutorial pipeline")
    p.add_argument("--baseline-only", action="store_true", help="run only the baseline (with --baseline)")
    p.add_argument(
        "--ignore-asked-on", action="store_true", help="ask dated questions as of now, not as of their asked_on"
    )
    p.add_argument("--keep-store", type=Path, metavar="DIR", help="keep the ingested store in DIR and reuse it")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", parents=[common], help="serve the chat UI (loopback unless told otherwise)")
    p.add_argument("--host", help="address to bind (default ui.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default ui.port, 7860)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mcp", parents=[common], help="serve the MCP tools (search, ask, ...) over stdio")
    p.set_defaults(func=cmd_mcp)

    p = sub.add_parser("watch", parents=[common], help="re-ingest sources on a schedule")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--every", default="15m", type=parse_interval, help="interval: 30s, 15m, 2h (default 15m)")
    p.add_argument("--rounds", type=int, default=0, help="stop after N rounds (default: run until interrupted)")
    p.add_argument("--prune", action="store_true")
    p.set_defaults(func=cmd_watch)
    return parser


def parse_interval(value: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"invalid interval {value!r}; use a number with s, m, h or d, e.g. 15m")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


# ---------------------------------------------------------------- ingest


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import ingest

    if not args.sources and not args.reindex:
        print("qa-bot ingest: name at least one SOURCE (a file, folder, URL or feed URL)", file=sys.stderr)
        return EXIT_USAGE
    with _progress_bar(disabled=args.quiet) as progress:
        report = ingest(args.sources, settings, prune=args.prune, reindex=args.reindex, progress=progress)
    _print_report(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_report(report: Any) -> None:
    for source, reason in report.failed:
        print(f"FAILED {source}: {reason}", file=sys.stderr)
    print(report.summary())


class _progress_bar:  # noqa: N801 - used as a context manager, reads like one
    """A tqdm bar of articles with the chunk count beside it."""

    def __init__(self, disabled: bool) -> None:
        self.disabled = disabled
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        from tqdm import tqdm

        self.bar = tqdm(unit=" articles", disable=self.disabled, file=sys.stderr, dynamic_ncols=True)
        return self.update

    def update(self, articles: int, chunks: int) -> None:
        self.bar.update(articles - self.bar.n)
        self.bar.set_postfix(chunks=chunks, refresh=False)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


# ---------------------------------------------------------------- ask


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from qa_bot import Answer, EarlyAnswer, QABot, QuestionError

    filters = {"source": args.source, "since": args.since, "until": args.until}
    early: EarlyAnswer | None = None
    answer: Answer | None = None
    try:
        for part in QABot(settings).stream(args.question, filters=filters, as_of=args.as_of):
            if isinstance(part, EarlyAnswer):
                early = part
                if not args.json:  # at once, with its sources: the model's answer may be many seconds away
                    print(f"Quoted from the articles:\n{part.text}", flush=True)
                    _print_sources(part.citations)
                    print(flush=True)
            elif isinstance(part, Answer):
                answer = part
    except (QuestionError, ValueError) as exc:
        print(f"qa-bot ask: {exc}", file=sys.stderr)
        return EXIT_USAGE
    assert answer is not None
    if args.json:
        early_dict = early.to_dict() if early else None
        out = {**answer.to_dict(), "dateline": answer.dateline, "early": early_dict}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return EXIT_OK
    if early is None or answer.text != early.text:  # else the model's answer fell back to the same quotes
        print(f"Answer:\n{answer.text}" if early is not None else answer.text)
        shown = {(c.number, c.quote) for c in early.citations} if early else set()
        _print_sources([c for c in answer.citations if (c.number, c.quote) not in shown])
    if not answer.refused:
        print(f"\n{answer.dateline}")
    return EXIT_OK


def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from qa_bot import QABot, QuestionError

    try:
        found = QABot(settings).timeline(
            args.topic, since=args.since, until=args.until, as_of=args.as_of, filters={"source": args.source},
            limit=args.limit,
        )  # fmt: skip
    except (QuestionError, ValueError) as exc:
        print(f"qa-bot timeline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(found.to_list(), ensure_ascii=False, indent=2))
        return EXIT_OK
    if not found.entries:
        print(f"No dated articles about {found.topic!r} in that period.")
        return EXIT_OK
    for entry in found.entries:
        print(f"{entry.date}  {entry.text}")
        for c in entry.citations:
            p = c.passage
            print("            " + ", ".join(x for x in (p.source, p.title, p.url) if x))
    print(f"\n{len(found.entries)} events as of {found.as_of}, in {found.seconds:.1f} s")
    return EXIT_OK


def _print_sources(citations: list[Any]) -> None:
    for c in citations:
        p = c.passage
        meta = ", ".join(x for x in (p.source, p.published, p.url) if x)
        print(f"\n[{c.number}] {p.title}" + (f" ({meta})" if meta else ""))
        if p.also_reported_by:
            print("    also reported by " + ", ".join(o.source or o.url for o in p.also_reported_by))
        print(f'    "{c.quote}"')


# ---------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from tqdm import tqdm

    from evaluation import format_table, run_eval

    if args.baseline_only and not args.baseline:
        print("qa-bot eval: --baseline-only needs --baseline langchain", file=sys.stderr)
        return EXIT_USAGE
    for name in ("corpus.jsonl", "questions.jsonl"):
        if not (args.dataset / name).is_file():
            print(f"qa-bot eval: {args.dataset} has no {name}", file=sys.stderr)
            return EXIT_USAGE

    def progress_factory(total: int, label: str) -> Callable[[], None]:
        bar = tqdm(total=total, desc=label, unit=" questions", file=sys.stderr)
        return lambda: bar.update(1)

    result = run_eval(
        args.dataset, settings, args.limit, args.k, args.baseline, progress_factory, args.baseline_only,
        as_of=not args.ignore_asked_on, keep=args.keep_store,
    )  # fmt: skip
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        print(f"\nwrote {args.json}")
    return EXIT_OK


# ---------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from ui.server import serve

    serve(settings, host=args.host, port=args.port)
    return EXIT_OK


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from ui.mcp_server import run_stdio
    from ui.service import Service

    run_stdio(Service(settings))  # stdout is the protocol's: everything else goes to stderr
    return EXIT_OK


# ---------------------------------------------------------------- stats


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.fetchlog import source_states
    from qa_bot.archive import Archive
    from qa_bot.stats import store_stats

    stats = store_stats(settings, tune=args.tune)
    for key, value in stats.items():
        print(f"{key:>16}: {value}")
    states = source_states(Archive(settings))
    if states:
        print("\nsources (last success, last error):")
    for state in states:
        print(f"  {state['source']}: {state['state']}; last success {state['last success']}")
        if state["last error"] != "-":
            print(f"      last error: {state['last error']}")
    return EXIT_OK


# ---------------------------------------------------------------- watch


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.watch import Watcher

    with Watcher(args.sources, settings, prune=args.prune) as watcher:
        while True:
            started = time.monotonic()
            result = watcher.round()
            (log.error if result.error else log.info)("%s", result.summary())
            for source, reason in result.report.failed if result.report else []:
                log.warning("FAILED %s: %s", source, reason)
            if args.rounds and watcher.rounds >= args.rounds:
                return EXIT_OK
            time.sleep(max(0.0, args.every - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main())
