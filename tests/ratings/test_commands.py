import io
import json

import pytest
from django.core.management import CommandError, call_command

from battles.models import Vote
from inference.models import ArenaModel
from ratings import services
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


def test_an_export_says_how_many_votes_it_left_out_and_why(small_arena, tmp_path):
    from battles.services import visitor_hash
    from ratings.services import judge_flag
    from tests.factories import make_battle, make_vote

    alpha, bravo, _ = small_arena
    rated_vote(alpha, bravo, owner="stuffer")
    judge_flag(judge_hash=visitor_hash("stuffer"), reason="test")
    leaked = make_vote(make_battle(model_a=alpha, model_b=bravo))
    Vote.objects.filter(pk=leaked.pk).update(excluded_reason="An answer named its model.")
    make_vote(make_battle(model_a=alpha, model_b=bravo))  # its rating task still to come
    said = run("export_battles", str(tmp_path / "battles.json"))
    assert "Wrote 12 battles" in said
    assert "Left out: 1 not blind, 1 of flagged judges, 1 not rated yet" in said


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


def test_a_snapshots_downloaded_pair_counts_reproduce_its_board_and_its_category_boards(client, three_models, tmp_path):
    import hashlib

    alpha, bravo, charlie = three_models
    for i in range(12):
        rated_vote(alpha, bravo, prompt=f"Write Python code to sort list number {i}.")
        rated_vote(bravo, charlie, Vote.Outcome.B, prompt=f"Tell me a story about day {i}.")
        rated_vote(charlie, alpha, Vote.Outcome.TIE, prompt=f"Another story, number {i}.")
    snapshot = services.leaderboard_recompute(rounds=30, seed=5, category_min_votes=10)
    download = client.get(snapshot_meta_url := f"/api/leaderboard/{snapshot.pk}/pair_counts.json")
    assert download.status_code == 200
    sha256 = hashlib.sha256(download.content).hexdigest()
    assert download["X-Content-SHA256"] == sha256 == snapshot.inputs.sha256
    assert client.get("/api/leaderboard").json()["snapshot"]["inputs_url"] == snapshot_meta_url
    counts = tmp_path / "pair_counts.json"
    counts.write_bytes(download.content)
    overall, coding = tmp_path / "overall.json", tmp_path / "coding.json"
    run("leaderboard", "--pair-counts", str(counts), "--rounds", "30", "--seed", "5", "--json", str(overall))
    assert json.loads(overall.read_text())["models"] == snapshot.rows
    # The snapshot's tie rates and the robustness of its top, from the same download.
    extras = tmp_path / "extras.json"
    run("leaderboard", "--pair-counts", str(counts), "--rounds", "30", "--seed", "5", "--ties",
        "--robustness", str(snapshot.params["top_k"]), "--json", str(extras))  # fmt: skip
    derived = json.loads(extras.read_text())
    assert derived["ties"] == snapshot.extras["ties"] and derived["ties"]["models"]
    without_timing = {key: value for key, value in snapshot.extras["robustness"].items() if key != "compute_seconds"}
    assert derived["robustness"] == without_timing
    run("leaderboard", "--pair-counts", str(counts), "--rounds", "30", "--seed", "5", "--category", "coding",
        "--category-min-votes", "10", "--json", str(coding))  # fmt: skip
    assert json.loads(coding.read_text())["models"] == snapshot.categories["coding"]["models"]


def test_a_snapshots_downloaded_arena_votes_reproduce_its_style_board_and_left_seat_effect(client, three_models,
                                                                                          tmp_path):  # fmt: skip
    """The style-controlled board and the left-seat effect are fitted on per-vote rows, which no download held:
    a researcher could not re-derive them."""
    import hashlib

    import numpy as np

    from ratings.models import RatedVote

    alpha, bravo, charlie = three_models
    outcomes = [Vote.Outcome.A, Vote.Outcome.B, Vote.Outcome.A, Vote.Outcome.TIE]
    for i in range(60):
        pair = [(alpha, bravo), (bravo, charlie), (charlie, alpha)][i % 3]
        rated_vote(*pair, outcomes[i % 4])
    rng = np.random.default_rng(7)  # answers of many lengths and layouts, for the style fit to have something
    for vote_id in RatedVote.objects.values_list("vote_id", flat=True):
        counts = rng.integers(0, 40, size=8).tolist()
        RatedVote.objects.filter(vote_id=vote_id).update(
            tokens_a=counts[0] * 10, headers_a=counts[1] % 4, lists_a=counts[2] % 6, bold_a=counts[3] % 5,
            tokens_b=counts[4] * 10, headers_b=counts[5] % 4, lists_b=counts[6] % 6, bold_b=counts[7] % 5,
        )  # fmt: skip
    snapshot = services.leaderboard_recompute(rounds=30, seed=5, style_min_votes=10)
    assert snapshot.style_rows["models"] and not snapshot.extras["position"]["reason"]  # both were fitted
    meta = client.get("/api/leaderboard").json()["snapshot"]
    assert (
        f'href="{meta["arena_votes_url"]}" data-testid="download-arena-votes"'
        in client.get("/leaderboard").content.decode()
    )
    download = client.get(meta["arena_votes_url"])
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == download["X-Content-SHA256"] == meta["arena_votes_sha256"]
    # A client that has it is answered 304, the stored votes not read again.
    assert client.get(meta["arena_votes_url"], HTTP_IF_NONE_MATCH=download["ETag"]).status_code == 304
    assert download["ETag"] == f'"{meta["arena_votes_sha256"]}"'
    votes = json.loads(download.content)
    assert set(votes) == {"models", "model_a", "model_b", "outcome", "style_a", "style_b"}  # numbers only
    path, out = tmp_path / "arena_votes.json", tmp_path / "style.json"
    path.write_bytes(download.content)
    printed = run("leaderboard", "--arena-votes", str(path), "--rounds", "30", "--seed", "5", "--style-min-votes",
                  "10", "--json", str(out))  # fmt: skip
    derived = json.loads(out.read_text())
    assert derived["models"] == snapshot.style_rows["models"] and derived["style"] == snapshot.style_rows["style"]
    assert derived["position"] == snapshot.extras["position"]
    assert "Left-seat advantage:" in printed


def test_arena_votes_that_are_not_say_so_plainly(db, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": ["a", "b"], "model_a": [0, 5], "model_b": [1, 0], "outcome": [0, 1], '
                   '"style_a": {"tokens": [1, 2], "headers": [0, 0], "lists": [0, 0], "bold": [0, 0]}, '
                   '"style_b": {"tokens": [1, 2], "headers": [0, 0], "lists": [0, 0], "bold": [0, 0]}}')  # fmt: skip
    with pytest.raises(CommandError, match="model index outside the model list"):
        run("leaderboard", "--arena-votes", str(bad))
    with pytest.raises(CommandError, match="Can't read"):
        run("leaderboard", "--arena-votes", str(tmp_path / "missing.json"))


def test_the_overall_board_asked_for_as_a_category_is_the_snapshots_exact_board(db, tmp_path):
    """`--category overall` gave the shared bootstrap's approximate overall board (two refit steps a round, the
    one that comes with the categories), not the exact one a snapshot shows, which the same file without
    --category gives."""
    from ratings.engine.categories import canonical_json, labelled_counts_json
    from tests.ratings.engine.test_categories import labelled_arena

    counts = tmp_path / "pair_counts.json"
    counts.write_text(canonical_json(labelled_counts_json(labelled_arena(6_000)[0])))
    exact, named = tmp_path / "exact.json", tmp_path / "named.json"
    run("leaderboard", "--pair-counts", str(counts), "--rounds", "50", "--seed", "5", "--json", str(exact))
    run("leaderboard", "--pair-counts", str(counts), "--rounds", "50", "--seed", "5", "--category", "overall",
        "--json", str(named))  # fmt: skip
    assert json.loads(named.read_text())["models"] == json.loads(exact.read_text())["models"]


def timestamped_log(path, *, n_battles: int = 3000, seed: int = 0, months: int = 4) -> list[dict]:
    """A clean_battle log of simulated battles spread over `months` months from 10 January 2024; model "late"
    only appears in the second half, and a few records are skipped (named battle, no timestamp)."""
    from datetime import UTC, datetime

    import numpy as np

    from ratings.engine.counts import WINNER_CODES
    from ratings.engine.simulate import simulate_battles

    names = ["m-strong", "m-mid", "m-weak", "late"]
    model_a, model_b, outcome = simulate_battles(np.array([1150.0, 1050.0, 950.0, 1100.0]), n_battles, seed=seed)
    start = datetime(2024, 1, 10, tzinfo=UTC).timestamp()
    span = months * 30 * 86_400.0
    tstamp = start + np.random.default_rng(seed).uniform(0, span, n_battles)
    late = (model_a == 3) | (model_b == 3)
    tstamp[late] = np.maximum(tstamp[late], start + span / 2)
    winner = {code: name for name, code in WINNER_CODES.items()}
    records = [
        {"model_a": names[a], "model_b": names[b], "winner": winner[o], "tstamp": float(t), "anony": True}
        for a, b, o, t in zip(model_a.tolist(), model_b.tolist(), outcome.tolist(), tstamp.tolist(), strict=True)
    ]
    skipped = [{**records[0], "anony": False}, {k: v for k, v in records[1].items() if k != "tstamp"}]
    path.write_text(json.dumps(records + skipped))
    return records


def test_leaderboard_history_replays_monthly_boards_whose_last_is_the_board_of_all_battles(db, tmp_path):
    from ratings.engine.counts import counts_from_clean_battles
    from ratings.engine.leaderboard import compute_leaderboard
    from ratings.models import RatingHistory

    log = tmp_path / "clean_battle.json"
    records = timestamped_log(log)
    printed = run("leaderboard_history", "--battles", str(log))
    assert "Stored 5 monthly boards" in printed and "'clean_battle.json'" in printed and "2 records left out" in printed
    cutoffs = sorted(set(RatingHistory.objects.values_list("cutoff", flat=True)))
    assert [(c.year, c.month, c.day) for c in cutoffs] == [(2024, m, 1) for m in (2, 3, 4, 5, 6)]
    assert not RatingHistory.objects.filter(cutoff=cutoffs[0], model_name="late").exists()  # not in the arena yet
    last = RatingHistory.objects.filter(cutoff=cutoffs[-1]).order_by("-rating")
    plain = compute_leaderboard(counts_from_clean_battles(records), bootstrap=False)["models"]
    fields = ("name", "rating", "ci_lower", "ci_upper", "rank", "votes")
    assert [dict(zip(fields, r, strict=True)) for r in last.values_list("model_name", *fields[1:])] == [
        {key: row[key] for key in fields} for row in plain
    ]
    assert not LeaderboardSnapshot.objects.exists()  # a replay never becomes the served board


def test_leaderboard_history_replaces_its_own_source_and_keeps_others(db, tmp_path):
    from ratings.models import RatingHistory

    log = tmp_path / "battles.json"
    timestamped_log(log)
    run("leaderboard_history", "--battles", str(log), "--source", "other")
    run("leaderboard_history", "--battles", str(log))
    first = set(RatingHistory.objects.filter(source="battles.json").values_list("pk", flat=True))
    timestamped_log(log, seed=1, months=2)
    run("leaderboard_history", "--battles", str(log))
    again = RatingHistory.objects.filter(source="battles.json")
    assert first.isdisjoint(again.values_list("pk", flat=True))
    assert again.values("cutoff").distinct().count() == 3  # two months of battles now, not five
    assert RatingHistory.objects.filter(source="other").values("cutoff").distinct().count() == 5


def test_leaderboard_history_anchors_every_board(db, tmp_path):
    from ratings.models import RatingHistory

    log = tmp_path / "battles.json"
    timestamped_log(log)
    run("leaderboard_history", "--battles", str(log), "--anchor", "m-mid=1100")
    assert set(RatingHistory.objects.filter(model_name="m-mid").values_list("rating", flat=True)) == {1100.0}


def test_leaderboard_history_refuses_a_log_without_times_or_an_unknown_anchor(db, tmp_path):
    log = tmp_path / "battles.json"
    log.write_text(json.dumps([{"model_a": "x", "model_b": "y", "winner": "tie"}]))
    with pytest.raises(CommandError, match="tstamp"):
        run("leaderboard_history", "--battles", str(log))
    timestamped_log(log)
    with pytest.raises(CommandError, match="anchor model 'nobody'"):
        run("leaderboard_history", "--battles", str(log), "--anchor", "nobody=1000")
    with pytest.raises(CommandError, match="pair counts"):
        run("leaderboard_history", "--battles", str(REAL_PAIR_COUNTS))


@pytest.mark.parametrize("where", ["missing", "a directory"])
def test_import_battles_says_plainly_when_the_file_is_missing_or_a_directory(db, tmp_path, where):
    path = tmp_path / "missing.json" if where == "missing" else tmp_path
    with pytest.raises(CommandError, match=f"Can't read {path}: (No such file or directory|Is a directory)"):
        run("import_battles", str(path))


def test_a_category_board_says_plainly_when_its_pair_counts_file_is_missing_or_a_battle_log(db, tmp_path):
    with pytest.raises(CommandError, match="Can't read .*missing.json"):
        run("leaderboard", "--category", "coding", "--pair-counts", str(tmp_path / "missing.json"))
    battles = tmp_path / "battles.json"
    battles.write_text(json.dumps([{"model_a": "x", "model_b": "y", "winner": "tie"}]))
    with pytest.raises(CommandError, match="looks like clean_battle; categories need pair counts"):
        run("leaderboard", "--category", "coding", "--pair-counts", str(battles))


def test_export_battles_says_plainly_when_the_directory_does_not_exist(db, tmp_path):
    with pytest.raises(CommandError, match="Can't write .*out.json: No such file or directory"):
        run("export_battles", str(tmp_path / "no" / "dir" / "out.json"))


def test_leaderboard_refuses_a_json_path_it_cannot_write_before_computing_anything(db, tmp_path):
    # An empty database would say "No battles" once computing; the path is refused first.
    with pytest.raises(CommandError, match="Can't write .*x.json: there is no directory"):
        run("leaderboard", "--rounds", "10", "--json", str(tmp_path / "no" / "dir" / "x.json"))
    with pytest.raises(CommandError, match="it is a directory"):
        run("leaderboard", "--rounds", "10", "--json", str(tmp_path))


def test_leaderboard_history_stores_no_point_for_a_model_while_it_is_not_rated(db, tmp_path):
    from datetime import UTC, datetime

    from ratings.models import RatingHistory

    log = tmp_path / "battles.json"
    records = timestamped_log(log)
    # "newbie" wins its two January battles and loses one in March: no rating exists before March.
    january, march = (datetime(2024, month, 20, tzinfo=UTC).timestamp() for month in (1, 3))
    newbie = [
        {"model_a": "newbie", "model_b": "m-strong", "winner": "model_a", "tstamp": january, "anony": True},
        {"model_a": "m-weak", "model_b": "newbie", "winner": "model_b", "tstamp": january, "anony": True},
        {"model_a": "newbie", "model_b": "m-mid", "winner": "model_b", "tstamp": march, "anony": True},
    ]
    log.write_text(json.dumps(records + newbie))
    run("leaderboard_history", "--battles", str(log))
    months = sorted(
        {c.month for c in RatingHistory.objects.filter(model_name="newbie").values_list("cutoff", flat=True)}
    )
    assert months == [4, 5, 6]
    assert RatingHistory.objects.filter(model_name="m-strong", cutoff__month=2).exists()
