"""``python -m sslviz ...``: the same as the ``sslviz`` command (also what ``torchrun -m`` takes)."""

import sys

from sslviz.cli import main

if __name__ == "__main__":  # importing this module (e.g. to walk the package) must not run it
    sys.exit(main())
