"""``covered``: labels for only some groups. Checked by holding out whole labels: the images of
groups nobody labeled are marked uncovered, the labeled groups' images covered; every export says
so, and the suggestions lead with the uncovered groups."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_fewshot_predictors import blobs, first

from sslviz.fewshot.coverage import coverage
from sslviz.fewshot.export import parquet_bytes, predictions_csv
from sslviz.fewshot.predict import predict_vectors
from sslviz.fewshot.predictors import Features
from sslviz.fewshot.suggest import suggest


def _half_labeled(per: int):
    x, y = blobs(n=540, classes=6, dim=20, seed=2)
    kept = np.isin(y, ["c0", "c1", "c2"])
    idx = first(np.where(kept, y, "~"), per)
    idx = idx[kept[idx]]  # `per` labels each of three groups; three groups nobody labeled
    return x, y, kept, idx


def test_groups_nobody_labeled_are_uncovered_and_labeled_ones_covered() -> None:
    x, y, kept, idx = _half_labeled(4)
    found = coverage(Features(x), idx, list(y[idx]))
    assert (~found.covered[~kept]).mean() >= 0.9
    assert found.covered[kept].mean() >= 0.9
    assert found.sure and found.groups_labeled == 3 and 5 <= found.groups_estimated <= 7
    assert "cover about 3 of" in found.warning()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_label_per_class_with_every_class_labeled_marks_few_and_says_it_is_unsure(
    seed: int,
) -> None:
    """With 1 label for each of 10 overlapping groups, the group count said "10 of 12-14" and
    19-28% of the images were "not covered" (a clip-art folder: 10 of 14-40, 129-325 of 434):
    nothing tells how far a group reaches around its one label. Now the count is the labeled
    groups, flagged unsure, and only images farther from every label than the labels are from
    each other are uncovered."""
    from sklearn.datasets import make_blobs

    x, y = make_blobs(1000, 20, centers=10, cluster_std=3.0, center_box=(-8, 8), random_state=0)
    rng = np.random.default_rng(seed)
    idx = np.array([rng.choice(np.flatnonzero(y == c)) for c in range(10)])
    found = coverage(Features(x.astype(np.float32)), idx, [f"c{v}" for v in y[idx]])
    assert found.uncovered <= 20, found.uncovered  # of 1,000
    assert (found.groups_labeled, found.groups_estimated, found.sure) == (10, 10, False)
    assert found.warning() is None or "can't tell how many groups" in found.warning()


def test_one_label_per_group_with_groups_nobody_labeled_says_it_is_unsure() -> None:
    x, y, kept, idx = _half_labeled(1)
    found = coverage(Features(x), idx, list(y[idx]))
    assert not found.sure and found.groups_estimated == found.groups_labeled == 3
    assert found.covered[kept].mean() >= 0.9


def test_all_groups_labeled_means_everything_covered_and_no_warning() -> None:
    x, y = blobs(n=300, classes=3, dim=20)
    idx = first(y, 4)
    found = coverage(Features(x), idx, list(y[idx]))
    assert found.covered.mean() >= 0.97
    assert found.uncovered < 10


def test_exports_carry_covered_and_the_same_confidence_for_labeled_rows() -> None:
    x, y, kept, idx = _half_labeled(4)
    paths = [f"{i:04d}.png" for i in range(len(y))]
    result = predict_vectors(x, paths, {paths[i]: y[i] for i in idx}, "logreg")
    payload = result.to_json()
    assert payload["covered_fraction"] == pytest.approx(result.covered.mean(), abs=1e-4)
    assert 0.4 <= payload["covered_fraction"] <= 0.6 and payload["uncovered"] > 200

    lines = predictions_csv(result).splitlines()
    assert lines[0] == "path,label,confidence,labeled,covered"
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert all(rows[paths[i]][2:] == ["1.0000", "true", "true"] for i in idx)
    assert sum(r[4] == "false" for r in rows.values()) == payload["uncovered"]

    table = pq.read_table(io.BytesIO(parquet_bytes(result, x))).to_pydict()
    labeled = [k for k, flag in enumerate(table["labeled"]) if flag]
    assert {table["confidence"][k] for k in labeled} == {1.0}  # as in the CSV
    assert table["covered"] == [bool(c) for c in result.covered]


def test_suggestions_lead_with_the_groups_nobody_labeled() -> None:
    x, y, kept, idx = _half_labeled(6)
    picked = suggest(x, idx, list(y[idx]), n=6)
    assert len(picked.indices) == 6, picked.strategy  # exactly what was asked for (it gave 9)
    assert len(set(picked.indices)) == 6 and not set(picked.indices) & set(idx)
    assert picked.uncovered_first >= 2 and picked.strategy.startswith("uncovered first")
    lead = picked.indices[: picked.uncovered_first]
    assert not kept[lead].any()  # every leading pick is from a group nobody labeled
    assert len(set(y[lead])) >= 2  # spread over those groups, not one


def test_calibration_memory_is_linear_in_the_labels() -> None:
    """The calibration built an (n, n, D) array of differences: 184 MB at 300 labels of width 512
    (94 GB at the 2,000-label cap and width 3,072). Chunked distances need a few MB."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x = rng.normal(size=(900, 512)).astype(np.float32)
    idx = np.arange(300)
    names = [f"c{i % 10}" for i in idx]
    features = Features(x)
    features.cosine  # noqa: B018  prepared before measuring: only the calibration counts
    tracemalloc.start()
    found = coverage(features, idx, names)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 30e6, f"{peak / 1e6:.0f} MB"
    assert found.covered.shape == (900,)


@pytest.mark.slow  # a UMAP fit
def test_the_space_follows_the_request_not_the_cache(tmp_path, home, store) -> None:
    """`predict --method logreg` gave one covered column before anyone ran `auto` and another
    after, because `auto` had cached a UMAP it then measured in."""
    import csv

    from finetune_helpers import first_per_class, make_labeled_dataset

    from sslviz.cli import main

    truth = make_labeled_dataset(store, "toys", ("red", "green", "blue"), 20, size=16)
    given = {p: v for p, v in first_per_class(truth, 4).items() if v != "blue"}
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{v}\n" for p, v in given.items()))

    def covered(method: str) -> list[str]:
        out = tmp_path / f"{method}.csv"
        args = ["predict", "pixels", "--dataset", "toys", "--labels", str(labels)]
        assert main([*args, "--out", str(out), "--method", method]) == 0
        return [row["covered"] for row in csv.DictReader(out.open())]

    before = covered("logreg")
    covered("umap-logreg")  # fits and caches the UMAP, as an `auto` run does
    assert covered("logreg") == before
