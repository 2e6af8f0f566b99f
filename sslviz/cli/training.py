"""``sslviz train`` and ``sslviz eval``: pretext training in the foreground (or handed to the job
runner with ``--background``) and held-out evaluation of a run.

Under torchrun (``torchrun --nproc_per_node N -m sslviz train ...``) the same
``train`` command runs data-parallel: rank 0 creates the run and broadcasts its id.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

from sslviz.cli.foreground import run_here
from sslviz.cli.output import ProgressBar, emit_json, say
from sslviz.core.errors import UserError

TASK_CHOICES = ("rotation", "colorization", "jigsaw", "multi")
TIME_BOUND_EPOCHS = 1000  # with only --time-budget, the budget (not the epochs) ends training


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_train(subparsers)
    _register_eval(subparsers)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train an encoder on a pretext task",
        description="Train an encoder on a self-supervised pretext task over a dataset. "
        "Defaults suit the dataset's size; the run id is printed on stdout.",
    )
    train.add_argument("--dataset", required=True, help="dataset name (see `sslviz datasets`)")
    train.add_argument(
        "--task",
        required=True,
        choices=TASK_CHOICES,
        help="pretext task; multi trains the three heads on one encoder",
    )
    _model_flags(train)
    _schedule_flags(train)
    _task_flags(train)
    train.add_argument(
        "--background",
        action="store_true",
        help="hand the run to the job "
        "runner and return at once; follow it with `sslviz status RUN`",
    )
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    train.set_defaults(handler=run_train)


def _model_flags(train: argparse.ArgumentParser) -> None:
    """What is trained: the encoder and the resolution."""
    train.add_argument(
        "--encoder",
        help="encoder: small-cnn (fast on CPU, default) or resnet18 (better features, use a GPU)",
    )
    train.add_argument(
        "--image-size",
        type=int,
        help="training resolution in px (default 32; "
        "64 for jigsaw, which cuts 3x3 tiles); larger is slower",
    )


def _schedule_flags(train: argparse.ArgumentParser) -> None:
    """How it is trained: epochs, batch, optimizer, device, seed, split and time budget."""
    train.add_argument(
        "--epochs",
        type=int,
        help="passes over the training images (default: "
        "about 1,500 steps' worth; with only --time-budget, the budget decides)",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        help="images per step (default 64); lower it if a GPU runs out of memory",
    )
    train.add_argument(
        "--lr",
        type=float,
        help="peak learning rate (default 1e-3 for AdamW); "
        "lower it if the run fails with a non-finite loss",
    )
    train.add_argument(
        "--optimizer",
        choices=("adamw", "sgd"),
        help="default adamw; sgd wants a higher --lr, e.g. 0.05",
    )
    train.add_argument(
        "--device", help="auto (default: a GPU if there is one), cpu, cuda, cuda:N or mps"
    )
    train.add_argument(
        "--seed",
        type=int,
        help="seed of the held-out split, the order and the augmentations (default 0)",
    )
    train.add_argument(
        "--holdout-by",
        choices=("auto", "folder", "image"),
        help="what the held-out split keeps whole: folder (a folder of crops or near-copies of "
        "one scene is never split between training and held-out), image, or auto (default: by "
        "folder when the images sit in 3 or more folders)",
    )
    train.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="stop training after this many seconds and finish normally (evaluation included)",
    )


def _task_flags(train: argparse.ArgumentParser) -> None:
    """The tasks' own options (each flag says which task it is for)."""
    train.add_argument(
        "--permutations",
        type=int,
        choices=(30, 100, 1000),
        help="jigsaw (and multi's jigsaw head): size of the permutation set (default 100); "
        "more is harder",
    )
    train.add_argument(
        "--colorization-loss",
        choices=("classification", "l2"),
        help="colorization: "
        "classification over ab bins (default, vivid) or l2 regression (greyish)",
    )
    train.add_argument(
        "--temperature",
        type=float,
        help="colorization: annealed-mean "
        "temperature (default 0.38); lower is more vivid, higher is smoother",
    )


def _register_eval(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "eval",
        help="held-out pretext metrics of a run",
        description="Held-out pretext metrics of a run, from its last checkpoint (cached).",
    )
    evaluate.add_argument("run", type=int, metavar="RUN", help="run id (see `sslviz runs`)")
    evaluate.add_argument("--refresh", action="store_true", help="evaluate again even if cached")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    evaluate.set_defaults(handler=run_eval)


def config_from_args(store: Any, args: argparse.Namespace) -> Any:
    """The dataset's default config with the flags the user gave on top."""
    from sslviz.training.config import default_config

    dataset = store.datasets.get_by_name(args.dataset)
    config = default_config(dataset, args.task)
    changes: dict[str, Any] = {
        key: getattr(args, key)
        for key in (
            "encoder",
            "image_size",
            "epochs",
            "batch_size",
            "lr",
            "optimizer",
            "device",
            "seed",
            "time_budget",
            "holdout_by",
        )
        if getattr(args, key) is not None
    }
    if args.time_budget is not None and args.epochs is None:
        changes["epochs"] = TIME_BOUND_EPOCHS
    if args.optimizer == "sgd" and args.lr is None:
        changes["lr"] = 0.05
    options = {}
    for flag, tasks, option in (
        ("permutations", ("jigsaw", "multi"), "permutations"),
        ("colorization_loss", ("colorization",), "loss"),
        ("temperature", ("colorization",), "temperature"),
    ):
        value = getattr(args, flag)
        if value is not None:
            if args.task not in tasks:
                task = tasks[0]
                raise UserError(
                    f"--{flag.replace('_', '-')} is a {task} option: drop it or use --task {task}"
                )
            options[option] = value
    return config.replace(task_options=options, **changes)


def run_train(args: argparse.Namespace) -> int:
    from sslviz.store import Store
    from sslviz.training import distributed

    ctx = distributed.init_from_env(args.device or "auto")
    store = Store.open()
    try:
        if ctx.enabled:
            if args.background:
                raise UserError("--background can't run under torchrun: drop one of them")
            return _train_distributed(store, args, ctx)
        config = config_from_args(store, args)
        if args.background:
            from sslviz.runner import jobs
            from sslviz.training.train import job_request

            run = jobs.submit(store, job_request(store, config))
            if args.json:
                emit_json(_run_json(run))
            else:
                print(run.id)
                say(f"run {run.id} {run.status}: follow it with `sslviz status {run.id}`")
            return 0
        from sslviz.training.train import create_run

        # claimed by this process as it is recorded: no scheduler can start a second trainer
        run = create_run(store, config, claim=True)
        return _foreground(store, run.id, args)
    finally:
        store.close()
        distributed.shutdown()


def _train_distributed(store: Any, args: argparse.Namespace, ctx: Any) -> int:
    """Rank 0 records the run and owns its life in the store (through the job runner's executor
    wrapper); the other ranks only train their shard of every batch."""
    from sslviz.core.liveness import Cancelled
    from sslviz.training import distributed
    from sslviz.training.train import create_run, execute_run

    run_id = None
    if ctx.is_main:
        run_id = create_run(store, config_from_args(store, args), claim=True).id
    run_id = distributed.broadcast_int(run_id)
    if ctx.is_main:
        return _foreground(store, run_id, args)
    with contextlib.suppress(Cancelled):
        execute_run(store, store.runs.get(run_id))
    return 0


def _foreground(store: Any, run_id: int, args: argparse.Namespace) -> int:
    """Train ``run_id`` here with a progress bar; Ctrl-C checkpoints and cancels."""
    run = run_here(store, run_id, "run", callbacks=[_ProgressCallback()])
    result = _run_json(run)
    if run.status == "finished":
        from sslviz.training.evaluate import evaluate_run

        result["eval"] = evaluate_run(store, run.id)
    if args.json:
        emit_json(result)
    else:
        print(run.id)
    if run.status == "failed":
        say(f"run {run.id} failed: {run.error}")
        return 1
    if run.status == "cancelled":
        say(f"run {run.id} cancelled at step {run.step}: `sslviz resume {run.id}` continues it")
        return 130
    say(
        f"run {run.id} finished in {run.work_seconds:.0f} s of training; "
        f"`sslviz eval {run.id}` shows its held-out metrics"
    )
    return 0


def _run_json(run: Any) -> dict[str, Any]:
    """The run as ``status --json`` reports it (``runner.progress``: ``epochs`` is what a time
    budget allows, or did), so the two never disagree."""
    from sslviz.runner.progress import progress_facts

    facts = progress_facts(run)
    return {
        "run": run.id,
        "status": run.status,
        "task": run.kind,
        "encoder": run.model_name,
        "device": run.device,
        "epoch": run.epoch,
        **{k: facts[k] for k in ("epochs", "epochs_limit", "time_budget", "progress")},
        "step": run.step,
        "total_steps": run.total_steps,
        "train_seconds": run.work_seconds,
        "error": run.error,
    }


class _ProgressCallback:
    """The CLI's view of training: a progress bar on stderr (cache building, then steps)."""

    def __init__(self) -> None:
        self.bar: ProgressBar | None = None
        self.cache_bar: ProgressBar | None = None
        self.last = 0.0

    def on_cache_progress(self, done: int, total: int) -> None:
        if self.cache_bar is None:
            self.cache_bar = ProgressBar(total, "decoding images")
        self.cache_bar.update(done)
        if done >= total:
            self.cache_bar.close()

    def on_train_start(self, state: Any) -> None:
        # a time-bound run shows seconds of its budget, others show steps
        self.timed = bool(state.time_budget)
        total = round(state.time_budget) if self.timed else state.total_steps
        self.bar = ProgressBar(total, "training (s)" if self.timed else "training")

    def _done(self, state: Any) -> int:
        return int(state.train_seconds) if self.timed else state.step

    def on_step_end(self, state: Any) -> None:
        now = time.monotonic()
        if self.bar is not None and now - self.last >= 0.2:
            self.last = now
            self.bar.update(
                self._done(state),
                f"loss {state.loss:.3f} {state.metric_name} "
                f"{state.metric:.3f} epoch {min(state.epoch + 1, state.epochs)}",
            )

    def on_epoch_end(self, state: Any) -> None: ...

    def on_train_end(self, state: Any, status: str) -> None:
        if self.bar is not None:
            self.bar.update(self._done(state))
            self.bar.close()


def run_eval(args: argparse.Namespace) -> int:
    from sslviz.store import Store
    from sslviz.training.evaluate import evaluate_run

    store = Store.open()
    try:
        results = evaluate_run(store, args.run, refresh=args.refresh)
    finally:
        store.close()
    if args.json:
        emit_json(results)
        return 0
    from sslviz.training.chance import verdict

    heads = results.get("heads") or {}  # a multi-task run: each head's figures, prefixed
    rows = [(k, v) for k, v in results.items() if k != "heads"]
    rows += [(f"{head}.{k}", v) for head, part in heads.items() for k, v in part.items()]
    for key, value in rows:
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    said = verdict(results)
    if said:
        print(said)
    return 0
