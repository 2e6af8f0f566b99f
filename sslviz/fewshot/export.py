"""What a labeling session exports: predictions CSV, labels CSV, and one parquet file with it all.

The parquet file has one row per image: ``path``, ``image_id``, ``embedding`` (list of float32,
the vectors the predictions came from), ``x``/``y`` (map coordinates; null when no map was
computed), ``label`` (given, null if none), ``predicted``, ``confidence`` (1 for labeled rows,
as in the CSV), ``labeled``, ``covered`` (looks like some labeled group), and one ``p_<label>``
column of class probabilities per label name.
"""

from __future__ import annotations

import io

import numpy as np

from sslviz.fewshot.labels_csv import labels_csv_text, predictions_csv_text
from sslviz.fewshot.predict import PredictResult


def predictions_csv(result: PredictResult) -> str:
    """``path,label,confidence,labeled,covered``: one row per image, labeled rows keep their
    label (confidence 1, as in the parquet file)."""
    return predictions_csv_text(
        result.paths,
        result.prediction.labels,
        result.prediction.confidence,
        result.labels,
        result.covered,
    )


def labels_csv(result: PredictResult) -> str:
    return labels_csv_text(result.labels)


def parquet_bytes(
    result: PredictResult, vectors: np.ndarray, coords: np.ndarray | None = None
) -> bytes:
    """The parquet file (see the module docstring) as bytes; vectors (N, D), coords (N, 2)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, dim = len(result.paths), int(vectors.shape[1])
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    columns = {
        "path": pa.array(result.paths, pa.string()),
        "image_id": pa.array(result.image_ids, pa.int64()),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
        "x": pa.nulls(n, pa.float32()) if coords is None else pa.array(coords[:, 0], pa.float32()),
        "y": pa.nulls(n, pa.float32()) if coords is None else pa.array(coords[:, 1], pa.float32()),
        "label": pa.array([result.labels.get(p) for p in result.paths], pa.string()),
        "predicted": pa.array(result.prediction.labels.astype(str), pa.string()),
        # 1 for labeled rows, as in the CSV (the model's own probabilities stay in p_<label>)
        "confidence": pa.array(result.final_confidence, pa.float32()),
        "labeled": pa.array(result.labeled, pa.bool_()),
        "covered": pa.array(result.covered, pa.bool_()),
    }
    for k, name in enumerate(result.prediction.classes):
        columns[f"p_{name}"] = pa.array(result.prediction.probabilities[:, k], pa.float32())
    table = pa.table(columns)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()
