"""Two processes that need the same decode cache at once build it once: the second waits for
the first's build (its lock), then reads it. Real processes on 900 real JPEGs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_cancel_and_liveness import jpeg_files, make_jpeg_dataset  # noqa: F401 (a fixture)
from waiting import wait_for

from sslviz.data.cache import cache_path

SIZE = 64
pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
OPEN = (
    "import sys; from sslviz.store import Store; from sslviz.data.cache import open_cache; "
    "cache = open_cache(Store.open(), int(sys.argv[1]), int(sys.argv[2])); print(cache.shape)"
)


def test_two_processes_build_one_cache_once(store, home, jpeg_files):  # noqa: F811
    dataset = make_jpeg_dataset(store, jpeg_files)
    path = cache_path(store, dataset.id, SIZE)
    both = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, str(dataset.id), str(SIZE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    builds_at_once = 0  # temporary cache files seen at the same moment
    builders: set[str] = set()  # the processes seen building (their pid names the file)

    def both_ended() -> bool:  # watching the folder while both run
        nonlocal builds_at_once
        building = list(path.parent.glob(f".{path.stem}.*.npy")) if path.parent.is_dir() else []
        builds_at_once = max(builds_at_once, len(building))
        builders.update(tmp.name.split(".")[2] for tmp in building)
        return all(p.poll() is not None for p in both)

    wait_for(both_ended, 600, 0.02, "the two processes never ended")
    outputs = [p.communicate() for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    shape = f"({len(jpeg_files)}, 3, {SIZE}, {SIZE})"
    assert [out.strip() for out, _ in outputs] == [shape, shape]
    assert builds_at_once == 1 and len(builders) == 1, (builds_at_once, builders)
    assert path.exists() and not list(path.parent.glob(f".{path.stem}.*.npy"))
