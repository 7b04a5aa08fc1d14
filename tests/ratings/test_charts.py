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


PLOTS = {
    "models": ["bravo", "alpha", "charlie"],
    "battles": [[0, 12, 3], [12, 0, 7], [3, 7, 0]],
    "observed_win_rate": [0.4, 0.7, None],
    "predicted_win_rate": [0.45, 0.65, 0.2],
}


def test_battle_count_heatmap_follows_the_board_order_with_whole_numbers():
    [trace] = charts.battle_count_figure(PLOTS, order=["alpha", "bravo", "charlie"])["data"]
    assert trace["x"] == trace["y"] == ["alpha", "bravo", "charlie"]
    assert trace["z"] == [[None, 12, 7], [12, None, 3], [7, 3, None]]
    assert trace["text"][0] == ["", "12", "7"] and "zmax" not in trace


def test_average_win_rate_bars_show_observed_and_predicted_for_the_board_models():
    observed, predicted = charts.average_win_rate_figure(PLOTS, order=["alpha", "bravo"])["data"]
    assert observed["type"] == predicted["type"] == "bar"
    assert observed["x"] == predicted["x"] == ["alpha", "bravo"]
    assert observed["y"] == [0.7, 0.4] and predicted["y"] == [0.65, 0.45]
    assert observed["name"].startswith("Observed") and predicted["name"].startswith("Predicted")


def test_leaderboard_figures_add_counts_and_win_rates_when_the_board_has_plots():
    payload = {"models": ROWS, "matrices": None}
    assert set(charts.leaderboard_figures(payload, PLOTS)) == {"ratings", "battles", "average_win_rate"}
    [bars, _] = charts.leaderboard_figures(payload, PLOTS)["average_win_rate"]["data"]
    assert bars["x"] == ["alpha", "bravo"]  # charlie is not on this board (hidden or not in the category)


SERIES = {
    "alpha": {"time": ["2024-01-01", "2024-02-01"], "rating": [1000.0, 1020.0], "ci_lower": [990.0, 1012.0],
              "ci_upper": [1004.0, 1030.0]},
    "bravo": {"time": ["2024-01-01", "2024-02-01"], "rating": [1010.0, 1030.0], "ci_lower": [None, None],
              "ci_upper": [None, None]},
    "gone": {"time": ["2024-01-01"], "rating": [1500.0], "ci_lower": [1400.0], "ci_upper": [1600.0]},
}  # fmt: skip


def test_history_figure_draws_a_line_per_series_with_its_interval():
    alpha, bravo = charts.history_figure({k: SERIES[k] for k in ("alpha", "bravo")}, title="t")["data"]
    assert alpha["x"] == ["2024-01-01", "2024-02-01"] and alpha["y"] == [1000.0, 1020.0]
    assert alpha["error_y"]["array"] == [4.0, 10.0] and alpha["error_y"]["arrayminus"] == [10.0, 8.0]
    assert alpha["error_y"]["visible"] is True and bravo["error_y"]["visible"] is False


def test_top_series_ranks_the_models_present_at_the_latest_time():
    assert list(charts.top_series(SERIES)) == ["bravo", "alpha"]  # "gone" led once but is not in the newest board
    assert list(charts.top_series(SERIES, 1)) == ["bravo"]
    assert charts.top_series({}) == {}


def test_model_figures_label_the_snapshots_and_each_replay():
    figures = charts.model_figures("alpha", snapshots=SERIES["alpha"], replays={"log.json": SERIES["gone"]})
    assert [t["name"] for t in figures["history"]["data"]] == ["snapshots", "replay: log.json"]
    assert charts.model_figures("alpha", snapshots=None, replays={}) == {}


def test_ratings_chart_plots_the_main_group_only_and_no_model_without_a_rating():
    rows = [
        {**ROWS[0], "group": 1},
        {**ROWS[1], "group": 1},
        {"name": "live", "rating": 1010.0, "ci_lower": 990.0, "ci_upper": 1030.0, "group": 2},
        {"name": "new", "rating": None, "ci_lower": None, "ci_upper": None, "group": None},
    ]
    groups = [{"group": 1, "models": 2, "battles": 900}, {"group": 2, "models": 1, "battles": 30}]
    figure = charts.leaderboard_figures({"models": rows, "matrices": None, "groups": groups})["ratings"]
    [trace] = figure["data"]
    assert trace["x"] == ["alpha", "bravo"]
    assert "group 1" in figure["layout"]["title"]["text"]


# Each chart's figures as a table, for readers who cannot see it


def test_a_heatmap_table_is_its_matrix_as_drawn_with_blanks_for_the_diagonal():
    table = charts.figure_table(charts.win_fraction_figure(MATRICES, order=["alpha", "bravo"]))
    assert table["caption"] == "Win fraction of model A over model B"
    assert table["columns"] == ["Model A \\ Model B", "alpha", "bravo"]
    assert table["rows"] == [["alpha", "–", "0.75"], ["bravo", "0.25", "–"]]
    counts = {"models": ["alpha", "bravo"], "battles": [[0, 12345], [12345, 0]]}
    assert charts.figure_table(charts.battle_count_figure(counts))["rows"][0] == ["alpha", "–", "12,345"]


def test_a_ratings_table_gives_each_models_rating_and_interval_even_a_one_sided_one():
    rows = [*ROWS, {"name": "charlie", "rating": 950.04, "ci_lower": None, "ci_upper": 960.0}]
    table = charts.figure_table(charts.ratings_figure(rows))
    assert table["columns"] == ["Model", "Rating", "95% interval"]
    assert table["rows"] == [
        ["alpha", "1100.0", "1090.0 – 1115.0"], ["bravo", "1000.0", "995.0 – 1004.0"], ["charlie", "950.0", "−∞ – 960.0"],
    ]  # fmt: skip


def test_bars_sharing_their_models_get_a_column_each():
    plots = {"models": ["alpha", "bravo"], "observed_win_rate": [0.6, 0.4], "predicted_win_rate": [0.6125, None]}
    table = charts.figure_table(charts.average_win_rate_figure(plots))
    assert table["columns"] == [
        "Model", "Observed (opponents met, ties left out)", "Predicted by the ratings (all other models)",
    ]  # fmt: skip
    assert table["rows"] == [["alpha", "0.600", "0.613"], ["bravo", "0.400", "–"]]


def test_history_lines_are_a_row_per_point_or_a_column_per_model_when_they_share_their_times():
    first, second = "2026-12-01T10:00:00+00:00", "2026-12-02T11:30:00+00:00"
    alpha = {
        "time": [first, second],
        "rating": [1000.0, 1012.34],
        "ci_lower": [990.0, None],
        "ci_upper": [1010.0, None],
    }
    bravo = {"time": [second], "rating": [990.0], "ci_lower": [980.0], "ci_upper": [1000.0]}
    table = charts.figure_table(charts.history_figure({"alpha": alpha, "bravo": bravo}, title="Top models"))
    assert table["caption"] == "Top models"
    assert table["columns"] == ["Series", "Time", "Rating", "95% interval"]
    assert table["rows"] == [
        ["alpha", "2026-12-01 10:00", "1000.0", "990.0 – 1010.0"], ["alpha", "2026-12-02 11:30", "1012.3", "–"],
        ["bravo", "2026-12-02 11:30", "990.0", "980.0 – 1000.0"],
    ]  # fmt: skip
    bravo = {
        "time": [first, second],
        "rating": [995.0, 990.0],
        "ci_lower": [985.0, 980.0],
        "ci_upper": [1005.0, 1000.0],
    }
    table = charts.figure_table(charts.history_figure({"alpha": alpha, "bravo": bravo}, title="Top models"))
    assert table["columns"] == ["Time", "alpha", "95% interval", "bravo", "95% interval"]
    assert table["rows"][1] == ["2026-12-02 11:30", "1012.3", "–", "990.0", "980.0 – 1000.0"]


def test_a_snapshots_ratings_table_shows_an_interval_unbounded_on_both_sides_as_such_not_as_none():
    """A snapshot's rows always have intervals; both ends missing is both ends infinite (a model barely
    measured), which the table showed as "–", as if it had no uncertainty at all. Online Elo rows have none."""
    rows = [*ROWS, {"name": "thin", "rating": 1050.0, "ci_lower": None, "ci_upper": None}]
    table = charts.figure_table(charts.ratings_figure(rows, unbounded=True))
    assert table["rows"][-1] == ["thin", "1050.0", "−∞ – +∞"]
    assert table["rows"][0] == ["alpha", "1100.0", "1090.0 – 1115.0"]
    elo = [{"name": "alpha", "rating": 1002.0, "ci_lower": None, "ci_upper": None}]
    assert charts.figure_table(charts.ratings_figure(elo))["rows"] == [["alpha", "1002.0"]]
