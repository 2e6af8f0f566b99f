"""What one map is: its source, the embedding's layer and pooling grid, and the UMAP parameters.
One object carries them from the page or the command line to the cache key, the background job's
config and back (``project``, ``embedding_job``, ``api``, the Explorer).

    settings = MapSettings("3", neighbors=30)      # layer/grid None: the source's best default
    settings.check()                               # UserError naming the bad flag
    MapSettings.from_dict(run.config)            # a job's request, as it was submitted
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sslviz.core.errors import UserError

METRICS = ("cosine", "euclidean", "manhattan", "correlation")
UMAP_FIELDS = ("neighbors", "min_dist", "metric", "dims")


@dataclass(frozen=True)
class MapSettings:
    source: str  # "random", "pixels" or a run id (as text)
    layer: str | None = None  # None: the layer that measured best for this source
    grid: int | None = None  # pooling grid of the layer's feature map (None: its default)
    neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    dims: int = 2

    @classmethod
    def build(cls, source: int | str, **options: Any) -> MapSettings:
        """Settings from a source and keyword options (unknown options: UserError)."""
        known = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UserError(f"unknown map option(s) {', '.join(unknown)}; known: {sorted(known)}")
        given = {k: v for k, v in options.items() if v is not None or k in ("layer", "grid")}
        return cls(source=str(source), **given)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> MapSettings:
        """From a job's config (its other keys, e.g. ``version``, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

    def replace(self, **changes: Any) -> MapSettings:
        return replace(self, **changes)

    def umap_options(self) -> dict[str, Any]:
        """The UMAP parameters only (what ``fit_umap`` takes)."""
        return {k: getattr(self, k) for k in UMAP_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """UserError naming the first parameter out of range, and what to use instead."""
        if self.dims not in (2, 3):
            raise UserError(f"--dims {self.dims}: a map has 2 or 3 dimensions")
        if not 2 <= self.neighbors <= 200:
            raise UserError(
                f"--neighbors {self.neighbors}: use 2 to 200 (15 is typical; more = more global)"
            )
        if not 0.0 <= self.min_dist <= 1.0:
            raise UserError(
                f"--min-dist {self.min_dist}: use 0 to 1 (0.1 is typical; lower = tighter)"
            )
        if self.metric not in METRICS:
            raise UserError(f"unknown metric {self.metric!r}; choose one of: {', '.join(METRICS)}")
