"""The first prediction pays no UMAP compile when its method needs no UMAP: `predict --method
auto` on a fresh workspace, with labels few enough that auto follows its rule (Poisson learning),
never imports umap or numba (57 s on a fresh machine before, for 434 images)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from finetune_helpers import first_per_class, make_labeled_dataset

from sslviz.store import Store

PROBE = """
import json, sys
from sslviz.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "umap": "umap" in sys.modules, "numba": "numba" in sys.modules}))
"""


def _run(home: Path, *args: str) -> dict:
    env = {**os.environ, "SSLVIZ_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_auto_on_its_rule_imports_no_umap(home: Path, store: Store, tmp_path: Path) -> None:
    truth = make_labeled_dataset(store, "toys", ("red", "green", "blue"), 8, size=16)
    labels = tmp_path / "labels.csv"
    given = first_per_class(truth, 2)  # under 3 per class: auto follows its rule, no choice
    labels.write_text("path,label\n" + "".join(f"{p},{v}\n" for p, v in given.items()))
    args = ["predict", "pixels", "--dataset", "toys", "--labels", str(labels)]
    found = _run(home, *args, "--out", str(tmp_path / "p.csv"), "--method", "auto")
    assert found == {"code": 0, "umap": False, "numba": False}
    assert not list((home).rglob("*umap10*.npy"))  # no UMAP was fitted or cached
