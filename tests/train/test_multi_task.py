"""``sslviz train --task multi`` as a user runs it: one encoder, three heads, each head's held-out
figures under ``heads`` in ``sslviz eval --json``, and the run a source like any other."""

from __future__ import annotations

import json

import numpy as np
from test_train_cli import EVAL_KEYS, sslviz


def test_multi_run_end_to_end(home, tiny, tmp_path):
    trained = sslviz(
        "train",
        "--dataset",
        "tiny",
        "--task",
        "multi",
        "--image-size",
        "24",
        "--epochs",
        "2",
        "--batch-size",
        "12",
        "--permutations",
        "30",
        "--json",
        env_home=home,
    )
    out = json.loads(trained.stdout)
    assert out["status"] == "finished" and out["task"] == "multi"
    run = str(out["run"])

    evaluated = json.loads(sslviz("eval", run, "--json", env_home=home).stdout)
    assert evaluated["run"] == out["run"] and evaluated["task"] == "multi"
    assert set(evaluated["heads"]) == {"rotation", "colorization", "jigsaw"}
    for name, head in evaluated["heads"].items():
        assert EVAL_KEYS[name] <= set(head), name
        assert head["task"] == name and head["run"] == out["run"]
        assert {"heldout_images", "chance", "learned", "holdout_by"} <= set(head)
    assert evaluated["heads"]["jigsaw"]["permutations"] == 30
    assert sum(map(sum, evaluated["heads"]["rotation"]["confusion"])) == 4 * 4
    text = sslviz("eval", run, env_home=home).stdout  # each head's figures, one per line
    assert "rotation.accuracy: " in text and "colorization.psnr: " in text

    # every head's loss was logged beside the total (each divided by its loss at chance)
    status = json.loads(sslviz("status", run, "--json", env_home=home).stdout)
    assert status["run"] == out["run"] and status["status"] == "finished"

    # the live demo answers with the rotation head, and shows where it looked
    image = next((tmp_path / "sources" / "tiny").glob("*.png"))
    where = tmp_path / "saliency.png"
    applied = sslviz("apply", run, str(image), "--saliency", str(where), "--json", env_home=home)
    answer = json.loads(applied.stdout)
    assert answer["task"] == "rotation" and len(answer["rotation_probabilities"]) == 4
    assert where.stat().st_size > 0

    # a source like any other: its encoder embeds the dataset
    emb = tmp_path / "multi.npy"
    embedded = sslviz("embed", run, "--dataset", "tiny", "--out", str(emb), "--json", env_home=home)
    assert json.loads(embedded.stdout)["images"] == 40
    vectors = np.load(emb)
    assert vectors.shape[0] == 40 and np.isfinite(vectors).all()


def test_multi_options_are_checked(home, tiny):
    wrong = sslviz(
        "train",
        "--dataset",
        "tiny",
        "--task",
        "multi",
        "--colorization-loss",
        "l2",
        env_home=home,
        check=False,
    )
    assert wrong.returncode != 0 and "colorization option" in wrong.stderr
    assert "Traceback" not in wrong.stderr
