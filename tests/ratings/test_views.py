import csv
import io
import json
import re

import pytest

from battles.models import Vote
from ratings import services
from tests.ratings.conftest import rated_vote

SNAPSHOT_KEYS = {"id", "created", "method", "params", "seed", "data_cutoff", "vote_count", "compute_seconds"}


def test_api_without_snapshot_serves_online_elo(client, three_models):
    alpha, bravo, _ = three_models
    rated_vote(alpha, bravo, Vote.Outcome.A)
    body = client.get("/api/leaderboard").json()
    assert body["snapshot"] is None
    assert body["models"] == [
        {"name": "alpha", "rating": pytest.approx(1002.0), "votes": 1, "ci_lower": None, "ci_upper": None, "rank": 1,
         "provisional": True, "retired": False},
        {"name": "bravo", "rating": pytest.approx(998.0), "votes": 1, "ci_lower": None, "ci_upper": None, "rank": 2,
         "provisional": True, "retired": False},
    ]  # fmt: skip
    assert body["online_elo"] == [
        {"name": "alpha", "rating": pytest.approx(1002.0), "votes": 1},
        {"name": "bravo", "rating": pytest.approx(998.0), "votes": 1},
    ]
    assert body["updated"]


def test_api_serves_the_newest_snapshot_in_the_documented_shape(client, small_arena):
    services.leaderboard_recompute(rounds=10, seed=0)
    newest = services.leaderboard_recompute(rounds=10, seed=5)
    body = client.get("/api/leaderboard").json()
    assert {"models", "snapshot", "style_controlled", "matrices", "online_elo", "updated"} <= body.keys()
    assert body["snapshot"].keys() >= SNAPSHOT_KEYS
    assert body["snapshot"]["id"] == newest.pk and body["snapshot"]["seed"] == 5
    assert body["snapshot"]["vote_count"] == 12
    assert [row["name"] for row in body["models"]] == ["alpha", "bravo", "charlie"]
    for row in body["models"]:
        assert {"name", "rating", "ci_lower", "ci_upper", "rank", "votes", "group", "note"} <= row.keys()
        # A bound is None where it is unbounded: a dozen votes leave a model one-sided in some resamples.
        lower = -float("inf") if row["ci_lower"] is None else row["ci_lower"]
        upper = float("inf") if row["ci_upper"] is None else row["ci_upper"]
        assert lower <= row["rating"] <= upper
    assert body["matrices"]["models"] == ["alpha", "bravo", "charlie"]
    assert len(body["matrices"]["win_fraction"]) == 3


def test_api_serves_an_older_snapshot_when_asked(client, small_arena):
    old = services.leaderboard_recompute(rounds=10, seed=0)
    rated_vote(small_arena[2], small_arena[0], Vote.Outcome.A)
    services.leaderboard_recompute(rounds=10, seed=0)
    body = client.get(f"/api/leaderboard?snapshot={old.pk}").json()
    assert body["snapshot"]["id"] == old.pk
    assert body["snapshot"]["vote_count"] == 12


@pytest.mark.parametrize("value", ["999", "abc", "-1"])
def test_api_answers_404_json_for_an_unknown_snapshot(client, small_arena, value):
    services.leaderboard_recompute(rounds=10, seed=0)
    response = client.get(f"/api/leaderboard?snapshot={value}")
    assert response.status_code == 404
    assert "snapshot" in response.json()["error"]


def test_api_method_elo_returns_elo_rows_even_with_a_snapshot(client, small_arena):
    services.leaderboard_recompute(rounds=10, seed=0)
    body = client.get("/api/leaderboard?method=elo").json()
    assert body["method"] == "elo"
    assert [r["name"] for r in body["models"]] == [r["name"] for r in body["online_elo"]]
    assert all(r["ci_lower"] is None for r in body["models"])
    assert client.get("/api/leaderboard?method=nope").status_code == 400


def test_csv_download_has_one_row_per_model(client, small_arena):
    snapshot = services.leaderboard_recompute(rounds=10, seed=0)
    response = client.get("/api/leaderboard.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert f"leaderboard-{snapshot.pk}.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["name"] for r in rows] == ["alpha", "bravo", "charlie"]
    assert list(rows[0]) == [
        "rank", "name", "rating", "ci_lower", "ci_upper", "votes", "provisional", "retired", "group", "note",
        "snapshot_id", "category",
    ]  # fmt: skip
    assert rows[0]["provisional"] == "True"  # a handful of votes, under the policy's 100
    assert {(r["snapshot_id"], r["category"]) for r in rows} == {(str(snapshot.pk), "overall")}


def test_page_shows_both_tables_charts_and_downloads(client, small_arena):
    snapshot = services.leaderboard_recompute(rounds=10, seed=0)
    html = client.get("/leaderboard").content.decode()
    assert 'data-testid="bt-table"' in html and 'data-testid="elo-table"' in html
    elo_rows = re.findall(r'<tr data-model="([^"]+)" data-votes="(\d+)" data-rating="[\d.]+">', html)
    assert sorted(elo_rows) == [("alpha", "8"), ("bravo", "8"), ("charlie", "8")]
    assert 'id="chart-ratings"' in html and 'id="chart-win_fraction"' in html and 'id="chart-predicted"' in html
    assert "/leaderboard/plotly.min.js" in html and "cdn" not in html.lower()
    assert f'<option value="{snapshot.pk}"' in html
    assert f'href="/api/leaderboard?snapshot={snapshot.pk}"' in html
    assert f'href="/api/leaderboard.csv?snapshot={snapshot.pk}"' in html


def chart_table(html: str, name: str) -> list[list[str]]:
    """The rows (header row first) of the table folded under the chart `name`."""
    block = html.split(f'data-testid="chart-data-{name}"')[1].split("</details>")[0]
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", block, re.S)]


def test_each_chart_has_its_figures_as_a_table_under_it(client, small_arena):
    """A chart is a picture to a screen reader (and its exact figures a hover away for anyone else)."""
    services.leaderboard_recompute(rounds=10, seed=0)
    html = client.get("/leaderboard").content.decode()
    payload = client.get("/api/leaderboard").json()
    matrices = payload["matrices"]
    header, *rows = chart_table(html, "win_fraction")
    assert header[0] == "Model A \\ Model B" and header[1:] == [r["name"] for r in payload["models"]]
    for row in rows:
        a = matrices["models"].index(row[0])
        for name, cell in zip(header[1:], row[1:], strict=True):
            value = matrices["win_fraction"][a][matrices["models"].index(name)]
            assert cell == ("–" if value is None else f"{value:.2f}"), (row[0], name)
    header, *rows = chart_table(html, "ratings")
    assert header == ["Model", "Rating", "95% interval"]
    shown = {r["name"]: (r["rating"], r["ci_lower"], r["ci_upper"]) for r in payload["models"]}
    for name, rating, interval in rows:
        middle, low, high = shown[name]
        assert rating == f"{middle:.1f}"
        assert interval == f"{'−∞' if low is None else f'{low:.1f}'} – {'+∞' if high is None else f'{high:.1f}'}"
    assert [row[0] for row in rows] == list(shown)
    for name in ("predicted", "battles", "average_win_rate"):
        assert len(chart_table(html, name)) == 1 + len(payload["models"]), name


def test_the_downloads_are_the_board_shown_even_after_a_recompute_and_say_which_board(client, three_models):
    """The page's JSON and CSV links asked for the newest board: a recompute between loading the page and
    downloading gave another snapshot than the one shown (and than its pinned pair counts), and every
    category's CSV had the same file name."""
    coding_arena(three_models)
    shown = services.leaderboard_recompute(rounds=10, seed=0, category_min_votes=10)
    page = client.get("/leaderboard?category=coding").content.decode()
    services.leaderboard_recompute(rounds=10, seed=1, category_min_votes=10)  # a newer one, after the page
    csv_url = re.search(r'href="(/api/leaderboard\.csv[^"]*)" data-testid="download-csv"', page)[1]
    json_url = re.search(r'href="(/api/leaderboard[^".]*)" data-testid="download-json"', page)[1]
    csv_url, json_url = (url.replace("&amp;", "&") for url in (csv_url, json_url))
    body = client.get(json_url).json()
    assert body["snapshot"]["id"] == shown.pk and body["category"] == "coding"
    response = client.get(csv_url)
    assert f'filename="leaderboard-{shown.pk}-coding.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["name"] for r in rows} == {"alpha", "bravo"}
    assert {(r["snapshot_id"], r["category"]) for r in rows} == {(str(shown.pk), "coding")}
    # The snapshot picker keeps the category tab.
    picker = page.split('class="lb-picker"')[1].split("</form>")[0]
    assert '<input type="hidden" name="category" value="coding">' in picker


def test_page_without_votes_says_so(client, db):
    response = client.get("/leaderboard")
    assert response.status_code == 200
    assert "No votes yet" in response.content.decode()


def test_page_for_an_unknown_snapshot_is_404(client, db):
    assert client.get("/leaderboard?snapshot=42").status_code == 404


def test_plotly_is_served_from_the_installed_package(client, db):
    response = client.get("/leaderboard/plotly.min.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript"
    assert b"plotly" in b"".join(response.streaming_content)[:2000].lower()


def test_page_shows_style_control_and_seat_advantage_reasons_while_votes_are_few(client, small_arena):
    services.leaderboard_recompute(rounds=10, seed=0)
    html = client.get("/leaderboard").content.decode()
    assert "Style-controlled ratings" in html and "Needs at least 200 rated arena votes" in html
    assert 'data-testid="position"' in html
    assert 'data-testid="ties"' in html and "both-bad" in html


def test_an_unchanged_board_answers_304_and_a_vote_or_a_new_snapshot_changes_its_etag(client, small_arena):
    alpha, bravo, _ = small_arena
    services.leaderboard_recompute(rounds=10, seed=0)
    for url in ("/api/leaderboard", "/leaderboard", "/api/leaderboard.csv"):
        first = client.get(url)
        assert first.status_code == 200 and first["ETag"] and first["Cache-Control"] == "no-cache"
        again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
        assert again.status_code == 304 and again.content == b""
        # No Last-Modified (a board's change has no one time; If-Modified-Since alone got 304 over a change).
        assert not first.has_header("Last-Modified")
        assert client.get(url, HTTP_IF_MODIFIED_SINCE="Fri, 01 Jan 2100 00:00:00 GMT").status_code == 200
    etag = client.get("/api/leaderboard")["ETag"]
    assert client.get("/api/leaderboard?method=elo")["ETag"] != etag  # the query is part of the version
    rated_vote(alpha, bravo, Vote.Outcome.B)
    after_vote = client.get("/api/leaderboard", HTTP_IF_NONE_MATCH=etag)
    assert after_vote.status_code == 200 and after_vote["ETag"] != etag
    services.leaderboard_recompute(rounds=10, seed=1)
    assert client.get("/api/leaderboard", HTTP_IF_NONE_MATCH=after_vote["ETag"]).status_code == 200


def test_a_vote_rated_with_an_older_stamp_than_the_newest_still_changes_the_board(client, small_arena):
    """Two rating workers: the one that stamped its Elo update first commits last. The newest stamp is
    unchanged, yet the board changed: its version must too, or the stale board stays cached and answers 304."""
    from django.db.models import F

    from ratings.models import EloRating

    alpha, bravo, _ = small_arena
    rated_vote(alpha, bravo, Vote.Outcome.B)
    first = client.get("/api/leaderboard?method=elo")
    newest = EloRating.objects.order_by("-updated").first().updated
    EloRating.objects.filter(model=alpha).update(rating=F("rating") + 5, votes=F("votes") + 1, updated=newest)
    again = client.get("/api/leaderboard?method=elo", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200 and again["ETag"] != first["ETag"]


def test_a_cached_board_is_built_once_per_version(client, small_arena, django_assert_max_num_queries):
    services.leaderboard_recompute(rounds=10, seed=0)
    client.get("/api/leaderboard")
    with django_assert_max_num_queries(5):  # the version check only: the payload comes from the cache
        assert client.get("/api/leaderboard").json()["snapshot"]


def test_parameters_the_board_does_not_read_neither_build_it_again_nor_keep_another_copy(
    client, small_arena, django_assert_max_num_queries
):
    """?x=1, ?x=2, ... were each a version of their own: a script could have every process build the page
    and keep a copy of it, thousands of times over."""
    services.leaderboard_recompute(rounds=10, seed=0)
    for url in ("/api/leaderboard?method=bradley-terry", "/leaderboard?method=bradley-terry"):
        first = client.get(url)
        for junk in range(3):
            with django_assert_max_num_queries(5):  # the version check only: built once, served from the cache
                again = client.get(f"{url}&x={junk}&utm_source=feed")
            assert again.status_code == 200 and again["ETag"] == first["ETag"]
    page = client.get("/leaderboard?utm_source=<feed>&method=elo").content.decode()
    assert "utm_source" not in page  # links on a shared page carry the board's parameters only


def test_spellings_of_one_board_and_parameters_a_page_ignores_keep_no_copies_of_their_own(
    client, small_arena, django_assert_max_num_queries
):
    """Board parameters went into the cache key as typed: ?snapshot=01, 001, ... or in other scripts' digits
    (which int() reads) were each a copy of the board, and on the history and model pages, which read none of
    them, any ?category= answered 200 with one more copy: an anonymous loop filled every process's memory."""
    from django.core.cache import cache

    snapshot = services.leaderboard_recompute(rounds=10, seed=0)
    pk = snapshot.pk
    first = client.get(f"/api/leaderboard?snapshot={pk}")
    for spelling in (f"0{pk}", f"00{pk}"):
        with django_assert_max_num_queries(5):  # the version check only: served from the cache
            again = client.get(f"/api/leaderboard?snapshot={spelling}")
        assert again.status_code == 200 and again["ETag"] == first["ETag"]
    # The online Elo reads no snapshot, and the defaults are the board without them: one copy each.
    elo = client.get("/api/leaderboard?method=elo")
    for spelling in ("method=elo&snapshot=1", "method=elo&snapshot=99999", "method=elo&category=overall"):
        with django_assert_max_num_queries(5):
            again = client.get(f"/api/leaderboard?{spelling}")
        assert again.status_code == 200 and again["ETag"] == elo["ETag"]
    default = client.get("/api/leaderboard")["ETag"]
    assert client.get("/api/leaderboard?method=bradley-terry&category=overall")["ETag"] == default
    arabic = "".join(chr(0x0660 + int(digit)) for digit in str(pk))
    assert client.get(f"/api/leaderboard?snapshot={arabic}").status_code == 404
    page = client.get(f"/leaderboard?snapshot=0{pk}").content.decode()
    assert f'<option value="{pk}" selected>' in page  # the picker shows the snapshot asked for
    for url in ("/leaderboard/history", "/leaderboard/model/alpha"):
        first = client.get(url)
        keys = len(cache._cache)
        for junk in range(3):
            again = client.get(f"{url}?category=made-up-{junk}&snapshot={junk}")
            assert again.status_code == 200 and again["ETag"] == first["ETag"]
        assert len(cache._cache) == keys


def test_the_api_serves_each_category_board_and_lists_them(client, three_models):
    alpha, bravo, charlie = three_models
    for i in range(12):
        rated_vote(alpha, bravo, prompt=f"Write Python code to sort list number {i}.")
        rated_vote(charlie, bravo, prompt=f"Tell me a story about day {i}.")
    services.leaderboard_recompute(rounds=10, seed=0, category_min_votes=10)
    body = client.get("/api/leaderboard?category=coding").json()
    assert body["category"] == "coding" and {r["name"] for r in body["models"]} == {"alpha", "bravo"}
    assert {"overall", "coding", "exclude_ties"} <= {c["name"] for c in body["categories"]}
    missing = client.get("/api/leaderboard?category=klingon")
    assert missing.status_code == 404 and "it has: overall" in missing.json()["error"]
    assert "coding" in client.get("/leaderboard?category=coding").content.decode()


def test_provisional_models_are_marked_and_can_be_hidden_from_the_page_and_retired_ones_are_marked(client, small_arena):
    from django.utils import timezone

    from inference.models import ArenaModel
    from ratings.models import LeaderboardPolicy

    services.leaderboard_recompute(rounds=10, seed=0)
    LeaderboardPolicy.objects.update_or_create(pk=1, defaults={"provisional_votes": 8})  # each has 8
    ArenaModel.objects.filter(name="charlie").update(retired_at=timezone.now())
    rows = {r["name"]: r for r in client.get("/api/leaderboard").json()["models"]}
    assert {name: (r["provisional"], r["retired"]) for name, r in rows.items()} == {
        "alpha": (False, False), "bravo": (False, False), "charlie": (False, True)}  # fmt: skip
    LeaderboardPolicy.objects.filter(pk=1).update(provisional_votes=9, hide_provisional=True)
    page = client.get("/leaderboard").content.decode()
    api = {r["name"]: r["provisional"] for r in client.get("/api/leaderboard").json()["models"]}
    assert api["charlie"] is True  # the API still lists it, marked
    assert 'data-model="charlie"' not in page.split('data-testid="elo-table"')[0]  # the page's board leaves it out


def coding_arena(three_models) -> None:
    """Twelve coding battles alpha vs bravo and twelve stories charlie vs bravo: enough for a coding board at 10.
    Bravo wins the first of each, so every model has a win and a loss: with only wins none would be rated."""
    alpha, bravo, charlie = three_models
    for i in range(12):
        outcome = Vote.Outcome.B if i == 0 else Vote.Outcome.A
        rated_vote(alpha, bravo, outcome, prompt=f"Write Python code to sort list number {i}.")
        rated_vote(charlie, bravo, outcome, prompt=f"Tell me a story about day {i}.")


def board_rows(html: str) -> dict[str, str]:
    """The main board's rows (before the online Elo table): model name -> the row's HTML."""
    board = html.split('data-testid="elo-table"')[0]
    return dict(re.findall(r'<tr data-model="([^"]+)"(.*?)</tr>', board, re.S))


def test_page_has_a_tab_per_category_that_keeps_the_chosen_snapshot(client, three_models):
    coding_arena(three_models)
    snapshot = services.leaderboard_recompute(rounds=10, seed=0, category_min_votes=10)
    html = client.get(f"/leaderboard?snapshot={snapshot.pk}").content.decode()
    tabs = html.split('data-testid="category-tabs"')[1].split("</nav>")[0]
    assert f'href="?snapshot={snapshot.pk}&amp;category=coding"' in tabs
    assert f'href="?snapshot={snapshot.pk}"\n     data-category="overall" class="current" aria-current="page"' in tabs
    assert '"?snapshot=' in tabs and "exclude ties" in tabs
    coding = client.get(f"/leaderboard?snapshot={snapshot.pk}&category=coding").content.decode()
    current = re.findall(r'data-category="([^"]+)" class="current"', coding)
    assert current == ["coding"]
    assert set(board_rows(coding)) == {"alpha", "bravo"}
    assert 'id="chart-battles"' in coding and 'id="chart-average_win_rate"' in coding
    assert client.get("/leaderboard?category=klingon").status_code == 404
    # A snapshot without a coding board (as one made before coding had enough votes), picked on the coding tab:
    # its overall board (was 404).
    without_coding = services.leaderboard_recompute(rounds=10, seed=1, category_min_votes=10_000)
    picked = client.get(f"/leaderboard?snapshot={without_coding.pk}&category=coding")
    assert picked.status_code == 302 and picked["Location"] == f"/leaderboard?snapshot={without_coding.pk}"
    assert client.get(picked["Location"]).status_code == 200


def test_a_category_board_says_how_it_was_made_and_leaves_out_what_was_fitted_on_every_vote(client, three_models):
    """A category tab said "over 24 battles" and the overall board's rounds (the overall count and settings),
    and showed the style-controlled table and the left-seat effect, fitted on every arena vote, under the
    category's name."""
    coding_arena(three_models)
    snapshot = services.leaderboard_recompute(rounds=10, seed=4, category_min_votes=10, anchor=("alpha", 1100.0))
    overall = client.get("/api/leaderboard").json()
    coding = client.get("/api/leaderboard?category=coding").json()
    assert overall["board"] == {"n_battles": 24, "intervals": "bootstrap", "rounds": 10, "seed": 4, "refit_steps": None,
                                "anchor": {"model": "alpha", "rating": 1100.0}}  # fmt: skip
    stored = snapshot.categories["coding"]
    assert coding["board"]["n_battles"] == stored["n_battles"] == 12
    assert coding["board"]["refit_steps"] == stored["refit_steps"] and coding["board"]["rounds"] == 10
    assert coding["style_controlled"] is None and coding["position"] is None
    assert overall["style_controlled"] is not None and overall["position"] is not None
    page = client.get("/leaderboard?category=coding").content.decode()
    info = page.split('data-testid="snapshot-info"')[1].split("</p>")[0]
    assert "over 12 battles" in " ".join(info.split()) and "anchored at alpha = 1100" in info
    assert "Style-controlled ratings" not in page and 'data-testid="position"' not in page


def test_page_marks_provisional_and_retired_rows_and_explains_the_marks(client, small_arena):
    from django.utils import timezone

    from inference.models import ArenaModel
    from ratings.models import LeaderboardPolicy

    services.leaderboard_recompute(rounds=10, seed=0)
    LeaderboardPolicy.objects.update_or_create(pk=1, defaults={"provisional_votes": 9})
    ArenaModel.objects.filter(name="charlie").update(retired_at=timezone.now())
    rows = board_rows(client.get("/leaderboard").content.decode())
    assert all('data-testid="badge-provisional"' in row for row in rows.values())  # 8 votes each, under 9
    assert ['data-testid="badge-retired"' in rows[name] for name in ("alpha", "bravo", "charlie")] == [
        False, False, True]  # fmt: skip
    html = client.get("/leaderboard").content.decode()
    assert "provisional</span>: fewer than 9 votes" in html
    LeaderboardPolicy.objects.filter(pk=1).update(provisional_votes=8)
    rows = board_rows(client.get("/leaderboard").content.decode())
    assert not any("badge-provisional" in row for row in rows.values())


def test_page_hides_provisional_rows_when_the_policy_says_and_says_how_many(client, small_arena):
    from ratings.models import LeaderboardPolicy

    alpha, bravo, charlie = small_arena
    rated_vote(alpha, bravo)  # alpha and bravo reach 9 votes, charlie stays at 8
    services.leaderboard_recompute(rounds=10, seed=0)
    LeaderboardPolicy.objects.update_or_create(pk=1, defaults={"provisional_votes": 9, "hide_provisional": True})
    html = client.get("/leaderboard").content.decode()
    assert set(board_rows(html)) == {"alpha", "bravo"}
    assert "1 provisional model not shown here" in html
    LeaderboardPolicy.objects.filter(pk=1).update(hide_provisional=False)
    html = client.get("/leaderboard").content.decode()
    assert set(board_rows(html)) == {"alpha", "bravo", "charlie"} and 'data-testid="hidden-provisional"' not in html


def test_page_says_how_many_votes_first_place_holds_against_and_lists_the_neighbours(client, small_arena):
    snapshot = services.leaderboard_recompute(rounds=10, seed=0)
    robustness = snapshot.extras["robustness"]
    html = client.get("/leaderboard").content.decode()
    line = html.split('data-testid="robustness"')[1].split("</div>")[0]
    first = robustness["first_place"]
    assert f"#1 alpha (lead {first['margin_elo']:.1f} Elo points) holds unless {first['votes_removed']} votes" in line
    adjacent = line.split('data-testid="robustness-adjacent"')[1]
    assert [s for s in re.findall(r"<li>(.*?)</li>", adjacent)] == [
        flip["sentence"].replace("'", "&#x27;") for flip in robustness["adjacent"]]  # fmt: skip
    assert len(robustness["adjacent"]) == 2
    assert 'data-testid="robustness"' not in client.get("/leaderboard?category=exclude_ties").content.decode()


def test_page_links_every_model_the_snapshot_pair_counts_and_the_about_page(client, db):
    from tests.factories import make_model

    odd, other = make_model("org/Model 7B (v2)?"), make_model("plain")
    for _ in range(3):
        rated_vote(odd, other)
    rated_vote(other, odd)
    snapshot = services.leaderboard_recompute(rounds=10, seed=0)
    html = client.get("/leaderboard").content.decode()
    assert 'href="/leaderboard/model/org/Model%207B%20(v2)%3F"' in html
    assert f'href="/api/leaderboard/{snapshot.pk}/pair_counts.json" data-testid="download-inputs"' in html
    assert f'title="sha256 {snapshot.inputs.sha256}"' in html
    assert 'href="/leaderboard/about"' in html
    page = client.get("/leaderboard/model/org/Model%207B%20(v2)%3F")
    assert page.status_code == 200 and '<h1 data-testid="model-name">org/Model 7B (v2)?</h1>' in page.content.decode()


def page_figures(html: str) -> dict:
    return json.loads(re.search(r'<script id="figures" type="application/json">(.*?)</script>', html).group(1))


def history_trace(html: str) -> dict:
    [trace] = page_figures(html)["history"]["data"]
    return trace


def test_model_page_shows_registry_status_ratings_per_board_head_to_head_and_history(client, three_models):
    from inference.models import ArenaModel

    coding_arena(three_models)
    ArenaModel.objects.filter(name="alpha").update(organization="Alpha Labs", license="Apache-2.0")
    services.leaderboard_recompute(rounds=10, seed=0, category_min_votes=10)
    assert len(history_trace(client.get("/leaderboard/model/alpha").content.decode())["x"]) == 1
    rated_vote(three_models[0], three_models[2], prompt="Write Python code to add two numbers.")
    snapshot = services.leaderboard_recompute(rounds=10, seed=1, category_min_votes=10)
    html = client.get("/leaderboard/model/alpha").content.decode()
    assert "Alpha Labs" in html and "Apache-2.0" in html
    assert 'class="badge badge-live">live</span><span class="badge badge-provisional">provisional' in html
    overall = next(r for r in snapshot.rows if r["name"] == "alpha")
    # An unbounded end (one-sided in enough of the ten resamples) is shown as an infinity.
    lower = "−∞" if overall["ci_lower"] is None else f"{overall['ci_lower']:.1f}"
    upper = "+∞" if overall["ci_upper"] is None else f"{overall['ci_upper']:.1f}"
    assert f"{overall['rating']:.1f} (95% CI {lower} – {upper})" in html
    boards = re.findall(r'<tr data-category="([^"]+)">', html.split('data-testid="model-boards"')[1])
    assert boards == ["overall", *(c for c in snapshot.categories if any(
        r["name"] == "alpha" for r in snapshot.categories[c]["models"]))]  # fmt: skip
    assert "coding" in boards
    head = html.split('data-testid="head-to-head"')[1]
    cells = re.findall(r'<tr data-opponent="bravo">.*?</tr>', head, re.S)[0]
    assert re.findall(r'<td class="num">([^<]+)</td>', cells)[:5] == ["12", "11", "1", "0", "0"]
    assert re.findall(r'data-opponent="([^"]+)"', head) == ["bravo", "charlie"]  # most battles first
    trace = history_trace(html)
    assert trace["name"] == "snapshots" and len(trace["x"]) == 2  # the new snapshot is in, not a cached series


def test_model_page_for_an_unknown_model_is_404(client, small_arena):
    assert client.get("/leaderboard/model/nobody").status_code == 404
    assert client.get("/leaderboard/model/").status_code == 404
    # PostgreSQL refuses a NUL in text: a name with one was a 500 there (SQLite answered 404).
    assert client.get("/leaderboard/model/%00").status_code == 404
    assert client.get("/leaderboard/model/al%00pha").status_code == 404


def test_model_page_answers_304_until_the_model_or_its_history_changes(client, small_arena):
    from django.utils import timezone

    from inference.models import ArenaModel
    from ratings.models import RatingHistory

    services.leaderboard_recompute(rounds=10, seed=0)
    first = client.get("/leaderboard/model/alpha")
    assert client.get("/leaderboard/model/alpha", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    ArenaModel.objects.filter(name="alpha").update(organization="Renamed Org")
    changed = client.get("/leaderboard/model/alpha", HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and "Renamed Org" in changed.content.decode()
    RatingHistory.objects.create(source="log.json", cutoff=timezone.now(), model_name="alpha", rating=1000.0,
                                 rank=1, votes=5)  # fmt: skip
    replayed = client.get("/leaderboard/model/alpha", HTTP_IF_NONE_MATCH=changed["ETag"])
    assert replayed.status_code == 200 and "replay: log.json" in replayed.content.decode()


def test_about_page_explains_with_the_live_threshold_and_plan(client, small_arena):
    from ratings.models import LeaderboardPolicy

    services.leaderboard_recompute(rounds=10, seed=0)
    html = client.get("/leaderboard/about").content.decode()
    assert '<strong data-testid="provisional-threshold">100</strong>' in html
    shares = dict(re.findall(r'<tr data-share="(\w+)"><td>[^<]+</td><td class="num">(\d+)%</td>', html))
    assert shares["exploration"] == "10" and shares["boost"] == "0"
    assert "Bradley–Terry" in html and "10 times (seed 0" in html and "alpha" in html.split("about-robustness")[1]
    LeaderboardPolicy.objects.filter(pk=1).update(provisional_votes=7, exploration_share=0.3)
    rated_vote(small_arena[0], small_arena[1])  # new votes, so the recompute makes a new snapshot and plan
    services.leaderboard_recompute(rounds=10, seed=0)
    html = client.get("/leaderboard/about").content.decode()
    assert '<strong data-testid="provisional-threshold">7</strong>' in html
    shares = dict(re.findall(r'<tr data-share="(\w+)"><td>[^<]+</td><td class="num">(\d+)%</td>', html))
    assert shares["exploration"] == "30"
    assert 'href="/leaderboard/about"' in client.get("/").content.decode()  # in the site's navigation


def test_about_page_before_any_snapshot_still_explains(client, db):
    html = client.get("/leaderboard/about").content.decode()
    assert "No snapshot has been computed yet" in html and "No plan yet" in html


def test_page_api_and_csv_mark_the_same_models_provisional_and_retired(client, three_models):
    from django.utils import timezone

    from inference.models import ArenaModel
    from ratings.models import LeaderboardPolicy

    coding_arena(three_models)
    services.leaderboard_recompute(rounds=10, seed=0, category_min_votes=10)
    LeaderboardPolicy.objects.update_or_create(pk=1, defaults={"provisional_votes": 13})  # bravo has 24
    ArenaModel.objects.filter(name="alpha").update(retired_at=timezone.now())
    # Provisional is judged on each board's own votes: bravo has 24 overall but 12 in coding.
    for query, bravo in (("", (False, False)), ("?category=coding", (True, False))):
        api = {
            r["name"]: (r["provisional"], r["retired"]) for r in client.get(f"/api/leaderboard{query}").json()["models"]
        }
        rows = csv.DictReader(io.StringIO(client.get(f"/api/leaderboard.csv{query}").content.decode()))
        from_csv = {r["name"]: (r["provisional"] == "True", r["retired"] == "True") for r in rows}
        page = {name: ("badge-provisional" in row, "badge-retired" in row)
                for name, row in board_rows(client.get(f"/leaderboard{query}").content.decode()).items()}  # fmt: skip
        assert api == from_csv == page
        assert api["alpha"] == (True, True) and api["bravo"] == bravo


def test_history_page_shows_the_top_models_over_snapshots_and_each_replay(client, small_arena, tmp_path):
    from datetime import UTC, datetime

    from ratings.models import RatingHistory

    services.leaderboard_recompute(rounds=10, seed=0)
    etag = client.get("/leaderboard/history")["ETag"]
    RatingHistory.objects.bulk_create([
        RatingHistory(source="old.json", cutoff=datetime(2024, m, 1, tzinfo=UTC), model_name=name, rating=r + m,
                      rank=1, votes=10)
        for m in (1, 2) for name, r in (("x", 1000.0), ("y", 990.0))
    ])  # fmt: skip
    response = client.get("/leaderboard/history", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="chart-snapshots"' in html and 'id="chart-replay-1"' in html and "old.json" in html
    figures = page_figures(html)
    assert [t["name"] for t in figures["replay-1"]["data"]] == ["x", "y"]
    assert [t["name"] for t in figures["snapshots"]["data"]] == ["alpha", "bravo", "charlie"]
    assert chart_table(html, "replay-1") == [["Time", "x", "y"], ["2024-01-01 00:00", "1001.0", "991.0"],
                                             ["2024-02-01 00:00", "1002.0", "992.0"]]  # fmt: skip
    assert chart_table(html, "snapshots")[0][:2] == ["Time", "alpha"]


def test_page_api_and_csv_show_a_model_with_only_wins_as_not_rated_with_the_note(client, small_arena):
    from tests.factories import make_model

    delta = make_model("delta")
    rated_vote(delta, small_arena[0], Vote.Outcome.A)
    rated_vote(small_arena[1], delta, Vote.Outcome.B)
    services.leaderboard_recompute(rounds=10, seed=0)
    body = client.get("/api/leaderboard").json()
    row = body["models"][-1]
    assert (row["name"], row["rating"], row["rank"], row["ci_lower"], row["votes"]) == ("delta", None, None, None, 2)
    assert "only wins so far (2 battles)" in row["note"]
    assert body["not_rated"] == ["delta"] and "1 model is not rated yet" in body["note"]
    assert [r["name"] for r in body["models"][:3]] == ["alpha", "bravo", "charlie"]
    assert all(isinstance(r["rank"], int) and r["group"] == 1 for r in body["models"][:3])
    html = client.get("/leaderboard").content.decode()
    assert body["note"] in html.split('data-testid="board-note">')[1]
    delta_row = board_rows(html)["delta"]
    assert "data-not-rated" in delta_row and "not rated yet" in delta_row and "only wins so far" in delta_row
    assert '<td class="num">–</td>' in delta_row  # no rank
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(client.get("/api/leaderboard.csv").content.decode()))}
    assert rows["delta"]["rating"] == "" and rows["delta"]["rank"] == "" and "only wins" in rows["delta"]["note"]
    assert rows["alpha"]["group"] == "1"
    model_page = client.get("/leaderboard/model/delta").content.decode()
    assert "not rated yet" in model_page.split('data-testid="model-rating"')[1].split("</dd>")[0]


def test_page_shows_groups_that_never_met_apart_with_ranks_within_each(client, small_arena):
    from tests.factories import make_model

    delta, echo = make_model("delta"), make_model("echo")
    for outcome in (Vote.Outcome.A, Vote.Outcome.A, Vote.Outcome.B, Vote.Outcome.TIE):
        rated_vote(delta, echo, outcome)
    services.leaderboard_recompute(rounds=10, seed=0)
    body = client.get("/api/leaderboard").json()
    assert [(r["name"], r["group"]) for r in body["models"]][3:] == [("delta", 2), ("echo", 2)]
    assert body["models"][3]["rank"] == 1 and "2 groups that have never met" in body["note"]
    html = client.get("/leaderboard").content.decode()
    headings = re.findall(r'data-testid="group-heading"><th colspan="5">([^<:]+)', html)
    assert headings == ["Group 1 (most battles)", "Group 2"]
    assert 'data-model="delta" data-group="2"' in html
