"""``python -m cfx``: the ``cfx`` command, for environments where its script is not on PATH."""

import sys

from cfx.cli import entry

if __name__ == "__main__":
    sys.exit(entry())
