"""The README screenshot: the real app, default model, answering a question about the sample article.

Usage::

    .venv/bin/python -m benchmarks.screenshot [--out docs/screenshot.png]

Same tooling as the browser tests: the app served on a free loopback port, Debian's Chromium
driven by Playwright.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks.served import served_app

ROOT = Path(__file__).resolve().parent.parent

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--question", default="Why did Putin praise Trump?")
    parser.add_argument("--early", type=Path, help="also a screenshot of the quoted early answer here")
    args = parser.parse_args()
    with served_app() as (url, _pid), sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url)
        page.fill("#question textarea", args.question)
        page.click("#ask")
        if args.early:  # the quoted words, before the model's answer
            page.wait_for_selector("#source-cards .qa-cards[data-state=early]", timeout=300_000)
            page.screenshot(path=str(args.early), full_page=True)
        page.wait_for_selector("#source-cards .qa-cards[data-state=final], #source-cards .qa-refused", timeout=300_000)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True)
        print(page.inner_text("#chat"))
        browser.close()


if __name__ == "__main__":
    main()
