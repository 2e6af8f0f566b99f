"""What a finished fine-tune leaves behind: predictions for every image and its result.

<run_dir>/predictions.csv    path,label,confidence,labeled (DESIGN 3.2)
<run_dir>/predictions.npz    image ids, class probabilities
<run_dir>/finetune.json      the result: ``holdout_accuracy`` (on the untouched labels),
                             ``labeled``, ``predicted``, the split, what the model said of
                             each untouched label before it ever saw it
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from sslviz.core.atomic import write_json
from sslviz.core.liveness import alive
from sslviz.fewshot.finetune_data import RESULT_FILE, write_predictions
from sslviz.fewshot.finetune_model import FineTuneModel, View, predict_logits
from sslviz.store import Run, Store

CHUNK = 4096  # images read from the cache at once: a big dataset never sits in memory whole


def finish(
    store: Store,
    run: Run,
    *,
    model: FineTuneModel,
    cache: np.ndarray,
    view: View,
    device: torch.device,
    labels: dict[str, str],
    split: Mapping[str, Any],
    best: Mapping[str, Any] | None,
    held_out: dict[str, str],
    step: int,
) -> dict[str, Any]:
    """Predict every image, write the predictions and the result, log the final metrics.

    ``held_out``: the model's guess for each untouched label, made before it was used for
    anything (``holdout_accuracy`` is their share of right answers)."""
    run_dir = store.workspace.run_dir(run.id)
    images = store.datasets.images(run.dataset_id)
    chunks = []
    for start in range(0, len(cache), CHUNK):
        rows = torch.from_numpy(np.array(cache[start : start + CHUNK]))  # (n, 3, S, S) uint8
        chunks.append(torch.softmax(predict_logits(model, rows, view, device), 1).numpy())
        alive()
    probabilities = np.concatenate(chunks)  # (N, K)
    paths, classes = [image.path for image in images], list(split["classes"])
    write_predictions(run_dir, paths, [i.id for i in images], probabilities, classes, labels)
    holdout = list(split["holdout"])
    right = sum(held_out[p] == labels[p] for p in holdout)
    accuracy = right / len(holdout) if holdout else None
    result = {
        "run": run.id,
        "parent": int(run.config["parent"]),
        "holdout_accuracy": accuracy,
        "semi_supervised": bool(run.config.get("semi_supervised")),
        "select_loss": None if best is None else float(best["loss"]),
        "best_step": None if best is None else int(best["step"]),
        "labeled": len(labels),
        "predicted": len(paths),
        "holdout_labels": len(holdout),
        "select_labels": len(split.get("select", [])),
        "classes": classes,
        "train": list(split["train"]),
        "select": list(split.get("select", [])),
        "holdout": holdout,
        "holdout_predictions": held_out,  # before the model saw these labels in any way
        "labels": run.config["labels"],
        "note": split.get("note"),
        "predictions": str(run_dir / "predictions.csv"),
    }
    write_json(run_dir / RESULT_FILE, result)
    finals = {"eval/labeled": len(labels), "eval/predicted": len(paths)}
    finals["eval/holdout_labels"] = len(holdout)
    if accuracy is not None:
        finals["eval/holdout_accuracy"] = accuracy
    store.runs.log_metrics(run.id, step, finals)
    return result


def finetune_result(store: Store, run_id: int) -> dict[str, Any] | None:
    """The result a finished fine-tune wrote (``finetune.json``), or None before it ends."""
    path = store.workspace.run_dir(run_id) / RESULT_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def used_labels(result: Mapping[str, Any]) -> set[str]:
    """The labeled paths a fine-tune learned from or chose its checkpoint by: not untouched.
    (A result without ``select`` predates the inner split: its held-out labels chose its
    checkpoint, so none of its labels is untouched.)"""
    if "select" not in result:
        return set(result["train"]) | set(result["holdout"])
    return set(result["train"]) | set(result["select"])
