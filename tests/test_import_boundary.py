"""`import sslviz` (and every library module outside sslviz.ui) must not import streamlit.

The app framework stays out of the library (DESIGN 2, STYLE "what to avoid"): the CLI, the worker
and scripts import sslviz without paying for, or depending on, streamlit. Each check runs in a fresh
interpreter, since this test process may already have streamlit loaded.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import sslviz

PROBE = """
import importlib, json, pkgutil, sys
import sslviz
leaks = ["sslviz"] if "streamlit" in sys.modules else []
for info in pkgutil.walk_packages(sslviz.__path__, "sslviz."):
    if info.name == "sslviz.ui" or info.name.startswith("sslviz.ui."):
        continue
    importlib.import_module(info.name)
    if "streamlit" in sys.modules:
        leaks.append(info.name)
        break
print(json.dumps(leaks))
"""


def library_modules() -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages(sslviz.__path__, "sslviz.")
        if not (info.name == "sslviz.ui" or info.name.startswith("sslviz.ui."))
    ]


def test_import_sslviz_alone_does_not_import_streamlit() -> None:
    code = "import sys, sslviz; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_library_module_imports_streamlit() -> None:
    modules = library_modules()
    assert (
        "sslviz.store" in modules and "sslviz.core.workspace" in modules
    )  # the walk finds modules
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    # The first module after which streamlit appears is the one that pulled it in.
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_the_ui_package_is_where_streamlit_lives() -> None:
    """Sanity check of the probe itself: importing sslviz.ui.widgets does load streamlit."""
    code = "import sys, sslviz.ui.widgets; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_cli_starts_without_torch() -> None:
    """`sslviz datasets` and `sslviz runs` must answer at once: torch loads inside the commands
    that need it, never when the CLI (or `import sslviz`) starts."""
    code = "import sys, sslviz, sslviz.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
