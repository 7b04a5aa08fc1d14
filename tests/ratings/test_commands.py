import io
import json

import pytest
from django.core.management import CommandError, call_command

from battles.models import Vote
from inference.models import ArenaModel
from ratings.models import LeaderboardSnapshot, PairCount
from tests.ratings.conftest import ANCHOR, REAL_PAIR_COUNTS, rated_vote

ANCHOR_ARG = f"{ANCHOR[0]}={ANCHOR[1]:g}"


def run(*args) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def ratings_of(path) -> dict[str, float]:
    return {row["name"]: row["rating"] for row in json.loads(path.read_text())["models"]}


def test_leaderboard_from_the_real_pair_counts(db, tmp_path):
    out = tmp_path / "board.json"
    printed = run("leaderboard", "--pair-counts", str(REAL_PAIR_COUNTS), "--rounds", "20", "--seed", "1",
                  "--anchor", ANCHOR_ARG, "--json", str(out))  # fmt: skip
    board = json.loads(out.read_text())
    rows = board["models"]
    assert len(rows) == 129
    assert {"name", "rating", "ci_lower", "ci_upper", "rank", "votes"} <= rows[0].keys()
    assert rows[0]["name"] == "chatgpt-4o-latest" and rows[0]["rank"] == 1
    assert ratings_of(out)[ANCHOR[0]] == pytest.approx(1114.0)
    assert sum(row["votes"] for row in rows) == 2 * 1_670_250
    assert all(row["ci_lower"] <= row["rating"] <= row["ci_upper"] for row in rows)
    assert "chatgpt-4o-latest" in printed and "129 models" in printed


def test_leaderboard_from_the_database_matches_the_file_it_was_imported_from(db, tmp_path):
    run("import_battles", str(REAL_PAIR_COUNTS))
    from_db, from_file = tmp_path / "db.json", tmp_path / "file.json"
    run("leaderboard", "--no-bootstrap", "--anchor", ANCHOR_ARG, "--json", str(from_db))
    run("leaderboard", "--pair-counts", str(REAL_PAIR_COUNTS), "--no-bootstrap", "--anchor", ANCHOR_ARG,
        "--json", str(from_file))  # fmt: skip
    db_ratings, file_ratings = ratings_of(from_db), ratings_of(from_file)
    assert db_ratings.keys() == file_ratings.keys()
    assert all(db_ratings[name] == pytest.approx(file_ratings[name], abs=1e-6) for name in db_ratings)


def test_leaderboard_save_stores_a_snapshot(small_arena):
    printed = run("leaderboard", "--rounds", "10", "--save")
    snapshot = LeaderboardSnapshot.objects.get()
    assert f"Saved snapshot #{snapshot.pk}" in printed
    assert [row["name"] for row in snapshot.rows] == ["alpha", "bravo", "charlie"]


@pytest.mark.parametrize("anchor", ["no-equals-sign", "name=abc", "=1000"])
def test_leaderboard_rejects_a_malformed_anchor(db, anchor):
    with pytest.raises(CommandError, match="NAME=RATING"):
        run("leaderboard", "--pair-counts", str(REAL_PAIR_COUNTS), "--anchor", anchor)


def test_leaderboard_rejects_an_anchor_that_is_not_a_model(db):
    with pytest.raises(CommandError, match="anchor model"):
        run("leaderboard", "--pair-counts", str(REAL_PAIR_COUNTS), "--no-bootstrap", "--anchor", "nobody=1000")


def test_leaderboard_on_an_empty_database_says_there_is_nothing(db):
    with pytest.raises(CommandError, match="No battles"):
        run("leaderboard", "--rounds", "10")


def test_leaderboard_refuses_a_file_of_the_wrong_format(db):
    with pytest.raises(CommandError, match="pair_counts, not clean_battle"):
        run("leaderboard", "--battles", str(REAL_PAIR_COUNTS))


def test_import_battles_loads_pair_counts_and_refuses_a_second_import(db):
    printed = run("import_battles", str(REAL_PAIR_COUNTS))
    assert "1,670,250 battles between 129 models" in printed
    with pytest.raises(CommandError, match="already imported"):
        run("import_battles", str(REAL_PAIR_COUNTS), "--format", "pair_counts")
    assert sum(PairCount.objects.values_list("b_wins", flat=True)) == 498_305
    assert ArenaModel.objects.filter(is_historical=True).count() == 129


def test_import_battles_rejects_a_file_that_is_no_battle_log(db, tmp_path):
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    with pytest.raises(CommandError, match="Not a FastChat"):
        run("import_battles", str(junk))
    assert not PairCount.objects.exists()


def test_export_then_leaderboard_from_the_log_matches_the_database(small_arena, tmp_path):
    alpha, bravo, charlie = small_arena
    rated_vote(bravo, charlie, Vote.Outcome.B)
    log, from_log, from_db = tmp_path / "battles.json", tmp_path / "log.json", tmp_path / "db.json"
    assert "Wrote 13 battles" in run("export_battles", str(log))
    records = json.loads(log.read_text())
    assert {r["winner"] for r in records} == {"model_a", "model_b", "tie", "tie (bothbad)"}
    assert all(r["anony"] is True and r["judge"] and r["turn"] == 1 for r in records)
    assert records[0]["conv_metadata"]["sum_assistant_a_tokens"] == 3  # FastChat's style metadata
    run("leaderboard", "--battles", str(log), "--rounds", "20", "--seed", "4", "--json", str(from_log))
    run("leaderboard", "--rounds", "20", "--seed", "4", "--json", str(from_db))
    assert json.loads(from_log.read_text())["models"] == json.loads(from_db.read_text())["models"]


def test_exported_log_imports_into_a_fresh_arena(small_arena, tmp_path):
    log = tmp_path / "battles.json"
    run("export_battles", str(log))
    PairCount.objects.all().delete()
    run("import_battles", str(log))
    assert sum(sum(r) for r in PairCount.objects.values_list("a_wins", "b_wins", "ties", "both_bad")) == 12


def test_an_interrupted_export_leaves_no_file(tmp_path):
    from ratings.battle_logs import write_clean_battles

    def records():
        yield {"model_a": "x", "model_b": "y", "winner": "tie"}
        raise KeyboardInterrupt

    out = tmp_path / "battles.json"
    with pytest.raises(KeyboardInterrupt):
        write_clean_battles(records(), out)
    assert list(tmp_path.iterdir()) == []
