"""Every attack and fault of the security issue, tried again, as a table of outcomes.

Usage::

    .venv/bin/python -m benchmarks.security

Runs ``tests/test_security.py`` and the attacks of ``tests/test_feeds.py`` (real servers on
loopback, started and stopped by the tests)
and prints one row per attack or fault with what was tried, what must happen, and whether it
did. Every row must say "held".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROWS = {
    "test_internal_addresses_are_refused_by_default_in_every_spelling": (
        "URL to 127.0.0.1, localhost, 2130706433, ::ffff:127.0.0.1, 169.254.169.254, 10.0.0.1",
        "refused before any request, one line each",
    ),
    "test_internal_addresses_are_fetched_when_the_config_allows": (
        "the same with ingest.allow_private_addresses: true",
        "fetched",
    ),
    "test_a_redirect_from_an_allowed_host_to_an_internal_one_is_refused": (
        "allowed host redirects to 127.0.0.1; a feed item links to it",
        "the hop is refused, the internal server never asked",
    ),
    "test_redirects_are_capped_with_one_line": ("a chain of 8 redirects", "stopped after 5, one line"),
    "test_a_slow_drip_server_is_cut_off_at_the_whole_request_deadline": (
        "a server sending one byte every 0.3 s, fetch_timeout 2 s",
        "cut at the deadline, the rest of the batch ingested",
    ),
    "test_a_huge_one_line_file_fails_alone_and_fast": (
        "a 15 MB one-line text file beside a good one",
        "refused alone within a minute (was hours)",
    ),
    "test_the_chunk_cap_counts_real_chunks": ("an article over ingest.max_chunks_per_article", "refused alone"),
    "test_the_ui_api_refuses_a_server_path_and_copies_nothing": (
        "the UI's ingest API given a FileData path to a server file",
        "refused, nothing copied, nothing answerable",
    ),
    "test_a_store_deleted_under_the_server_is_said_not_hidden": (
        "the store folder deleted under a running server",
        "ingest and chat say so",
    ),
    "test_a_chroma_server_that_died_is_named_in_one_line": (
        "the Chroma server killed under a client and before a CLI ingest",
        "one line naming the Chroma server",
    ),
    "test_the_app_takes_only_files_in_the_upload_folders": (
        "App.save_uploads given a server path, /etc/passwd, a link out of the upload folder, a .exe",
        "each refused by name, only the real upload copied",
    ),
    "test_the_upload_folder_goes_with_the_server": ("a server process that ends", "its upload folder removed"),
    "test_a_link_loop_in_a_folder_is_named_not_skipped": ("a link loop and a dangling link in a folder", "named"),
    "test_a_read_only_store_is_said_in_one_line": (
        "stats on a store mounted read-only",
        "one line: read-only, and what to do",
    ),
    "test_wrong_passwords_are_throttled": ("wrong passwords, then the right one", "locked after 5 a minute"),
    "test_the_served_login_is_throttled": ("6 logins against the real /login route", "the 6th refused"),
}
# The feeds issue's attacks, in tests/test_feeds.py (loopback news sites the tests start).
FEED_ROWS = {
    "test_an_xml_bomb_and_an_external_entity_feed_are_inert": (
        "a billion-laughs feed and a feed with an external entity to /etc/passwd",
        "refused in one line each; feedparser alone expands and reads nothing either",
    ),
    "test_robots_txt_disallow_is_obeyed_for_our_user_agent": (
        "a page robots.txt disallows for qa-bot",
        "not requested, one line",
    ),
    "test_a_redirect_into_a_disallowed_path_is_refused": (
        "a redirect into a path robots.txt disallows",
        "the hop is not requested",
    ),
    "test_a_feed_that_runs_past_its_time_leaves_the_rest_for_next_time": (
        "a feed of slow pages, one at a time, past ingest.feed_timeout",
        "the pages not started fail in one line each, asked for next time",
    ),
    "test_a_feed_is_read_up_to_its_item_cap": (
        "a feed with more items than ingest.max_feed_items",
        "the rest skipped, said",
    ),
}
ROWS |= FEED_ROWS


class _Outcomes:
    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, float]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.split("::")[-1]
        if report.when == "call" or report.outcome == "failed":
            self.seen[name] = (report.outcome, report.duration)


def main() -> int:
    outcomes = _Outcomes()
    began = time.perf_counter()
    feeds = [f"{ROOT / 'tests' / 'test_feeds.py'}::{name}" for name in FEED_ROWS]
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_security.py"), *feeds], plugins=[outcomes]
    )
    print(f"\nRun {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.perf_counter() - began:.0f} s\n")
    print("| attack or fault | must | outcome | seconds |\n|---|---|---|---|")
    for name, (tried, must) in ROWS.items():
        outcome, seconds = outcomes.seen.get(name, ("not run", 0.0))
        print(f"| {tried} | {must} | {'held' if outcome == 'passed' else outcome.upper()} | {seconds:.1f} |")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
