"""When an active run will end, the queue ahead of it included: the Runs page's "ETA".
Torch-free (a run on ``auto`` resolves its device lazily).

A queued run ends once the runs
ahead of it on its device have freed a slot (oldest first, as the scheduler picks them) and it
has run its own length: its time budget, or the pace of a finished run like it (same dataset,
task, encoder, image size and batch size) times its epochs. Unknown where nothing says.

    end_estimates(runs, per_device=1)        # {run id: Estimate(starts_in, ends_in)}
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from sslviz.runner.jobs import device_key
from sslviz.runner.progress import eta_seconds, time_budget
from sslviz.store import Run


@dataclass(frozen=True)
class Estimate:
    """Seconds from now until an active run starts (0 if running) and ends; None if unknown."""

    starts_in: float | None
    ends_in: float | None
    after: int | None = None  # the run whose end frees this queued run's slot


def _same_setup(a: Run, b: Run) -> bool:
    keys = ("image_size", "batch_size")
    return (a.dataset_id, a.kind, a.model_name) == (b.dataset_id, b.kind, b.model_name) and all(
        a.config.get(k) == b.config.get(k) for k in keys
    )


def own_length(run: Run, history: list[Run]) -> float | None:
    """Training seconds a queued run will take: its time budget, or the pace of the latest
    finished run of the same setup times its epochs (less what it already trained)."""
    budget = time_budget(run)
    if budget is not None:
        return max(0.0, budget - run.work_seconds)
    like = [r for r in history if r.status == "finished" and r.epoch > 0 and _same_setup(r, run)]
    if not like:
        return None
    latest = max(like, key=lambda r: r.id)
    per_epoch = latest.work_seconds / latest.epoch
    return max(0.0, per_epoch * (run.epochs - run.epoch))


def end_estimates(
    runs: list[Run], *, per_device: int, keys: dict[int, str] | None = None
) -> dict[int, Estimate]:
    """When each active run starts and ends, from now. Each device has ``per_device`` slots; a
    running run frees its slot after its ETA, queued runs take the earliest free slot in id
    order. ``keys``: device keys already resolved by run id (else ``jobs.device_key``)."""
    keys = keys or {}
    slots: dict[str, list[tuple[float, int | None]]] = defaultdict(list)  # (free in, freed by)
    out: dict[int, Estimate] = {}
    active = sorted((r for r in runs if r.status in ("queued", "running")), key=lambda r: r.id)
    for run in (r for r in active if r.status == "running"):
        eta = eta_seconds(run)
        slots[keys.get(run.id) or device_key(run.device)].append(
            (math.inf if eta is None else eta, run.id)
        )
        out[run.id] = Estimate(0.0, eta)
    for run in (r for r in active if r.status == "queued"):
        device = slots[keys.get(run.id) or device_key(run.device)]
        while len(device) < per_device:
            device.append((0.0, None))
        device.sort(key=lambda s: s[0])
        free_in, freed_by = device[0]
        length = own_length(run, runs)
        ends = free_in + length if length is not None else math.inf
        device[0] = (ends, run.id)
        out[run.id] = Estimate(
            None if math.isinf(free_in) else free_in,
            None if math.isinf(ends) else ends,
            freed_by,
        )
    return out
