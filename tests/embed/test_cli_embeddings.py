"""``sslviz embed`` (and ``project``) as a user runs them: files, JSON keys, one-line errors."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from waiting import wait_for

from sslviz.cli import main
from sslviz.maps.project import cached_projection
from sslviz.store import Store

SSLVIZ = shutil.which("sslviz", path=str(Path(sys.executable).parent)) or shutil.which("sslviz")


def sslviz(*args: str) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it (a cold process: slow on a busy box)."""
    return subprocess.run([SSLVIZ, *args], capture_output=True, text=True, timeout=900)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same command in this process (``sslviz.cli.main``): (exit code, stdout, stderr)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_embed_writes_npy_csv_and_parquet_in_path_order(
    home: Path, tmp_path: Path, run_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(home)
    paths = [i.path for i in store.datasets.images(store.datasets.get_by_name("tiny").id)]
    store.close()
    out = {ext: tmp_path / f"emb.{ext}" for ext in ("npy", "csv", "parquet")}
    facts = {}
    for ext, file in out.items():
        args = ("embed", str(run_id), "--dataset", "tiny", "--out", str(file), "--json")
        if ext == "npy":  # once as a user runs it, the rest in-process (torch imports are slow)
            result = sslviz(*args)
            code, stdout, stderr = result.returncode, result.stdout, result.stderr
        else:
            code, stdout, stderr = cli(capsys, *args)
        assert code == 0, stderr
        facts[ext] = json.loads(stdout)  # exactly one JSON object on stdout
        assert {"source", "layer", "dim", "images", "out"} <= set(facts[ext])
        assert facts[ext]["source"] == str(run_id) and facts[ext]["out"] == str(file)
    vectors = np.load(out["npy"])
    assert (
        vectors.shape
        == (len(paths), facts["npy"]["dim"])
        == (facts["npy"]["images"], vectors.shape[1])
    )
    with open(out["csv"]) as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "path" and len(rows[0]) == 1 + vectors.shape[1]
    assert [r[0] for r in rows[1:]] == paths
    np.testing.assert_allclose(
        np.array(rows[1:])[:, 1:].astype(np.float32), vectors, rtol=1e-5, atol=1e-6
    )
    table = pq.read_table(out["parquet"])
    assert table.column("path").to_pylist() == paths
    np.testing.assert_array_equal(table.column("e0").to_numpy(), vectors[:, 0])


def test_embed_errors_are_one_line(
    home: Path, tmp_path: Path, run_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(home)
    dataset = store.datasets.get_by_name("tiny")
    job = store.runs.create(
        dataset_id=dataset.id,
        kind="embedding",
        model_name="small-cnn",
        config={},
        device="cpu",
        epochs=1,
    )
    store.close()
    out = str(tmp_path / "e.npy")
    tiny = ("--dataset", "tiny")
    for args, expected in [
        (("42", *tiny, "--out", out), "no run with id 42"),
        ((str(job.id), *tiny, "--out", out), "has no encoder"),
        ((str(run_id), *tiny, "--layer", "block7", "--out", out), "unknown layer 'block7'"),
        (("random", *tiny, "--out", str(tmp_path / "e.txt")), "FILE.npy, FILE.csv or FILE.parquet"),
        (("random", "--dataset", "nope", "--out", out), "no dataset named 'nope'"),
    ]:
        code, stdout, stderr = cli(capsys, "embed", *args, "--json")
        assert code == 1 and stdout == ""
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], stderr


SILENCE_ALLOWED = 10.0  # s: beats come every 2 s; a busy shared machine may delay a few


def test_out_is_needed_in_the_foreground(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr = cli(capsys, "project", "pixels", "--dataset", "tiny")
    assert code != 0 and not stdout
    assert stderr.strip().count("\n") == 0 and "--out" in stderr and "--background" in stderr


@pytest.mark.slow
def test_background_map_job_is_followed_cancelled_and_resumed_through_the_cli(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def status(run: int) -> dict:
        code, stdout, stderr = cli(capsys, "status", str(run), "--json")
        assert code == 0, stderr
        return json.loads(stdout)

    def wait_status(run: int, wanted: str, timeout: float = 600) -> dict:
        """Poll `sslviz status` until the run ends; track its heartbeat's age while it works
        (from its first progress on: before that the worker imports torch)."""

        def ended() -> dict | None:
            nonlocal silence
            facts = status(run)
            if facts["status"] not in ("queued", "running"):
                return facts
            if facts["status"] == "running" and facts["step"] > 0 and facts["heartbeat_age"]:
                silence = max(silence, facts["heartbeat_age"])
            return None

        facts = wait_for(ended, timeout, 0.2, f"run {run} did not end within {timeout} s")
        assert facts["status"] == wanted, facts
        return facts

    silence = 0.0
    code, stdout, stderr = cli(
        capsys, "embed", "random", "--dataset", "tiny", "--background", "--json"
    )
    assert code == 0, stderr
    job = json.loads(stdout)
    assert job["status"] in ("queued", "running") and job["task"] == "embedding"
    # the same map asked for by `project` while the job is active: the same job, not a second
    code, stdout, _ = cli(
        capsys, "project", "random", "--dataset", "tiny", "--background", "--json"
    )
    assert code == 0 and json.loads(stdout)["run"] == job["run"]
    code, _, stderr = cli(capsys, "cancel", str(job["run"]))
    assert code == 0, stderr
    wait_status(job["run"], "cancelled", timeout=60)
    # resumed in a real worker, which beats all along though it counts as hung after 1 s
    # without a sign of life (the UMAP fit in its child process, silent for seconds, used to be)
    monkeypatch.setenv("SSLVIZ_PROGRESS_DEADLINE", "1")
    code, _, stderr = cli(capsys, "resume", str(job["run"]))
    assert code == 0, stderr
    assert wait_status(job["run"], "finished")["progress"] == 1.0
    assert silence < SILENCE_ALLOWED, f"no heartbeat for {silence:.1f} s while working"
    code, stdout, _ = cli(capsys, "runs", "--json")
    runs = json.loads(stdout)["runs"]
    assert [r["task"] for r in runs if r["run"] == job["run"]] == ["embedding"]
    # the result stays in the workspace: the foreground commands only write the files
    store = Store.open(home)
    assert cached_projection(store, "tiny", "random") is not None
    store.close()
    out = tmp_path / "map.csv"
    code, stdout, stderr = cli(
        capsys, "project", "random", "--dataset", "tiny", "--out", str(out), "--json"
    )
    assert code == 0, stderr
    assert json.loads(stdout)["images"] == 48 and len(out.read_text().splitlines()) == 49
    code, stdout, stderr = cli(
        capsys, "embed", "random", "--dataset", "tiny", "--out", str(tmp_path / "e.npy"), "--json"
    )
    assert code == 0 and json.loads(stdout)["images"] == 48, stderr
