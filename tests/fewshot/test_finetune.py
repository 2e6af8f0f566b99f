"""Fine-tuning a run's encoder on a few labels: the split, the augmentation, a tiny encoder that
reaches its labels on separable data, too few labels per class, and the job runner's cancel,
kill -9 and resume. Real SQLite, real PNG files, real worker processes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from finetune_helpers import first_per_class, make_labeled_dataset, train_parent
from threadpoolctl import threadpool_limits
from waiting import wait_for

from sslviz.fewshot.finetune import (
    FineTuneConfig,
    finetune_result,
    submit_finetune,
)
from sslviz.fewshot.finetune_data import augment_labeled, augment_strong, split_labels
from sslviz.runner import jobs
from sslviz.runner.execute import execute
from sslviz.store import Store

START_TIMEOUT = 120  # a worker imports torch on a busy 2-core machine
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory):
    """One workspace for the module: 3 colour classes x 20 images, a parent rotation run."""
    with pytest.MonkeyPatch.context() as patch, threadpool_limits(1):
        home = tmp_path_factory.mktemp("finetune")
        patch.setenv("SSLVIZ_HOME", str(home))
        patch.setenv("SSLVIZ_WORKER_THREADS", "1")
        patch.delenv("SSLVIZ_MAX_RUNS_PER_DEVICE", raising=False)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # 2 shared cores: more threads only spin
        store = Store.open(home)
        truth = make_labeled_dataset(store, "colours", ("red", "green", "blue"), 20, size=16)
        parent = train_parent(store, "colours")
        try:
            yield SimpleNamespace(store=store, truth=truth, parent=parent)
        finally:
            for run in store.runs.list(("running", "queued")):
                if run.pid and jobs.is_worker_process(run.pid, run.id):
                    os.killpg(run.pid, signal.SIGKILL)
            store.close()
            torch.set_num_threads(threads)


def _predictions(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_split_is_three_way_stratified_deterministic_and_disjoint():
    labels = {f"{c}/{i}.png": c for c in "abc" for i in range(10)}
    split = split_labels(labels, 0.2, seed=0)
    assert split == split_labels(dict(reversed(labels.items())), 0.2, seed=0)  # order-free
    train, select, held = set(split["train"]), set(split["select"]), set(split["holdout"])
    assert not train & held and not train & select and not select & held
    assert sorted(train | select | held) == sorted(labels)
    for part in ("holdout", "select"):
        chosen = [labels[p] for p in split[part]]
        assert {c: chosen.count(c) for c in "abc"} == {"a": 2, "b": 2, "c": 2}
    assert split["note"] is None
    assert split_labels(labels, 0.2, seed=1)["holdout"] != split["holdout"]


def test_too_few_labels_per_class_hold_nothing_out_and_say_so():
    split = split_labels({"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b"}, 0.2, seed=0)
    assert split["holdout"] == [] == split["select"] and len(split["train"]) == 5
    assert "too few labels per class" in split["note"] and "'b' has 2" in split["note"]
    # three a class: one untouched, none to spare for early stopping (a fixed schedule)
    three = split_labels({f"{c}{i}": c for c in "ab" for i in range(3)}, 0.2, seed=0)
    assert len(three["holdout"]) == 2 and three["select"] == [] and len(three["train"]) == 4
    assert "inner split" in three["note"]


def test_augmentation_is_batched_and_only_moves_what_it_is_asked_to():
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    out = augment_labeled(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert not torch.equal(out, images)
    still = augment_labeled(
        images, torch.Generator().manual_seed(0), flip=False, min_scale=1.0, jitter=0.0
    )
    # crop of the full area at aspect ~1: the image itself, up to resampling at the edges
    assert (still.int() - images.int()).abs().float().mean() < 40
    again = augment_labeled(images, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # a pure function of the generator: resumes see the same
    strong = augment_strong(images, torch.Generator().manual_seed(0))
    assert strong.shape == images.shape and strong.dtype == torch.uint8
    # Cutout: every image has a grey square of a quarter of its area
    grey = (strong == 127).all(1).flatten(1).sum(1)  # (B,) grey pixels per image
    assert (grey >= 64).all()
    assert torch.equal(strong, augment_strong(images, torch.Generator().manual_seed(0)))


def test_a_tiny_encoder_reaches_its_labels_and_predicts_the_rest(space):
    store, truth = space.store, space.truth
    labels = first_per_class(truth, 10)  # 30 labels: 18 train, 6 choose the state, 6 untouched
    config = FineTuneConfig(steps=90, probe_steps=30, batch_size=16, eval_every=10)
    run = submit_finetune(
        store, space.parent, labels, config=config, device="cpu", background=False
    )
    assert run.status == "running" and run.pid == os.getpid()  # claimed by this process
    done = execute(store, run.id)
    assert done.status == "finished", done.error
    assert (done.kind, done.parent_id, done.model_name) == ("finetune", space.parent, "small-cnn")
    result = finetune_result(store, run.id)
    assert result["holdout_labels"] == 6 and result["labeled"] == 30 and result["predicted"] == 60
    assert result["holdout_accuracy"] >= 5 / 6
    assert not set(result["holdout"]) & set(result["train"])
    assert result["select_labels"] == 6 and not set(result["select"]) & set(result["holdout"])
    rows = _predictions(result["predictions"])
    assert list(rows[0]) == ["path", "label", "confidence", "labeled"] and len(rows) == 60
    for row in rows:
        if row["path"] in labels:  # labeled rows keep their given label
            assert (row["label"], row["labeled"], float(row["confidence"])) == (
                labels[row["path"]],
                "true",
                1.0,
            )
    rest = [r for r in rows if r["labeled"] == "false"]
    assert np.mean([r["label"] == truth[r["path"]] for r in rest]) >= 0.9
    keys = set(store.runs.metric_keys(run.id))
    assert {"loss", "accuracy", "select/loss", "eval/holdout_accuracy"} <= keys

    # a fine-tune is an embedding source: the encoder of its best state (the parent's as it
    # was if early stopping kept the linear probe, which leaves the encoder untouched)
    from sslviz.maps.embed import embed

    tuned, frozen = embed(store, "colours", run.id), embed(store, "colours", space.parent)
    assert tuned.source == str(run.id) and tuned.vectors.shape == frozen.vectors.shape
    moved = result["best_step"] > config.probe_steps
    assert np.allclose(tuned.vectors, frozen.vectors) != moved


def test_the_checkpoint_is_chosen_on_an_inner_split_and_the_accuracy_on_untouched_labels(space):
    """Issue 14: the state was chosen by the lowest loss on the held-out labels and the accuracy
    then reported on those same labels. Now the select labels choose, the untouched ones only
    measure: the reported accuracy is the share of the untouched labels the model got right in
    what it said before it ever saw them, and nothing evaluated on them during training."""
    store = space.store
    labels = first_per_class(space.truth, 10)
    config = FineTuneConfig(steps=40, probe_steps=20, batch_size=16, eval_every=10, seed=3)
    run = submit_finetune(
        store, space.parent, labels, config=config, device="cpu", background=False
    )
    assert execute(store, run.id).status == "finished"
    result = finetune_result(store, run.id)
    untouched, select = set(result["holdout"]), set(result["select"])
    assert untouched and select and not untouched & select
    assert not untouched & (set(result["train"]) | select)
    evaluated = store.runs.metric_keys(run.id)
    assert "select/loss" in evaluated and not any(k.startswith("holdout/") for k in evaluated)
    assert result["select_loss"] is not None and result["best_step"] % 10 == 0
    said = result["holdout_predictions"]
    assert set(said) == untouched
    right = sum(said[p] == labels[p] for p in untouched) / len(untouched)
    assert result["holdout_accuracy"] == pytest.approx(right)


def test_semi_supervised_fine_tuning_learns_from_unlabeled_images_too(space):
    """FixMatch on top of the labeled loss: a run like any other, with the share of unlabeled
    images confident enough to teach logged at each evaluation."""
    store = space.store
    labels = first_per_class(space.truth, 5)
    config = FineTuneConfig(
        steps=30,
        probe_steps=10,
        batch_size=8,
        eval_every=10,
        semi_supervised=True,
        unlabeled_batch=16,
        threshold=0.5,
    )
    run = submit_finetune(
        store, space.parent, labels, config=config, device="cpu", background=False
    )
    done = execute(store, run.id)
    assert done.status == "finished", done.error
    result = finetune_result(store, run.id)
    assert result["semi_supervised"] is True and result["predicted"] == 60
    assert result["holdout_labels"] == 3 and result["select_labels"] == 3
    confident = store.runs.metrics(run.id, "unlabeled/confident")
    assert confident and all(0.0 <= m.value <= 1.0 for m in confident)


def test_too_few_labels_per_class_train_on_all_and_never_crash(space):
    labels = first_per_class(space.truth, 2)
    config = FineTuneConfig(steps=20, probe_steps=10, eval_every=10)
    run = submit_finetune(
        space.store, space.parent, labels, config=config, device="cpu", background=False
    )
    done = execute(space.store, run.id)
    assert done.status == "finished", done.error
    result = finetune_result(space.store, run.id)
    assert result["holdout_accuracy"] is None and result["holdout_labels"] == 0
    assert "too few labels per class" in result["note"]
    assert result["predicted"] == 60 and done.step == 20  # the fixed schedule, to its end


def test_single_class_labels_are_refused(space):
    from sslviz.core.errors import UserError

    with pytest.raises(UserError, match="at least 2 classes"):
        submit_finetune(space.store, space.parent, {"red/000.png": "red"})


@pytest.mark.slow
def test_background_finetune_survives_cancel_and_kill_then_resumes_to_finished(space):
    store = space.store
    labels = first_per_class(space.truth, 10)
    config = FineTuneConfig(
        steps=800,
        probe_steps=50,
        batch_size=8,
        eval_every=10,
        patience=10**6,
        checkpoint_seconds=0.2,
    )
    run = submit_finetune(store, space.parent, labels, config=config, device="cpu")
    ckpt = store.workspace.run_dir(run.id) / "checkpoints" / "last.pt"
    log = store.workspace.run_dir(run.id) / jobs.LOG_NAME

    # cancel: the worker checkpoints and ends `cancelled` within seconds
    wait_for(lambda: store.runs.get(run.id).step >= 20 and ckpt.exists(), START_TIMEOUT)
    jobs.cancel(store, run.id)
    cancelled = jobs.wait(store, run.id, 20)
    assert cancelled.status == "cancelled", (cancelled.status, cancelled.error)
    assert 0 < cancelled.step < 800

    # resume, then kill -9 mid-run: reaped as interrupted
    jobs.resume(store, run.id)
    victim = wait_for(
        lambda: (
            (r := store.runs.get(run.id)).status == "running"
            and r.pid
            and r.step >= cancelled.step + 20
            and r
        ),
        START_TIMEOUT,
    )
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(lambda: not jobs.is_worker_process(victim.pid, run.id), 10)
    jobs.reap(store)
    assert store.runs.get(run.id).status == "interrupted"

    # resume through the CLI, as a user would: it continues from the checkpoint to the end
    resumed = subprocess.run(
        [sys.executable, "-m", "sslviz", "resume", str(run.id)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    done = wait_for(
        lambda: (r := store.runs.get(run.id)).status not in ("queued", "running") and r,
        START_TIMEOUT,
    )
    assert done.status == "finished", done.error
    assert done.step == 800 and done.progress == 1.0
    text = log.read_text()
    assert text.count(f"worker: run {run.id}, pid") == 3
    assert text.count("fine-tune: resumed from step") == 2  # never restarted from scratch
    result = finetune_result(store, run.id)
    assert result["predicted"] == 60 and result["holdout_accuracy"] is not None
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "sslviz", "status", str(run.id), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    assert (status["status"], status["task"]) == ("finished", "finetune")


def _sslviz(*args: str) -> subprocess.CompletedProcess:
    # a foreground fine-tune with --out also embeds the dataset with the fine-tuned encoder
    return subprocess.run(
        [sys.executable, "-m", "sslviz", *args], capture_output=True, text=True, timeout=400
    )


@pytest.mark.slow
@pytest.mark.timeout(900)  # two CLI fine-tunes and an embedding on a shared 2-core machine
def test_the_cli_fine_tunes_in_the_foreground_and_in_the_background(space, tmp_path):
    labels = first_per_class(space.truth, 10)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label\n" + "".join(f"{p},{v}\n" for p, v in labels.items()))
    out = tmp_path / "predictions.csv"
    done = _sslviz(
        "finetune",
        str(space.parent),
        "--labels",
        str(csv_file),
        "--out",
        str(out),
        "--steps",
        "30",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "finished" and (result["labeled"], result["predicted"]) == (30, 60)
    assert result["run"] != space.parent
    # --out holds the better of the two answers on the labels the fine-tune never touched (it
    # used to copy the head's, usually the weaker): the head's guesses and the encoder read with
    # auto's rule are each scored there, and the file is the one that scored higher
    head, encoder = result["holdout_accuracy_head"], result["holdout_accuracy_encoder"]
    assert head == result["holdout_accuracy"] and result["holdout_labels"] >= 6
    held = json.loads((space.store.workspace.run_dir(result["run"]) / "finetune.json").read_text())
    guesses = held["holdout_predictions"]
    assert head == pytest.approx(np.mean([guesses[p] == labels[p] for p in held["holdout"]]))
    assert result["predictions_from"] == ("head" if head > encoder else "encoder")
    rows = _predictions(str(out))
    assert len(rows) == 60
    head_rows = _predictions(str(space.store.workspace.run_dir(result["run"]) / "predictions.csv"))
    if result["predictions_from"] == "head":
        assert rows == head_rows
    rest = [r for r in rows if r["labeled"] == "false"]
    right = np.mean([r["label"] == space.truth[r["path"]] for r in rest])
    head_right = np.mean(
        [r["label"] == space.truth[r["path"]] for r in head_rows if r["labeled"] == "false"]
    )
    assert right >= 0.9  # the colours are easy for the chosen answer
    assert right >= head_right - 0.05  # never the clearly weaker answer of the two

    queued = json.loads(
        _sslviz(
            "finetune",
            str(space.parent),
            "--labels",
            str(csv_file),
            "--steps",
            "5000",
            "--background",
            "--json",
        ).stdout
    )
    assert queued["status"] in ("queued", "running")
    # cancel once its worker owns it: it looks for a stop before training and at every step, and
    # no early stop can end it before step 200 (probe + patience), so the cancel always lands
    wait_for(lambda: space.store.runs.get(queued["run"]).claimed_at is not None, START_TIMEOUT)
    jobs.cancel(space.store, queued["run"])
    ended = jobs.wait(space.store, queued["run"], 60)
    assert ended.status == "cancelled", (ended.status, ended.error)
    assert ended.step < 5000

    csv_file.write_text("path,label\nnot/there.png,red\nred/000.png,red\n")
    bad = _sslviz("finetune", str(space.parent), "--labels", str(csv_file), "--json")
    assert bad.returncode == 1 and bad.stdout == "" and len(bad.stderr.splitlines()) == 1
