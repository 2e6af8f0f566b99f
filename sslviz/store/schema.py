"""The SQLite schema, as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations a database has had; opening a store applies the
rest. Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

DATASET_STATUSES = ("ingesting", "ready", "failed", "interrupted")
RUN_STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")
TASKS = ("rotation", "colorization", "jigsaw", "multi")  # pretext tasks
# Other work the one job runner carries out; a row of ``runs`` like a pretext run (DESIGN 3.3).
JOB_KINDS = ("finetune", "embedding", "ingest", "checks", "leaderboard")
RUN_KINDS = TASKS + JOB_KINDS
# The kinds as shipped migrations knew them: their text must not change when a kind is added.
_TASKS_V1 = ("rotation", "colorization", "jigsaw")
_RUN_KINDS_V2 = _TASKS_V1 + ("finetune", "embedding")
_RUN_KINDS_V4 = ("rotation", "colorization", "jigsaw", "multi", "finetune", "embedding")
_RUN_KINDS_V7 = _RUN_KINDS_V4 + ("ingest", "checks")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _with_autoincrement(
    table: str, columns: str, after: str = "", *, keep_sequence: bool = False
) -> str:
    """Rebuild ``table`` (its current columns, ``columns`` after ``id``) with
    ``id INTEGER PRIMARY KEY AUTOINCREMENT``, every row and id kept; ``after``: its indexes.
    ``keep_sequence``: the table is AUTOINCREMENT already; its largest id ever given carries
    over (else a deleted newest row's id would be given again)."""
    names = ", ".join(["id", *(line.split()[0] for line in _column_lines(columns))])
    sequence = (
        f"""
    DELETE FROM sqlite_sequence WHERE name = '{table}_v3';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT '{table}_v3', seq FROM sqlite_sequence WHERE name = '{table}';"""
        if keep_sequence
        else ""
    )
    return f"""
    CREATE TABLE {table}_v3 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        {columns}
    );
    INSERT INTO {table}_v3 ({names}) SELECT {names} FROM {table};{sequence}
    DROP TABLE {table};
    ALTER TABLE {table}_v3 RENAME TO {table};
    {after}
    """


def _column_lines(columns: str) -> list[str]:
    """The column definitions of a table body (not its UNIQUE/CHECK table constraints)."""
    lines = [line.strip().rstrip(",") for line in columns.strip().splitlines()]
    return [line for line in lines if line and not line.startswith(("UNIQUE", "CHECK", "--"))]


# Columns migration 5 adds to ``runs`` (ALTER TABLE): a rebuild of ``runs`` after it must keep them.
_RUNS_ADDED_IN_5 = ("claimed_at REAL", "stage TEXT", "stage_progress REAL")


def _runs_columns(kinds: tuple[str, ...], *, since_5: bool = False) -> str:
    """The columns of ``runs`` (after ``id``), its ``task`` one of ``kinds``. A rebuild in a
    migration after 5 passes ``since_5`` so the columns 5 added are kept."""
    added = "".join(f",\n        {column}" for column in _RUNS_ADDED_IN_5) if since_5 else ""
    return f"""dataset_id       INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        task             TEXT NOT NULL CHECK (task IN {_in(kinds)}),
        encoder          TEXT NOT NULL,
        config           TEXT NOT NULL,
        device           TEXT NOT NULL,
        status           TEXT NOT NULL DEFAULT 'queued' CHECK (status IN {_in(RUN_STATUSES)}),
        created_at       REAL NOT NULL,
        started_at       REAL,
        ended_at         REAL,
        pid              INTEGER,
        heartbeat_at     REAL,
        epoch            INTEGER NOT NULL DEFAULT 0,
        epochs           INTEGER NOT NULL,
        step             INTEGER NOT NULL DEFAULT 0,
        total_steps      INTEGER,
        train_seconds    REAL NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
        error            TEXT,
        traceback        TEXT,
        parent_id        INTEGER REFERENCES runs(id) ON DELETE SET NULL{added}"""


_RUNS_INDEXES = """CREATE INDEX runs_by_status ON runs (status);
    CREATE INDEX runs_by_parent ON runs (parent_id);"""


MIGRATIONS: list[str] = [
    # 1: datasets and their images, rejected files and duplicates; runs, metrics, artifacts.
    f"""
    CREATE TABLE datasets (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        source        TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'ingesting' CHECK (status IN {_in(DATASET_STATUSES)}),
        created_at    REAL NOT NULL,
        n_images      INTEGER NOT NULL DEFAULT 0,
        n_rejected    INTEGER NOT NULL DEFAULT 0,
        n_duplicates  INTEGER NOT NULL DEFAULT 0,
        bytes         INTEGER NOT NULL DEFAULT 0,
        error         TEXT
    );
    CREATE TABLE images (
        id          INTEGER PRIMARY KEY,
        dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        path        TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        file        TEXT NOT NULL,
        width       INTEGER NOT NULL CHECK (width > 0),
        height      INTEGER NOT NULL CHECK (height > 0),
        mode        TEXT NOT NULL,
        format      TEXT NOT NULL,
        bytes       INTEGER NOT NULL,
        UNIQUE (dataset_id, path),
        UNIQUE (dataset_id, sha256)
    );
    CREATE TABLE rejections (
        id          INTEGER PRIMARY KEY,
        dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        path        TEXT NOT NULL,
        reason      TEXT NOT NULL
    );
    CREATE TABLE duplicates (
        id            INTEGER PRIMARY KEY,
        dataset_id    INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        path          TEXT NOT NULL,
        duplicate_of  TEXT NOT NULL
    );
    CREATE TABLE runs (
        id               INTEGER PRIMARY KEY,
        dataset_id       INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        task             TEXT NOT NULL CHECK (task IN {_in(_TASKS_V1)}),
        encoder          TEXT NOT NULL,
        config           TEXT NOT NULL,
        device           TEXT NOT NULL,
        status           TEXT NOT NULL DEFAULT 'queued' CHECK (status IN {_in(RUN_STATUSES)}),
        created_at       REAL NOT NULL,
        started_at       REAL,
        ended_at         REAL,
        pid              INTEGER,
        heartbeat_at     REAL,
        epoch            INTEGER NOT NULL DEFAULT 0,
        epochs           INTEGER NOT NULL,
        step             INTEGER NOT NULL DEFAULT 0,
        total_steps      INTEGER,
        train_seconds    REAL NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
        error            TEXT,
        traceback        TEXT
    );
    CREATE INDEX runs_by_status ON runs (status);
    CREATE TABLE metrics (
        run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key     TEXT NOT NULL,
        step    INTEGER NOT NULL,
        value   REAL NOT NULL,
        time    REAL NOT NULL,
        PRIMARY KEY (run_id, key, step)
    ) WITHOUT ROWID;
    CREATE TABLE artifacts (
        run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        path        TEXT NOT NULL,
        created_at  REAL NOT NULL,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;
    """,
    # 2: runs of every job kind (fine-tuning, embedding) with the run they start from; ingests
    # that can be reaped like runs; labeling sessions, their labels and an undo log.
    # SQLite can't alter a CHECK constraint, so ``runs`` and ``datasets`` are rebuilt (foreign keys
    # are off while migrating: dropping the old table must not cascade).
    f"""
    CREATE TABLE runs_v2 (
        id               INTEGER PRIMARY KEY,
        dataset_id       INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        task             TEXT NOT NULL CHECK (task IN {_in(_RUN_KINDS_V2)}),
        encoder          TEXT NOT NULL,
        config           TEXT NOT NULL,
        device           TEXT NOT NULL,
        status           TEXT NOT NULL DEFAULT 'queued' CHECK (status IN {_in(RUN_STATUSES)}),
        created_at       REAL NOT NULL,
        started_at       REAL,
        ended_at         REAL,
        pid              INTEGER,
        heartbeat_at     REAL,
        epoch            INTEGER NOT NULL DEFAULT 0,
        epochs           INTEGER NOT NULL,
        step             INTEGER NOT NULL DEFAULT 0,
        total_steps      INTEGER,
        train_seconds    REAL NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
        error            TEXT,
        traceback        TEXT,
        parent_id        INTEGER REFERENCES runs(id) ON DELETE SET NULL
    );
    INSERT INTO runs_v2 (id, dataset_id, task, encoder, config, device, status, created_at,
        started_at, ended_at, pid, heartbeat_at, epoch, epochs, step, total_steps, train_seconds,
        cancel_requested, error, traceback)
        SELECT id, dataset_id, task, encoder, config, device, status, created_at, started_at,
        ended_at, pid, heartbeat_at, epoch, epochs, step, total_steps, train_seconds,
        cancel_requested, error, traceback FROM runs;
    DROP TABLE runs;
    ALTER TABLE runs_v2 RENAME TO runs;
    CREATE INDEX runs_by_status ON runs (status);
    CREATE INDEX runs_by_parent ON runs (parent_id);
    CREATE TABLE datasets_v2 (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        source        TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'ingesting' CHECK (status IN {_in(DATASET_STATUSES)}),
        created_at    REAL NOT NULL,
        n_images      INTEGER NOT NULL DEFAULT 0,
        n_rejected    INTEGER NOT NULL DEFAULT 0,
        n_duplicates  INTEGER NOT NULL DEFAULT 0,
        bytes         INTEGER NOT NULL DEFAULT 0,
        error         TEXT,
        pid           INTEGER,
        heartbeat_at  REAL
    );
    INSERT INTO datasets_v2 (id, name, source, status, created_at, n_images, n_rejected,
        n_duplicates, bytes, error)
        SELECT id, name, source, status, created_at, n_images, n_rejected, n_duplicates, bytes,
        error FROM datasets;
    DROP TABLE datasets;
    ALTER TABLE datasets_v2 RENAME TO datasets;
    CREATE TABLE sessions (
        id          INTEGER PRIMARY KEY,
        dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        source      TEXT NOT NULL,
        layer       TEXT,
        grid        INTEGER,
        created_at  REAL NOT NULL,
        UNIQUE (dataset_id, name)
    );
    CREATE TABLE label_names (
        id          INTEGER PRIMARY KEY,
        session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
        UNIQUE (session_id, name)
    );
    CREATE TABLE labels (
        session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        label_id    INTEGER NOT NULL REFERENCES label_names(id) ON DELETE CASCADE,
        created_at  REAL NOT NULL,
        PRIMARY KEY (session_id, image_id)
    ) WITHOUT ROWID;
    CREATE INDEX labels_by_name ON labels (label_id);
    CREATE TABLE label_actions (
        id          INTEGER PRIMARY KEY,
        session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        created_at  REAL NOT NULL,
        description TEXT NOT NULL,
        changes     TEXT NOT NULL
    );
    """,
    # 3: ids are never reused. Without AUTOINCREMENT SQLite gives a new row the largest id + 1,
    # so deleting the newest run (dataset, image, session) handed its id to the next one and a
    # labeling session, a cached map or a ?run= link silently pointed at another run. Rebuilt
    # with every row and id kept (foreign keys are off while migrating; the tables that
    # reference these name them, so they follow the rebuilt tables).
    _with_autoincrement(
        "datasets",
        f"""name          TEXT NOT NULL UNIQUE,
        source        TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'ingesting' CHECK (status IN {_in(DATASET_STATUSES)}),
        created_at    REAL NOT NULL,
        n_images      INTEGER NOT NULL DEFAULT 0,
        n_rejected    INTEGER NOT NULL DEFAULT 0,
        n_duplicates  INTEGER NOT NULL DEFAULT 0,
        bytes         INTEGER NOT NULL DEFAULT 0,
        error         TEXT,
        pid           INTEGER,
        heartbeat_at  REAL""",
    )
    + _with_autoincrement(
        "images",
        """dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        path        TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        file        TEXT NOT NULL,
        width       INTEGER NOT NULL CHECK (width > 0),
        height      INTEGER NOT NULL CHECK (height > 0),
        mode        TEXT NOT NULL,
        format      TEXT NOT NULL,
        bytes       INTEGER NOT NULL,
        UNIQUE (dataset_id, path),
        UNIQUE (dataset_id, sha256)""",
    )
    + _with_autoincrement("runs", _runs_columns(_RUN_KINDS_V2), after=_RUNS_INDEXES)
    + _with_autoincrement(
        "sessions",
        """dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        source      TEXT NOT NULL,
        layer       TEXT,
        grid        INTEGER,
        created_at  REAL NOT NULL,
        UNIQUE (dataset_id, name)""",
    ),
    # 4: multi-task pretext runs (``multi``). SQLite can't alter the CHECK on ``task``: ``runs``
    # is rebuilt, every row and id kept.
    _with_autoincrement(
        "runs", _runs_columns(_RUN_KINDS_V4), after=_RUNS_INDEXES, keep_sequence=True
    ),
    # 5: one owner per run, and the stage a run is in. ``claimed_at`` is written by the one
    # conditional update that claims a run together with its owner's pid: ownership (the reaper's
    # "is its process still the one that claimed it") is judged from it, not from the run's first
    # ``started_at``, so a re-claimed run is not taken for dead. ``stage`` names work a run does
    # outside its steps ("writing results: upright check") with ``stage_progress`` (0-1), so it
    # shows progress there and a resumed run knows which phase to redo.
    "".join(f"ALTER TABLE runs ADD COLUMN {column};" for column in _RUNS_ADDED_IN_5),
    # 6: whether a label was given to an image the "label these next" queue suggested: labels
    # chosen actively are no random sample, and an estimate on them is optimistic (1 = suggested).
    """
    ALTER TABLE labels ADD COLUMN suggested INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: runs of kind ``ingest`` and ``checks``: ingests (server folders, staged uploads) and the
    # Explorer's data checks are jobs of the one runner too. ``runs`` is rebuilt for its CHECK.
    _with_autoincrement(
        "runs", _runs_columns(_RUN_KINDS_V7, since_5=True), after=_RUNS_INDEXES, keep_sequence=True
    ),
    # 8: runs of kind ``leaderboard``: ranking the sources for a session's labels is a job too.
    _with_autoincrement(
        "runs", _runs_columns(RUN_KINDS, since_5=True), after=_RUNS_INDEXES, keep_sequence=True
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)
