"""A visitor's whole flow in headless Chromium (Debian's package, driven by Playwright)."""

import os
import shutil
import time

import httpx
import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.llama]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture
def page():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        yield page
        browser.close()


def test_visitor_prompts_watches_both_stream_votes_and_sees_names_and_leaderboard_change(
    arena_models, live_arena, page
):
    from playwright.sync_api import expect

    names = {m.name for m in arena_models}
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Write one sentence about <b>cats</b>.")
    page.get_by_test_id("send").click()

    # Both sides stream: text shows up on each side before the turn is over.
    expect(page.get_by_test_id("answer-a").locator(".answer")).not_to_be_empty(timeout=60_000)
    expect(page.get_by_test_id("answer-b").locator(".answer")).not_to_be_empty(timeout=60_000)
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=120_000)

    # Names hidden before the vote, anywhere on the page; the prompt's HTML shows as text, not markup.
    html = page.content()
    assert not any(name in html for name in names)
    assert page.locator("[data-testid=answer-a] b").count() == 0
    assert page.get_by_test_id("model-a").inner_text() == ""

    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("model-a")).not_to_be_empty(timeout=10_000)
    revealed = {
        page.get_by_test_id("model-a").inner_text().strip("— "),
        page.get_by_test_id("model-b").inner_text().strip("— "),
    }
    assert revealed == names
    expect(page.get_by_test_id("vote-b")).to_be_disabled()

    # The real worker rates the vote; the leaderboard shows both models with one vote each.
    # (Playwright's sync API runs an event loop in this thread, so the check goes over HTTP, not the ORM.)
    winner = page.get_by_test_id("model-a").inner_text().strip("— ")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        board = httpx.get(live_arena + "/api/leaderboard?method=elo").json()["models"]
        if sum(row["votes"] for row in board) == 2:
            break
        time.sleep(0.3)
    page.goto(live_arena + "/leaderboard")
    table = page.get_by_test_id("elo-table")
    expect(table.locator(f'[data-model="{winner}"]')).to_have_attribute("data-votes", "1")
    assert float(table.locator(f'[data-model="{winner}"]').get_attribute("data-rating")) > 1000

    # A new round clears the board and hides names again.
    page.goto(live_arena + "/")
    page.get_by_test_id("new-round").click()
    assert page.get_by_test_id("model-a").inner_text() == ""
