"""Labeling sessions: a dataset, an embedding source, and the labels a researcher gives.

    session = create_session(store, "digits", "pixels", name="first pass")
    label_images(store, session.id, ["0001.png", "0002.png"], "three")   # saved at once
    unlabel_images(store, session.id, ["0002.png"])
    undo(store, session.id)                                              # the unlabel is back
    import_labels(store, session.id, "labels.csv")
    labels_by_path(store, session.id)                                    # {"0001.png": "three", ...}

Every call writes to the store before it returns (``sslviz.store.labeling_sessions``): a refresh, a second
browser or a restarted server sees the same labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sslviz.core.errors import UserError

if TYPE_CHECKING:
    from sslviz.store import Dataset, Store
    from sslviz.store.rows import LabelAction, LabelName, Session


def source_name(store: Store, source: str) -> str:
    """How a source reads on the page: "pixels", "random" or "rotation #3"."""
    if not str(source).isdigit():
        return str(source)
    try:
        run = store.runs.get(int(source))
    except UserError:
        return f"run #{source} (deleted)"
    return f"{run.kind} #{run.id}"


def deleted_source(store: Store, session: Session) -> str | None:
    """A one-line message if the run the session predicts from was deleted, else None.

    Run ids are never reused (store migration 3), so the session's run id can't silently name
    another run; nothing is predicted from a deleted one: the session must switch source."""
    if not str(session.source).isdigit():
        return None
    try:
        store.runs.get(int(session.source))
    except UserError:
        return (
            f"run #{session.source}, which session {session.name!r} predicts from, was deleted: "
            "rank the sources for its labels (below) and use another one; its labels stay"
        )
    return None


def create_session(
    store: Store,
    dataset: Dataset | str | int,
    source: str | int,
    *,
    name: str | None = None,
    layer: str | None = None,
    grid: int | None = None,
) -> Session:
    """A new session of ``dataset`` predicting from ``source`` ("pixels", "random", a run id)."""
    from sslviz.maps.embed import parse_source, source_run

    dataset = store.datasets.ready(dataset)
    source = parse_source(source)
    if source.isdigit():
        run = source_run(store, source)
        if run.dataset_id != dataset.id:
            raise UserError(
                f"run {run.id} was trained on another dataset: pick a run of {dataset.name!r}"
            )
    if name is None:
        taken = {s.name for s in store.sessions.list(dataset.id)}
        number = len(taken) + 1
        while f"session {number}" in taken:
            number += 1
        name = f"session {number}"
    return store.sessions.create(
        dataset_id=dataset.id, name=name, source=source, layer=layer, grid=grid
    )


def set_source(
    store: Store,
    session_id: int,
    source: str | int,
    layer: str | None = None,
    grid: int | None = None,
) -> Session:
    """Predict this session's labels from another embedding source (labels stay)."""
    from sslviz.maps.embed import parse_source

    return store.sessions.set_source(session_id, parse_source(source), layer, grid)


def _image_ids(store: Store, session: Session, images: Iterable[str | int]) -> list[int]:
    """Image ids from ids or paths of the session's dataset; UserError naming unknown paths."""
    wanted = list(images)
    if all(isinstance(i, int) for i in wanted):
        return [int(i) for i in wanted]
    by_path = {image.path: image.id for image in store.datasets.images(session.dataset_id)}
    unknown = [str(p) for p in wanted if not isinstance(p, int) and str(p) not in by_path]
    if unknown:
        raise UserError(f"not images of this dataset: {', '.join(unknown[:5])}")
    return [int(p) if isinstance(p, int) else by_path[str(p)] for p in wanted]


def label_images(
    store: Store,
    session_id: int,
    images: Iterable[str | int],
    label: str,
    *,
    suggested: bool = False,
) -> int:
    """Give every image (paths or image ids) ``label``, as one undoable action; ``suggested``:
    the images came from the "label these next" queue (``suggested_paths``)."""
    session = store.sessions.get(session_id)
    ids = _image_ids(store, session, images)
    return store.sessions.set_labels(session.id, dict.fromkeys(ids, label), suggested=suggested)


def unlabel_images(store: Store, session_id: int, images: Iterable[str | int]) -> int:
    """Take the label off every image (paths or image ids), as one undoable action."""
    session = store.sessions.get(session_id)
    ids = _image_ids(store, session, images)
    return store.sessions.set_labels(session.id, dict.fromkeys(ids))


def undo(store: Store, session_id: int) -> LabelAction | None:
    """Take back the session's last action; returns it (None if there was nothing to undo)."""
    return store.sessions.undo(session_id)


def label_names(store: Store, session_id: int) -> list[LabelName]:
    return store.sessions.label_names(session_id)


def labels_by_path(store: Store, session_id: int) -> dict[str, str]:
    """``path -> label`` of the session's labeled images (what ``predict`` takes)."""
    return {label.path: label.label for label in store.sessions.labels(session_id)}


def suggested_paths(store: Store, session_id: int) -> set[str]:
    """Paths of the session's labels given to images the suggestions chose (what ``predict``
    takes as ``suggested``: an estimate on mostly such labels is optimistic)."""
    return {label.path for label in store.sessions.labels(session_id) if label.suggested}


def import_labels(store: Store, session_id: int, csv_file: str | Path | bytes) -> int:
    """Add the labels of a ``path,label`` CSV (a file path or its bytes) to the session.

    The whole file is checked first (``labels_csv``): a bad file imports nothing. One label name
    is enough here (a session may grow class by class). Returns how many images changed.
    """
    from sslviz.fewshot.labels_csv import parse_labels_csv

    session = store.sessions.get(session_id)
    images = store.datasets.images(session.dataset_id)
    by_path = {image.path: image.id for image in images}
    if isinstance(csv_file, bytes):
        data, name = csv_file, "the uploaded file"
    else:
        if not Path(csv_file).is_file():
            raise UserError(f"{csv_file}: no such file; give a CSV with the header path,label")
        data, name = Path(csv_file).read_bytes(), str(csv_file)
    dataset = store.datasets.get(session.dataset_id).name
    labels = parse_labels_csv(data, by_path, name=name, dataset=dataset, min_classes=1)
    return store.sessions.set_labels(
        session.id,
        {by_path[p]: label for p, label in labels.items()},
        description=f"import {len(labels)} labels from {Path(name).name}",
    )


def paths_of(store: Store, session: Session, image_ids: Sequence[int]) -> list[str]:
    by_id = {image.id: image.path for image in store.datasets.images(session.dataset_id)}
    return [by_id[int(i)] for i in image_ids]
