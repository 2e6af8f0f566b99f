"""``python -m sslviz ...``: the same as the ``sslviz`` command (also what ``torchrun -m`` takes)."""

import sys

from sslviz.cli import main

sys.exit(main())
