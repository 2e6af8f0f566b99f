"""A file that crashes its decoding process gets only itself rejected, not the files that were
being decoded beside it (issue 26)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.data.crashing_format import crashing_file
from tests.data.make_files import encoded, noise

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_file_that_crashes_the_decoder_is_rejected(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(160):  # 10 files a chunk with 2 workers: many chunks in flight at the crash
        (folder / f"{i:03d}.png").write_bytes(encoded(noise(12, 12, i), "PNG"))
    (folder / "077-crash.png").write_bytes(crashing_file())
    out = subprocess.run(
        [sys.executable, "-m", "tests.data.crashing_format", "ingest", str(folder)]
        + ["--workers", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["rejected"] == [{"path": "077-crash.png", "reason": "crashed the image decoder"}]
    assert report["accepted"] == 160 and report["duplicates"] == 0
