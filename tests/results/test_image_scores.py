"""Per-image pretext scores of a run over a whole dataset (``sslviz scores``): the same numbers
the result pages compute image by image, for every stored image, cached per checkpoint."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from sslviz.cli import main
from sslviz.core.errors import UserError
from sslviz.data.cache import open_cache
from sslviz.models.checkpoint import checkpoint_path
from sslviz.results.colorization_answers import colorization_results
from sslviz.results.image_scores import cached_image_scores, image_scores, scores_file
from sslviz.results.rotation_answers import rotation_probabilities
from sslviz.store import Store
from sslviz.training.evaluate import load_model


def _images(store: Store, run_id: int) -> torch.Tensor:
    _, _, config, _ = load_model(store, run_id)
    return torch.from_numpy(np.array(open_cache(store, 1, config.image_size)))


def test_rotation_scores_are_the_models_probabilities_of_the_stored_image(trained) -> None:
    store = Store.open()
    scores = image_scores(store, trained.rotation, "shapes")
    assert scores.task == "rotation" and scores.headline == "upright"
    assert len(scores) == store.datasets.get_by_name("shapes").n_images
    _, model, _, _ = load_model(store, trained.rotation)
    stored = rotation_probabilities(model, _images(store, trained.rotation))[:, 0]  # (N, 4)
    assert np.allclose(scores.columns["upright"], stored[:, 0].numpy(), atol=1e-4)
    assert np.allclose(scores.columns["sureness"], stored.max(dim=1).values.numpy(), atol=1e-4)
    # The dataset's images all have an unmistakable up: a trained model sees them upright.
    assert float(np.median(scores.columns["upright"])) > 0.5
    assert set(np.unique(scores.columns["seen_turn"])) <= {0.0, 90.0, 180.0, 270.0}


def test_colorization_gain_is_psnr_over_grey_as_the_results_page_measures_it(trained) -> None:
    store = Store.open()
    scores = image_scores(store, trained.colorization, "shapes")
    task, model, _, _ = load_model(store, trained.colorization)
    images = _images(store, trained.colorization)
    page = colorization_results(task, model, [""] * len(images), images)
    assert np.allclose(scores.columns["psnr"], page.psnr.numpy(), atol=1e-3)
    assert np.allclose(scores.columns["psnr_grey"], page.psnr_grey.numpy(), atol=1e-3)
    gain = scores.columns["gain"]
    assert np.allclose(gain, scores.columns["psnr"] - scores.columns["psnr_grey"], atol=1e-4)


def test_jigsaw_scores_count_misplaced_tiles_and_are_cached_per_checkpoint(trained) -> None:
    store = Store.open()
    run = store.runs.get(trained.jigsaw)
    assert cached_image_scores(store, run.id, "shapes") is None  # never computes
    scores = image_scores(store, run.id)  # default: the run's own dataset
    misplaced = scores.columns["misplaced"]
    assert misplaced.min() >= 0 and misplaced.max() <= 9 and np.all(misplaced == misplaced.round())
    assert np.all((scores.columns["confidence"] > 0) & (scores.columns["confidence"] <= 1))
    file = scores_file(store, run, store.datasets.get_by_name("shapes"))
    assert file.exists()
    again = cached_image_scores(store, run.id, "shapes")
    assert again is not None and np.array_equal(again.columns["misplaced"], misplaced)
    # A new checkpoint is a new file; the old one is removed when it is scored.
    checkpoint = checkpoint_path(store.workspace.run_dir(run.id))
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cached_image_scores(store, run.id, "shapes") is None
    image_scores(store, run.id, "shapes")
    assert not file.exists()


def test_scores_cli_json_sorting_and_csv(
    trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.csv"
    code = main(
        [
            "scores",
            str(trained.rotation),
            "--sort",
            "upright",
            "--n",
            "5",
            "--out",
            str(out),
            "--json",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    facts = json.loads(printed.out)
    assert {"run", "task", "dataset", "step", "images", "columns", "scores", "means"} <= set(facts)
    assert facts["columns"] == ["upright", "sureness", "seen_turn"]
    ups = [row["upright"] for row in facts["scores"]]
    assert len(ups) == 5 and ups == sorted(ups)
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == facts["images"] and set(rows[0]) == {"path", *facts["columns"]}
    assert min(float(r["upright"]) for r in rows) == pytest.approx(ups[0], abs=1e-4)

    assert main(["scores", str(trained.rotation), "--sort", "nope"]) == 1
    assert "choose one of upright, sureness, seen_turn" in capsys.readouterr().err


def test_scores_need_a_pretext_run(trained) -> None:
    store = Store.open()
    with pytest.raises(UserError, match="no run"):
        image_scores(store, 999, "shapes")
