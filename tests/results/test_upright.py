"""The upright data check: images stored turned are found, with the turn that fixes them, at the
default threshold; the CLI writes the CSV."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from trained_runs import oriented_image

from sslviz.core.errors import UserError
from sslviz.data import ingest
from sslviz.results.upright import (
    find_turned,
    rotate_by,
    stored_turn_probabilities,
    upright_check,
)
from sslviz.store import Store


def test_rotate_by_undoes_the_turn() -> None:
    """Property: an image turned k quarter turns counter-clockwise comes back upright with
    PIL's rotate(rotate_by(k), expand=True)."""
    a = Image.fromarray(oriented_image(np.random.default_rng(1), 40)[:, :30])
    for k in range(4):
        stored = a.rotate(90 * k, expand=True)
        assert np.array_equal(np.asarray(stored.rotate(rotate_by(k), expand=True)), np.asarray(a))
    # and the model's class k is torch.rot90's counter-clockwise turn, the same as PIL's
    x = torch.from_numpy(np.asarray(a).copy()).permute(2, 0, 1)
    assert np.array_equal(
        torch.rot90(x, 1, (1, 2)).permute(1, 2, 0).numpy(), np.asarray(a.rotate(90, expand=True))
    )


def test_find_turned_keeps_only_sure_turns() -> None:
    q = torch.tensor([[0.9, 0.05, 0.03, 0.02], [0.02, 0.95, 0.02, 0.01], [0.3, 0.4, 0.2, 0.1]])
    found = find_turned(["a", "b", "c"], q, min_confidence=0.9)
    assert [(t.path, t.rotate_by) for t in found] == [("b", 270)]


@pytest.mark.slow
def test_turned_images_are_found(trained, tmp_path) -> None:
    rng = np.random.default_rng(11)
    folder = tmp_path / "held"
    folder.mkdir()
    truth = {}
    for i in range(40):
        k = int(rng.integers(1, 4)) if i % 4 == 0 else 0
        Image.fromarray(oriented_image(rng)).rotate(90 * k, expand=True).save(folder / f"{i}.png")
        truth[f"{i}.png"] = rotate_by(k) if k else 0
    store = Store.open()
    ingest(store, [folder], name="held", workers=1)
    out = tmp_path / "turned.csv"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sslviz",
            "upright",
            str(trained.rotation),
            "--dataset",
            "held",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(run.stdout)
    assert result["checked"] == 40 and result["run"] == trained.rotation
    listed = result["turned"]
    conf = [t["confidence"] for t in listed]
    assert conf == sorted(conf, reverse=True)
    right = sum(truth[t["path"]] == t["rotate_by"] for t in listed)
    turned = sum(1 for v in truth.values() if v)
    assert right / max(1, len(listed)) >= 0.8 and right / turned >= 0.6, (right, listed)
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [t["path"] for t in listed]
    with pytest.raises(UserError, match="rotation run"):
        upright_check(store, trained.jigsaw, store.datasets.get_by_name("held"))


def test_probabilities_follow_the_stored_turn(trained) -> None:
    """q is a distribution per image over the four stored turns."""
    from sslviz.training.evaluate import load_model

    _, model, _, _ = load_model(Store.open(), trained.rotation)
    x = torch.from_numpy(np.stack([oriented_image(np.random.default_rng(i), 32) for i in range(4)]))
    q = stored_turn_probabilities(model, x.permute(0, 3, 1, 2).contiguous())
    assert q.shape == (4, 4) and torch.allclose(q.sum(1), torch.ones(4), atol=1e-5)
