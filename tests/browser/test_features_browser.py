"""In Chromium, over the session's tiny trained runs: the Features page renders the run's channels
beside the untrained network's with no exception, a deep-linked channel's top 50 included, and
again on a reload with its data cached (how long that takes is measured in
benchmarks/app_latency.py, not asserted here). Screenshots are saved in the test's tmp dir."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import wait_idle

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
import trained_runs  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def trained(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> trained_runs.Trained:
    template = trained_runs.template(tmp_path_factory)
    template.copy_to(tmp_path / "home")
    return template


@pytest.fixture
def app_url(trained: trained_runs.Trained, app_url: str) -> str:
    return app_url


def test_features_page(app_url: str, page, tmp_path: Path, trained: trained_runs.Trained) -> None:
    page.set_viewport_size({"width": 1500, "height": 2000})
    url = f"{app_url}/features?run={trained.rotation}&layer=block2&channel=1"
    page.goto(url)
    page.get_by_text("Untrained (random)").first.wait_for(timeout=180_000)
    page.get_by_text("Channel 1: its top 50").wait_for(timeout=180_000)
    wait_idle(page)
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stImage").count() >= 16  # 8 channel rows a side, + the top 50
    page.screenshot(path=str(tmp_path / "features.png"), full_page=True)

    page.reload()
    page.get_by_text("Channel 1: its top 50").wait_for()
    wait_idle(page)
    assert page.get_by_test_id("stException").count() == 0
