"""Datasets, their images, and the files ingestion rejected or found duplicated."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from sslviz.core.errors import UserError
from sslviz.store.connection import Connection
from sslviz.store.rows import Dataset, Duplicate, Image, Rejection

_IMAGE_COLUMNS = "id, dataset_id, path, sha256, file, width, height, mode, format, bytes"


class UnknownDatasetError(UserError, LookupError):
    pass


class DatasetTable:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    # --- datasets -------------------------------------------------------------------------------
    def create(self, name: str, source: str, *, pid: int | None = None) -> Dataset:
        """A new dataset in status ``ingesting``, ingested by process ``pid`` (recorded so an
        ingest that dies can be found: ``sslviz.data.recovery``); UserError if the name is taken."""
        now = time.time()
        try:
            with self._db.transaction() as conn:
                cursor = conn.execute(
                    "INSERT INTO datasets (name, source, created_at, pid, heartbeat_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, source, now, pid, now),
                )
        except sqlite3.IntegrityError:
            raise UserError(
                f"a dataset named {name!r} already exists: pick another --name or delete it first"
            ) from None
        return self.get(cursor.lastrowid)

    def get(self, dataset_id: int) -> Dataset:
        rows = self._db.query("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        if not rows:
            raise UnknownDatasetError(f"no dataset with id {dataset_id}")
        return Dataset(**rows[0])

    def get_by_name(self, name: str) -> Dataset:
        rows = self._db.query("SELECT * FROM datasets WHERE name = ?", (name,))
        if not rows:
            known = ", ".join(d.name for d in self.list()) or "none yet: run `sslviz ingest` first"
            raise UnknownDatasetError(f"no dataset named {name!r} (datasets: {known})")
        return Dataset(**rows[0])

    def ready(self, dataset: Dataset | int | str) -> Dataset:
        """The row of ``dataset`` (a row, an id or a name), fresh; UserError unless it is ready
        and has images (the maps, scores and predictions all need both)."""
        if isinstance(dataset, Dataset):
            row = self.get(dataset.id)
        elif isinstance(dataset, int):
            row = self.get(dataset)
        else:
            row = self.get_by_name(str(dataset))
        if row.status != "ready":
            raise UserError(f"dataset {row.name!r} is {row.status}, not ready: ingest it first")
        if row.n_images == 0:
            raise UserError(f"dataset {row.name!r} has no images")
        return row

    def list(self, statuses: Iterable[str] | None = None) -> list[Dataset]:
        if statuses is None:
            rows = self._db.query("SELECT * FROM datasets ORDER BY id")
        else:
            wanted = tuple(statuses)
            marks = ", ".join("?" * len(wanted))
            rows = self._db.query(
                f"SELECT * FROM datasets WHERE status IN ({marks}) ORDER BY id", wanted
            )
        return [Dataset(**r) for r in rows]

    def heartbeat(self, dataset_id: int) -> None:
        """The ingesting process is alive and making progress."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE datasets SET heartbeat_at = ? WHERE id = ?", (time.time(), dataset_id)
            )

    def take_over(self, dataset_id: int, *, pid: int | None) -> bool:
        """Make process ``pid`` (None: an ingest job, judged by its run) the one ingesting
        ``dataset_id``: from ``interrupted`` or ``failed`` (a resume), or while ``ingesting`` with
        no process recorded (a job's first start) or ``pid`` itself. One statement, so two
        processes can't both resume it. Returns whether it did."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE datasets SET status = 'ingesting', error = NULL, pid = ?, "
                "heartbeat_at = ? WHERE id = ? AND (status IN ('interrupted', 'failed') "
                "OR (status = 'ingesting' AND (pid IS NULL OR pid IS ?)))",
                (pid, time.time(), dataset_id, pid),
            )
        return cursor.rowcount == 1

    def mark_interrupted(self, dataset_id: int, reason: str, *, pid: int | None) -> bool:
        """``ingesting`` -> ``interrupted`` with ``reason``, only if still ingesting by ``pid``.

        Check and write are one statement, so a reaper can't overwrite an ingest that finished
        (or was retried by another process) in between. Returns whether it changed.
        """
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE datasets SET status = 'interrupted', error = ? "
                "WHERE id = ? AND status = 'ingesting' AND pid IS ?",
                (reason, dataset_id, pid),
            )
        return cursor.rowcount == 1

    def finish(self, dataset_id: int, status: str = "ready", error: str | None = None) -> Dataset:
        """Close ingestion: recount images, rejections, duplicates and bytes from their tables."""
        with self._db.transaction() as conn:
            conn.execute(
                """UPDATE datasets SET status = :status, error = :error,
                   n_images = (SELECT COUNT(*) FROM images WHERE dataset_id = :id),
                   bytes = (SELECT COALESCE(SUM(bytes), 0) FROM images WHERE dataset_id = :id),
                   n_rejected = (SELECT COUNT(*) FROM rejections WHERE dataset_id = :id),
                   n_duplicates = (SELECT COUNT(*) FROM duplicates WHERE dataset_id = :id)
                   WHERE id = :id""",
                {"id": dataset_id, "status": status, "error": error},
            )
        return self.get(dataset_id)

    def delete_unless_active(self, dataset_id: int) -> tuple[list[int], list[int]]:
        """Delete the dataset (its rows, its runs' rows: they cascade) unless it has a queued or
        running run, in ONE transaction: a run submitted meanwhile either blocks the delete or
        finds the dataset gone, never is deleted with it. Returns (active run ids: nothing was
        deleted, the run ids deleted with it)."""
        with self._db.transaction() as conn:
            runs = conn.execute(
                "SELECT id, status FROM runs WHERE dataset_id = ? ORDER BY id", (dataset_id,)
            ).fetchall()
            active = [r["id"] for r in runs if r["status"] in ("queued", "running")]
            if active:
                return active, []
            conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        return [], [r["id"] for r in runs]

    def delete(self, dataset_id: int) -> None:
        """Remove the dataset's rows (images, rejections, runs cascade). Files are the caller's."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))

    # --- images ---------------------------------------------------------------------------------
    def add_images(self, images: Iterable[Image]) -> None:
        """Insert images (their ``id`` is ignored and assigned by the store)."""
        with self._db.transaction() as conn:
            conn.executemany(
                """INSERT INTO images (dataset_id, path, sha256, file, width, height, mode,
                   format, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    (
                        i.dataset_id,
                        i.path,
                        i.sha256,
                        i.file,
                        i.width,
                        i.height,
                        i.mode,
                        i.format,
                        i.bytes,
                    )
                    for i in images
                ],
            )

    def images(self, dataset_id: int, offset: int = 0, limit: int | None = None) -> list[Image]:
        """Images in the dataset's order (by path): the row order of caches and embeddings."""
        rows = self._db.query(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE dataset_id = ? ORDER BY path "
            "LIMIT ? OFFSET ?",
            (dataset_id, -1 if limit is None else limit, offset),
        )
        return [Image(**r) for r in rows]

    def count_images(self, dataset_id: int) -> int:
        return self._db.query("SELECT COUNT(*) FROM images WHERE dataset_id = ?", (dataset_id,))[0][
            0
        ]

    def recorded_paths(self, dataset_id: int) -> set[str]:
        """Every path an ingest has recorded so far: kept, rejected or duplicate (a resumed
        ingest skips them)."""
        rows = self._db.query(
            "SELECT path FROM images WHERE dataset_id = :id UNION SELECT path FROM rejections "
            "WHERE dataset_id = :id UNION SELECT path FROM duplicates WHERE dataset_id = :id",
            {"id": dataset_id},
        )
        return {r["path"] for r in rows}

    def kept_hashes(self, dataset_id: int) -> dict[str, str]:
        """sha256 -> path of every image kept so far (a resumed ingest finds duplicates by it)."""
        rows = self._db.query("SELECT sha256, path FROM images WHERE dataset_id = ?", (dataset_id,))
        return {r["sha256"]: r["path"] for r in rows}

    # --- rejected files and duplicates ----------------------------------------------------------
    def add_rejections(self, dataset_id: int, rejections: Iterable[Rejection]) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO rejections (dataset_id, path, reason) VALUES (?, ?, ?)",
                [(dataset_id, r.path, r.reason) for r in rejections],
            )

    def rejections(self, dataset_id: int) -> list[Rejection]:
        rows = self._db.query(
            "SELECT path, reason FROM rejections WHERE dataset_id = ? ORDER BY path", (dataset_id,)
        )
        return [Rejection(**r) for r in rows]

    def add_duplicates(self, dataset_id: int, duplicates: Iterable[Duplicate]) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO duplicates (dataset_id, path, duplicate_of) VALUES (?, ?, ?)",
                [(dataset_id, d.path, d.duplicate_of) for d in duplicates],
            )

    def duplicates(self, dataset_id: int) -> list[Duplicate]:
        rows = self._db.query(
            "SELECT path, duplicate_of FROM duplicates WHERE dataset_id = ? ORDER BY path",
            (dataset_id,),
        )
        return [Duplicate(**r) for r in rows]
