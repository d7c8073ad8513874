"""The human side of active learning: a labelling task folder, a local labelling page, and a
spreadsheet round trip. See :mod:`cfx.label.store` for the folder format."""

from cfx.label.classes import UNSURE
from cfx.label.labels import pending, read_labels, record_label
from cfx.label.server import LabelServer, make_server, serve
from cfx.label.sheet import export_csv, import_csv
from cfx.label.store import Item, Task, read_task, write_task

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
