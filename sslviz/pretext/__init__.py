"""Pretext tasks by name: an explicit registry, so the CLI, the app and the tests see one list.

base                the interface every task answers, so the training loop knows none of them
rotation            predict an image's rotation (Gidaris et al., ICLR 2018)
jigsaw              solve a 3x3 jigsaw puzzle (Noroozi & Favaro, ECCV 2016)
permutations        jigsaw's permutation set, chosen for maximal Hamming distance
colorization        colour from lightness (Zhang et al., ECCV 2016)
colorization_model  its U-Net-like head and the buffers it keeps with its weights
ab_bins             quantized ab space: bins, soft targets, rebalancing, annealed mean
colour_calibration  the faithful decode: colours closest to the truth on unseen images
lab                 sRGB <-> CIE Lab in torch
multi               the three heads on one encoder, one loss (Doersch & Zisserman, ICCV 2017)
augment             batched crop, colour jitter and grey a task may apply
render              small PIL helpers that draw result-page artifacts
"""

from __future__ import annotations

from typing import Any

from sslviz.core.errors import UserError
from sslviz.pretext.base import PretextBatch, PretextModel, PretextTask
from sslviz.pretext.colorization import ColorizationTask
from sslviz.pretext.jigsaw import JigsawTask
from sslviz.pretext.multi import MultiTask
from sslviz.pretext.rotation import RotationTask

TASKS: dict[str, type[PretextTask]] = {
    "rotation": RotationTask,
    "colorization": ColorizationTask,
    "jigsaw": JigsawTask,
    "multi": MultiTask,
}


def create_task(name: str, **options: Any) -> PretextTask:
    """A task by registry name with its options (see each task's ``defaults``)."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return TASKS[name](**options)


__all__ = ["TASKS", "PretextBatch", "PretextModel", "PretextTask", "create_task"]
