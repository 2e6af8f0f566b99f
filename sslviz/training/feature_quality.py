"""Is a run still learning useful features? The curve its checkpoints leave, read without torch.

At each checkpoint (``sslviz.fewshot.monitor`` measures, on a fixed sample of the dataset) a
pretext run logs, in the metrics table's long form:

    quality/effective_rank     RankMe (Garrido et al., ICML 2023) of the sample's embedding
    quality/knn_agreement      mean share of each image's k nearest neighbours this checkpoint's
                               embedding has in common with the previous checkpoint's (absent
                               at the first measured checkpoint)
    quality/fewshot_accuracy   the cross-validated accuracy of ``auto`` on the labels of the
                               dataset's labeling session, if one has enough labels (solo-learn's
                               online k-NN monitor, label-efficient)

``advice`` turns the curve into one line. The rule: over the last third of the run's steps
(at least ``MIN_POINTS`` measured checkpoints), the features are *flat* when the neighbourhoods
stopped moving (every k-NN agreement there at least ``FLAT_AGREEMENT``) and the effective rank
changed by less than ``FLAT_RANK_CHANGE`` of its value (and the few-shot accuracy, where there is
one, by less than ``FLAT_ACCURACY_CHANGE``); otherwise they are still improving.
"""

from __future__ import annotations

from typing import Any

from sslviz.store import Store

KEYS = {
    "effective_rank": "quality/effective_rank",
    "knn_agreement": "quality/knn_agreement",
    "fewshot_accuracy": "quality/fewshot_accuracy",
}
MIN_POINTS = 3  # measured checkpoints in the last third before a verdict
FLAT_AGREEMENT = 0.9  # share of shared nearest neighbours from one checkpoint to the next
FLAT_RANK_CHANGE = 0.05  # relative change of the effective rank over the last third
FLAT_ACCURACY_CHANGE = 0.02  # change of the few-shot accuracy over the last third
STILL_IMPROVING = "still improving: train longer"
FLAT = "flat for the last third: more time won't help"


def feature_quality(store: Store, run_id: int) -> list[dict[str, Any]]:
    """``[{"step", "effective_rank", "knn_agreement", "fewshot_accuracy"}, ...]`` by step, one
    per measured checkpoint; a figure not measured there is None."""
    by_step: dict[int, dict[str, Any]] = {}
    for name, key in KEYS.items():
        for metric in store.runs.metrics(run_id, key):
            point = by_step.setdefault(metric.step, {"step": metric.step, **dict.fromkeys(KEYS)})
            point[name] = metric.value
    return [by_step[step] for step in sorted(by_step)]


def advice(points: list[dict[str, Any]]) -> str | None:
    """``STILL_IMPROVING`` or ``FLAT`` by the module docstring's rule; None while the last third
    of the run holds fewer than ``MIN_POINTS`` measured checkpoints."""
    if not points:
        return None
    last_step = points[-1]["step"]
    tail = [p for p in points if p["step"] >= last_step * 2 / 3]
    if len(tail) < MIN_POINTS:
        return None
    agreements = [p["knn_agreement"] for p in tail[1:] if p["knn_agreement"] is not None]
    ranks = [p["effective_rank"] for p in tail if p["effective_rank"] is not None]
    settled = bool(agreements) and min(agreements) >= FLAT_AGREEMENT
    rank_change = abs(ranks[-1] - ranks[0]) / max(abs(ranks[0]), 1e-9) if ranks else 0.0
    accuracies = [p["fewshot_accuracy"] for p in tail if p["fewshot_accuracy"] is not None]
    accuracy_change = max(accuracies) - min(accuracies) if len(accuracies) > 1 else 0.0
    flat = settled and rank_change < FLAT_RANK_CHANGE and accuracy_change < FLAT_ACCURACY_CHANGE
    return FLAT if flat else STILL_IMPROVING
