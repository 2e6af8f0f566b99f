"""Runs of every kind (pretext training, fine-tunes, embeddings, ingests, checks), their metrics
(long form: run, key, step) and artifacts."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sslviz.core.errors import UserError
from sslviz.core.liveness import alive
from sslviz.store.connection import Connection
from sslviz.store.rows import Artifact, Metric, Run

if TYPE_CHECKING:
    from sslviz.store.kinds import JobRequest


class UnknownRunError(UserError, LookupError):
    pass


class RunTable:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    # --- runs -----------------------------------------------------------------------------------
    def create(
        self,
        *,
        dataset_id: int,
        kind: str,
        model_name: str,
        config: Mapping[str, Any],
        device: str,
        epochs: int,
        status: str = "queued",
        parent_id: int | None = None,
        **fields: Any,
    ) -> Run:
        """A new run; ``kind`` is a pretext task or another job kind (schema.RUN_KINDS);
        ``fields``: other columns, written in the same statement (an owner's claim)."""
        values = {
            "dataset_id": dataset_id,
            "task": kind,
            "encoder": model_name,
            "config": json.dumps(dict(config), sort_keys=True),
            "device": device,
            "status": status,
            "created_at": time.time(),
            "epochs": epochs,
            "parent_id": parent_id,
            **_columns(fields),
        }
        names, marks = ", ".join(values), ", ".join("?" * len(values))
        try:
            with self._db.transaction() as conn:
                cursor = conn.execute(
                    f"INSERT INTO runs ({names}) VALUES ({marks})", tuple(values.values())
                )
        except sqlite3.IntegrityError as error:
            if "FOREIGN KEY" not in str(error):
                raise
            # its dataset (or the run it starts from) was deleted since it was looked up
            gone = f"dataset {dataset_id}" + (f" or run {parent_id}" if parent_id else "")
            raise UserError(
                f"{gone} no longer exists (deleted meanwhile): see `sslviz datasets`"
            ) from None
        return self.get(cursor.lastrowid)

    def record(self, request: JobRequest, *, claim: bool = False) -> Run:
        """Record a run of any kind as ``queued`` for the scheduler, or with ``claim`` as
        ``running`` and owned by this process (its pid and claim time in the same statement):
        never queued nor unowned, so no scheduler or worker can take it."""
        now = time.time()
        owned = {"pid": os.getpid(), "claimed_at": now, "started_at": now, "heartbeat_at": now}
        return self.create(
            dataset_id=request.dataset_id,
            kind=request.kind,
            model_name=request.encoder,
            config=request.config,
            device=request.device,
            epochs=max(1, int(request.epochs)),
            parent_id=request.parent_id,
            status="running" if claim else "queued",
            **(owned if claim else {}),
        )

    def get(self, run_id: int) -> Run:
        rows = self._db.query("SELECT * FROM runs WHERE id = ?", (int(run_id),))
        if not rows:
            raise UnknownRunError(f"no run with id {run_id} (see `sslviz runs`)")
        return _run(rows[0])

    def list(self, statuses: Iterable[str] | None = None) -> list[Run]:
        if statuses is None:
            rows = self._db.query("SELECT * FROM runs ORDER BY id")
        else:
            wanted = tuple(statuses)
            marks = ", ".join("?" * len(wanted))
            rows = self._db.query(
                f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY id", wanted
            )
        return [_run(r) for r in rows]

    def transition(
        self,
        run_id: int,
        to: str,
        *,
        allowed_from: Iterable[str],
        owner: int | None = None,
        **fields: Any,
    ) -> bool:
        """Set status ``to`` (and ``fields``) only if the run is in one of ``allowed_from`` (and,
        with ``owner``, still owned by that pid).

        Returns whether it changed: the check and the write are one statement, so a worker ending a
        run and a reaper marking it interrupted can't both win, nor can a process that lost the
        run end it for its new owner.
        """
        allowed = tuple(allowed_from)
        fields = _columns(fields)
        assignments = ", ".join(["status = ?"] + [f"{k} = ?" for k in fields])
        marks = ", ".join("?" * len(allowed))
        mine = "" if owner is None else " AND pid = ?"
        with self._db.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE runs SET {assignments} WHERE id = ? AND status IN ({marks}){mine}",
                (to, *fields.values(), int(run_id), *allowed, *(() if owner is None else (owner,))),
            )
        return cursor.rowcount == 1

    def take(
        self, run_id: int, pid: int, *, resumable: Iterable[str], worker: bool = False
    ) -> bool:
        """Claim the run for process ``pid``: ONE conditional update records it ``running`` with
        the pid and the claim time (``claimed_at``), so of two processes that try, one wins and
        the other changes nothing. It takes a queued run; a ``resumable`` one (restarting: its
        cancel flag, error and end cleared); or, for a ``worker``, one a scheduler claimed for a
        worker that has not claimed it yet (no claim time; no pid, or ``pid`` itself as its
        spawner recorded it). Returns whether ``pid`` now owns the run."""
        again = tuple(resumable)
        spawned = "(pid IS NULL OR pid = ?)" if worker else "pid = ?"
        marks = ", ".join("?" * len(again))
        restart = f"CASE WHEN status IN ({marks}) THEN {{}} ELSE {{}} END"
        now = time.time()
        with self._db.transaction() as conn:
            cursor = conn.execute(
                f"""UPDATE runs SET status = 'running', pid = ?, claimed_at = ?, heartbeat_at = ?,
                    started_at = COALESCE(started_at, ?),
                    cancel_requested = {restart.format("0", "cancel_requested")},
                    error = {restart.format("NULL", "error")},
                    traceback = {restart.format("NULL", "traceback")},
                    ended_at = {restart.format("NULL", "ended_at")}
                WHERE id = ? AND (status = 'queued' OR status IN ({marks}) OR (status = 'running'
                    AND claimed_at IS NULL AND {spawned}))""",
                (pid, now, now, now, *again * 4, int(run_id), *again, pid),
            )
        return cursor.rowcount == 1

    def expect_worker(self, run_id: int, pid: int) -> bool:
        """Record the pid of the worker just started for a run a scheduler claimed, unless a
        process claimed the run meanwhile (the worker then finds it taken and exits)."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET pid = ? WHERE id = ? AND status = 'running' AND pid IS NULL "
                "AND claimed_at IS NULL",
                (int(pid), int(run_id)),
            )
        return cursor.rowcount == 1

    def claim(
        self, pick: Callable[[list[Run], list[Run]], Iterable[int]], **fields: Any
    ) -> list[Run]:
        """Atomically move queued runs to ``running`` (setting ``fields``), chosen by ``pick``.

        ``pick(running, queued)`` gets the running runs and the queued ones (oldest first) and
        returns the ids to start. Reading and writing happen in one ``BEGIN IMMEDIATE``
        transaction, so two schedulers in different processes can't start the same run twice nor
        exceed a limit that ``pick`` enforces. ``pick`` must be pure (no store calls).
        """
        fields = _columns(fields)
        assignments = ", ".join(["status = 'running'"] + [f"{k} = ?" for k in fields])
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM runs WHERE status IN ('running', 'queued') ORDER BY id"
            ).fetchall()
            runs = [_run(r) for r in rows]
            running = [r for r in runs if r.status == "running"]
            queued = [r for r in runs if r.status == "queued"]
            chosen = [int(i) for i in pick(running, queued)]
            for run_id in chosen:
                conn.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ? AND status = 'queued'",
                    (*fields.values(), run_id),
                )
        return [self.get(run_id) for run_id in chosen]

    def update(self, run_id: int, **fields: Any) -> None:
        """Set progress fields (epoch, step, total_steps, work_seconds, pid, heartbeat_at, ...)."""
        if not fields:
            return
        fields = _columns(fields)
        if "config" in fields and not isinstance(fields["config"], str):
            fields["config"] = json.dumps(dict(fields["config"]), sort_keys=True)
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._db.transaction() as conn:
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))

    def progress(
        self,
        run_id: int,
        *,
        step: int | None = None,
        total: int | None = None,
        epoch: int | None = None,
        **fields: Any,
    ) -> None:
        """Write a run's progress (``step`` of ``total``, ``epoch``, any other run fields) with a
        fresh ``heartbeat_at``; it counts as a sign of life of this process."""
        named = {"step": step, "total_steps": total, "epoch": epoch}
        values = {k: v for k, v in named.items() if v is not None} | fields
        self.update(run_id, heartbeat_at=time.time(), **values)
        alive()

    def heartbeat(self, run_id: int) -> None:
        self.update(run_id, heartbeat_at=time.time())

    def request_cancel(self, run_id: int) -> None:
        self.update(run_id, cancel_requested=1)

    def delete(self, run_id: int) -> None:
        """Remove the run's rows (metrics and artifacts cascade). Files are the caller's."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # --- metrics --------------------------------------------------------------------------------
    def log_metrics(self, run_id: int, step: int, values: Mapping[str, float]) -> None:
        now = time.time()
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, key, step, value, time) "
                "VALUES (?, ?, ?, ?, ?)",
                [(run_id, key, step, float(value), now) for key, value in values.items()],
            )

    def log_metrics_batch(
        self, run_id: int, rows: Iterable[tuple[int, Mapping[str, float]]]
    ) -> None:
        """Many steps' metrics, ``[(step, {key: value}), ...]``, in one transaction."""
        now = time.time()
        values = [
            (run_id, key, step, float(value), now)
            for step, row in rows
            for key, value in row.items()
        ]
        if not values:
            return
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, key, step, value, time) "
                "VALUES (?, ?, ?, ?, ?)",
                values,
            )

    def metrics(self, run_id: int, key: str | None = None) -> list[Metric]:
        if key is None:
            rows = self._db.query(
                "SELECT key, step, value, time FROM metrics WHERE run_id = ? ORDER BY key, step",
                (run_id,),
            )
        else:
            rows = self._db.query(
                "SELECT key, step, value, time FROM metrics WHERE run_id = ? AND key = ? "
                "ORDER BY step",
                (run_id, key),
            )
        return [Metric(**r) for r in rows]

    def metric_keys(self, run_id: int) -> list[str]:
        """The metric keys a run has logged, sorted (cheaper than reading its metrics)."""
        rows = self._db.query(
            "SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key", (run_id,)
        )
        return [r["key"] for r in rows]

    # --- artifacts ------------------------------------------------------------------------------
    def add_artifact(self, run_id: int, name: str, kind: str, path: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO artifacts (run_id, name, kind, path, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, name, kind, path, time.time()),
            )

    def artifacts(self, run_id: int) -> list[Artifact]:
        rows = self._db.query("SELECT * FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,))
        return [Artifact(**r) for r in rows]


# Run attributes whose columns keep their first names (renaming a column is a migration): the
# attributes say what they hold, the columns are read and written through this table.
_COLUMN_OF = {"kind": "task", "model_name": "encoder", "work_seconds": "train_seconds"}
_ATTRIBUTE_OF = {column: name for name, column in _COLUMN_OF.items()}


def _columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Run attribute names -> the ``runs`` columns they are stored in."""
    return {_COLUMN_OF.get(name, name): value for name, value in fields.items()}


def _run(row: Any) -> Run:
    values = {_ATTRIBUTE_OF.get(column, column): value for column, value in dict(row).items()}
    values["config_json"] = values.pop("config")
    return Run(**values)
