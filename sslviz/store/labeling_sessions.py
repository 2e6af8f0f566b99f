"""Labeling sessions, their label names, the labels given to images, and an undo log.

Every change is one transaction that writes the labels *and* its entry in ``label_actions``, so a
label is on disk the moment it is given (a refresh, a second browser or a killed server loses
none) and ``undo`` can always take back exactly the last change.

An action's ``changes`` (JSON) say how to revert it:

    {"labels": [[image_id, previous label name or null], ...],   images to put back
     "names_added": [name, ...],                                  names the action created
     "names_removed": [name, ...],                                names the action deleted
     "renamed": [old, new] | null}
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sslviz.core.errors import UserError
from sslviz.store.connection import Connection
from sslviz.store.rows import Label, LabelAction, LabelName, Session


class UnknownSessionError(UserError, LookupError):
    pass


def clean_label(name: str) -> str:
    """A label name as stored: surrounding whitespace removed; empty names are refused."""
    cleaned = str(name).strip()
    if not cleaned:
        raise UserError("a label name can't be empty: type a name such as 'cat'")
    return cleaned


class SessionTable:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    # --- sessions -------------------------------------------------------------------------------
    def create(
        self,
        *,
        dataset_id: int,
        name: str,
        source: str,
        layer: str | None = None,
        grid: int | None = None,
    ) -> Session:
        name = str(name).strip()
        if not name:
            raise UserError("a session needs a name, e.g. 'first pass'")
        try:
            with self._db.transaction() as conn:
                cursor = conn.execute(
                    """INSERT INTO sessions (dataset_id, name, source, layer, grid, created_at)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    (dataset_id, name, str(source), layer, grid, time.time()),
                )
        except sqlite3.IntegrityError:
            raise UserError(
                f"this dataset already has a session named {name!r}: pick another name"
            ) from None
        return self.get(cursor.lastrowid)

    def get(self, session_id: int) -> Session:
        rows = self._db.query("SELECT * FROM sessions WHERE id = ?", (int(session_id),))
        if not rows:
            raise UnknownSessionError(f"no labeling session with id {session_id}")
        return Session(**rows[0])

    def list(self, dataset_id: int | None = None) -> list[Session]:
        if dataset_id is None:
            rows = self._db.query("SELECT * FROM sessions ORDER BY id")
        else:
            rows = self._db.query(
                "SELECT * FROM sessions WHERE dataset_id = ? ORDER BY id", (dataset_id,)
            )
        return [Session(**r) for r in rows]

    def set_source(
        self, session_id: int, source: str, layer: str | None = None, grid: int | None = None
    ) -> Session:
        """Predict the session from another embedding source; its labels stay."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET source = ?, layer = ?, grid = ? WHERE id = ?",
                (str(source), layer, grid, int(session_id)),
            )
        return self.get(session_id)

    def delete(self, session_id: int) -> None:
        """Remove the session with its label names, labels and undo log (they cascade)."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE id = ?", (int(session_id),))

    # --- label names ----------------------------------------------------------------------------
    def label_names(self, session_id: int) -> list[LabelName]:
        """The session's label names in the order they were added, with their image counts."""
        rows = self._db.query(
            """SELECT n.id, n.session_id, n.name, COUNT(l.image_id) AS count
               FROM label_names n LEFT JOIN labels l ON l.label_id = n.id
               WHERE n.session_id = ? GROUP BY n.id ORDER BY n.id""",
            (int(session_id),),
        )
        return [LabelName(**r) for r in rows]

    def add_label_name(self, session_id: int, name: str) -> LabelName:
        name = clean_label(name)
        with self._db.transaction() as conn:
            if _name_id(conn, session_id, name) is None:
                _create_name(conn, session_id, name)
                _log(conn, session_id, f"add label {name!r}", names_added=[name])
        return next(n for n in self.label_names(session_id) if n.name == name)

    def rename_label(self, session_id: int, old: str, new: str) -> None:
        """Rename a label name; renaming onto an existing name merges the two."""
        new = clean_label(new)
        if new == old:
            return
        with self._db.transaction() as conn:
            old_id = _require_name(conn, session_id, old)
            if _name_id(conn, session_id, new) is not None:
                _merge(conn, session_id, old, new)
                return
            conn.execute("UPDATE label_names SET name = ? WHERE id = ?", (new, old_id))
            _log(conn, session_id, f"rename {old!r} to {new!r}", renamed=[old, new])

    def merge_labels(self, session_id: int, source: str, target: str) -> None:
        """Give every image labeled ``source`` the label ``target`` and delete ``source``."""
        if source == target:
            return
        with self._db.transaction() as conn:
            _require_name(conn, session_id, source)
            _require_name(conn, session_id, target)
            _merge(conn, session_id, source, target)

    def delete_label(self, session_id: int, name: str) -> int:
        """Delete a label name and take it off its images; returns how many images lost it."""
        with self._db.transaction() as conn:
            name_id = _require_name(conn, session_id, name)
            images = [
                r[0]
                for r in conn.execute("SELECT image_id FROM labels WHERE label_id = ?", (name_id,))
            ]
            conn.execute("DELETE FROM labels WHERE label_id = ?", (name_id,))
            conn.execute("DELETE FROM label_names WHERE id = ?", (name_id,))
            _log(
                conn,
                session_id,
                f"delete label {name!r} ({len(images)} images)",
                labels=[[i, name] for i in images],
                names_removed=[name],
            )
        return len(images)

    # --- labels ---------------------------------------------------------------------------------
    def set_labels(
        self,
        session_id: int,
        labels: Mapping[int, str | None],
        description: str | None = None,
        *,
        suggested: bool = False,
    ) -> int:
        """Label images (``image_id -> name``; ``None`` takes an image's label off), in one action.

        Names not yet in the session are created; ``suggested``: the images came from the
        suggestions (recorded: an estimate on actively chosen labels is optimistic). Returns how
        many images changed.
        """
        wanted = {int(i): (None if n is None else clean_label(n)) for i, n in labels.items()}
        now = time.time()
        with self._db.transaction() as conn:
            previous = _current(conn, session_id, wanted)
            changed = {i: n for i, n in wanted.items() if previous.get(i) != n}
            if not changed:
                return 0
            added = []
            ids: dict[str, int] = {}
            for name in sorted({n for n in changed.values() if n is not None}):
                name_id = _name_id(conn, session_id, name)
                if name_id is None:
                    name_id = _create_name(conn, session_id, name)
                    added.append(name)
                ids[name] = name_id
            removed = [i for i, n in changed.items() if n is None]
            conn.executemany(
                "DELETE FROM labels WHERE session_id = ? AND image_id = ?",
                [(session_id, i) for i in removed],
            )
            conn.executemany(
                """INSERT OR REPLACE INTO labels
                   (session_id, image_id, label_id, created_at, suggested) VALUES (?, ?, ?, ?, ?)""",
                [
                    (session_id, i, ids[n], now, int(suggested))
                    for i, n in changed.items()
                    if n is not None
                ],
            )
            if description is None:
                description = _describe(changed)
            _log(
                conn,
                session_id,
                description,
                labels=[[i, previous.get(i)] for i in changed],
                names_added=added,
            )
        return len(changed)

    def labels(self, session_id: int) -> list[Label]:
        """Every labeled image of the session, in path order."""
        rows = self._db.query(
            """SELECT l.image_id, i.path, n.name AS label, l.created_at, l.suggested
               FROM labels l JOIN images i ON i.id = l.image_id
               JOIN label_names n ON n.id = l.label_id
               WHERE l.session_id = ? ORDER BY i.path""",
            (int(session_id),),
        )
        return [Label(**{**r, "suggested": bool(r["suggested"])}) for r in rows]

    def label_of(self, session_id: int) -> dict[int, str]:
        """``image_id -> label`` for every labeled image of the session."""
        return {label.image_id: label.label for label in self.labels(session_id)}

    # --- undo -----------------------------------------------------------------------------------
    def actions(self, session_id: int, limit: int = 20) -> list[LabelAction]:
        """The most recent actions first."""
        rows = self._db.query(
            """SELECT id, session_id, created_at, description, changes AS changes_json
               FROM label_actions WHERE session_id = ? ORDER BY id DESC LIMIT ?""",
            (int(session_id), limit),
        )
        return [LabelAction(**r) for r in rows]

    def undo(self, session_id: int) -> LabelAction | None:
        """Take back the session's last action (and drop it from the log); None if there is none.

        Reading and reverting the action is one transaction: two browsers pressing undo at once
        undo two actions, never the same one twice.
        """
        with self._db.transaction() as conn:
            row = conn.execute(
                """SELECT id, session_id, created_at, description, changes AS changes_json
                   FROM label_actions WHERE session_id = ? ORDER BY id DESC LIMIT 1""",
                (int(session_id),),
            ).fetchone()
            if row is None:
                return None
            action = LabelAction(**row)
            _revert(conn, session_id, action.changes)
            conn.execute("DELETE FROM label_actions WHERE id = ?", (action.id,))
        return action


# --- helpers on an open transaction ---------------------------------------------------------------
def _name_id(conn: sqlite3.Connection, session_id: int, name: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM label_names WHERE session_id = ? AND name = ?", (session_id, name)
    ).fetchone()
    return None if row is None else int(row[0])


def _require_name(conn: sqlite3.Connection, session_id: int, name: str) -> int:
    name_id = _name_id(conn, session_id, name)
    if name_id is None:
        known = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM label_names WHERE session_id = ? ORDER BY id", (session_id,)
            )
        ]
        raise UserError(f"no label named {name!r} in this session (labels: {', '.join(known)})")
    return name_id


def _create_name(conn: sqlite3.Connection, session_id: int, name: str) -> int:
    cursor = conn.execute(
        "INSERT INTO label_names (session_id, name) VALUES (?, ?)", (session_id, name)
    )
    return int(cursor.lastrowid)


def _current(conn: sqlite3.Connection, session_id: int, image_ids: Iterable[int]) -> dict[int, str]:
    wanted = list(image_ids)
    out: dict[int, str] = {}
    for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for image_id, name in conn.execute(
            f"""SELECT l.image_id, n.name FROM labels l JOIN label_names n ON n.id = l.label_id
                WHERE l.session_id = ? AND l.image_id IN ({marks})""",
            (session_id, *chunk),
        ):
            out[int(image_id)] = name
    return out


def _merge(conn: sqlite3.Connection, session_id: int, source: str, target: str) -> None:
    source_id = _name_id(conn, session_id, source)
    target_id = _name_id(conn, session_id, target)
    images = [
        r[0] for r in conn.execute("SELECT image_id FROM labels WHERE label_id = ?", (source_id,))
    ]
    conn.execute("UPDATE labels SET label_id = ? WHERE label_id = ?", (target_id, source_id))
    conn.execute("DELETE FROM label_names WHERE id = ?", (source_id,))
    _log(
        conn,
        session_id,
        f"merge {source!r} into {target!r} ({len(images)} images)",
        labels=[[i, source] for i in images],
        names_removed=[source],
    )


def _log(
    conn: sqlite3.Connection,
    session_id: int,
    description: str,
    *,
    labels: list[list[Any]] | None = None,
    names_added: list[str] | None = None,
    names_removed: list[str] | None = None,
    renamed: list[str] | None = None,
) -> None:
    changes = {
        "labels": labels or [],
        "names_added": names_added or [],
        "names_removed": names_removed or [],
        "renamed": renamed,
    }
    conn.execute(
        """INSERT INTO label_actions (session_id, created_at, description, changes)
           VALUES (?, ?, ?, ?)""",
        (session_id, time.time(), description, json.dumps(changes)),
    )


def _revert(conn: sqlite3.Connection, session_id: int, changes: dict[str, Any]) -> None:
    if changes.get("renamed"):
        old, new = changes["renamed"]
        conn.execute(
            "UPDATE label_names SET name = ? WHERE session_id = ? AND name = ?",
            (old, session_id, new),
        )
    for name in changes.get("names_removed", []):
        if _name_id(conn, session_id, name) is None:
            _create_name(conn, session_id, name)
    now = time.time()
    for image_id, name in changes.get("labels", []):
        if name is None:
            conn.execute(
                "DELETE FROM labels WHERE session_id = ? AND image_id = ?", (session_id, image_id)
            )
            continue
        name_id = _name_id(conn, session_id, name)
        if name_id is None:  # renamed or deleted since: bring the name back
            name_id = _create_name(conn, session_id, name)
        conn.execute(
            """INSERT OR REPLACE INTO labels (session_id, image_id, label_id, created_at)
               VALUES (?, ?, ?, ?)""",
            (session_id, image_id, name_id, now),
        )
    for name in changes.get("names_added", []):
        name_id = _name_id(conn, session_id, name)
        in_use = (
            name_id is not None
            and conn.execute(
                "SELECT 1 FROM labels WHERE label_id = ? LIMIT 1", (name_id,)
            ).fetchone()
        )
        if name_id is not None and not in_use:
            conn.execute("DELETE FROM label_names WHERE id = ?", (name_id,))


def _describe(changed: Mapping[int, str | None]) -> str:
    names = sorted({n for n in changed.values() if n is not None})
    n = len(changed)
    images = f"{n} image{'s' if n != 1 else ''}"
    if not names:
        return f"unlabel {images}"
    if len(names) == 1:
        return f"label {images} {names[0]!r}"
    return f"label {images} ({', '.join(map(repr, names))})"
