import csv
import io
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
        {"name": "alpha", "rating": pytest.approx(1002.0), "votes": 1, "ci_lower": None, "ci_upper": None, "rank": 1},
        {"name": "bravo", "rating": pytest.approx(998.0), "votes": 1, "ci_lower": None, "ci_upper": None, "rank": 2},
    ]
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
        assert {"name", "rating", "ci_lower", "ci_upper", "rank", "votes"} <= row.keys()
        assert row["ci_lower"] <= row["rating"] <= row["ci_upper"]
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
    assert list(rows[0]) == ["rank", "name", "rating", "ci_lower", "ci_upper", "votes"]


def test_page_shows_both_tables_charts_and_downloads(client, small_arena):
    snapshot = services.leaderboard_recompute(rounds=10, seed=0)
    html = client.get("/leaderboard").content.decode()
    assert 'data-testid="bt-table"' in html and 'data-testid="elo-table"' in html
    elo_rows = re.findall(r'<tr data-model="([^"]+)" data-votes="(\d+)" data-rating="[\d.]+">', html)
    assert sorted(elo_rows) == [("alpha", "8"), ("bravo", "8"), ("charlie", "8")]
    assert 'id="chart-ratings"' in html and 'id="chart-win_fraction"' in html and 'id="chart-predicted"' in html
    assert "/leaderboard/plotly.min.js" in html and "cdn" not in html.lower()
    assert f'<option value="{snapshot.pk}"' in html
    assert 'href="/api/leaderboard"' in html and 'href="/api/leaderboard.csv"' in html


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
