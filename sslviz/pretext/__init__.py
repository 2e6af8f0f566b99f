"""Pretext tasks by name: an explicit registry, so the CLI, the app and the tests see one list."""

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
