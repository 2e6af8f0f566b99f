"""What a held-out figure means: chance level, a 95% interval, and whether the run learned anything.

A number without its context misleads: "jigsaw accuracy 0.0%" after 44 steps is exactly chance
(1% for 100 permutations), and 31 held-out images give an accuracy ±17 points. Every held-out
result (``sslviz eval``, the result pages, the Runs page) carries these keys, computed here once:

    heldout_images      images the figures are measured on
    chance              {metric: value a model that guesses would score}
    accuracy_interval   [low, high] Wilson 95% interval of ``accuracy`` (rotation, jigsaw)
    top5_interval       [low, high] of ``top5`` (jigsaw)
    learned             whether the figures are clearly better than chance
    advice              what to do when they are not (else None)
    holdout_by          "folder" (whole folders), "tail" (the last images of every folder) or
                        "image" (single images); set by evaluate

Intervals count *images*, not rotated copies or pixels: the four turns of one image are not four
independent trials, so counting images is the honest (wider) choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sslviz.core.proportions import wilson_interval

if TYPE_CHECKING:
    from torch import Tensor

# What to do when a run is no better than chance, per task (its typical training needs).
ADVICE = {
    "rotation": "train longer: rotation usually needs a few hundred steps to beat chance",
    "jigsaw": "train longer: jigsaw needs thousands of steps (or use a smaller permutation set)",
    "colorization": "train longer: colorization needs a few thousand steps to beat the grey image",
}
# A rotation accuracy whose whole interval is *below* chance is not "too little training": the
# model is confidently wrong on these images, as on digits held out by folder when the folder
# is a class — a 6 turned upside down is a 9 it trained on, so every turn of a held-out 6 or 9 is
# named as its twin's (0.02-0.05 measured after 225 steps that score 0.93 on other digits).
BELOW_CHANCE_ADVICE = {
    "rotation": (
        "the held-out images look like other images turned: if whole folders were held out "
        'and a folder is one kind of thing, train again with "Held out" set to '
        '"single images" on the Train page, so every folder is judged'
    ),
}
# A rotation model far surer of its training images than of held-out ones has learned those
# images, not what carries over: more steps make that worse (the first demo's 270 crops of 9
# photos: 95% on them, 28% held out, after 240 steps).
MEMORISED_GAP = 0.25  # training accuracy above the held-out interval's top by at least this
MEMORISED_ADVICE = {
    "rotation": (
        "it learned its training images (training accuracy {train:.0%}) but not what carries "
        "over to new ones, and training longer won't change that: more images help most; random "
        "crops and colour jitter (the Train page's rotation options) may"
    ),
}
# Keys this module adds to a task's metrics (a cached result without them is recomputed).
CONTEXT_KEYS = ("heldout_images", "chance", "learned", "advice", "holdout_by")


def expected_hamming_at_chance(permutations: Tensor) -> float:
    """Mean tiles misplaced when the answer is a uniformly random member of the set: the mean
    Hamming distance over all ordered pairs of the (P, 9) set, a pair with itself included."""
    distances = (permutations[:, None, :] != permutations[None, :, :]).sum(dim=2)  # (P, P)
    return float(distances.float().mean())


def chance_levels(task: str, permutations: Tensor | None = None) -> dict[str, float]:
    """What guessing scores on each headline metric of ``task`` (colorization: the grey image is
    its "no skill" baseline, so it has no fixed level here; see ``held_out_context``)."""
    if task == "rotation":
        return {"accuracy": 0.25}
    if task == "jigsaw" and permutations is not None:
        size = len(permutations)
        return {
            "accuracy": 1.0 / size,
            "top5": min(1.0, 5.0 / size),
            "mean_hamming": expected_hamming_at_chance(permutations),
        }
    return {}


def held_out_context(
    task: str,
    metrics: dict[str, Any],
    n_images: int,
    permutations: Tensor | None = None,
    *,
    train_accuracy: float | None = None,
) -> dict[str, Any]:
    """The module docstring's keys for ``metrics`` measured on ``n_images`` held-out images
    (``train_accuracy``: the run's accuracy on its training batches at the end, if known)."""
    chance = chance_levels(task, permutations)
    context: dict[str, Any] = {"heldout_images": int(n_images)}
    above: list[bool] = []  # per accuracy: its whole interval above chance
    below = False  # the headline accuracy's whole interval below chance
    for key in ("accuracy", "top5"):
        if key in metrics and key in chance:
            low, high = wilson_interval(float(metrics[key]) * n_images, n_images)
            context[f"{key}_interval"] = [low, high]
            above.append(low > chance[key])
            below = below or (key == "accuracy" and high < chance[key])
    # any one is enough: a jigsaw model can rank the right answer high before it names it
    learned = any(above) if above else True
    if task == "colorization" and "psnr_grey" in metrics:
        chance = {"psnr": float(metrics["psnr_grey"])}
        # the faithful decode (when there is one) is the one meant to be closest to the truth
        best = max(float(metrics.get(k, 0.0)) for k in ("psnr", "psnr_faithful"))
        learned = best > float(metrics["psnr_grey"])
    context["chance"] = chance
    context["learned"] = bool(learned)
    advice = BELOW_CHANCE_ADVICE.get(task) if below else None
    if advice is None and task in MEMORISED_ADVICE and train_accuracy is not None:
        top = context.get("accuracy_interval", [0.0, 1.0])[1]
        if train_accuracy >= top + MEMORISED_GAP:
            advice = MEMORISED_ADVICE[task].format(train=train_accuracy)
    context["advice"] = None if learned else advice or ADVICE.get(task, "train longer")
    return context


def verdict(results: dict[str, Any], step: int | None = None) -> str | None:
    """One sentence when a run learned nothing measurable (else None), saying what to do."""
    if results.get("learned", True):
        return None
    heads = results.get("heads")
    if heads:  # a multi-task run that learned nothing in any head: say so of its first
        return verdict(next(iter(heads.values())), step)
    after = f" after {step:,} steps" if step is not None else ""
    chance = results.get("chance", {})
    if results.get("task") == "colorization":
        what = (
            f"PSNR {results['psnr']:.2f} dB is no better than the grey image's "
            f"{results['psnr_grey']:.2f} dB"
        )
    else:
        low, high = results.get("accuracy_interval", [0.0, 1.0])
        level = chance.get("accuracy", 0.0)
        what = (
            f"held-out accuracy {100 * results['accuracy']:.1f}% (95% interval "
            f"{100 * low:.0f}–{100 * high:.0f}%) is "
            f"{'below' if high < level else 'not above'} chance ({100 * level:.1f}%)"
        )
    advice = str(results.get("advice") or "train longer")
    return f"This run has learned nothing measurable yet{after}: {what}. {advice[0].upper()}{advice[1:]}."
