"""`sslviz ingest`, `sslviz datasets` and `sslviz delete-dataset` through a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.data.make_files import encoded, make_folder, noise

INGEST_KEYS = {"dataset", "accepted", "rejected", "duplicates"}
DATASET_KEYS = {"name", "images", "rejected", "duplicates", "bytes", "source", "created_at"}


def sslviz(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SSLVIZ_HOME": str(home)}
    # The installed console script, as a user runs it (next to this Python if not on PATH).
    script = shutil.which("sslviz") or str(Path(sys.executable).with_name("sslviz"))
    command = [script, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_ingest_json_names_every_bad_file(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    expected_bad = make_folder(root)
    (root / "again.jpg").write_bytes((root / "plain.jpg").read_bytes())
    home = tmp_path / "home"

    result = sslviz(home, "ingest", str(root), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds exactly one JSON object
    assert set(report) >= INGEST_KEYS
    assert report["dataset"] == "mixed" and report["duplicates"] == 1
    assert {r["path"] for r in report["rejected"]} == set(expected_bad)
    assert all(set(r) == {"path", "reason"} and r["reason"] for r in report["rejected"])

    listed = json.loads(sslviz(home, "datasets", "--json").stdout)
    assert [d["name"] for d in listed["datasets"]] == ["mixed"]
    entry = listed["datasets"][0]
    assert set(entry) >= DATASET_KEYS
    assert entry["images"] == report["accepted"] and entry["rejected"] == len(report["rejected"])


def test_ingest_zip_and_human_output(tmp_path: Path) -> None:
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.png", encoded(noise(16, 16, 1), "PNG"))
        zf.writestr("../evil.png", encoded(noise(16, 16, 2), "PNG"))
    home = tmp_path / "home"
    result = sslviz(home, "ingest", str(archive), "--name", "zipped")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "rejected ../evil.png: unsafe path" in result.stderr
    assert not (tmp_path / "evil.png").exists()
    assert "zipped" in sslviz(home, "datasets").stdout


def test_user_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = sslviz(home, "ingest", str(tmp_path / "nope"), "--json")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().count("\n") == 0 and "no such file or folder" in missing.stderr

    (tmp_path / "empty").mkdir()
    empty = sslviz(home, "ingest", str(tmp_path / "empty"))
    assert empty.returncode == 1 and "no files found" in empty.stderr

    unknown = sslviz(home, "delete-dataset", "ghost")
    assert unknown.returncode == 1 and "no dataset named 'ghost'" in unknown.stderr


def test_delete_dataset(tmp_path: Path) -> None:
    root = tmp_path / "one"
    root.mkdir()
    (root / "a.png").write_bytes(encoded(noise(16, 16, 1), "PNG"))
    home = tmp_path / "home"
    assert sslviz(home, "ingest", str(root)).returncode == 0
    assert sslviz(home, "delete-dataset", "one").returncode == 0
    assert json.loads(sslviz(home, "datasets", "--json").stdout) == {"datasets": []}
    assert not any((home / "datasets").iterdir())
