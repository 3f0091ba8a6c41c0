"""The chat app in a real browser: Debian's Chromium driven by Playwright, the server on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, serving

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

XSS_TITLE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> Harbour festival report'
XSS_BODY = (
    "The harbour festival in Valletta drew forty thousand visitors on Saturday. "
    '<a href="javascript:window.__xss = 3">Click for tickets</a> '
    "The fireworks over the Grand Harbour lasted twenty minutes."
)
# These tests check the page, not the model. Questions worded close to an article sentence
# have evidence above answer.strong_evidence (0.88 and 0.87 measured), so a source card is
# shown whatever the small test model writes: its refusal or unsupported text is replaced by
# the extractive answer. ("How many visitors did the harbour festival in Valletta draw?",
# evidence 0.75, was refused when SmolLM2 happened to decline.)
STRONG_LUNAR = "A lunar probe named Selene-7 found what in the Shackleton crater on Tuesday?"
STRONG_FESTIVAL = "The harbour festival in Valletta drew how many visitors on Saturday?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("ui")) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser: object, url: str) -> object:
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_selector("#question textarea")
    return page


def ask(page: object, question: str) -> None:
    """Type and send; the app echoes the question at once, so a click the page dropped is sent again."""
    shown = question[:30]
    for _ in range(3):
        page.fill("#question textarea", question)  # type: ignore[attr-defined]
        page.click("#ask")  # type: ignore[attr-defined]
        try:
            page.wait_for_function(  # type: ignore[attr-defined]
                "q => document.querySelector('#chat').innerText.includes(q)", arg=shown, timeout=20_000
            )
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; try the click again
            continue
    pytest.fail(f"the question never reached the chat; it shows: {page.inner_text('#chat')!r}")  # type: ignore[attr-defined]


def wait_for_cards(page: object, timeout: float = 180) -> None:
    """Wait for source cards or a refusal; a warning in the chat fails at once, with what it says."""
    try:
        page.wait_for_function(  # type: ignore[attr-defined]
            "() => document.querySelector('#source-cards .qa-cards[data-state=final], #source-cards .qa-refused')"
            " || document.querySelector('#chat').innerText.includes('⚠️')",
            timeout=timeout * 1000,
        )
    except Exception as exc:  # noqa: BLE001 - report what the page shows instead of a bare timeout
        chat = page.inner_text("#chat")  # type: ignore[attr-defined]
        pytest.fail(f"no answer after {timeout:.0f} s ({exc.__class__.__name__}); the chat shows: {chat!r}")
    assert "⚠️" not in page.inner_text("#chat"), page.inner_text("#chat")  # type: ignore[attr-defined]


RECORD_STATES = """() => {
    window.__states = [];
    const record = () => {
        const chat = document.querySelector('#chat').innerText;
        const cards = document.querySelector('#source-cards .qa-cards');
        const state = cards ? cards.dataset.state : '';
        const last = window.__states[window.__states.length - 1];
        if (!last || last.chat !== chat || last.cards !== state) {
            window.__states.push({chat: chat, cards: state, marks: [...document.querySelectorAll(
                '#source-cards mark')].map(m => m.innerText)});
        }
    };
    new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_quoted_words_first_then_the_streamed_answer_with_source_cards(
    server: str, browser: object, tmp_path: Path
) -> None:
    page = open_page(browser, server)
    page.evaluate(RECORD_STATES)  # type: ignore[attr-defined]
    ask(page, "What did Putin say at the forum in Sochi?")
    wait_for_cards(page)
    states = page.evaluate("() => window.__states")  # type: ignore[attr-defined]
    article = SAMPLE.read_text()
    # 1. The quoted early answer, with its source cards, before the model's first word.
    early = next(i for i, s in enumerate(states) if "Quoted from the articles" in s["chat"])
    assert states[early]["cards"] == "early" and "reading the passages" in states[early]["chat"]
    assert states[early]["marks"] and all(m in article for m in states[early]["marks"])  # exact quotes
    quoted = states[early]["chat"].split("Quoted from the articles", 1)[1].split("The model is reading")[0].strip()
    assert re.search(r"\[\d+\]", quoted)
    # 2. The model's answer streams in pieces beneath the quotes, which stay put.
    streaming = [
        s["chat"] for s in states[early + 1 :] if "reading the passages" not in s["chat"] and s["cards"] != "final"
    ]
    assert len(streaming) >= 2, "the answer did not arrive in pieces"
    assert all(quoted in text for text in streaming)
    # 3. The final answer: kept beneath the quotes, or a refusal that replaces them.
    final = page.inner_text("#chat")  # type: ignore[attr-defined]
    if page.locator("#source-cards .qa-refused").count():  # type: ignore[attr-defined]
        assert "cannot find the answer" in final and "Quoted from the articles" not in final
    else:
        assert quoted in final
        card = page.locator("#source-cards .qa-card").first  # type: ignore[attr-defined]
        number = card.get_attribute("data-citation")
        assert f"[{number}]" in final
        assert "Putin" in card.inner_text() and card.locator("mark").count() >= 1
        assert all(m in article for m in card.locator("mark").all_inner_texts())
    page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)  # type: ignore[attr-defined]
    assert (tmp_path / "answer.png").stat().st_size > 10_000
    page.close()  # type: ignore[attr-defined]


def test_unanswerable_question_shows_a_refusal(server: str, browser: object) -> None:
    page = open_page(browser, server)
    ask(page, "What is the boiling point of liquid nitrogen in kelvin?")
    page.wait_for_selector("#source-cards .qa-refused", timeout=120_000)
    assert "🚫" in page.inner_text("#chat") and "cannot find the answer" in page.inner_text("#chat")
    assert page.locator("#source-cards .qa-card").count() == 0
    page.click("#clear")
    page.wait_for_function("() => !document.querySelector('#chat').innerText.includes('nitrogen')")
    page.close()


def upload(page: object, path: Path) -> str:
    page.get_by_role("tab", name="Articles").click()  # type: ignore[attr-defined]
    page.set_input_files("#upload input[type=file]", str(path))  # type: ignore[attr-defined]
    page.wait_for_timeout(1000)  # type: ignore[attr-defined]
    page.click("#ingest")  # type: ignore[attr-defined]
    page.wait_for_function("() => /added/.test(document.querySelector('#report').innerText)", timeout=120_000)  # type: ignore[attr-defined]
    report = page.inner_text("#report")  # type: ignore[attr-defined]
    page.get_by_role("tab", name="Chat").click()  # type: ignore[attr-defined]
    return report


def test_uploaded_article_answers_questions(server: str, browser: object, tmp_path: Path) -> None:
    article = tmp_path / "lunar.txt"
    article.write_text(
        "Lunar probe finds ice\nA lunar probe named Selene-7 found water ice in the Shackleton "
        "crater on Tuesday. The probe drilled two metres into the crater floor. "
        "Mission scientists said the ice could supply future crews with drinking water."
    )
    page = open_page(browser, server)
    assert "1 added" in upload(page, article)
    ask(page, STRONG_LUNAR)
    wait_for_cards(page)
    cards = page.inner_text("#source-cards")
    assert "Lunar probe finds ice" in cards and "Shackleton" in cards
    page.close()


def test_script_payload_in_an_article_runs_nothing(server: str, browser: object, tmp_path: Path) -> None:
    article = tmp_path / "festival.txt"
    article.write_text(XSS_TITLE + "\n" + XSS_BODY)
    page = open_page(browser, server)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert "1 added" in upload(page, article)
    page.get_by_role("tab", name="Articles").click()
    page.wait_for_function("() => document.querySelector('#articles').innerText.includes('Harbour festival')")
    assert "<script>" in page.inner_text("#articles")  # shown literally
    page.get_by_role("tab", name="Chat").click()
    ask(page, STRONG_FESTIVAL)
    wait_for_cards(page)
    cards = page.inner_text("#source-cards")
    assert "<script>window.__xss = 1</script>" in cards and "Harbour festival report" in cards
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("a[href^='javascript:']").count() == 0
    assert page.locator("#source-cards script, #source-cards img").count() == 0
    assert not dialogs
    page.close()


def test_two_people_asking_at_once_both_get_answers(server: str, browser: object) -> None:
    first, second = open_page(browser, server), open_page(browser, server)
    ask(first, "What did Putin say about Ukraine?")
    ask(second, "What does the Kremlin think of the United States?")
    for page in (first, second):
        wait_for_cards(page, timeout=300)
        text = page.inner_text("#chat")
        assert "…" not in text.splitlines()[-1] and len(text) > 40
        page.close()


def test_a_tab_closed_mid_answer_does_not_block_the_next_question(server: str, browser: object) -> None:
    # The model answers one question at a time under a lock held while it streams; Gradio must
    # close the abandoned answer so that the lock is let go.
    leaving = open_page(browser, server)
    ask(leaving, "What did Putin say about the assassination attempt?")
    leaving.wait_for_function(  # the first words are streaming
        "() => !document.querySelector('#chat').innerText.trim().endsWith('…')", timeout=120_000
    )
    leaving.close()
    page = open_page(browser, server)
    ask(page, "Who did Putin congratulate?")
    wait_for_cards(page, timeout=120)
    assert len(page.inner_text("#chat")) > 40
    page.close()


FERRY = {
    "ferry-2019.md": ("2019-03-05", "two", "Commuters said the crossing was still cheaper than the bridge toll."),
    "ferry-2024.md": ("2024-03-05", "six", "Riders started a petition against the third rise since the pandemic."),
}


def test_the_as_of_date_and_the_timeline_view(server: str, browser: object, tmp_path: Path) -> None:
    paths = []
    for name, (published, fare, more) in FERRY.items():
        path = tmp_path / name
        path.write_text(
            f"---\ntitle: Harbor ferry fare rises to {fare} dollars\npublished: {published}\n"
            "source: Harbor Gazette\n---\n"
            f"The Harbor ferry fare rose to {fare} dollars on Monday, the ferry company said. {more}"
        )
        paths.append(str(path))
    page = open_page(browser, server)
    page.get_by_role("tab", name="Articles").click()  # type: ignore[attr-defined]
    page.set_input_files("#upload input[type=file]", paths)  # type: ignore[attr-defined]
    page.wait_for_timeout(1000)  # type: ignore[attr-defined]
    page.click("#ingest")  # type: ignore[attr-defined]
    page.wait_for_function("() => /2 added/.test(document.querySelector('#report').innerText)", timeout=120_000)  # type: ignore[attr-defined]
    page.get_by_role("tab", name="Chat").click()  # type: ignore[attr-defined]
    # As of 2020 the 2024 article does not exist yet: it is neither retrieved nor cited.
    page.get_by_text("Filters").click()  # type: ignore[attr-defined]
    page.fill("#as-of textarea", "2020-01-01")  # type: ignore[attr-defined]
    ask(page, "The Harbor ferry fare rose to how many dollars on Monday?")
    wait_for_cards(page)
    cards = page.inner_text("#source-cards")  # type: ignore[attr-defined]
    assert "2019-03-05" in cards and "2024-03-05" not in cards and "six dollars" not in cards
    assert "As of 1 January 2020" in page.inner_text("#chat")  # type: ignore[attr-defined]
    # The Timeline view: both fare rises, in date order, dated the Monday each article names.
    page.get_by_role("tab", name="Timeline").click()  # type: ignore[attr-defined]
    page.fill("#timeline-topic textarea", "Harbor ferry fare")  # type: ignore[attr-defined]
    page.click("#timeline-show")  # type: ignore[attr-defined]
    page.wait_for_selector("#timeline .qa-event", timeout=120_000)  # type: ignore[attr-defined]
    dates = page.eval_on_selector_all("#timeline .qa-event", "els => els.map(e => e.dataset.date)")  # type: ignore[attr-defined]
    assert dates == sorted(dates) and {"2019-03-04", "2024-03-04"} <= set(dates)
    assert "Harbor Gazette" in page.inner_text("#timeline")  # type: ignore[attr-defined]
    page.close()  # type: ignore[attr-defined]


def test_a_conversation_survives_a_restart_and_is_shown_again(browser: object, tmp_path: Path) -> None:
    question = "What did Putin say at the forum in Sochi?"
    with serving(tmp_path) as (url, _):
        page = open_page(browser, url)
        ask(page, question)
        wait_for_cards(page)
        marks = page.eval_on_selector_all("#source-cards mark", "els => els.map(e => e.innerText)")  # type: ignore[attr-defined]
        page.close()  # type: ignore[attr-defined]
    assert marks
    with serving(tmp_path) as (url, _):  # a new process over the same folder
        page = open_page(browser, url)
        page.get_by_text("Conversations").click()  # type: ignore[attr-defined]
        page.click("#conversations input")  # type: ignore[attr-defined]
        page.get_by_role("option", name=re.compile("What did Putin say at the forum")).click()  # type: ignore[attr-defined]
        page.click("#open-conversation")  # type: ignore[attr-defined]
        page.wait_for_selector("#source-cards .qa-card", timeout=30_000)  # type: ignore[attr-defined]
        assert question in page.inner_text("#chat")  # type: ignore[attr-defined]
        again = page.eval_on_selector_all("#source-cards mark", "els => els.map(e => e.innerText)")  # type: ignore[attr-defined]
        assert again == marks  # the same quotes, highlighted in the same passages
        # Exported as Markdown, with its quotes.
        page.click("#export-conversation")  # type: ignore[attr-defined]
        page.wait_for_selector("#exported a", timeout=30_000)  # type: ignore[attr-defined]
        href = page.get_attribute("#exported a", "href")  # type: ignore[attr-defined]
        text = page.evaluate("u => fetch(u).then(r => r.text())", href)  # type: ignore[attr-defined]
        assert text.startswith(f"# {question}") and marks[0] in text
        page.close()  # type: ignore[attr-defined]
