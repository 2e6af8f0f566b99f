"""The server only serves (DESIGN 3.3): a page script renders, submits and reads the store. This
test reads every page (``app_pages/``) and every helper of the pages (``sslviz/ui/``) and fails
if one of them calls long work directly — an ingest, training, a run's executor, the data checks
— instead of submitting a job. Calls are resolved through the file's imports, so an alias
(``from sslviz.maps import neighbour_checks`` then ``neighbour_checks.neighbour_graph(...)``) is caught too.

The forbidden calls are a table: add an entry when another piece of work becomes a job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE_FILES = sorted([*(ROOT / "app_pages").glob("*.py"), *(ROOT / "sslviz" / "ui").glob("*.py")])

# qualified name -> what to do instead. Modules are listed with their functions: a page may
# import a module for its cheap readers (``neighbour_checks.cached_graph``), never for these.
FORBIDDEN: dict[str, str] = {
    # ingest: a job of kind "ingest" (sslviz.api.submit_ingest)
    "sslviz.data.ingest": "submit an ingest job (sslviz.api.submit_ingest)",
    "sslviz.data.ingest_uploads": "stage the upload, then submit an ingest job",
    "sslviz.data.ingest_server_folder": "submit an ingest job",
    "sslviz.data.reingest": "resume the dataset's ingest job",
    "sslviz.data.ingest_pipeline.ingest": "submit an ingest job",
    "sslviz.data.ingest_pipeline.ingest_uploads": "stage the upload, then submit an ingest job",
    "sslviz.data.ingest_pipeline.ingest_server_folder": "submit an ingest job",
    "sslviz.data.ingest_pipeline.reingest": "resume the dataset's ingest job",
    "sslviz.data.ingest_pipeline.fill": "submit an ingest job",
    "sslviz.data.ingest_job.execute_run": "submit an ingest job",
    "sslviz.api.ingest": "submit an ingest job (sslviz.api.submit_ingest)",
    # training and any run's executor: jobs.submit, the worker carries it out
    "sslviz.api.pretrain": "submit the run (jobs.submit)",
    "sslviz.training.train.execute_run": "submit the run (jobs.submit)",
    "sslviz.training.train.train": "submit the run (jobs.submit)",
    "sslviz.runner.execute.execute": "submit the run: the worker executes it",
    "sslviz.fewshot.finetune.execute_run": "submit the fine-tune (jobs.submit)",
    # the data checks: a job of kind "checks" (sslviz.ui.check_jobs)
    "sslviz.results.checks_job.execute_run": "submit a checks job (sslviz.ui.check_jobs)",
    "sslviz.maps.neighbour_checks.neighbour_graph": "read neighbour_checks.cached_graph after a checks job",
    "sslviz.maps.neighbour_checks.embedding_graph": "submit a checks job",
    "sslviz.maps.neighbour_checks.graph_of": "submit a checks job",
    "sslviz.maps.neighbour_checks.knn": "submit a checks job",
    "sslviz.results.image_scores.image_scores": "read cached_image_scores after a checks job",
    # the leaderboard: a job of kind "leaderboard" (fewshot.leaderboard_job.submit_ranking)
    "sslviz.fewshot.leaderboard.leaderboard": "submit a ranking job (leaderboard_job)",
    "sslviz.fewshot.leaderboard_job.execute_run": "submit a ranking job (submit_ranking)",
    "sslviz.fewshot.leaderboard_rows.frozen_row": "submit a ranking job (submit_ranking)",
    # a UMAP fit (numba holds the GIL): in a child process (ui.background_maps) or a map job
    "sslviz.maps.project.project": "request it of ui.background_maps (a child process)",
    "sslviz.maps.project.fit_umap": "request a map of ui.background_maps (a child process)",
    "sslviz.fewshot.geometry.coords_for": "background_maps.request_coords (a child process)",
    "sslviz.fewshot.geometry.fit_coords": "background_maps.request_coords (a child process)",
    # predictions (cross-validation and the fit) and embeddings: the app's work process
    "sslviz.fewshot.predict.predict": "ask background_requests.request_prediction (a child)",
    "sslviz.fewshot.predict.predict_vectors": "ask background_requests (a child process)",
    "sslviz.maps.embed.embed": "background_requests.embedding_or_progress, or a map job if large",
}
# (file, qualified call) pairs allowed with a reason: work that doesn't run in the script thread.
ALLOWED: dict[tuple[str, str], str] = {
    # the background thread's work, with should_stop: the fit runs in a child process
    ("sslviz/ui/background_maps.py", "sslviz.maps.project.project"): "a child process fits",
    ("sslviz/ui/background_maps.py", "sslviz.fewshot.geometry.coords_for"): "a child process",
    # the tasks of the app's work process, a child (the page only sends it requests)
    ("sslviz/ui/work_process.py", "sslviz.fewshot.predict.predict"): "runs in the child",
    ("sslviz/ui/work_process.py", "sslviz.maps.embed.embed"): "runs in the child",
    # reads what the checks job stored (both embeddings and graphs are cached by then)
    (
        "sslviz/ui/data_checks_view.py",
        "sslviz.maps.neighbour_checks.changed_graphs",
    ): "reads the job's files",
}


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> the qualified name it stands for, from the file's imports (anywhere)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    names[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _qualified(node: ast.expr, names: dict[str, str]) -> str | None:
    """``a.b.c`` with ``a`` resolved through the imports, or None (not an imported name)."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(attrs)])


def forbidden_calls(path: Path) -> list[str]:
    """``file:line calls X: what to do instead`` for every forbidden call in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = _imports(tree)
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _qualified(node.func, names)
        if name in FORBIDDEN and (rel, name) not in ALLOWED:
            found.append(f"{rel}:{node.lineno} calls {name}: {FORBIDDEN[name]}")
    return found


def test_no_page_script_calls_long_work_directly() -> None:
    assert len(PAGE_FILES) > 20  # the pages and their helpers were found
    violations = [v for path in PAGE_FILES for v in forbidden_calls(path)]
    assert violations == []


@pytest.mark.parametrize(
    ("source", "call"),
    [
        (
            "from sslviz.data import ingest_uploads\ningest_uploads(store, files, 'x')\n",
            "ingest_uploads",
        ),
        (
            "from sslviz.maps import neighbour_checks\nneighbour_checks.neighbour_graph(store, emb)\n",
            "neighbour_graph",
        ),
        ("import sslviz.api as api\napi.pretrain(store, 'd')\n", "pretrain"),
        ("from sslviz.runner.execute import execute as run_it\nrun_it(store, 3)\n", "execute"),
        (
            "from sslviz.fewshot.leaderboard import leaderboard as rank\nrank(store, 1, labels)\n",
            "leaderboard",
        ),
        (
            "from sslviz.fewshot.predict import predict\npredict(store, 1, 'pixels', {})\n",
            "predict",
        ),
        ("from sslviz.maps import embed\nembed.embed(store, dataset, 'random')\n", "embed"),
        ("import sslviz.maps.embed as e\ne.embed(store, dataset, 'random')\n", "embed"),
    ],
)
def test_the_probe_catches_direct_calls_and_aliases(tmp_path: Path, source: str, call: str) -> None:
    page = tmp_path / "probe_page.py"
    page.write_text(source, encoding="utf-8")
    (found,) = forbidden_calls(page)
    assert call in found


def test_cheap_readers_pass(tmp_path: Path) -> None:
    page = tmp_path / "probe_reader.py"
    page.write_text(
        "from sslviz.maps import neighbour_checks\nneighbour_checks.cached_graph(store, emb)\n"
    )
    assert forbidden_calls(page) == []
