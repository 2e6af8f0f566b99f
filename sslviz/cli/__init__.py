"""The ``sslviz`` command: argparse over the library, one module per group of subcommands.

Every command exits 0 on success; a user error prints one line on stderr and exits 1. With
``--json`` a command prints exactly one JSON object on stdout and nothing else there.

data         ``ingest``, ``datasets``, ``reingest``, ``delete-dataset``
training     ``train`` and ``eval``: pretext training and held-out evaluation
runs         ``runs``, ``status``, ``cancel``, ``resume``, ``delete-run``
results      ``apply``: a run's pretext model on one image
features     ``features`` (what each channel responds to) and ``upright``
embeddings   ``embed`` and ``project``: embeddings and their UMAP map, as files
data_checks  ``scores``, ``duplicates``, ``outliers``, ``changed``: data checks
fewshot      ``predict`` and ``suggest``: few labels -> every image's label; what to label next
finetune     ``finetune`` and ``leaderboard``
app          ``app``: start the Streamlit app
foreground   a run carried out in this process, Ctrl-C -> ``cancelled``
output       JSON on stdout, progress and messages on stderr
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sslviz import __version__
from sslviz.cli import (
    app,
    data,
    data_checks,
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
    data_checks,
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
