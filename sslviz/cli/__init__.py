"""The ``sslviz`` command: argparse over the library, one module per group of subcommands.

Every command exits 0 on success; a user error prints one line on stderr and exits 1. With
``--json`` a command prints exactly one JSON object on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sslviz import __version__
from sslviz.cli import (
    app,
    checks,
    data,
    embeddings,
    features,
    fewshot,
    finetune,
    results,
    runs,
    training,
)
from sslviz.core.errors import UserError

COMMAND_GROUPS = (
    data,
    training,
    runs,
    results,
    features,
    embeddings,
    checks,
    fewshot,
    finetune,
    app,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sslviz",
        description="Self-supervised pretext training, embeddings and few-shot labels for a "
        "folder of unlabeled images. State lives in $SSLVIZ_HOME (default ~/.sslviz).",
    )
    parser.add_argument("--version", action="version", version=f"sslviz {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"sslviz {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sslviz {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
