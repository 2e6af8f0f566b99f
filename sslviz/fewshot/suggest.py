"""Which images to label next.

- First, groups no label covers: when some images look like none of the labeled groups
  (``sslviz.fewshot.coverage``), the queue leads with the most typical image of each of about
  as many clusters of those images as there are uncovered groups (TypiClust on them alone).
- Cold start (fewer than ``WARM_PER_CLASS`` labels per label name on average, or fewer than two
  names): TypiClust (Hacohen, Dekel & Weinshall, ICML 2022). Cluster the embedding into
  (labeled + n) clusters with k-means; among the largest clusters that hold no labeled image, take
  each one's most *typical* image — the inverse mean distance to its ``TYPICAL_K`` nearest
  neighbours in the cluster. At tiny budgets typical, diverse images beat uncertainty sampling,
  which picks outliers and loses to random there.
- Later: the unlabeled images with the smallest margin between the two most probable classes
  (logistic regression), spread out by k-center greedy (Sener & Savarese, ICLR 2018) among the
  ``POOL`` x n least certain, starting from the labeled images as centres, so the suggestions are
  not n near-copies from one ambiguous corner of the map.

    s = suggest(vectors, labeled_idx, labels, n=10)
    s.indices       # (n,) rows to label, best first
    s.strategy      # "typiclust" or "margin+k-center"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sslviz.fewshot.predictors import Features, encode_labels, predict_proba

WARM_PER_CLASS = 5  # labels per name before uncertainty takes over from typicality
TYPICAL_K = 20
CLUSTER_DIMS = 50  # k-means and distances on a PCA of the (centred, unit-row) embedding
TYPICALITY_SAMPLE = 2000  # images of a cluster considered (a random subset of a large one)
POOL = 10


@dataclass(frozen=True)
class Suggestion:
    indices: np.ndarray  # (n,) row positions, best first
    strategy: str
    scores: np.ndarray  # (n,) typicality (typiclust) or margin (margin+k-center) of each
    uncovered_first: int = 0  # how many leading picks are from groups no label covers


def suggest(
    vectors: np.ndarray,
    labeled_idx: np.ndarray | list[int],
    labels: list[str] | np.ndarray,
    n: int = 10,
    *,
    seed: int = 0,
    features: Features | None = None,
) -> Suggestion:
    """``n`` unlabeled rows of ``vectors`` (N, D) worth labeling next (see the module docstring)."""
    features = features or Features(vectors)
    labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
    unlabeled = np.setdiff1d(np.arange(len(features.vectors)), labeled_idx)
    n = min(int(n), len(unlabeled))
    if n <= 0:
        return Suggestion(np.zeros(0, np.int64), "none", np.zeros(0))
    names = np.unique(np.asarray(labels, dtype=str))
    cold = len(names) < 2 or len(labeled_idx) < WARM_PER_CLASS * len(names)
    points = _reduced(features, seed)
    lead = _uncovered_lead(features, points, labeled_idx, labels, n, seed)
    if len(lead.indices) == n:
        return lead
    taken = np.concatenate([labeled_idx, lead.indices])  # the rest as if those were labeled
    if cold:
        rest = _typiclust(points, taken, n - len(lead.indices), seed)
    else:
        rest = _margin_kcenter(
            features, points, labeled_idx, labels, n - len(lead.indices), exclude=lead.indices
        )
    rest = _topped_up(points, np.concatenate([taken, rest.indices]), rest, n - len(lead.indices))
    if not len(lead.indices):
        return rest
    return Suggestion(
        np.concatenate([lead.indices, rest.indices]),
        f"uncovered first, then {rest.strategy}",
        np.concatenate([lead.scores, rest.scores]),
        uncovered_first=len(lead.indices),
    )


def _topped_up(points: np.ndarray, taken: np.ndarray, rest: Suggestion, n: int) -> Suggestion:
    """``rest`` with as many more unlabeled rows as it falls short of ``n`` (k-means may leave
    fewer clusters with an unlabeled image than asked for): each the row farthest from every
    labeled or picked one, so the count asked for is always met while images remain."""
    missing = n - len(rest.indices)
    free = np.setdiff1d(np.arange(len(points)), taken)
    if missing <= 0 or not len(free):
        return rest
    distance = _min_distance(points[free], points[taken]) if len(taken) else np.zeros(len(free))
    extra = []
    for _ in range(min(missing, len(free))):
        best = int(np.argmax(distance))
        extra.append(free[best])
        distance = np.minimum(distance, _min_distance(points[free], points[free[best]][None]))
        distance[best] = -np.inf
    return Suggestion(
        np.concatenate([rest.indices, np.asarray(extra, np.int64)]),
        rest.strategy,
        np.concatenate([rest.scores, np.full(len(extra), np.nan)]),
    )


def _uncovered_lead(
    features: Features,
    points: np.ndarray,
    labeled_idx: np.ndarray,
    labels: list[str] | np.ndarray,
    n: int,
    seed: int,
) -> Suggestion:
    """Typical images of the groups no label covers: one per uncovered group (about)."""
    from sslviz.fewshot.coverage import coverage

    empty = Suggestion(np.zeros(0, np.int64), "none", np.zeros(0))
    if len(np.unique(np.asarray(labels, dtype=str))) < 2:
        return empty  # nothing to calibrate "looks like a labeled group" against
    found = coverage(features, labeled_idx, list(labels))
    outside = np.flatnonzero(~found.covered)
    groups = found.groups_estimated - found.groups_labeled
    if not len(outside) or groups < 1:
        return empty
    picked = _typiclust(points[outside], np.zeros(0, np.int64), min(n, groups, len(outside)), seed)
    return Suggestion(outside[picked.indices], "uncovered", picked.scores)


def _reduced(features: Features, seed: int) -> np.ndarray:
    """(N, <= CLUSTER_DIMS) the cosine features' PCA: the same whatever the labels, so it is
    kept with the features (a labeling page asks again after every label)."""
    key = ("suggest-points", seed)
    if key not in features.derived:
        features.derived[key] = _pca_points(features, seed)
    return features.derived[key]


def _pca_points(features: Features, seed: int) -> np.ndarray:
    x = features.cosine
    if x.shape[1] <= CLUSTER_DIMS or len(x) <= CLUSTER_DIMS:
        return x
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    sample = x[rng.choice(len(x), min(len(x), 20_000), replace=False)]
    pca = PCA(CLUSTER_DIMS, random_state=seed, svd_solver="randomized").fit(sample)
    return pca.transform(x).astype(np.float32)


def _typiclust(points: np.ndarray, labeled_idx: np.ndarray, n: int, seed: int) -> Suggestion:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    k = min(len(labeled_idx) + n, len(points))
    if len(points) > 20_000:
        km = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096)
    else:
        km = KMeans(k, random_state=seed, n_init=3)
    cluster = km.fit_predict(points)  # (N,)
    sizes = np.bincount(cluster, minlength=k)
    covered = np.zeros(k, dtype=bool)
    covered[cluster[labeled_idx]] = True
    rng = np.random.default_rng(seed)
    is_labeled = np.zeros(len(points), dtype=bool)
    is_labeled[labeled_idx] = True
    chosen, scores = [], []
    # Largest uncovered clusters first; then, if still short, covered ones by size.
    order = sorted(range(k), key=lambda c: (covered[c], -sizes[c]))
    for c in order:
        if len(chosen) == n:
            break
        members = np.flatnonzero((cluster == c) & ~is_labeled)
        if not len(members):
            continue
        if len(members) > TYPICALITY_SAMPLE:
            members = rng.choice(members, TYPICALITY_SAMPLE, replace=False)
        typicality = _typicality(points[members])
        best = int(np.argmax(typicality))
        chosen.append(members[best])
        scores.append(typicality[best])
    return Suggestion(np.asarray(chosen, dtype=np.int64), "typiclust", np.asarray(scores))


def _typicality(x: np.ndarray) -> np.ndarray:
    """(m,) inverse mean euclidean distance of each row of x (m, d) to its nearest neighbours."""
    if len(x) == 1:
        return np.ones(1)
    k = min(TYPICAL_K, len(x) - 1)
    squared = (x * x).sum(axis=1)
    d2 = squared[:, None] + squared[None, :] - 2 * (x @ x.T)  # (m, m)
    np.fill_diagonal(d2, np.inf)
    nearest = np.partition(d2, k - 1, axis=1)[:, :k]
    return 1.0 / (np.sqrt(np.maximum(nearest, 0)).mean(axis=1) + 1e-8)


def _margin_kcenter(
    features: Features,
    points: np.ndarray,
    labeled_idx: np.ndarray,
    labels: list[str] | np.ndarray,
    n: int,
    exclude: np.ndarray | None = None,
) -> Suggestion:
    y, classes = encode_labels(labels)
    probabilities = predict_proba(features, labeled_idx, y, len(classes), "logreg")  # (N, K)
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]  # (N,)
    margin[labeled_idx] = np.inf
    if exclude is not None:
        margin[exclude] = np.inf
    pool_size = min(int(np.isfinite(margin).sum()), max(POOL * n, n))
    if pool_size < 1:
        return Suggestion(np.zeros(0, np.int64), "margin+k-center", np.zeros(0))
    pool = np.argpartition(margin, pool_size - 1)[:pool_size]
    # k-center greedy: each pick is the pool image farthest from everything labeled or picked;
    # never more picks than the pool holds (a picked image is out of the running: -inf)
    distance = _min_distance(points[pool], points[labeled_idx])  # (pool,)
    chosen = []
    for _ in range(min(n, pool_size)):
        best = int(np.argmax(distance))
        chosen.append(best)
        distance = np.minimum(distance, _min_distance(points[pool], points[pool[best]][None]))
        distance[best] = -np.inf
    picked = pool[chosen]
    return Suggestion(picked.astype(np.int64), "margin+k-center", margin[picked])


def _min_distance(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(m,) euclidean distance from each row of x (m, d) to the nearest of centres (c, d)."""
    best = np.full(len(x), np.inf)
    for start in range(0, len(centres), 1024):
        c = centres[start : start + 1024]
        d2 = (x * x).sum(1)[:, None] + (c * c).sum(1)[None, :] - 2 * (x @ c.T)
        best = np.minimum(best, np.sqrt(np.maximum(d2, 0)).min(axis=1))
    return best
