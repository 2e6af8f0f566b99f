"""The headline held-out figures of a run, labelled and formatted once, each with its context.

The result pages, the Runs page and ``sslviz eval`` all show a run's figures through this table,
so a label and a number read the same everywhere ("held-out accuracy 59.4%", never "accuracy
0.594" on one page and "59.4%" on another), and every accuracy carries chance and its 95%
interval (keys from ``sslviz.training.chance``). Torch-free: the Runs page reads a finished run's
stored results without loading a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslviz.training.chance import CONTEXT_KEYS, held_out_context

EVAL_FILE = "eval.json"  # in a run's directory: {"step": N, "results": {...}} (training.evaluate)


@dataclass(frozen=True)
class Figure:
    """One headline figure: ``label`` and ``value`` as shown, ``context`` what it is measured
    against (chance, interval, baseline), ``key`` the ``sslviz eval`` key it comes from."""

    key: str
    label: str
    value: str
    context: str


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pct_context(results: dict[str, Any], key: str) -> str:
    chance = results.get("chance", {}).get(key)
    interval = results.get(f"{key}_interval")
    parts = []
    if chance is not None:
        parts.append(f"chance {_pct(chance)}")
    if interval:
        parts.append(f"95% interval {100 * interval[0]:.0f}–{100 * interval[1]:.0f}%")
    return " · ".join(parts)


def figures(results: dict[str, Any]) -> list[Figure]:
    """The headline figures of ``sslviz eval`` results, in the order the pages show them."""
    task = results.get("task")
    n = results.get("heldout_images")
    shown: list[Figure] = []
    for name, head in (results.get("heads") or {}).items():  # multi-task: each head's headline
        first = figures({k: v for k, v in head.items() if k != "heldout_images"})[:1]
        shown += [
            Figure(f"heads.{name}.{f.key}", f"{name}: {f.label}", f.value, f.context) for f in first
        ]
    if "accuracy" in results:
        shown.append(
            Figure(
                "accuracy",
                "held-out accuracy",
                _pct(results["accuracy"]),
                _pct_context(results, "accuracy"),
            )
        )
    if "top5" in results:
        shown.append(
            Figure("top5", "top-5 accuracy", _pct(results["top5"]), _pct_context(results, "top5"))
        )
    if "mean_hamming" in results:
        chance = results.get("chance", {}).get("mean_hamming")
        shown.append(
            Figure(
                "mean_hamming",
                "mean tiles misplaced",
                f"{results['mean_hamming']:.2f} of 9",
                f"chance {chance:.2f}; lower is better"
                if chance is not None
                else "lower is better",
            )
        )
    if task == "colorization":
        gain = results["psnr"] - results["psnr_grey"]
        shown += [
            Figure(
                "psnr",
                "PSNR, model",
                f"{results['psnr']:.2f} dB",
                f"{gain:+.2f} dB vs the grey image; higher is better",
            ),
            *(
                [
                    Figure(
                        "psnr_faithful",
                        "PSNR, faithful decode",
                        f"{results['psnr_faithful']:.2f} dB",
                        f"{results['psnr_faithful'] - results['psnr_grey']:+.2f} dB vs grey",
                    )
                ]
                if "psnr_faithful" in results
                else []
            ),
            Figure(
                "psnr_grey",
                "PSNR, grey image (no colour)",
                f"{results['psnr_grey']:.2f} dB",
                "the no-skill baseline",
            ),
            Figure(
                "colourfulness",
                "colourfulness, model",
                f"{results['colourfulness']:.1f}",
                "grey is 0",
            ),
            Figure(
                "colourfulness_truth",
                "colourfulness, truth",
                f"{results.get('colourfulness_truth', 0.0):.1f}",
                "of the real colours",
            ),
        ]
    if n is not None:
        shown.append(Figure("heldout_images", "held-out images", f"{n:,}", split_note(results)))
    return shown


def split_note(results: dict[str, Any]) -> str:
    """How the held-out images were chosen, in a few words."""
    if results.get("holdout_by") == "folder":
        return "from folders never trained on (whole folders held out)"
    if results.get("holdout_by") == "tail":
        return "never trained on: the last images of every folder"
    return "never trained on"


def stored_results(run_dir: Path) -> dict[str, Any] | None:
    """The held-out results evaluation wrote for a run (None if none yet). Results stored before
    chance and intervals existed get them here when they can be derived without the model
    (rotation: the confusion matrix counts the images); else they show without them."""
    path = run_dir / EVAL_FILE
    if not path.is_file():
        return None
    results = json.loads(path.read_text()).get("results")
    if not isinstance(results, dict):
        return None
    if not all(key in results for key in CONTEXT_KEYS) and "confusion" in results:
        n = sum(map(sum, results["confusion"])) // 4
        results = {**held_out_context(results.get("task", ""), results, n), **results}
    return results
