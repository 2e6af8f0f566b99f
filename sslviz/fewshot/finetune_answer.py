"""Which of a fine-tune's two answers ``sslviz finetune --out`` writes.

A fine-tune answers twice: its head's own predictions (``<run_dir>/predictions.csv``), and its
fine-tuned encoder read like any source with ``auto``'s rule (``estimate.RULE``, Poisson learning
on all images). The second usually wins (README: the heads alone 0.92-0.96x the frozen run, the
encoders level with it) but not always, so the labels the fine-tune never touched decide: each
answer is scored on them (the head's guesses were made before it saw them; the rule is fitted on
the labels the fine-tune used), and the better one is written (a tie goes to the encoder). With no
untouched labels there is nothing to decide by, and the encoder, usually the better, is written.
Once chosen, the encoder's answer is fitted on every label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sslviz.fewshot.finetune_result import finetune_result, used_labels

if TYPE_CHECKING:
    from sslviz.store import Store

HEAD, ENCODER = "head", "encoder"


@dataclass(frozen=True)
class Answer:
    """The answer chosen (``source``: "head" or "encoder"), each one's accuracy on the
    ``holdout`` untouched labels (None without them), and why, in one line."""

    source: str
    head_accuracy: float | None
    encoder_accuracy: float | None
    holdout: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "predictions_from": self.source,
            "holdout_accuracy_head": self.head_accuracy,
            "holdout_accuracy_encoder": self.encoder_accuracy,
            "predictions_reason": self.reason,
        }


def write_better_answer(store: Store, run_id: int, out: str | Path) -> Answer:
    """Write the better of the finished fine-tune ``run_id``'s two answers to ``out`` (the
    PREDICTIONS.csv format) and say which (module docstring)."""
    from sslviz.core.atomic import write_bytes
    from sslviz.fewshot.estimate import RULE
    from sslviz.fewshot.finetune_data import labels_file, read_label_file
    from sslviz.fewshot.labels_csv import write_predictions_csv
    from sslviz.fewshot.predict import predict, prepared_features
    from sslviz.fewshot.predictors import fit_predict
    from sslviz.maps.embed import embed

    run = store.runs.get(run_id)
    result = finetune_result(store, run_id)
    if result is None:
        raise ValueError(f"fine-tune {run_id} has no result yet")
    labels = read_label_file(labels_file(store, run.dataset_id, run.config["labels"]))
    holdout = [p for p in result["holdout"] if p in labels]
    emb = embed(store, run.dataset_id, str(run_id))
    head_accuracy = encoder_accuracy = None
    if holdout:
        guesses = result.get("holdout_predictions") or {}
        head_accuracy = float(np.mean([guesses.get(p) == labels[p] for p in holdout]))
        row_of = {p: i for i, p in enumerate(emb.paths)}
        used = sorted(used_labels(result) & set(labels))
        features = prepared_features(store, emb, RULE)
        idx = np.array([row_of[p] for p in used])
        fitted = fit_predict(emb.vectors, idx, [labels[p] for p in used], RULE, features=features)
        encoder_accuracy = float(np.mean([fitted.labels[row_of[p]] == labels[p] for p in holdout]))
    if head_accuracy is not None and head_accuracy > encoder_accuracy:
        write_bytes(out, Path(result["predictions"]).read_bytes())
        reason = (
            f"the head's own predictions: {head_accuracy:.3f} vs the fine-tuned encoder read "
            f"with {RULE} {encoder_accuracy:.3f} on {len(holdout)} untouched labels"
        )
        return Answer(HEAD, head_accuracy, encoder_accuracy, len(holdout), reason)
    answer = predict(store, run.dataset_id, str(run_id), labels, RULE, embeddings=emb)
    write_predictions_csv(
        out,
        answer.paths,
        answer.prediction.labels,
        answer.prediction.confidence,
        answer.labels,
        answer.covered,
    )
    reason = (
        f"the fine-tuned encoder read with {RULE}: {encoder_accuracy:.3f} vs the head's "
        f"{head_accuracy:.3f} on {len(holdout)} untouched labels"
        if holdout
        else f"the fine-tuned encoder read with {RULE} (no untouched labels to choose by; it is "
        "usually the better)"
    )
    return Answer(ENCODER, head_accuracy, encoder_accuracy, len(holdout), reason)
