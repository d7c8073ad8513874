"""Where a benchmark's numbers came from: the command, the commit, the threads and the date.

Every results file records this, so a figure can be traced to the run that produced it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
EXCLUDED = ":(exclude)benchmarks/results"


def provenance() -> dict[str, object]:
    """The command line of this process, the repository's commit (``+dirty`` when tracked
    files other than ``benchmarks/results`` differ from it), torch's thread count and the UTC
    time."""
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            # results files are this and earlier runs' outputs, not the code that ran
            [*git, "status", "--porcelain", "--untracked-files=no", "--", ".", EXCLUDED],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    script = Path(sys.argv[0])
    script_name = (
        str(script.resolve().relative_to(ROOT))
        if script.resolve().is_relative_to(ROOT)
        else str(script)
    )
    return {
        "command": shlex.join(["python", script_name, *sys.argv[1:]]),
        "commit": commit,
        "torch_threads": torch.get_num_threads(),
        "utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }
