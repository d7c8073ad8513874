"""The human side of active learning: a labelling task folder, a local labelling page, and a
spreadsheet round trip. See :mod:`cfx.label.store` for the folder format."""

from cfx.label.server import LabelServer, make_server, serve
from cfx.label.store import (
    UNSURE,
    Item,
    Task,
    export_csv,
    import_csv,
    pending,
    read_labels,
    read_task,
    record_label,
    write_task,
)

__all__ = [
    "UNSURE",
    "Item",
    "LabelServer",
    "Task",
    "export_csv",
    "import_csv",
    "make_server",
    "pending",
    "read_labels",
    "read_task",
    "record_label",
    "serve",
    "write_task",
]
