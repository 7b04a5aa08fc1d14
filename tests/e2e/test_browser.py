"""A visitor's whole flow in headless Chromium (Debian's package, driven by Playwright)."""

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

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
        # Anything the browser refuses or breaks on (a Content-Security-Policy violation, a script error)
        # fails the test that met it.
        page.problems = []
        page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        yield page
        browser.close()


@pytest.mark.llama
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
    assert page.problems == [], "\n".join(page.problems)  # no CSP violation or script error, charts included


# Models are registered by fixtures that run before `page`: once Playwright's sync API runs its event
# loop in this thread, Django refuses ORM calls here.
@pytest.fixture
def holding_models(scripted_api, transactional_db):
    from tests.factories import make_model

    return [make_model(name, base_url=scripted_api.url("hold"), max_concurrency=1) for name in ("m1", "m2")]


@pytest.fixture
def answering_models(scripted_api, transactional_db):
    from tests.factories import make_model

    return [make_model(name, base_url=scripted_api.url("ok")) for name in ("m1", "m2")]


def test_when_every_model_is_busy_the_visitor_sees_a_countdown_and_can_send_again(
    scripted_api, holding_models, live_arena, page
):
    from playwright.sync_api import expect

    other = page.context.browser.new_page()  # another visitor takes both slots
    other.goto(live_arena + "/")
    other.get_by_test_id("prompt").fill("Hi")
    other.get_by_test_id("send").click()
    expect(other.get_by_test_id("regenerate")).to_be_disabled()
    time.sleep(1.0)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_contain_text("busy", timeout=10_000)
    expect(page.get_by_test_id("send")).to_be_disabled()
    expect(page.get_by_test_id("prompt")).to_have_value("Hello")  # kept for the next try, not thrown away
    scripted_api.release()
    expect(page.get_by_test_id("send")).to_be_enabled(timeout=70_000)
    assert page.problems == []


def test_a_vote_refused_as_the_battle_has_one_already_shows_the_models(answering_models, live_arena, page):
    """The vote goes over the battle's socket; the arena refuses it, the battle having a vote already (cast in
    another tab here; or just before the connection dropped, when the page asks to vote again): the models
    are shown as that vote revealed them, where the page used to offer a vote that could never succeed."""
    from django.db import connection
    from playwright.sync_api import expect

    from battles import services
    from battles.models import Battle

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    [session] = [c["value"] for c in page.context.cookies() if c["name"] == "sessionid"]

    def vote_elsewhere():  # on a thread of its own: Playwright's loop runs on this one, and Django refuses
        try:
            services.vote_record(battle_id=Battle.objects.get().pk, visitor=services.Visitor.of(session_key=session),
                                 outcome="tie", turn=0, version=1)  # fmt: skip
        finally:
            # The thread's connection goes back now: left to the garbage collector, it stayed open to the end
            # of the run, and the test database could not be dropped ("being accessed by other users").
            connection.close()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(vote_elsewhere).result()
    page.context.clear_cookies(name="csrftoken")  # over HTTP, this vote would fail for that instead
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("model-a")).to_contain_text("— m", timeout=10_000)
    names = {page.get_by_test_id(f"model-{side}").inner_text() for side in "ab"}
    assert names == {"— m1", "— m2"}
    expect(page.get_by_test_id("notice")).to_contain_text("vote is recorded")
    expect(page.get_by_test_id("vote-a")).to_be_disabled()
    assert page.problems == []


def test_an_expired_page_is_explained_and_the_visitor_can_send_again(answering_models, live_arena, page):
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.context.clear_cookies(name="csrftoken")  # the CSRF cookie expired: the server answers a 403 page
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Your page has expired", timeout=10_000)
    expect(page.get_by_test_id("send")).to_be_enabled()
    assert page.get_by_test_id("model-a").inner_text() == ""


@pytest.fixture
def rated_board(transactional_db):
    """Three models, rated votes with a coding board, and a snapshot: made before `page` (see above)."""
    from battles.models import Vote
    from ratings.services import leaderboard_recompute
    from tests.factories import make_model
    from tests.ratings.conftest import rated_vote

    alpha, bravo, charlie = (make_model(name, organization="Test Org") for name in ("alpha", "bravo", "charlie"))
    for i in range(12):
        rated_vote(alpha, bravo, prompt=f"Write Python code to sort list number {i}.")
        rated_vote(bravo, charlie, Vote.Outcome.B, prompt=f"Tell me a story about day {i}.")
        rated_vote(charlie, alpha, Vote.Outcome.TIE, prompt=f"Another story, number {i}.")
    # Every model wins and loses some (a model with only losses has no rating), alpha a little ahead.
    for i in range(3):
        rated_vote(bravo, alpha, prompt=f"Write Python code to reverse list number {i}.")
        rated_vote(bravo, charlie, prompt=f"Tell me a story about night {i}.")
    rated_vote(alpha, charlie, prompt="One more story, please.")
    leaderboard_recompute(rounds=20, seed=0, category_min_votes=10)
    return [alpha.name, bravo.name, charlie.name]


def test_a_researcher_reads_the_board_a_category_a_model_page_and_the_about_page(rated_board, live_arena, page):
    from playwright.sync_api import expect

    page.goto(live_arena + "/leaderboard")
    expect(page.get_by_test_id("robustness")).to_contain_text("#1 alpha")
    expect(page.locator("#chart-average_win_rate .main-svg").first).to_be_visible()
    expect(page.locator("#chart-battles .main-svg").first).to_be_visible()
    page.get_by_test_id("category-tabs").locator('[data-category="coding"]').click()
    expect(page).to_have_url(live_arena + "/leaderboard?category=coding")
    expect(page.get_by_test_id("category-tabs").locator(".current")).to_have_attribute("data-category", "coding")
    expect(page.get_by_test_id("bt-table").locator("tr[data-model]")).to_have_count(2)

    page.get_by_test_id("bt-table").get_by_role("link", name="alpha").click()
    expect(page.get_by_test_id("model-name")).to_have_text("alpha")
    expect(page.get_by_test_id("model-facts")).to_contain_text("Test Org")
    expect(page.get_by_test_id("head-to-head").locator("tr[data-opponent]")).to_have_count(2)
    expect(page.locator("#chart-history .main-svg").first).to_be_visible()

    page.get_by_role("link", name="About the ratings").click()
    expect(page.get_by_test_id("provisional-threshold")).to_have_text("100")
    expect(page.get_by_test_id("sampling-shares")).to_be_visible()
    expect(page.get_by_test_id("robustness-first")).to_contain_text("holds unless")
    assert page.problems == [], "\n".join(page.problems)
