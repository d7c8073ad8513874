"""Fixtures: the known labelling task (see toy.py) and a server running it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cfx.label import LabelServer
from tests.label.toy import make_task, start, stop


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    return make_task(tmp_path / "task")


@pytest.fixture
def server(task_dir: Path) -> Iterator[LabelServer]:
    running, thread = start(task_dir)
    yield running
    stop(running, thread)
