"""A visitor's whole flow in headless Chromium (Debian's package, driven by Playwright)."""

import os
import re
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


@pytest.fixture
def short_context_models(scripted_api, transactional_db):
    """Models whose context takes a short prompt but not one of 300 characters (battles/services.py
    _require_room refuses it before anyone is asked)."""
    from tests.factories import make_model

    return [make_model(name, base_url=scripted_api.url("ok"), context_length=120) for name in ("m1", "m2")]


@pytest.fixture
def roomy_models(scripted_api, transactional_db):
    """Models with room for any prompt the arena lets through (4,000 emoji are about 5,300 estimated tokens)."""
    from tests.factories import make_model

    return [make_model(name, base_url=scripted_api.url("ok"), context_length=100_000) for name in ("m1", "m2")]


LONG_URL = "https://example.com/" + "a" * 300
LONG_CODE_LINE = "x = [" + "1, " * 100 + "]"


@pytest.fixture
def long_line_models(scripted_api, transactional_db, monkeypatch):
    """One model answers with a 300-character URL and a 300-character code line; the other answers briefly."""
    from tests import scripted_api as scripted
    from tests.factories import make_model

    monkeypatch.setattr(scripted, "HOSTILE_ANSWER", [f"See {LONG_URL}", f"\n\n```\n{LONG_CODE_LINE}\n```\n"])
    return [make_model("long", base_url=scripted_api.url("html")), make_model("short", base_url=scripted_api.url("ok"))]


def test_a_refused_follow_up_leaves_the_answers_so_far_voteable(short_context_models, live_arena, page):
    """The server refuses the follow-up and rolls the whole turn back, and its message says to vote on the
    answers so far: the vote buttons must be enabled for that (they stayed disabled), and the vote counts."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    page.get_by_test_id("prompt").fill("word " * 60)
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_contain_text("vote on the answers so far", timeout=10_000)
    expect(page.get_by_test_id("vote-a")).to_be_enabled()
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("model-a")).to_contain_text("— m", timeout=10_000)
    expect(page.get_by_test_id("notice")).to_contain_text("vote is recorded")
    assert page.problems == []


def test_a_prompt_over_the_limit_is_kept_whole_and_the_visitor_told_by_how_much(roomy_models, live_arena, page):
    """The box had maxlength=4000, which dropped the rest of a long paste without a word; and the page counted
    UTF-16 units, so a prompt of 4,000 emoji (4,000 characters to the server) was cut to 2,000."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("x" * 4_100)
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_contain_text("4,100 characters long, 100 over the limit of 4,000")
    assert len(page.get_by_test_id("prompt").input_value()) == 4_100
    assert page.get_by_test_id("answer-a").inner_text() == ""  # nothing was sent

    page.get_by_test_id("prompt").fill("😀" * 4_000)
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    shown = page.get_by_test_id("answer-a").locator(".you").evaluate("node => Array.from(node.textContent).length")
    assert shown == 4_000
    assert page.problems == []


def test_a_long_unbroken_line_in_one_answer_leaves_both_columns_the_same_width(long_line_models, live_arena, page):
    """With 1fr columns, a long URL or code line widened its own column and squeezed the other answer; on a
    phone the two columns stay side by side at about 150 px each."""
    from playwright.sync_api import expect

    def columns():
        return [page.get_by_test_id(f"answer-{side}").evaluate(
            "node => { const r = node.closest('.side').getBoundingClientRect();"
            " return {left: r.left, top: r.top, bottom: r.bottom, width: r.width}; }") for side in "ab"]  # fmt: skip

    def page_scrolls_sideways():
        return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Show me a link and a line of code")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    expect(page.locator(".side pre")).to_have_count(1)
    a, b = columns()
    assert abs(a["width"] - b["width"]) < 1 and a["top"] == b["top"], (a, b)
    assert not page_scrolls_sideways()
    # Nor does the URL run out of its column over the other answer: it breaks inside.
    assert page.locator(".side").evaluate_all("nodes => nodes.every(n => n.scrollWidth <= n.clientWidth)")
    # The code line scrolls inside its own box.
    assert page.locator(".side pre").evaluate("node => node.scrollWidth > node.clientWidth")
    # Prompt and answers take their direction from their own text (Arabic, Hebrew).
    assert page.get_by_test_id("prompt").get_attribute("dir") == "auto"
    assert page.locator(".side .answer").first.get_attribute("dir") == "auto"
    # A 16 px box: iOS zooms the page into a smaller one.
    assert page.get_by_test_id("prompt").evaluate("node => getComputedStyle(node).fontSize") == "16px"

    page.set_viewport_size({"width": 400, "height": 800})
    a, b = columns()
    assert b["top"] >= a["bottom"] and a["left"] == b["left"] and abs(a["width"] - b["width"]) < 1, (a, b)
    assert not page_scrolls_sideways()
    assert page.problems == []


@pytest.fixture
def slow_models(scripted_api, transactional_db):
    from tests.factories import make_model

    return [make_model(name, base_url=scripted_api.url("slow")) for name in ("m1", "m2")]


def test_a_screen_reader_hears_when_voting_opens_and_who_the_models_were(slow_models, live_arena, page):
    """Both columns were live regions, so every frame of both answers was announced, interleaved; the status
    said nothing when voting opened; the prompt box had no label, only a placeholder."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    prompt = page.get_by_label("Your prompt")  # its accessible name, from a <label for>
    expect(prompt).to_have_attribute("data-testid", "prompt")
    prompt.fill("Hello")
    page.get_by_test_id("send").click()
    # While the answers stream (2.4 s here), the columns say they are busy rather than announce every frame.
    expect(page.get_by_test_id("answer-a")).to_have_attribute("aria-busy", "true", timeout=10_000)
    status = page.get_by_test_id("notice")
    expect(status).to_have_text("Both answers are finished; you can vote now.", timeout=30_000)
    assert status.get_attribute("role") == "status"  # a live region: announced as it changes
    for side in "ab":
        column = page.get_by_test_id(f"answer-{side}")
        assert column.get_attribute("aria-live") is None
        expect(column).to_have_attribute("aria-busy", "false")
    page.get_by_test_id("vote-b").click()
    expect(status).to_contain_text("vote is recorded", timeout=10_000)
    said = status.inner_text()
    assert "m1" in said and "m2" in said, said
    assert page.problems == []


def test_a_keyboard_user_keeps_the_focus_and_hears_that_the_models_are_answering(slow_models, live_arena, page):
    """Send, disabled under the keyboard's focus as the answers stream, dropped it to the top of the page, and
    the status line said nothing until both answers were done."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("notice")).to_have_text("Both models are answering…", timeout=10_000)
    expect(page.get_by_test_id("prompt")).to_be_focused()
    expect(page.get_by_test_id("notice")).to_have_text("Both answers are finished; you can vote now.", timeout=30_000)
    assert page.problems == []


def test_a_new_round_while_answers_stream_leaves_them_and_sending_works_at_once(slow_models, live_arena, page):
    """New round mid-stream cleared the page but left it busy: Send stayed disabled until the old turn ended
    (up to its 3-minute deadline), and the old turn's frames then landed on the new round's page."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("First question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("answer-a")).to_have_attribute("aria-busy", "true", timeout=10_000)
    page.get_by_test_id("new-round").click()
    expect(page.get_by_test_id("send")).to_be_enabled(timeout=1_000)
    page.get_by_test_id("prompt").fill("Second question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    for side in "ab":  # only the new round's exchange, and none of the old turn's text
        column = page.get_by_test_id(f"answer-{side}")
        assert column.locator(".you").all_inner_texts() == ["Second question"]
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("notice")).to_contain_text("vote is recorded", timeout=10_000)
    assert page.problems == []


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
    # Every text the status line (a live region, read out by a screen reader at each change) is given.
    page.evaluate("""() => {
      window.noticeTexts = [];
      const notice = document.querySelector('[data-testid="notice"]');
      new MutationObserver(() => window.noticeTexts.push(notice.textContent))
        .observe(notice, { childList: true, characterData: true, subtree: true });
    }""")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_contain_text("busy", timeout=10_000)
    expect(page.get_by_test_id("send")).to_be_disabled()
    expect(page.get_by_test_id("send")).to_have_text(re.compile(r"^Send \(\d+ s\)$"))  # the seconds left
    expect(page.get_by_test_id("prompt")).to_have_value("Hello")  # kept for the next try, not thrown away
    scripted_api.release()
    expect(page.get_by_test_id("send")).to_be_enabled(timeout=70_000)
    expect(page.get_by_test_id("send")).to_have_text("Send")
    # The wait is said once and its end once: the countdown used to rewrite the status line every second.
    texts = [text for text in page.evaluate("window.noticeTexts") if text]
    assert texts[-1] == "The models may be free now: press Send to try again."
    busy = [text for text in texts if "busy" in text]
    assert len(busy) == 1 and busy[0].startswith("All models are busy right now."), texts
    assert page.problems == []


def test_a_new_round_while_a_send_is_still_connecting_drops_that_send(answering_models, live_arena, page):
    """New round pressed while a Send was still on its way to the arena (its session request, or its socket,
    not yet through) left the page busy, then sent the prompt anyway: its battle started on the new round's
    page (a follow-up brought the old battle back onto it)."""
    from playwright.sync_api import expect

    held = []
    page.route("**/api/session", lambda route: held.append(route))  # held until the test lets it go
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("First question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("send")).to_be_disabled()
    page.wait_for_timeout(200)
    assert len(held) == 1
    page.get_by_test_id("new-round").click()
    expect(page.get_by_test_id("send")).to_be_enabled()  # the new round is not busy with the old one's send
    held[0].continue_()
    page.unroute("**/api/session")
    page.wait_for_timeout(2_000)  # the socket opens; nothing may be sent on it
    assert page.get_by_test_id("answer-a").inner_text() == ""
    assert page.evaluate("sessionStorage.getItem('arena.battle')") is None
    expect(page.get_by_test_id("prompt")).to_have_value("First question")  # kept, to be sent on this round
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    for side in "ab":
        assert page.get_by_test_id(f"answer-{side}").locator(".you").all_inner_texts() == ["First question"]
    assert page.problems == []


def test_a_vote_refused_as_the_battle_has_one_already_shows_the_models(answering_models, live_arena, page):
    """The vote goes over the battle's socket; the arena refuses it, the battle having a vote already (cast in
    another tab here; or on a socket that dropped before answering, when the page sends it again over HTTP):
    the models are shown as that vote revealed them, where the page used to offer a vote that could never
    succeed."""
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


def test_a_vote_sent_into_a_socket_gone_silent_is_recorded_over_http(answering_models, live_arena, page):
    """A phone asleep or a network switched can leave the socket "open" with nothing getting through: the vote
    waited, every button but New round disabled, until the browser noticed (minutes). Here the vote frame is
    swallowed on its way; the page sends the same vote over HTTP after 10 s, and it is recorded once."""
    from django.db import connection
    from playwright.sync_api import expect

    from battles.models import Vote

    def silent_for_votes(socket):
        server = socket.connect_to_server()

        def from_page(message):
            if '"type":"vote"' not in str(message).replace(" ", ""):
                server.send(message)  # everything but the vote goes through

        socket.on_message(from_page)

    page.route_web_socket("**/ws/battle/", silent_for_votes)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    page.get_by_test_id("vote-a").click()
    # While the vote is on its way, New round waits: its answer (the names) would land on the new round, and
    # the 10 s fall-back to HTTP was cancelled with it, losing the vote.
    expect(page.get_by_test_id("new-round")).to_be_disabled()
    expect(page.get_by_test_id("notice")).to_contain_text("vote is recorded", timeout=20_000)
    expect(page.get_by_test_id("new-round")).to_be_enabled()
    names = {page.get_by_test_id(f"model-{side}").inner_text() for side in "ab"}
    assert names == {"— m1", "— m2"}

    def outcomes():  # on a thread of its own: Playwright's loop runs on this one, and Django refuses
        try:
            return list(Vote.objects.values_list("outcome", flat=True))
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(outcomes).result() == ["a"]
    assert page.problems == []


def first_socket_never_opens(page) -> None:
    """The page's first WebSocket stays "connecting" for ever, as over a network that went away just as it was
    made (a stand-in for the browser's socket: nothing real on this machine can hold a same-origin handshake
    open while the arena answers others, and the page's Content-Security-Policy allows no other origin); its
    later ones are the browser's own."""
    page.add_init_script("""(() => {
      const Real = window.WebSocket;
      let first = true;
      window.WebSocket = function (url, protocols) {
        if (!first) return new Real(url, protocols);
        first = false;
        return { readyState: 0, send() {}, close() { this.readyState = 3; } };  // never opens, never closes
      };
      Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    })();""")


def test_a_socket_that_never_opens_is_given_up_and_the_next_send_goes_through(answering_models, live_arena, page):
    """A network switched just as Send was pressed left the socket connecting for minutes, Send disabled."""
    from playwright.sync_api import expect

    first_socket_never_opens(page)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Could not connect to the arena", timeout=25_000)
    expect(page.get_by_test_id("send")).to_be_enabled()
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    assert page.problems == []


def test_a_new_round_gives_up_a_socket_still_connecting(answering_models, live_arena, page):
    """New round kept the socket still connecting, and the next Send waited on it too (hung with it)."""
    from playwright.sync_api import expect

    first_socket_never_opens(page)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    page.wait_for_timeout(1_000)  # connecting, into the void
    page.get_by_test_id("new-round").click()
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=10_000)  # well before the 15 s deadline
    for side in "ab":
        assert page.get_by_test_id(f"answer-{side}").locator(".you").all_inner_texts() == ["Hello"]
    assert page.problems == []


def test_a_prompt_sent_into_a_socket_gone_silent_is_given_up_and_can_be_sent_again(answering_models, live_arena, page):
    """The vote's fall-back, for a prompt: sent into a socket through which nothing gets any more, it waited for
    the browser to notice (minutes), Send disabled. After 15 s the page gives that socket up and says so, the
    prompt still in the box, and Send goes through a new socket."""
    from playwright.sync_api import expect

    sockets = []

    def first_socket_silent(socket):
        server = socket.connect_to_server()
        sockets.append(socket)
        first = len(sockets) == 1
        socket.on_message(lambda message: None if first else server.send(message))  # the first hears nothing

    page.route_web_socket("**/ws/battle/", first_socket_silent)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("send")).to_be_disabled()
    notice = page.get_by_test_id("notice")
    expect(notice).to_have_text("The arena has not answered: the connection seems to be lost. Please try again.",
                                timeout=25_000)  # fmt: skip
    expect(page.get_by_test_id("send")).to_be_enabled()
    expect(page.get_by_test_id("prompt")).to_have_value("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    assert len(sockets) == 2
    page.get_by_test_id("vote-a").click()
    expect(notice).to_contain_text("vote is recorded", timeout=10_000)
    assert page.problems == []


@pytest.fixture
def later_turns_held(scripted_api, transactional_db):
    """Two models whose first turn answers at once and whose later requests wait for `release()`."""
    from tests.factories import make_model

    return [make_model(name, base_url=scripted_api.url("holdlater"), max_concurrency=4) for name in ("m1", "m2")]


def test_a_follow_up_whose_replies_were_lost_is_shown_as_it_stands_when_given_up(
    scripted_api, later_turns_held, live_arena, page
):
    """The follow-up reached the arena and its turn began, but nothing came back (a socket gone silent). Given
    up after 15 s, the page said "try again", and a Send again asked the follow-up twice; now it shows the
    battle as it stands (the turn begun, its answers not finished) and Regenerate takes that turn over."""
    from playwright.sync_api import expect

    def silent_after_the_follow_up(socket):
        server = socket.connect_to_server()
        socket.silent = False

        def from_page(message):
            server.send(message)
            if '"type":"continue"' in str(message).replace(" ", ""):
                socket.silent = True  # the follow-up reaches the arena; nothing comes back (no close either)

        socket.on_message(from_page)
        server.on_message(lambda message: None if socket.silent else socket.send(message))

    page.route_web_socket("**/ws/battle/", silent_after_the_follow_up)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("First question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    page.get_by_test_id("prompt").fill("Follow-up question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "The connection was lost after the arena began on your prompt; its answers are not finished. Regenerate "
        "to have them written again, or start a new round.", timeout=25_000)  # fmt: skip
    for side in "ab":
        column = page.get_by_test_id(f"answer-{side}")
        assert column.locator(".you").all_inner_texts() == ["First question", "Follow-up question"]
        assert column.locator(".answer").last.inner_text().endswith("This answer is not finished yet.")
    expect(page.get_by_test_id("prompt")).to_have_value("")  # asked already: not to be sent twice
    expect(page.get_by_test_id("vote-a")).to_be_disabled()
    page.get_by_test_id("regenerate").click()
    expect(page.get_by_test_id("answer-a")).to_have_attribute("aria-busy", "true", timeout=10_000)
    scripted_api.release()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("notice")).to_contain_text("vote is recorded", timeout=10_000)
    assert page.problems == []


def silently_droppable(socket):
    """Connect a routed battle socket to the arena such that, once `socket.dropped` is set and the page's side
    closed (socket.close()), the server hears nothing: its end stays open and streams on into the void, as to
    a page whose network went away. Returns the server's side."""
    socket.dropped = False
    server = socket.connect_to_server()
    socket.on_close(lambda code, reason: None)  # the page's side closing is not passed on to the server
    server.on_close(lambda code, reason: None)
    server.on_message(lambda message: None if socket.dropped else socket.send(message))
    return server


def requests_reach(scripted_api, count: int, timeout: float = 10) -> None:
    """Wait until the scripted server has been asked `count` times (as the socket tests' helper does)."""
    deadline = time.monotonic() + timeout
    while len(scripted_api.requests) < count:
        assert time.monotonic() < deadline, scripted_api.requests
        time.sleep(0.02)


def test_after_the_socket_drops_unnoticed_mid_answer_regenerate_works_at_once(
    scripted_api, holding_models, live_arena, page
):
    """The page loses its socket mid-answer while the server's end stays open (a network switched: the web
    server notices only when its pings time out). Regenerate was refused ("Please wait until both answers have
    finished") for up to ~40 s, the old stream holding both models' only slots; now it takes the battle over,
    the old stream stops and gives the slots back, and the new answers can be voted on."""
    from playwright.sync_api import expect

    sockets = []

    def drop_later(socket):
        silently_droppable(socket)
        sockets.append(socket)

    page.route_web_socket("**/ws/battle/", drop_later)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("answer-a")).to_have_attribute("aria-busy", "true", timeout=10_000)
    requests_reach(scripted_api, 2)  # both sides hold their model's one slot
    sockets[0].dropped = True
    sockets[0].close()
    expect(page.get_by_test_id("notice")).to_contain_text("The connection was lost", timeout=10_000)
    page.get_by_test_id("regenerate").click()
    expect(page.get_by_test_id("answer-a")).to_have_attribute("aria-busy", "true", timeout=10_000)
    # Both new requests reach the models while the old ones are still held: the old stream gave its slots back
    # (else the new sides would wait for them, up to 5 s, then fail as busy, asking nobody).
    requests_reach(scripted_api, 4)
    assert len(scripted_api.requests) == 4, scripted_api.requests
    scripted_api.release()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    for side in "ab":
        assert page.get_by_test_id(f"answer-{side}").inner_text().endswith("Hello from the scripted API.")
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Thanks! Your vote is recorded", timeout=10_000)
    assert len(sockets) == 2
    assert page.problems == []


def test_a_follow_up_whose_start_was_lost_with_the_socket_is_regenerated_as_its_own_turn(
    answering_models, live_arena, page
):
    """The socket died just after a follow-up was sent: the server started the turn, the page never heard.
    Regenerate then streamed the follow-up's answers over the previous turn's, under the previous prompt,
    and the follow-up itself was never shown (yet voted on)."""
    from playwright.sync_api import expect

    def lose_the_follow_up(socket):
        server = silently_droppable(socket)

        def from_page(message):
            server.send(message)
            if '"type":"continue"' in str(message).replace(" ", ""):
                socket.dropped = True  # the follow-up reached the server; nothing more reaches the page
                socket.close()

        socket.on_message(from_page)

    page.route_web_socket("**/ws/battle/", lose_the_follow_up)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("First question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    first_answers = [page.get_by_test_id(f"answer-{side}").locator(".answer").inner_html() for side in "ab"]
    page.get_by_test_id("prompt").fill("Follow-up question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_contain_text("The connection was lost", timeout=10_000)
    page.get_by_test_id("regenerate").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    for side, first in zip("ab", first_answers, strict=True):
        column = page.get_by_test_id(f"answer-{side}")
        assert column.locator(".you").all_inner_texts() == ["First question", "Follow-up question"]
        assert column.locator(".answer").first.inner_html() == first  # the first turn's answers stand
    assert page.problems == []


def tab_with_the_battle(page, live_arena):
    """Another tab of the same visitor (its session) with `page`'s battle, as a duplicated tab has it, restored
    and ready to regenerate."""
    from playwright.sync_api import expect

    other = page.context.browser.new_page()
    other.context.add_cookies(page.context.cookies())
    other.goto(live_arena + "/")
    other.evaluate(
        "id => sessionStorage.setItem('arena.battle', id)", page.evaluate("sessionStorage.getItem('arena.battle')")
    )
    other.reload()
    expect(other.get_by_test_id("notice")).to_contain_text("back as you left it", timeout=10_000)
    return other


@pytest.fixture
def holding_roomy_models(scripted_api, transactional_db):
    from tests.factories import make_model

    return [make_model(name, base_url=scripted_api.url("hold"), max_concurrency=4) for name in ("m1", "m2")]


def test_a_tab_whose_battle_another_tab_regenerated_lets_it_go(scripted_api, holding_roomy_models, live_arena, page):
    """A tab duplicated (its battle copied with it) regenerates while the first tab streams: the first is told
    why its answers stopped, and leaves the battle to the other, so its Send starts a new battle instead of
    pulling that one back and forth (each pull a regeneration and an answer pair of the visitor's budget)."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("First question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("answer-a")).to_have_attribute("aria-busy", "true", timeout=10_000)
    battle_id = page.evaluate("sessionStorage.getItem('arena.battle')")
    other = tab_with_the_battle(page, live_arena)
    other.get_by_test_id("regenerate").click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "This battle was regenerated in another window or tab, and its answers go on there. Start a new round here.",
        timeout=10_000,
    )
    assert page.evaluate("sessionStorage.getItem('arena.battle')") is None
    scripted_api.release()
    expect(other.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    page.get_by_test_id("prompt").fill("Second question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    assert page.evaluate("sessionStorage.getItem('arena.battle')") not in (None, battle_id)  # a battle of its own
    for side in "ab":  # shown alone, not under the stopped answers as if it continued them
        assert page.get_by_test_id(f"answer-{side}").locator(".you").all_inner_texts() == ["Second question"]
    expect(other.get_by_test_id("vote-a")).to_be_enabled()  # the other tab's answers stand, still voteable
    assert page.problems == []


def test_a_vote_on_answers_another_tab_has_regenerated_since_shows_the_new_ones(
    scripted_api, answering_models, live_arena, page
):
    """A duplicated tab regenerates after this tab's answers have ended (no stream to stop here): this tab's vote
    names answers no longer shown there, and the arena refuses it. It was refused at every try, the new
    answers out of sight until a reload; now the page shows them, and the vote on them is recorded."""
    from django.db import connection
    from playwright.sync_api import expect

    from battles.models import Vote

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("First question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    other = tab_with_the_battle(page, live_arena)
    other.get_by_test_id("regenerate").click()
    expect(other.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "These answers were written again in another window or tab; here they are now, and you can vote on them.",
        timeout=10_000,
    )
    for side in "ab":
        assert page.get_by_test_id(f"answer-{side}").locator(".you").all_inner_texts() == ["First question"]
    expect(page.get_by_test_id("vote-b")).to_be_enabled()
    page.get_by_test_id("vote-b").click()
    expect(page.get_by_test_id("notice")).to_contain_text("vote is recorded", timeout=10_000)

    def votes():  # on a thread of its own: Playwright's loop runs on this one, and Django refuses
        try:
            return list(Vote.objects.values_list("outcome", "turn_version"))
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(votes).result() == [("b", 2)]
    assert page.problems == []


@pytest.fixture
def failing_on_regenerate(scripted_api, transactional_db):
    from tests.factories import make_model

    return [make_model("m1", base_url=scripted_api.url("ok")), make_model("m2", base_url=scripted_api.url("failafter"))]


def test_a_vote_on_answers_another_tab_regenerated_into_a_failed_side_says_so(failing_on_regenerate, live_arena, page):
    """The refused vote's page said the answers were "being written again" there, and to reload once they
    had finished: they had, with a side failed, and a reload showed the same."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("First question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    other = tab_with_the_battle(page, live_arena)
    other.get_by_test_id("regenerate").click()
    expect(other.get_by_test_id("notice")).to_contain_text("a side failed", timeout=30_000)
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "These answers were written again in another window or tab; a side failed there, so they can't be voted "
        "on. Regenerate or start a new round.", timeout=10_000)  # fmt: skip
    expect(page.locator(".answer .error")).to_have_text("This answer did not finish.")
    expect(page.get_by_test_id("vote-a")).to_be_disabled()
    assert page.problems == []


def test_a_send_pressed_while_the_page_restores_its_battle_is_not_mixed_with_it(answering_models, live_arena, page):
    """A Send pressed before the reload's restore came back: the old battle appeared, the new one under it."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Old question")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    restoring, starting = [], []
    page.route("**/api/battles/*", lambda route: restoring.append(route))  # the restore's read waits here
    page.route("**/api/session", lambda route: starting.append(route))  # and the new battle's start here
    page.reload()
    page.get_by_test_id("prompt").fill("New question")
    page.get_by_test_id("send").click()
    page.wait_for_timeout(300)
    assert len(restoring) == 1 and len(starting) == 1
    restoring[0].continue_()
    page.wait_for_timeout(1_000)  # the restore's answer is read while the Send is on its way
    starting[0].continue_()
    page.unroute("**/api/battles/*")
    page.unroute("**/api/session")
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    for side in "ab":
        assert page.get_by_test_id(f"answer-{side}").locator(".you").all_inner_texts() == ["New question"]
    assert page.problems == []


@pytest.fixture
def one_failing_model(scripted_api, transactional_db):
    from tests.factories import make_model

    return [make_model("m1", base_url=scripted_api.url("ok")), make_model("m2", base_url=scripted_api.url("error"))]


def test_a_side_that_failed_says_why_and_the_round_cannot_be_voted_on_also_after_a_reload(
    one_failing_model, live_arena, page
):
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    notice = page.get_by_test_id("notice")
    expect(notice).to_have_text(
        "This round can't be voted on because a side failed. Regenerate or start a new round.", timeout=30_000
    )
    failed = page.locator(".answer .error")
    expect(failed).to_have_count(1)
    assert failed.inner_text() in {
        f"Model {side} could not answer: the model's server returned an error. You can regenerate or start a new round."
        for side in "AB"
    }
    answered = page.locator(".answer:not(:has(.error))")
    expect(answered).to_have_text("Hello from the scripted API.")
    for outcome in ("vote-a", "vote-b", "vote-tie", "vote-bothbad"):
        expect(page.get_by_test_id(outcome)).to_be_disabled()
    expect(page.get_by_test_id("regenerate")).to_be_enabled()
    page.reload()
    expect(notice).to_have_text("Your battle is back as you left it. Regenerate or start a new round.",
                                timeout=10_000)  # fmt: skip
    expect(page.locator(".answer .error")).to_have_text("This answer did not finish.")
    expect(page.locator(".answer:not(:has(.error))")).to_have_text("Hello from the scripted API.")
    expect(page.get_by_test_id("vote-a")).to_be_disabled()
    expect(page.get_by_test_id("regenerate")).to_be_enabled()
    assert page.problems == []


@pytest.fixture
def cut_off_model(scripted_api, transactional_db, monkeypatch):
    """A model of one replica whose server dies after three lines of its answer; its rival answers the same."""
    from tests import scripted_api as scripted
    from tests.factories import make_model

    monkeypatch.setattr(scripted, "ANSWER", ["Line one", "\nLine two", "\nLine three", "\nLine four"])
    return [make_model("m1", base_url=scripted_api.url("ok")), make_model("m2", base_url=scripted_api.url("drop"))]


def test_a_side_cut_off_keeps_the_line_breaks_of_its_text_also_after_a_reload(cut_off_model, live_arena, page):
    """A failed side's text so far ran its lines together once the stream ended (their breaks were shown only
    while it streamed)."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    failed = page.locator(".answer:has(.error)")
    expect(failed).to_have_count(1, timeout=30_000)
    assert failed.inner_text().startswith("Line one\nLine two\nLine three\n"), failed.inner_text()
    page.reload()
    expect(page.get_by_test_id("notice")).to_contain_text("back as you left it", timeout=10_000)
    assert failed.inner_text().startswith("Line one\nLine two\nLine three\n"), failed.inner_text()
    assert page.problems == []


def test_a_reload_shows_the_battle_again_and_it_can_still_be_voted_on(answering_models, live_arena, page):
    """The page kept its battle only in memory: a reload (or coming back from a link opened in an answer)
    showed an empty arena, the answers stored and paid for but out of reach of a vote."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("vote-a")).to_be_enabled(timeout=30_000)
    before = [page.get_by_test_id(f"answer-{side}").inner_html() for side in "ab"]
    page.reload()
    expect(page.get_by_test_id("notice")).to_contain_text("back as you left it", timeout=10_000)
    assert [page.get_by_test_id(f"answer-{side}").inner_html() for side in "ab"] == before
    page.get_by_test_id("vote-b").click()
    expect(page.get_by_test_id("notice")).to_contain_text("vote is recorded", timeout=10_000)
    page.get_by_test_id("new-round").click()
    page.reload()  # a new round is an empty arena, after a reload too
    expect(page.get_by_test_id("vote-a")).to_be_disabled()
    assert page.get_by_test_id("answer-a").inner_text() == ""
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


def test_with_cookies_blocked_the_visitor_is_told_to_allow_them_not_to_reload(answering_models, live_arena, page):
    """The session and the form token are cookies. With cookies blocked the page said "Your page has expired.
    Please reload it", which no reload could mend."""
    from playwright.sync_api import expect

    page.add_init_script("Object.defineProperty(Navigator.prototype, 'cookieEnabled', { get: () => false })")
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "This arena needs cookies to battle: one keeps your battle and your vote together. "
        "Please allow cookies for this site, then press Send again."
    )
    expect(page.get_by_test_id("send")).to_be_enabled()
    expect(page.get_by_test_id("prompt")).to_have_value("Hello")
    assert page.problems == []


def test_a_session_cookie_that_never_comes_back_is_explained(answering_models, live_arena, page):
    """Cookies allowed as far as the page can tell, yet the session cookie is dropped (a privacy extension):
    the battle socket is refused, and the page names cookies among the causes rather than asking for a reload."""
    from playwright.sync_api import expect

    def without_cookie(route):  # the session is issued, and its cookie dropped on the way
        route.fulfill(status=200, content_type="application/json", body='{"ok": true}')

    page.route("**/api/session", without_cookie)
    page.goto(live_arena + "/")
    page.get_by_test_id("prompt").fill("Hello")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "Could not connect to the arena. Please try again in a moment; if your browser blocks cookies for this "
        "site, allow them first (a battle needs one).",
        timeout=10_000,
    )
    expect(page.get_by_test_id("send")).to_be_enabled()
    expect(page.get_by_test_id("prompt")).to_have_value("Hello")


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
    # A chart's figures, folded under it as a table: for a screen reader, a picture's numbers.
    figures = page.get_by_role("region", name="Win fraction of model A over model B: the figures")
    expect(figures).to_be_hidden()
    page.get_by_text("Win fraction of model A over model B: the figures as a table").click()
    expect(figures.get_by_role("rowheader", name="alpha")).to_be_visible()
    expect(figures.get_by_role("columnheader", name="charlie")).to_be_visible()
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


def test_a_newer_board_is_offered_not_loaded_under_the_reader_and_a_snapshot_loads_with_show(
    rated_board, live_arena, page
):
    """The page reloaded itself at each new snapshot (and, before the first, at every vote): a keyboard's
    focus and a screen reader's place went back to the top. The snapshot menu loaded a page at every arrow
    key."""
    import threading

    from playwright.sync_api import expect

    from ratings import events

    page.goto(live_arena + "/leaderboard")
    expect(page.locator("#live-status")).to_have_text("· live", timeout=10_000)
    page.evaluate("window.stillThisPage = true")
    newest = int(page.locator("#snapshot-picker option").nth(1).get_attribute("value"))  # after "Newest"
    update = events.leaderboard_update(reason="snapshot", online_elo=[], snapshot_id=newest + 1, updated="now")
    # Sent from a thread of its own: Playwright's sync API runs an event loop in this one.
    sender = threading.Thread(target=events.leaderboard_broadcast, args=(update,))
    sender.start()
    sender.join()
    news = page.get_by_test_id("board-news")
    expect(news).to_contain_text("A newer board is available.", timeout=10_000)
    assert page.evaluate("window.stillThisPage") is True  # not reloaded
    page.get_by_test_id("show-newer-board").click()
    expect(news).to_be_empty(timeout=10_000)
    assert page.evaluate("window.stillThisPage") is None  # the newer board was loaded

    page.evaluate("window.stillThisPage = true")
    page.locator("#snapshot-picker").select_option(str(newest))
    assert page.evaluate("window.stillThisPage") is True  # choosing alone loads nothing
    page.get_by_test_id("snapshot-show").click()
    expect(page).to_have_url(re.compile(rf"snapshot={newest}"))
    assert page.problems == [], "\n".join(page.problems)


def test_a_tapped_send_keeps_the_page_where_it_is_and_a_refused_prompt_is_marked_and_focused(
    slow_models, live_arena, page
):
    """Focus went to the prompt box whenever the pressed button was disabled: on a phone that scrolled down to
    the box and opened the keyboard over the answers. A refused prompt said so only in red, away from the box."""
    from playwright.sync_api import expect

    page.goto(live_arena + "/")
    prompt = page.get_by_test_id("prompt")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_have_text("Please type a prompt first.")
    expect(page.get_by_test_id("notice")).to_have_attribute("aria-live", "assertive")
    expect(prompt).to_have_attribute("aria-invalid", "true")
    expect(prompt).to_be_focused()
    prompt.fill("Hello")
    expect(prompt).not_to_have_attribute("aria-invalid", "true")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("notice")).to_have_text("Both models are answering…", timeout=10_000)
    expect(page.get_by_test_id("notice")).to_have_attribute("aria-live", "polite")
    expect(prompt).not_to_be_focused()
    page.get_by_test_id("new-round").click()
    expect(page.get_by_test_id("notice")).to_have_text("New round: type your prompt.")
    expect(prompt).to_be_focused()
    assert page.problems == [], "\n".join(page.problems)


# For the failure message: the first elements that reach past a 360 px screen's right edge.
PAST_THE_RIGHT_EDGE = """[...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > 361).slice(0, 8)
  .map((e) => `${e.tagName}.${e.className} ${e.dataset.testid || ""} ${Math.round(e.getBoundingClientRect().right)}`)"""


def test_no_page_scrolls_sideways_on_a_phone(rated_board, live_arena, page):
    """At 360 px a wide table scrolls inside its own box; the page itself keeps to the screen's width."""
    page.set_viewport_size({"width": 360, "height": 740})
    for path in ["/", "/leaderboard", "/leaderboard?category=coding", f"/leaderboard/model/{rated_board[0]}",
                 "/leaderboard/about", "/leaderboard/history"]:  # fmt: skip
        page.goto(live_arena + path)
        page.wait_for_load_state("networkidle")
        page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")  # charts' tables too
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 360, f"{path} is {wide} px wide at 360: {page.evaluate(PAST_THE_RIGHT_EDGE)}"
    assert page.problems == [], "\n".join(page.problems)
