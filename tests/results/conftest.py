"""Fixtures for the result tests: the session's tiny trained runs of every task, copied into each
test's own workspace (``home``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import trained_runs  # noqa: E402


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> trained_runs.Trained:
    return trained_runs.template(tmp_path_factory)


@pytest.fixture
def trained(template: trained_runs.Trained, home: Path) -> trained_runs.Trained:
    """The trained runs in a fresh copy of the template at ``home`` (``SSLVIZ_HOME``)."""
    template.copy_to(home)
    return trained_runs.Trained(
        home, template.rotation, template.colorization, template.colorization_l2, template.jigsaw
    )
