"""What each kind of run is, without importing torch: pretext tasks and the other jobs the one
job runner carries out (fine-tuning on labels, embedding + projection of a large dataset).

Pages, the CLI and the worker read this table instead of guessing from a run's logged metric keys;
the worker imports a kind's ``executor`` only when it runs one.

    kind = run_kind(run.task)
    kind.live_metric        # the metric key its training logs, e.g. "bin_accuracy"
    kind.has_encoder        # can be a source of embeddings (``sslviz embed RUN``)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sslviz.errors import UserError
from sslviz.store.schema import RUN_KINDS

if TYPE_CHECKING:
    from sslviz.store import Run

# execute_run(store, run_id, *, should_stop) -> Run: take a claimed (or resumable) run to its end
Executor = Callable[..., "Run"]


@dataclass(frozen=True)
class RunKind:
    name: str  # the value of ``runs.task``
    label: str  # how tables and pickers name it
    pretext: bool  # a self-supervised pretext task: held-out eval, a result page
    has_encoder: bool  # its checkpoint holds an encoder (a source for embeddings)
    live_metric: str | None  # the metric key logged every step, if any
    metric_label: str  # how the live metric is named on a chart
    executor: str  # "module:function" that carries out a run of this kind (in the worker)

    def load_executor(self) -> Executor:
        module, _, function = self.executor.partition(":")
        return getattr(importlib.import_module(module), function)


KINDS: dict[str, RunKind] = {
    "rotation": RunKind(
        "rotation",
        "rotation",
        True,
        True,
        "accuracy",
        "rotation accuracy",
        "sslviz.train:execute_run",
    ),
    "colorization": RunKind(
        "colorization",
        "colorization",
        True,
        True,
        "bin_accuracy",
        "ab-bin accuracy",
        "sslviz.train:execute_run",
    ),
    "jigsaw": RunKind(
        "jigsaw",
        "jigsaw",
        True,
        True,
        "accuracy",
        "permutation accuracy",
        "sslviz.train:execute_run",
    ),
    "finetune": RunKind(
        "finetune",
        "fine-tune",
        False,
        True,
        "accuracy",
        "label accuracy (training batch)",
        "sslviz.fewshot.finetune:execute_run",
    ),
    "embedding": RunKind(
        "embedding",
        "embedding + map",
        False,
        False,
        None,
        "",
        "sslviz.embedding_job:execute_run",
    ),
}
assert tuple(KINDS) == RUN_KINDS, "every kind the schema allows needs an entry here"


def run_kind(name: str) -> RunKind:
    """The kind called ``name`` (a run's ``task``); UserError listing the known ones."""
    if name not in KINDS:
        raise UserError(f"unknown kind of run {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]
