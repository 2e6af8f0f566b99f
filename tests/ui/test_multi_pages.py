"""A multi-task run on each task's result page: the page picks it like a run of that task and
shows its head's figures, the ones ``sslviz eval`` gives under ``heads``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from conftest import open_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
import trained_runs  # noqa: E402

from sslviz.data import ingest  # noqa: E402
from sslviz.runner.execute import execute  # noqa: E402
from sslviz.store import Store  # noqa: E402
from sslviz.training import train  # noqa: E402
from sslviz.training.config import TrainConfig  # noqa: E402
from sslviz.training.evaluate import evaluate_run  # noqa: E402


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A workspace with one tiny real multi-task run, trained once for this module."""
    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("multi") / "home"
    store = Store.open(home)
    try:
        folder = trained_runs.write_dataset(home.parent / "src", n=40)
        ingest(store, [folder], name=trained_runs.DATASET, workers=1)
        config = TrainConfig(
            dataset=trained_runs.DATASET,
            task="multi",
            image_size=32,
            epochs=2,
            batch_size=16,
            device="cpu",
            task_options={"permutations": 30},
        )
        run = execute(store, train.create_run(store, config).id)
        assert run.status == "finished", (run.status, run.error)
    finally:
        store.close()
    return home, run.id


@pytest.fixture
def multi(template: tuple[Path, int], home: Path) -> int:
    shutil.copytree(template[0], home)
    return template[1]


@pytest.mark.parametrize(
    "page,key,label,value",
    [
        ("rotation", "rot_run", "held-out accuracy", lambda h: f"{100 * h['accuracy']:.1f}%"),
        ("jigsaw", "jig_run", "held-out accuracy", lambda h: f"{100 * h['accuracy']:.1f}%"),
        ("colorization", "col_run", "PSNR, model", lambda h: f"{h['psnr']:.2f} dB"),
    ],
)
def test_each_result_page_shows_its_head(multi: int, page, key, label, value) -> None:
    app = open_app(page, params={"run": str(multi)})
    assert app.selectbox(key=key).value == multi
    assert any(f"its {page} head" in c.value for c in app.caption)
    head = evaluate_run(Store.open(), multi)["heads"][page]
    shown = next(m.value for m in app.metric if m.label == label)
    assert shown == value(head)
