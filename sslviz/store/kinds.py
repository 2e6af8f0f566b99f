"""What each kind of run is, without importing torch: pretext tasks and the other jobs the one
job runner carries out (fine-tuning on labels, embedding + projection of a large dataset, ingest,
the Explorer's data checks, ranking the sources for a session's labels), and the request to record one.

Pages, the CLI and the worker read this table instead of guessing from a run's logged metric keys;
the job runner reaches a kind's ``executor`` only through it (imported when it runs one), so the
runner never imports the training, fine-tuning or map code it carries out.

    kind = run_kind(run.kind)
    kind.live_metric        # the metric key its training logs, e.g. "bin_accuracy"
    kind.has_encoder        # can be a source of embeddings (``sslviz embed RUN``)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sslviz.core.errors import UserError
from sslviz.store.schema import RUN_KINDS

# The stage a run is in while its results writer runs ("writing results: upright check"): a run
# that ended in it (killed, cancelled) redoes only that stage when resumed.
RESULTS_STAGE = "writing results"

# work(store, run, *, should_stop, **options) -> (status, fields): carry out a claimed run
# (``sslviz.runner.execute`` claims it, keeps its heartbeat and records how it ended)
Executor = Callable[..., tuple[str, dict[str, Any]]]


@dataclass(frozen=True, kw_only=True)
class RunKind:
    name: str  # the value of ``runs.task``
    label: str  # how tables and pickers name it
    pretext: bool  # a self-supervised pretext task: held-out eval, a result page
    has_encoder: bool  # its checkpoint holds an encoder (a source for embeddings)
    live_metric: str | None  # the metric key logged every step, if any
    metric_label: str  # how the live metric is named on a chart
    executor: str  # "module:function" that carries out a run of this kind (in the worker)
    # "module:Class" with ``from_dict(run.config)``: the typed shape of this kind's config
    config_type: str
    # "module:function" (store, run) -> maps.embed.SourceEncoder, for kinds with an encoder
    encoder_loader: str | None = None
    # "module:function" (store, run, *, should_stop) -> None that stores what the run's result
    # page shows: the run's last stage (``RESULTS_STAGE``), run by the job runner once its
    # executor finished (pretext kinds: ``sslviz.results.at_run_end``)
    results_writer: str | None = None
    # "module:function" (store, run) -> a training callback measuring the features at every
    # checkpoint (pretext kinds: ``sslviz.fewshot.monitor``, the feature-quality curve)
    checkpoint_monitor: str | None = None

    def typed_config(self, config: dict[str, Any]) -> Any:
        """A run's config as its kind's dataclass (TrainConfig, FineTuneConfig, MapSettings)."""
        return self.load("config_type").from_dict(config)

    def load_executor(self) -> Executor:
        return self.load("executor")

    def load(self, entry: str) -> Callable[..., Any]:
        """What an entry of this kind names (``executor``, ``encoder_loader``, ``config_type``,
        ``results_writer``), imported
        now: the table itself imports none of the code it points to."""
        target = getattr(self, entry)
        if not target:
            raise UserError(f"runs of kind {self.name!r} have no {entry.replace('_', ' ')}")
        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)


KINDS: dict[str, RunKind] = {
    "rotation": RunKind(
        name="rotation",
        label="rotation",
        pretext=True,
        has_encoder=True,
        live_metric="accuracy",
        metric_label="rotation accuracy",
        executor="sslviz.training.train:execute_run",
        config_type="sslviz.training.config:TrainConfig",
        encoder_loader="sslviz.maps.embed:pretext_encoder",
        results_writer="sslviz.results.at_run_end:write_results",
        checkpoint_monitor="sslviz.fewshot.monitor:monitor",
    ),
    "colorization": RunKind(
        name="colorization",
        label="colorization",
        pretext=True,
        has_encoder=True,
        live_metric="bin_accuracy",
        metric_label="ab-bin accuracy",
        executor="sslviz.training.train:execute_run",
        config_type="sslviz.training.config:TrainConfig",
        encoder_loader="sslviz.maps.embed:pretext_encoder",
        results_writer="sslviz.results.at_run_end:write_results",
        checkpoint_monitor="sslviz.fewshot.monitor:monitor",
    ),
    "jigsaw": RunKind(
        name="jigsaw",
        label="jigsaw",
        pretext=True,
        has_encoder=True,
        live_metric="accuracy",
        metric_label="permutation accuracy",
        executor="sslviz.training.train:execute_run",
        config_type="sslviz.training.config:TrainConfig",
        encoder_loader="sslviz.maps.embed:pretext_encoder",
        results_writer="sslviz.results.at_run_end:write_results",
        checkpoint_monitor="sslviz.fewshot.monitor:monitor",
    ),
    "multi": RunKind(
        name="multi",
        label="multi-task",
        pretext=True,
        has_encoder=True,
        live_metric="head_accuracy",
        metric_label="mean of the heads' accuracies",
        executor="sslviz.training.train:execute_run",
        config_type="sslviz.training.config:TrainConfig",
        encoder_loader="sslviz.maps.embed:pretext_encoder",
        results_writer="sslviz.results.at_run_end:write_results",
        checkpoint_monitor="sslviz.fewshot.monitor:monitor",
    ),
    "finetune": RunKind(
        name="finetune",
        label="fine-tune",
        pretext=False,
        has_encoder=True,
        live_metric="accuracy",
        metric_label="label accuracy (training batch)",
        executor="sslviz.fewshot.finetune:execute_run",
        config_type="sslviz.fewshot.finetune_data:FineTuneConfig",
        encoder_loader="sslviz.fewshot.finetune:finetuned_encoder",
    ),
    "embedding": RunKind(
        name="embedding",
        label="embedding + map",
        pretext=False,
        has_encoder=False,
        live_metric=None,
        metric_label="",
        executor="sslviz.maps.embedding_job:execute_run",
        config_type="sslviz.maps.settings:MapSettings",
    ),
    "ingest": RunKind(
        name="ingest",
        label="ingest",
        pretext=False,
        has_encoder=False,
        live_metric=None,
        metric_label="",
        executor="sslviz.data.ingest_job:execute_run",
        config_type="sslviz.data.ingest_job:IngestSettings",
    ),
    "checks": RunKind(
        name="checks",
        label="data checks",
        pretext=False,
        has_encoder=False,
        live_metric=None,
        metric_label="",
        executor="sslviz.results.checks_job:execute_run",
        config_type="sslviz.results.checks_job:ChecksSettings",
    ),
    "leaderboard": RunKind(
        name="leaderboard",
        label="rank sources",
        pretext=False,
        has_encoder=False,
        live_metric=None,
        metric_label="",
        executor="sslviz.fewshot.leaderboard_job:execute_run",
        config_type="sslviz.fewshot.leaderboard_job:RankSettings",
    ),
}
assert tuple(KINDS) == RUN_KINDS, "every kind the schema allows needs an entry here"


def run_kind(name: str) -> RunKind:
    """The kind called ``name`` (a run's ``kind``); UserError listing the known ones."""
    if name not in KINDS:
        raise UserError(f"unknown kind of run {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]


@dataclass(frozen=True)
class JobRequest:
    """What it takes to record a run of any kind: the executor's code builds one (``training``:
    ``job_request``; ``maps.embedding_job``; ``fewshot.finetune``), the job runner records it
    (``sslviz.runner.jobs.submit``)."""

    kind: str  # a key of KINDS
    dataset_id: int
    encoder: str
    config: dict[str, Any] = field(default_factory=dict)  # the kind's JSON-able settings
    device: str = "auto"
    epochs: int = 1  # planned epochs (or 1): progress is step / total_steps
    parent_id: int | None = None  # the run it starts from (a fine-tune's or a map's source)
