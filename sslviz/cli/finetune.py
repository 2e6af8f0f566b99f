"""``sslviz finetune`` and ``sslviz leaderboard``: fine-tune a run's encoder on a labels CSV (in
the foreground, or as a background run of the job runner), and rank every source for the labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sslviz.cli.foreground import run_here
from sslviz.cli.output import ProgressBar, emit_json, output_file, say
from sslviz.core.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    finetune = subparsers.add_parser(
        "finetune",
        help="fine-tune a run's encoder on labeled images",
        description="Train a run's encoder with a linear head on the labeled images, then "
        "predict every image of the dataset. A share of the labels chooses the checkpoint "
        "(early stopping) and another share is left untouched: the reported held-out accuracy "
        "is measured there. The fine-tune is a run of its own: `sslviz status`, `cancel`, "
        "`resume` and `embed` work on it.",
    )
    finetune.add_argument("run", type=int, metavar="RUN", help="run id to start from")
    finetune.add_argument("--labels", required=True, type=Path, help="CSV with a header path,label")
    finetune.add_argument(
        "--out", type=Path, help="write the predictions CSV here (path,label,confidence,labeled)"
    )
    finetune.add_argument(
        "--steps",
        type=int,
        help="optimizer steps planned (default 300; early stopping may end sooner)",
    )
    finetune.add_argument(
        "--seed", type=int, help="seed of the split and augmentations (default 0)"
    )
    finetune.add_argument(
        "--semi-supervised",
        action="store_true",
        help="also learn from every unlabeled image (FixMatch: a confident prediction on a "
        "lightly augmented image is the target for a heavily augmented one); slower per step",
    )
    finetune.add_argument(
        "--threshold",
        type=float,
        help="with --semi-supervised: the confidence a pseudo-label needs (default 0.8; lower "
        "it if few unlabeled images pass, as the run's unlabeled/confident metric shows)",
    )
    finetune.add_argument(
        "--device", default="auto", help="auto (default: a GPU if there is one), cpu, cuda, mps"
    )
    finetune.add_argument(
        "--background",
        action="store_true",
        help="hand the run to the job runner and return at once; follow it with `sslviz status`",
    )
    finetune.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    finetune.set_defaults(handler=run_finetune)

    board = subparsers.add_parser(
        "leaderboard",
        help="rank runs, layers and baselines for a labels CSV",
        description="Cross-validated accuracy of every source (pixels, random, each finished "
        "run at two poolings, each fine-tune) on the labeled images, best first.",
    )
    board.add_argument("--dataset", required=True, help="dataset name (see `sslviz datasets`)")
    board.add_argument("--labels", required=True, type=Path, help="CSV with a header path,label")
    board.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    board.set_defaults(handler=run_leaderboard)


def run_finetune(args: argparse.Namespace) -> int:
    from sslviz.fewshot.finetune import (
        FineTuneConfig,
        finetune_result,
        submit_finetune,
    )
    from sslviz.fewshot.labels_csv import read_labels_csv
    from sslviz.store import Store

    output_file("--out", args.out)  # before the fine-tune, not after it
    store = Store.open()
    try:
        parent = store.runs.get(args.run)
        labels = read_labels_csv(store, parent.dataset_id, args.labels)
        names = ("steps", "seed", "threshold")
        changes = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
        if args.threshold is not None and not args.semi_supervised:
            raise UserError("--threshold is for --semi-supervised: add it, or drop --threshold")
        if args.semi_supervised:
            changes["semi_supervised"] = True
        if args.steps is not None:  # a third of a short schedule for the linear probe, at most
            changes["probe_steps"] = min(FineTuneConfig.probe_steps, args.steps // 3)
        config = FineTuneConfig(**changes)
        if args.background:
            if args.out:
                raise UserError(
                    "--out needs the foreground: drop --background, or copy "
                    "runs/<id>/predictions.csv when the run ends"
                )
            run = submit_finetune(store, args.run, labels, config=config, device=args.device)
            if args.json:
                emit_json({"run": run.id, "status": run.status, "parent": args.run})
            else:
                print(run.id)
                say(f"fine-tune {run.id} {run.status}: follow it with `sslviz status {run.id}`")
            return 0
        run = submit_finetune(
            store, args.run, labels, config=config, device=args.device, background=False
        )
        run = run_here(store, run.id, "fine-tune", callbacks=[_Progress()])
        out: dict[str, Any] = {"run": run.id, "status": run.status, "parent": args.run}
        result = finetune_result(store, run.id) if run.status == "finished" else None
        if result:
            out.update({k: result[k] for k in ("holdout_accuracy", "labeled", "predicted")})
            out.update(holdout_labels=result["holdout_labels"], note=result["note"])
            out.update(
                select_labels=result.get("select_labels"),
                semi_supervised=result.get("semi_supervised", False),
            )
            out["predictions"] = result["predictions"]
            out["predictions_from"] = "head"  # the run's own file: the head's predictions
            if args.out:  # the better of the two answers, chosen by the untouched labels
                from sslviz.fewshot.finetune_answer import write_better_answer

                answer = write_better_answer(store, run.id, args.out)
                out.update(answer.to_json())
                out["predictions"] = str(args.out)
    finally:
        store.close()
    if args.json:
        emit_json(out)
    else:
        print(run.id)
    if run.status == "failed":
        say(f"fine-tune {run.id} failed: {run.error}")
        return 1
    if run.status != "finished":
        say(f"fine-tune {run.id} {run.status}: `sslviz resume {run.id}` continues it")
        return 130
    if result and result["note"]:
        say(f"note: {result['note']}")
    if result and result["holdout_accuracy"] is not None:
        say(
            f"held-out accuracy {result['holdout_accuracy']:.3f} on "
            f"{result['holdout_labels']} untouched labels (they chose nothing)"
        )
    if "predictions_reason" in out:
        say(f"--out has {out['predictions_reason']}")
    say(f"predictions: {out['predictions']}")
    return 0


class _Progress:
    """Steps on a progress bar on stderr, with the training batch's loss and accuracy."""

    def __init__(self) -> None:
        self.bar: ProgressBar | None = None

    def on_cache_progress(self, done: int, total: int) -> None: ...
    def on_epoch_end(self, state: Any) -> None: ...

    def on_train_start(self, state: Any) -> None:
        self.bar = ProgressBar(state.total_steps, "fine-tuning")

    def on_step_end(self, state: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.step, f"loss {state.loss:.3f} accuracy {state.metric:.3f}")

    def on_train_end(self, state: Any, status: str) -> None:
        if self.bar is not None:
            self.bar.update(state.total_steps)
            self.bar.close()


def run_leaderboard(args: argparse.Namespace) -> int:
    from sslviz.fewshot.labels_csv import read_labels_csv
    from sslviz.fewshot.leaderboard import leaderboard
    from sslviz.store import Store

    store = Store.open()
    try:
        dataset = store.datasets.get_by_name(args.dataset)
        labels = read_labels_csv(store, dataset.id, args.labels)
        progress = _StageBar()
        try:
            board = leaderboard(store, dataset, labels, on_progress=progress)
        finally:
            progress.close()
    finally:
        store.close()
    if args.json:
        emit_json(board.to_json())
        return 0
    if board.message:
        say(board.message)
    say(
        f"{board.seconds:.1f} s ({board.computed} of {len(board.rows)} rows computed, the rest "
        "cached)"
    )
    print(f"{'#':>3}  {'source':<8} {'layer':<8} {'method':<16} {'cv accuracy':<22} held-out")
    for place, row in enumerate(board.rows, start=1):
        cv = _score(row.cv_accuracy, row.cv_interval)
        held = _score(row.holdout_accuracy, row.holdout_interval)
        rank = "" if board.too_few else place
        layer = f"{row.layer or ''}{f'/g{row.grid}' if row.grid > 1 else ''}"
        line = f"{rank:>3}  {row.source:<8} {layer:<8} {row.method:<16} {cv:<22} {held}"
        print(line + (f"  ({row.note})" if row.note else ""))
    return 0


class _StageBar:
    """The leaderboard's stages on a progress bar on stderr (``leaderboard(on_progress=...)``)."""

    def __init__(self) -> None:
        self.bar: ProgressBar | None = None
        self.total = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.bar is None or self.total != total:
            self.close()
            self.bar, self.total = ProgressBar(total, "ranking", unit="source"), total
        self.bar.update(done, stage)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _score(accuracy: float | None, interval: Any) -> str:
    if accuracy is None:
        return "—"
    return f"{accuracy:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]"
