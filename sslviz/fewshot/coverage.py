"""Does an image look like any labeled group at all? ``covered`` for every image.

A researcher rarely labels every group first, and every predictor forces each image into one of
the given labels (a rocket is "cat" with confidence 0.94 when only cats, dogs and cups are
labeled). So each prediction also says whether the image is near the labeled images.

Rule (open-set calibration on the labels themselves, in the space the predictor asked for sees:
the UMAP of the embedding for the UMAP methods, else the standardised cosine features; never
"whatever happens to be cached", so one request always gives one answer):

- d(i) = distance from image i to its nearest labeled image.
- Calibration from the labels: for each labeled image, its distance to the nearest other label of
  the *same* class (how far a covered image is from a label: ``known``) and to the nearest label of
  a *different* class (how far an image of a group nobody labeled is: holding out the image's own
  class, every label left is of another group: ``novel``).
- threshold = the geometric mean of the medians of ``known`` and ``novel``, but at least the
  median of ``known``. Covered: d(i) <= threshold.
- With one label per class there is no ``known``: nothing tells how far a group reaches around
  its one label (a label's distance to its k-th nearest image stood in, and with every class of a
  clip-art folder labeled once it marked 129-325 of 434 images uncovered and counted 14-40 groups
  for 10). Then the threshold is the largest ``novel`` (only images farther from every label than
  any label is from another class's are uncovered), the number of groups is not guessed (the
  labeled ones), and ``sure`` is False: the warning says one more label per group would tell.
  Why not a higher floor (the 90th percentile of ``known`` was measured): where a group gathers
  in several clumps, its labels sit far from each other while the images around each label sit
  close to it, so that floor called nearly everything covered (held-out groups' images marked
  uncovered, 5 labels per class: demo 0.30 vs 0.69 with the median, letters 0.11 vs 0.55).
- The number of groups is a rough figure: the uncovered images counted in groups of the labeled
  groups' average size; fewer uncovered images than half a group add none.

Measured by holding out whole labels in benchmarks/fewshot_quality.py (share of the held-out
groups' images marked uncovered, and of the labeled groups' images marked covered).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sslviz.fewshot.predictors import Features

CALIBRATION_MAX = 2000  # labeled images used for the calibration distances (a sample above)


@dataclass(frozen=True)
class Coverage:
    """covered (N,) bool; distance (N,) to the nearest labeled image; threshold; groups_labeled,
    groups_estimated: how many groups the labels cover, of about how many in all."""

    covered: np.ndarray
    distance: np.ndarray
    threshold: float
    groups_labeled: int
    groups_estimated: int
    sure: bool = True  # False: one label per class, the number of groups is not guessed

    @property
    def fraction(self) -> float:
        return float(self.covered.mean()) if len(self.covered) else 1.0

    @property
    def uncovered(self) -> int:
        return int((~self.covered).sum())

    def warning(self) -> str | None:
        """One line for the CLI and the page, or None when the labels look like every image."""
        if self.uncovered == 0:
            return None
        if not self.sure:
            return (
                f"{self.uncovered:,} images are farther from every label than your labels are "
                "from each other (covered=false); with one label per group sslviz can't tell "
                "how many groups there are: label a second image of each to find out"
            )
        if self.groups_estimated <= self.groups_labeled:
            return (
                f"{self.uncovered:,} images look like none of your labeled groups "
                "(covered=false): check them, they may be a group of their own"
            )
        return (
            f"your labels cover about {self.groups_labeled} of {self.groups_estimated} groups; "
            f"{self.uncovered:,} images look like none of them (covered=false): label some of "
            "them (sslviz suggest lists them first)"
        )


def space(features: Features, *, in_umap: bool = False) -> np.ndarray:
    """The points distances are measured in: the UMAP when the predictor works in it (its
    coordinates are fitted for it anyway), else the cosine features."""
    return features.umap if in_umap else features.cosine


def coverage(
    features: Features, labeled_idx: np.ndarray, labels: list[str], *, in_umap: bool = False
) -> Coverage:
    """Which rows of ``features`` look like a labeled group (module docstring); ``in_umap``:
    measured in the UMAP (the predictor used is one of the UMAP methods)."""
    from sklearn.neighbors import NearestNeighbors

    x = space(features, in_umap=in_umap)
    labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
    names = np.asarray(labels, dtype=str)
    n_groups = len(np.unique(names))
    if len(labeled_idx) == 0:
        empty = np.zeros(len(x), dtype=bool)
        return Coverage(empty, np.full(len(x), np.inf), 0.0, 0, 0)
    reference = x[labeled_idx]
    nearest = NearestNeighbors(n_neighbors=1).fit(reference)
    distance = nearest.kneighbors(x)[0][:, 0]  # (N,)
    if len(reference) > CALIBRATION_MAX:
        pick = np.random.default_rng(0).choice(len(reference), CALIBRATION_MAX, replace=False)
        reference, names = reference[pick], names[pick]
    known, novel = _nearest_same_and_other(reference, names)
    known, novel = known[np.isfinite(known)], novel[np.isfinite(novel)]
    sure = bool(len(known))
    if not sure:
        # One label per class: nothing tells how far a group reaches around its one label (its
        # nearest images measured it badly: with every class labeled, half of the images were
        # marked uncovered and the groups counted 14-40 for 10). Only images farther from every
        # label than any label is from another class's are called uncovered, and the number of
        # groups is not guessed (``sure`` False says so).
        threshold = float(np.max(novel)) if len(novel) else float(np.inf)
    elif len(novel):
        # Between the typical known and novel distance; never below the typical known one (where
        # groups overlap, known ~ novel and the midpoint would cut into the labeled groups).
        middle = np.sqrt(max(np.median(known), 1e-12) * max(np.median(novel), 1e-12))
        threshold = float(max(middle, np.median(known)))
    else:  # one class only: nothing to calibrate against
        threshold = float(np.inf)
    covered = distance <= threshold
    covered[labeled_idx] = True
    groups = _groups(covered, n_groups) if sure else n_groups
    return Coverage(covered, distance, threshold, n_groups, groups, sure)


def _nearest_same_and_other(
    reference: np.ndarray, names: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(n,) each labeled point's distance to the nearest other label of its own class, and of
    another class (inf where there is none), from reference (n, D): distances a chunk of rows at
    a time, (chunk, n), never the (n, n, D) differences (529 MiB at 150 labels of width 3,072)."""
    x = np.asarray(reference, dtype=np.float64)
    squared = np.einsum("ij,ij->i", x, x)  # (n,)
    known = np.full(len(x), np.inf)
    novel = np.full(len(x), np.inf)
    for start in range(0, len(x), chunk):
        rows = slice(start, start + chunk)
        d2 = squared[rows, None] + squared[None, :] - 2 * (x[rows] @ x.T)  # (chunk, n)
        d = np.sqrt(np.maximum(d2, 0))
        d[np.arange(d.shape[0]), np.arange(start, start + d.shape[0])] = np.inf  # not itself
        same = names[rows, None] == names[None, :]
        known[rows] = np.where(same, d, np.inf).min(axis=1)
        novel[rows] = np.where(~same, d, np.inf).min(axis=1)
    return known, novel


def _groups(covered: np.ndarray, labeled_groups: int) -> int:
    """About how many groups in all: the uncovered images counted in groups of the labeled ones'
    average size (a rough figure, said with "about")."""
    size = covered.sum() / max(labeled_groups, 1)
    return labeled_groups + int(round((~covered).sum() / max(size, 1.0)))
