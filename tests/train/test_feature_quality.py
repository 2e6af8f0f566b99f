"""A run says whether it is still learning, without labels: at each checkpoint the effective rank
of a fixed sample's embedding and its k-NN agreement with the previous checkpoint's (and, with a
labeling session, few-shot accuracy). The curve moves on a run that learns and stays flat on one
whose learning rate is (all but) 0."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_train_cli import sslviz

from sslviz.fewshot.monitor import neighbour_agreement, neighbours
from sslviz.runner.execute import execute
from sslviz.store import Store
from sslviz.training import train
from sslviz.training.config import TrainConfig
from sslviz.training.feature_quality import FLAT, STILL_IMPROVING, advice, feature_quality

KEYS = {"step", "effective_rank", "knn_agreement", "fewshot_accuracy"}


def _run(store: Store, lr: float, epochs: int = 6) -> list[dict]:
    config = TrainConfig(
        dataset="tiny", task="rotation", image_size=16, epochs=epochs, batch_size=8, lr=lr
    )
    run = execute(store, train.create_run(store, config).id)
    assert run.status == "finished", run.error
    return feature_quality(store, run.id)


def test_the_curve_moves_when_the_run_learns_and_is_flat_at_learning_rate_zero(
    store: Store, tiny
) -> None:
    learning = _run(store, lr=3e-3)
    # the smallest rate the config takes (it refuses 0): the weights move by ~1e-12 a step
    frozen = _run(store, lr=1e-12)
    for points in (learning, frozen):
        assert len(points) >= 4 and all(set(p) == KEYS for p in points)
        assert points[0]["step"] == 0 and points[0]["knn_agreement"] is None
        assert all(p["fewshot_accuracy"] is None for p in points)  # no labeling session
    ranks = [p["effective_rank"] for p in learning]
    agreements = [p["knn_agreement"] for p in learning[1:]]
    assert max(ranks) - min(ranks) > 0.1 * max(ranks)  # the features changed
    assert min(agreements) < 0.8  # neighbourhoods moved
    frozen_ranks = [p["effective_rank"] for p in frozen]
    assert max(frozen_ranks) - min(frozen_ranks) < 1e-3 * max(frozen_ranks)
    assert all(p["knn_agreement"] > 0.99 for p in frozen[1:])
    assert advice(frozen) == FLAT


def test_status_json_carries_the_curve_and_a_session_adds_fewshot_accuracy(
    home, store: Store, tiny
) -> None:
    images = store.datasets.images(tiny.id)
    session = store.sessions.create(dataset_id=tiny.id, name="s", source="random")
    # two labels by where the bright band sits: a real if weak signal, 24 labels in 2 classes
    store.sessions.set_labels(
        session.id, {im.id: ("a" if i % 2 else "b") for i, im in enumerate(images[:24])}
    )
    trained = sslviz(
        "train",
        "--dataset",
        "tiny",
        "--task",
        "rotation",
        "--image-size",
        "16",
        "--epochs",
        "3",
        "--batch-size",
        "12",
        "--json",
        env_home=home,
    )
    run = json.loads(trained.stdout)["run"]
    status = json.loads(sslviz("status", str(run), "--json", env_home=home).stdout)
    points = status["feature_quality"]
    assert len(points) >= 2 and all(set(p) == KEYS for p in points)
    assert [p["step"] for p in points] == sorted({p["step"] for p in points})
    assert all(0.0 <= p["fewshot_accuracy"] <= 1.0 for p in points)
    assert all(0.0 <= p["knn_agreement"] <= 1.0 for p in points[1:])
    text = sslviz("status", str(run), env_home=home).stdout
    assert "feature quality: effective rank" in text


def test_neighbour_agreement_is_one_for_the_same_embedding_and_drops_when_shuffled() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    near = neighbours(x)
    assert near.shape == (200, 10) and not (near == np.arange(200)[:, None]).any()
    assert neighbour_agreement(near, neighbours(3.0 * x)) == 1.0  # cosine: scale-free
    shuffled = neighbours(x[rng.permutation(200)])
    assert neighbour_agreement(near, shuffled) < 0.2


@pytest.mark.parametrize(
    "agreements,ranks,expected",
    [
        ([0.99, 0.995, 0.999], [10.0, 10.1, 10.1], FLAT),
        ([0.6, 0.7, 0.8], [10.0, 10.1, 10.1], STILL_IMPROVING),  # neighbourhoods still move
        ([0.99, 0.99, 0.99], [10.0, 11.0, 12.0], STILL_IMPROVING),  # rank still changes
    ],
)
def test_advice_rule_on_the_last_third(agreements, ranks, expected) -> None:
    early = [
        {"step": s, "effective_rank": 5.0, "knn_agreement": 0.1, "fewshot_accuracy": None}
        for s in (0, 10, 20, 30, 40, 50)
    ]
    tail = [
        {"step": s, "effective_rank": r, "knn_agreement": a, "fewshot_accuracy": None}
        for s, a, r in zip((70, 80, 90), agreements, ranks, strict=True)
    ]
    assert advice(early + tail) == expected
    assert advice(early[:2]) is None  # too few checkpoints to say
