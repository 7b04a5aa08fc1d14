"""Plotly figures for the leaderboard page: data in, figure JSON (a plain dict) out; no queries."""

from __future__ import annotations

import json

import plotly.graph_objects as go

# Heatmaps get unreadable beyond this many models; they show the top ones by rating.
HEATMAP_MAX_MODELS = 30


def _as_dict(figure: go.Figure) -> dict:
    return json.loads(figure.to_json())


def ratings_figure(rows: list[dict], *, title: str = "Rating with 95% interval") -> dict:
    """Point per model (best first) with asymmetric error bars for its interval, where it has one."""
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
            hovertemplate="%{x}<br>rating %{y:.1f}<extra></extra>",
        )  # fmt: skip
    )
    figure.update_layout(
        title=title, xaxis_title="Model", yaxis_title="Rating", height=460,
        margin={"l": 60, "r": 20, "t": 50, "b": 140}, template="plotly_white",
    )  # fmt: skip
    figure.update_xaxes(tickangle=-45)
    return _as_dict(figure)


def _heatmap(models: list[str], values: list[list], *, title: str, hover: str, order: list[str] | None) -> dict:
    index = {name: i for i, name in enumerate(models)}
    shown = [m for m in (order or models) if m in index][:HEATMAP_MAX_MODELS]
    grid = [[values[index[row]][index[col]] for col in shown] for row in shown]
    text = [["" if v is None else f"{v:.2f}" for v in row] for row in grid]
    figure = go.Figure(
        go.Heatmap(
            z=grid,
            x=shown,
            y=shown,
            zmin=0,
            zmax=1,
            colorscale="RdBu",
            text=text,
            texttemplate="%{text}" if len(shown) <= 15 else None,
            hovertemplate=f"%{{y}} vs %{{x}}<br>{hover} %{{z:.2f}}<extra></extra>",
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


def leaderboard_figures(payload: dict) -> dict[str, dict]:
    """Every figure the page shows for a leaderboard payload (see selectors.leaderboard_payload)."""
    figures = {"ratings": ratings_figure(payload["models"])}
    matrices = payload.get("matrices")
    if matrices and matrices.get("models"):
        order = [r["name"] for r in payload["models"]]
        figures["win_fraction"] = win_fraction_figure(matrices, order=order)
        figures["predicted"] = predicted_win_figure(matrices, order=order)
    return figures
