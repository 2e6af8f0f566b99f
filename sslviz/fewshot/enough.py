"""When are labels too few to measure anything? The one definition sslviz uses everywhere.

An accuracy measured on a handful of labels is noise, so below these counts sslviz says "too few
labels" instead of a number: the cross-validated estimate (``predict``, the labeling page), the
leaderboard's ranking, and a fine-tune's held-out split all ask here.

- A label can be *tested* only if its class keeps at least one other label to train on: classes
  with at least ``MIN_PER_CLASS`` (2) labels are testable.
- An estimate needs at least ``MIN_TESTED`` (10) tested labels in at least 2 classes.
- Comparing fine-tuned rows on labels none of them trained on needs ``MIN_COMPARE`` (6) such
  labels in at least 2 classes (they are a share of the labels, so the bar is lower).
- A fine-tune holds labels out of a class only if it has ``MIN_PER_CLASS_TO_HOLD_OUT`` (3): two
  stay to train on.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MIN_PER_CLASS = 2
MIN_TESTED = 10
MIN_COMPARE = 6
MIN_PER_CLASS_TO_HOLD_OUT = MIN_PER_CLASS + 1
TOO_FEW_REASON = (
    f"too few labels to estimate: give at least {MIN_TESTED} labeled images, with at least "
    f"{MIN_PER_CLASS} in each of two or more labels"
)


def testable_counts(labels: Iterable[str]) -> np.ndarray:
    """(k,) label counts of the classes that can be tested (at least ``MIN_PER_CLASS`` labels)."""
    _, counts = np.unique(np.asarray(list(labels), dtype=str), return_counts=True)
    return counts[counts >= MIN_PER_CLASS]


def too_few(labels: Iterable[str]) -> bool:
    """Whether ``labels`` (one class name per labeled image) are too few to cross-validate."""
    counts = testable_counts(labels)
    return len(counts) < 2 or int(counts.sum()) < MIN_TESTED


def too_few_to_compare(held_out: Iterable[str]) -> bool:
    """Whether labels held out of every compared model are too few to compare them on."""
    names = list(held_out)
    return len(names) < MIN_COMPARE or len(set(names)) < 2
