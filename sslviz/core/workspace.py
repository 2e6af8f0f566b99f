"""Where everything lives on disk.

All state sits under one directory, the workspace: ``$SSLVIZ_HOME`` if set, else ``~/.sslviz``.

    <home>/sslviz.db                 the SQLite store (the single source of truth for state)
    <home>/datasets/<id>/files/      ingested images, named by content hash (never by user input)
    <home>/datasets/<id>/thumbs/     small JPEG thumbnails for the gallery
    <home>/datasets/<id>/cache/      decoded uint8 arrays at training resolutions
    <home>/runs/<id>/                checkpoints, artifacts and the worker's log of one run

Server folders may be ingested only under the roots listed in ``$SSLVIZ_SERVER_ROOTS``
(separated by the OS path separator, ``:`` on Linux). The default is no roots at all, so a public
deployment cannot read the server's disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sslviz.core.settings import HOME_ENV, SERVER_ROOTS_ENV, home, server_roots

__all__ = ["HOME_ENV", "SERVER_ROOTS_ENV", "Workspace", "is_under_server_roots", "server_roots"]


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def from_env(cls) -> Workspace:
        """The workspace named by ``$SSLVIZ_HOME`` (default ``~/.sslviz``), created if missing."""
        root = home()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def db_path(self) -> Path:
        return self.root / "sslviz.db"

    def dataset_dir(self, dataset_id: int) -> Path:
        return self.root / "datasets" / str(dataset_id)

    def run_dir(self, run_id: int) -> Path:
        return self.root / "runs" / str(run_id)


def is_under_server_roots(path: Path, roots: list[Path] | None = None) -> bool:
    """True if ``path`` (symlinks resolved) lies inside one of the configured server roots."""
    resolved = Path(path).expanduser().resolve()
    return any(
        resolved.is_relative_to(root) for root in (server_roots() if roots is None else roots)
    )
