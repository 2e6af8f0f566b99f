"""A source the leaderboard chose on a session's labels: noted when the session switches to it, and
said beside the session's estimate while it holds, since an estimate measured on the labels that
chose its source is optimistic."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sslviz.core.atomic import write_json

if TYPE_CHECKING:
    from sslviz.fewshot.leaderboard_rows import Row
    from sslviz.store import Store


def _choice_file(store: Store, dataset_id: int, session_id: int) -> Any:
    return store.workspace.dataset_dir(dataset_id) / "leaderboard" / f"chosen-{session_id}.json"


def record_choice(
    store: Store, session: Any, row: Row, labels: Mapping[str, str], compared: int
) -> None:
    """Note that ``session`` switched to ``row``'s source because it ranked best of ``compared``
    rows on ``labels``: its estimate, cross-validated on those same labels, is then optimistic
    (``choice_note``)."""
    path = _choice_file(store, session.dataset_id, session.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    chosen = {"source": row.source, "layer": row.layer, "grid": row.grid, "compared": compared}
    write_json(path, {**chosen, "labels": dict(labels)})


def choice_note(store: Store, session: Any, labels: Mapping[str, str]) -> str | None:
    """ "chosen on these labels ..." while the session still predicts from the source the
    leaderboard chose and every label that chose it is still given as it was; else None."""
    try:
        chosen = json.loads(_choice_file(store, session.dataset_id, session.id).read_text())
    except (FileNotFoundError, ValueError):
        return None
    same = chosen["source"] == str(session.source) and chosen["layer"] == session.layer
    used = chosen["labels"]
    if not same or any(labels.get(p) != v for p, v in used.items()):
        return None
    return (
        f"chosen on these labels: the leaderboard picked this source as the best of "
        f"{chosen['compared']} on {len(used)} of them, so this estimate, measured on the same "
        "labels, is optimistic — label more images to measure it afresh"
    )
