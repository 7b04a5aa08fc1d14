from ratings import charts

ROWS = [
    {"name": "alpha", "rating": 1100.0, "ci_lower": 1090.0, "ci_upper": 1115.0},
    {"name": "bravo", "rating": 1000.0, "ci_lower": 995.0, "ci_upper": 1004.0},
]
MATRICES = {
    "models": ["bravo", "alpha"],
    "win_fraction": [[None, 0.25], [0.75, None]],
    "predicted": [[None, 0.36], [0.64, None]],
}


def test_ratings_figure_draws_asymmetric_interval_bars():
    [trace] = charts.ratings_figure(ROWS)["data"]
    assert trace["x"] == ["alpha", "bravo"]
    assert trace["error_y"]["array"] == [15.0, 4.0]
    assert trace["error_y"]["arrayminus"] == [10.0, 5.0]
    assert trace["error_y"]["visible"] is True


def test_ratings_figure_hides_bars_when_there_are_no_intervals():
    rows = [{"name": "alpha", "rating": 1002.0, "ci_lower": None, "ci_upper": None}]
    [trace] = charts.ratings_figure(rows)["data"]
    assert trace["error_y"]["visible"] is False


def test_heatmaps_follow_the_leaderboard_order():
    [trace] = charts.win_fraction_figure(MATRICES, order=["alpha", "bravo"])["data"]
    assert trace["x"] == trace["y"] == ["alpha", "bravo"]
    assert trace["z"] == [[None, 0.75], [0.25, None]]
    [predicted] = charts.predicted_win_figure(MATRICES, order=["alpha", "bravo"])["data"]
    assert predicted["z"][0][1] == 0.64


def test_heatmaps_show_at_most_the_top_models():
    names = [f"m{i}" for i in range(40)]
    grid = [[0.5] * 40 for _ in range(40)]
    [trace] = charts.predicted_win_figure({"models": names, "win_fraction": grid, "predicted": grid})["data"]
    assert len(trace["x"]) == charts.HEATMAP_MAX_MODELS


def test_payload_without_matrices_gets_only_the_ratings_chart():
    assert set(charts.leaderboard_figures({"models": ROWS, "matrices": None})) == {"ratings"}
    assert set(charts.leaderboard_figures({"models": ROWS, "matrices": MATRICES})) == {
        "ratings",
        "win_fraction",
        "predicted",
    }
