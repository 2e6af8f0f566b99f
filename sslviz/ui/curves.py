"""Plotly figures of a run's metrics (long form in the store: run, key, step -> value)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from sslviz.store import Store

MAX_POINTS = 2000  # a browser draws this many points per line without lag
CURVES_SECONDS = 10.0  # how often the curves of an active run change (see snapshot_time)


@dataclass(frozen=True)
class Series:
    label: str
    steps: list[int]
    values: list[float]


def read_series(
    store: Store, run_id: int, key: str, label: str | None = None, *, until: float | None = None
) -> Series:
    """The metric ``key`` of a run by step, thinned to at most ``MAX_POINTS`` points; with
    ``until``, only the rows written by then (see :func:`snapshot_time`)."""
    rows = store.runs.metrics(run_id, key)
    if until is not None:
        rows = [m for m in rows if m.time <= until]
    stride = max(1, -(-len(rows) // MAX_POINTS))  # ceil division
    kept = rows[::stride]
    if rows and kept[-1] is not rows[-1]:
        kept.append(rows[-1])  # always show the latest value
    return Series(label or key, [m.step for m in kept], [m.value for m in kept])


def snapshot_time(active: bool, now: float | None = None) -> float | None:
    """The cut-off for an active run's curves: the last multiple of ``CURVES_SECONDS``.

    The page refreshes every few seconds, but a new figure costs the browser a full plotly redraw
    while an identical one costs nothing; so the curves move on every ``CURVES_SECONDS`` and the
    cheap parts (progress, table) on every refresh. None (everything) for a run that ended.
    """
    if not active:
        return None
    now = time.time() if now is None else now
    return now - now % CURVES_SECONDS


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (as TensorBoard's smoothing), so the
    first points are not pulled towards zero."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1.0 - weight) * v
        out.append(avg / (1.0 - weight**i))
    return out


def curves_figure(
    series: list[Series], *, title: str, y_title: str, smoothed: bool = True, height: int = 320
) -> go.Figure:
    """One line per series against the training step.

    With ``smoothed`` a single series is drawn raw (faint) under its moving average, so the trend
    reads through per-batch noise; several series (a comparison) are drawn smoothed only.
    """
    fig = go.Figure()
    for s in series:
        if smoothed and len(series) == 1:
            fig.add_scatter(
                x=s.steps,
                y=s.values,
                mode="lines",
                name=f"{s.label} (raw)",
                line={"width": 1},
                opacity=0.3,
                showlegend=False,
            )
        y = smooth(s.values) if smoothed and len(s.values) > 2 else s.values
        fig.add_scatter(x=s.steps, y=y, mode="lines", name=s.label, line={"width": 2})
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title="step",
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.25},
        showlegend=len(series) > 1,
    )
    return fig


def quality_figure(points: list[dict[str, Any]], *, height: int = 320) -> go.Figure:
    """The feature-quality curve (``sslviz.training.feature_quality``) per measured checkpoint:
    the effective rank on the left axis; the k-NN agreement with the previous checkpoint and the
    few-shot accuracy (where a labeling session has enough labels) on the right, 0-1."""
    fig = go.Figure()
    steps = [p["step"] for p in points]
    fig.add_scatter(
        x=steps,
        y=[p["effective_rank"] for p in points],
        mode="lines+markers",
        name="effective rank",
    )
    for key, label in (("knn_agreement", "k-NN agreement"), ("fewshot_accuracy", "few-shot acc.")):
        values = [p[key] for p in points]
        if any(v is not None for v in values):
            fig.add_scatter(
                x=steps, y=values, mode="lines+markers", name=label, yaxis="y2", connectgaps=True
            )
    fig.update_layout(
        title="Feature quality",
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title="step",
        yaxis={"title": "effective rank"},
        yaxis2={"title": "share", "overlaying": "y", "side": "right", "range": [0, 1.05]},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
