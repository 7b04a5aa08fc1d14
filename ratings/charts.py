"""Plotly figures for the leaderboard, model and history pages: data in, figure JSON (a plain dict) out; no queries."""

from __future__ import annotations

import json
import re

import plotly.graph_objects as go

# Heatmaps get unreadable beyond this many models; they show the top ones by rating.
HEATMAP_MAX_MODELS = 30
# More lines than this on one history chart are a tangle; it shows the top ones.
HISTORY_MAX_MODELS = 10


def _as_dict(figure: go.Figure) -> dict:
    return json.loads(figure.to_json())


def ratings_figure(rows: list[dict], *, title: str = "Rating with 95% interval", unbounded: bool = False) -> dict:
    """Point per model (best first) with asymmetric error bars for its interval, where it has one. With
    `unbounded` (a snapshot's rows, which always have intervals) a missing end is an infinite one: no bar is
    drawn for it, and each point carries its interval as text (customdata) for the hover and the table."""
    names = [r["name"] for r in rows]
    ratings = [r["rating"] for r in rows]
    upper = [None if r.get("ci_upper") is None else r["ci_upper"] - r["rating"] for r in rows]
    lower = [None if r.get("ci_lower") is None else r["rating"] - r["ci_lower"] for r in rows]
    has_intervals = any(v is not None for v in upper)
    figure = go.Figure(
        go.Scatter(
            x=names,
            y=ratings,
            mode="markers",
            marker={"size": 8},
            error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower, "visible": has_intervals},
            customdata=[_interval_text(r.get("ci_lower"), r.get("ci_upper")) for r in rows] if unbounded else None,
            hovertemplate="%{x}<br>rating %{y:.1f}"
            + ("<br>95%: %{customdata}" if unbounded else "")
            + "<extra></extra>",
        )  # fmt: skip
    )
    figure.update_layout(
        title=title, xaxis_title="Model", yaxis_title="Rating", height=460,
        margin={"l": 60, "r": 20, "t": 50, "b": 140}, template="plotly_white",
    )  # fmt: skip
    figure.update_xaxes(tickangle=-45)
    return _as_dict(figure)


def _interval_text(low: float | None, high: float | None) -> str:
    """An interval whose missing end is an infinite one."""
    return f"{'−∞' if low is None else _cell(low)} – {'+∞' if high is None else _cell(high)}"


def _heatmap(
    models: list[str],
    values: list[list],
    *,
    title: str,
    hover: str,
    order: list[str] | None,
    zmax: float | None = 1,
    colorscale: str = "RdBu",
    number: str = ".2f",
) -> dict:
    index = {name: i for i, name in enumerate(models)}
    shown = [m for m in (order or models) if m in index][:HEATMAP_MAX_MODELS]
    grid = [[values[index[row]][index[col]] for col in shown] for row in shown]
    text = [["" if v is None else f"{v:{number}}" for v in row] for row in grid]
    figure = go.Figure(
        go.Heatmap(
            z=grid,
            x=shown,
            y=shown,
            zmin=0,
            zmax=zmax,
            colorscale=colorscale,
            text=text,
            texttemplate="%{text}" if len(shown) <= 15 else None,
            hovertemplate=f"%{{y}} vs %{{x}}<br>{hover} %{{z:{number}}}<extra></extra>",
        )  # fmt: skip
    )
    figure.update_layout(
        title=title, xaxis_title="Model B", yaxis_title="Model A", height=max(420, 26 * len(shown) + 200),
        margin={"l": 160, "r": 20, "t": 50, "b": 140}, template="plotly_white",
    )  # fmt: skip
    figure.update_xaxes(side="bottom", tickangle=-45)
    figure.update_yaxes(autorange="reversed")
    return _as_dict(figure)


def win_fraction_figure(matrices: dict, *, order: list[str] | None = None) -> dict:
    """Observed share of decisive battles the row model won against the column model."""
    return _heatmap(matrices["models"], matrices["win_fraction"], title="Win fraction of model A over model B",
                    hover="won", order=order)  # fmt: skip


def predicted_win_figure(matrices: dict, *, order: list[str] | None = None) -> dict:
    """P(row beats column) predicted by the fitted ratings."""
    return _heatmap(matrices["models"], matrices["predicted"], title="Predicted probability that A beats B",
                    hover="P(A wins)", order=order)  # fmt: skip


def battle_count_figure(plots: dict, *, order: list[str] | None = None) -> dict:
    """Battles between each pair of the top models, either side (see selectors.board_plot_data)."""
    # A model never battles itself: a blank diagonal reads better than a column of zeros.
    battles = [[None if i == j else count for j, count in enumerate(row)] for i, row in enumerate(plots["battles"])]
    return _heatmap(plots["models"], battles, title="Battles between each pair of models", hover="battles",
                    order=order, zmax=None, colorscale="Blues", number=",d")  # fmt: skip


def average_win_rate_figure(plots: dict, *, order: list[str] | None = None) -> dict:
    """Bars per model: win rate averaged uniformly over opponents, as observed and as the ratings predict."""
    index = {name: i for i, name in enumerate(plots["models"])}
    shown = [m for m in (order or plots["models"]) if m in index]
    figure = go.Figure()
    for key, label in (("observed_win_rate", "Observed (opponents met, ties left out)"),
                       ("predicted_win_rate", "Predicted by the ratings (all other models)")):  # fmt: skip
        figure.add_trace(
            go.Bar(
                x=shown,
                y=[plots[key][index[m]] for m in shown],
                name=label,
                hovertemplate="%{x}<br>%{y:.3f}<extra>" + label.split(" ")[0] + "</extra>",
            )  # fmt: skip
        )
    figure.update_layout(
        title="Average win rate against all other models (uniform over opponents)", barmode="group",
        xaxis_title="Model", yaxis_title="Win rate", yaxis_range=[0, 1], height=480,
        margin={"l": 60, "r": 20, "t": 80, "b": 140}, template="plotly_white",
        legend={"orientation": "h", "y": 1.0, "x": 1, "yanchor": "bottom", "xanchor": "right"},
    )  # fmt: skip
    figure.update_xaxes(tickangle=-45)
    return _as_dict(figure)


def top_series(series: dict[str, dict[str, list]], n: int = HISTORY_MAX_MODELS) -> dict[str, dict[str, list]]:
    """The `n` models rated highest at the latest time any model has, best first."""
    if not series:
        return {}
    latest = max(points["time"][-1] for points in series.values())
    current = [(points["rating"][-1], name) for name, points in series.items() if points["time"][-1] == latest]
    return {name: series[name] for _, name in sorted(current, key=lambda item: (-item[0], item[1]))[:n]}


def history_figure(series: dict[str, dict[str, list]], *, title: str) -> dict:
    """A line per series (label -> {"time", "rating", "ci_lower", "ci_upper"}) with its 95% interval as bars."""
    figure = go.Figure()
    for label, points in series.items():
        upper = [None if hi is None else hi - r for r, hi in zip(points["rating"], points["ci_upper"], strict=True)]
        lower = [None if lo is None else r - lo for r, lo in zip(points["rating"], points["ci_lower"], strict=True)]
        figure.add_trace(
            go.Scatter(
                x=points["time"],
                y=points["rating"],
                name=label,
                mode="lines+markers",
                marker={"size": 6},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": upper,
                    "arrayminus": lower,
                    "thickness": 1,
                    "visible": any(v is not None for v in upper),
                },
                hovertemplate=f"{label}<br>%{{x}}<br>rating %{{y:.1f}}<extra></extra>",
            )  # fmt: skip
        )
    figure.update_layout(
        title=title, xaxis_title="Time", yaxis_title="Rating", height=460, template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 60}, legend={"orientation": "h", "y": -0.2},
    )  # fmt: skip
    return _as_dict(figure)


def leaderboard_figures(payload: dict, plots: dict | None = None) -> dict[str, dict]:
    """Every figure the page shows for a leaderboard payload (see selectors.leaderboard_payload) and its board's
    counts (selectors.board_plot_data)."""
    # One axis of ratings holds one group: groups that never met do not compare, and a model not rated yet
    # has no rating to plot (the table lists both).
    rated = [r for r in payload["models"] if r.get("rating") is not None and r.get("group", 1) == 1]
    several = len(payload.get("groups") or []) > 1
    title = "Rating with 95% interval" + (" (group 1; the other groups are in the table)" if several else "")
    # A snapshot's rows always have intervals (an end it lacks is infinite); online Elo's have none.
    figures = {"ratings": ratings_figure(rated, title=title, unbounded=payload.get("snapshot") is not None)}
    order = [r["name"] for r in payload["models"]]
    matrices = payload.get("matrices")
    if matrices and matrices.get("models"):
        figures["win_fraction"] = win_fraction_figure(matrices, order=order)
        figures["predicted"] = predicted_win_figure(matrices, order=order)
    if plots and order:
        figures["battles"] = battle_count_figure(plots, order=order)
        figures["average_win_rate"] = average_win_rate_figure(plots, order=order)
    return figures


def model_figures(name: str, *, snapshots: dict[str, list] | None, replays: dict[str, dict[str, list]]) -> dict:
    """A model page's history: its rating over the snapshots and over each stored replay."""
    series = {"snapshots": snapshots} if snapshots else {}
    series.update({f"replay: {source}": points for source, points in replays.items()})
    if not series:
        return {}
    return {"history": history_figure(series, title=f"{name}: rating with 95% interval over time")}


def history_figures(snapshots: dict[str, dict[str, list]], replays: dict[str, dict[str, dict[str, list]]]) -> dict:
    """The history page: the top models over the snapshots, and over each stored replay."""
    figures = {}
    if snapshots:
        figures["snapshots"] = history_figure(
            top_series(snapshots), title=f"Top {HISTORY_MAX_MODELS} models over the snapshots (95% intervals)"
        )
    for number, (source, series) in enumerate(sorted(replays.items()), start=1):
        figures[f"replay-{number}"] = history_figure(
            top_series(series), title=f"Replay of {source}: top {HISTORY_MAX_MODELS} at the last cutoff"
        )
    return figures


def figure_tables(figures: dict[str, dict]) -> dict[str, dict]:
    """Each figure's table (see figure_table), by the figure's name."""
    return {name: figure_table(figure) for name, figure in figures.items()}


def figure_table(figure: dict) -> dict:
    """A figure's numbers as a table: {"caption", "columns", "rows"} of strings, each row's first cell naming
    it. The page puts it under its chart, folded: a chart is only a picture to a screen reader, and anyone
    may want a figure exactly. A heatmap is its matrix; traces that share one x (a model per bar or point) get
    a column each; lines over time a row per point."""
    layout, traces = figure.get("layout") or {}, figure.get("data") or []
    caption = _text(layout.get("title")) or "Chart"
    x_title, y_title = _text(layout.get("xaxis", {}).get("title")), _text(layout.get("yaxis", {}).get("title"))
    if traces and traces[0].get("type") == "heatmap":
        heatmap = traces[0]
        corner = f"{y_title} \\ {x_title}" if x_title and y_title else ""
        rows = [
            [name, *(cell or "–" for cell in cells)] for name, cells in zip(heatmap["y"], heatmap["text"], strict=True)
        ]
        return {"caption": caption, "columns": [corner, *heatmap["x"]], "rows": rows}
    xs = [list(trace.get("x") or []) for trace in traces]
    if len(traces) == 1 or all(x == xs[0] for x in xs):  # a column (and its interval's) per trace
        columns = [x_title or "", *(column for trace in traces for column in _trace_columns(trace, y_title))]
        rows = [
            [_cell(x), *(cell for trace in traces for cell in _point_cells(trace, i))]
            for i, x in enumerate(xs[0] if xs else [])
        ]
        return {"caption": caption, "columns": columns, "rows": rows}
    columns = ["Series", x_title or "", y_title or "Value", "95% interval"]
    rows = [
        [trace.get("name") or "", _cell(x), *_point_cells(trace, i, interval=True)]
        for trace in traces for i, x in enumerate(trace.get("x") or [])
    ]  # fmt: skip
    return {"caption": caption, "columns": columns, "rows": rows}


def _text(title) -> str:
    """A plotly title, given as a string or as {"text": ...}."""
    return (title.get("text") if isinstance(title, dict) else title) or ""


def _has_interval(trace: dict) -> bool:
    return bool(trace.get("customdata") or (trace.get("error_y") or {}).get("visible"))


def _trace_columns(trace: dict, y_title: str) -> list[str]:
    name = trace.get("name") or y_title or "Value"
    return [name, "95% interval"] if _has_interval(trace) else [name]


def _point_cells(trace: dict, i: int, *, interval: bool | None = None) -> list[str]:
    """Point i's value, and its interval when the trace draws intervals (or when `interval` asks for one)."""
    y = trace["y"][i]
    cells = [_cell(y)]
    if trace.get("customdata"):  # the interval as the figure states it, infinite ends included
        return [*cells, str(trace["customdata"][i])]
    if interval or (interval is None and _has_interval(trace)):
        errors = trace.get("error_y") or {}
        above, below = (errors.get("array") or [None] * (i + 1))[i], (errors.get("arrayminus") or [None] * (i + 1))[i]
        if y is None or (above is None and below is None):
            cells.append("–")
        else:
            cells.append(_interval_text(None if below is None else y - below, None if above is None else y + above))
    return cells


ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)")


def _cell(value) -> str:
    """Ratings to a tenth, shares and probabilities to a thousandth, counts whole, times to the minute."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        match = ISO_TIME.match(str(value))
        return f"{match[1]} {match[2]}" if match else str(value)
    if isinstance(value, int):
        return f"{value:,d}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"
