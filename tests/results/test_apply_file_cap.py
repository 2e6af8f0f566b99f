"""``sslviz apply RUN IMAGE`` reads at most the per-file limit ingestion uses: a larger file is
refused in one line naming the limit, without being read into memory (issue 26)."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from sslviz.cli import main
from sslviz.data.sources import MAX_FILE_BYTES


def test_apply_refuses_a_file_past_the_limit_without_reading_it(
    trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as handle:  # sparse: past the limit on paper, no disk used
        handle.truncate(MAX_FILE_BYTES + 64 * 1024**2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    assert main(["apply", str(trained.rotation), str(huge)]) == 1
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == "", captured.err
    assert f"at most {MAX_FILE_BYTES // 1024**2} MB" in lines[0] and str(huge) in lines[0]
    assert grew_mib < 100  # reading it whole would have taken 320 MiB
