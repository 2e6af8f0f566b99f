"""``sslviz app``: start the Streamlit app (bound to localhost unless told otherwise)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

APP_FILE = Path(__file__).resolve().parents[2] / "app.py"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("app", help="start the web app")
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to bind; the default serves only this machine. Use 0.0.0.0 to share it "
        "on your network (anyone who can reach the port can use the app)",
    )
    parser.set_defaults(handler=run_app)


def run_app(args: argparse.Namespace) -> int:
    from sslviz.core.errors import UserError

    if not APP_FILE.exists():
        raise UserError(f"app.py not found at {APP_FILE}: run from a source checkout of sslviz")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.headless",
        "true",
        "--server.address",
        args.address,
        "--server.port",
        str(args.port),
        "--browser.gatherUsageStats",
        "false",
    ]
    print(f"sslviz app: http://{args.address}:{args.port}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server (same pid) rather than wait on a child: a SIGTERM or Ctrl-C to
    # `sslviz app` then reaches Streamlit itself, which stops serving, and nothing is orphaned.
    os.chdir(APP_FILE.parent)
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process
