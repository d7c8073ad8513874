"""A small labelling task whose images and context strips are known pixel by pixel, and a
labelling server running it in a background thread."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from cfx.label import LabelServer, make_server, write_task

N, T, SIDE = 5, 3, 8
SUGGESTED = [0, 1, 1, 0, 1]
IDS = [f"{k:06d}" for k in range(N)]


def known_images() -> torch.Tensor:
    """``(N, 1, 8, 8)`` in [-1, 1]: image k is a left-to-right ramp plus an offset 0.1 k."""
    ramp = torch.linspace(-1.0, 0.5, SIDE).expand(SIDE, SIDE)  # (H, W)
    return torch.stack([ramp + 0.1 * k for k in range(N)])[:, None]  # (N, 1, H, W)


def known_context() -> torch.Tensor:
    """``(N, T, 1, 8, 8)`` in [-1, 1]: frame t of item k is flat at ``(k + t) / 8 - 0.5``."""
    levels = torch.tensor([[(k + t) / 8 - 0.5 for t in range(T)] for k in range(N)])  # (N, T)
    return levels[:, :, None, None, None].expand(N, T, 1, SIDE, SIDE).clone()


def make_task(directory: Path) -> Path:
    """The known task (N items, context strips, suggestions) written to ``directory``."""
    return write_task(directory, known_images(), context=known_context(), suggested=SUGGESTED)


def start(
    directory: Path, port: int = 0, host: str = "127.0.0.1"
) -> tuple[LabelServer, threading.Thread]:
    """A labelling server for ``directory`` serving in a daemon thread."""
    server = make_server(directory, host=host, port=port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def stop(server: LabelServer, thread: threading.Thread) -> None:
    """Stop serving, free the port and wait for the thread."""
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def label_lines(directory: Path) -> list[tuple[str, str, str]]:
    """(id, label, labeller) of every line of ``labels.csv`` after the header."""
    lines = (directory / "labels.csv").read_text().splitlines()
    assert lines[0] == "id,label,labeller,timestamp"
    return [tuple(line.split(",")[:3]) for line in lines[1:]]  # type: ignore[misc]


def fill_sheet(sheet: Path, labels: dict[int, str]) -> None:
    """Write ``labels`` (row after the header -> text) into an exported sheet's label column,
    as a person filling it in a spreadsheet does."""
    rows = [line.split(",") for line in sheet.read_text().splitlines()]
    column = rows[0].index("label")
    for row, text in labels.items():
        rows[1 + row][column] = text
    sheet.write_text("\n".join(",".join(row) for row in rows) + "\n")
