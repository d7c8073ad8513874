"""``cfx label serve``: a local web page for labelling a task folder, one image at a time.

Standard library only (``http.server``). The page (``page.html``) asks a small JSON API for the
next pending item and posts every label at once; the server writes it with
:func:`cfx.label.labels.record_label` (fsync'ed) before answering, so closing the page or
stopping the server loses nothing, and a restart resumes at the first pending item.

API (all JSON unless noted)::

    GET  /                 the page (HTML)
    GET  /api/task         {"class_names": [...], "total": N, "labelled": k}
    GET  /api/next[?after=ID]
                           the first pending item after ID in manifest order (wrapping
                           round), or the first pending item: {"done", "labelled", "total",
                           "item"}; "item" is null and "done" true when nothing is pending
    GET  /api/item?id=ID   the same answer for one item, labelled or not (undo)
    GET  /image?id=ID      the item's PNG (409 when it no longer matches the sha256 in
                           manifest.json); /context?id=ID its context strip
    POST /api/label        body {"id": ID, "label": k} (Content-Type application/json; k a
                           class index, or -1: the person cannot tell, "unsure")
                           -> {"ok": true, "labelled": k, "total": N}
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import socket
import threading
import webbrowser
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from numbers import Integral
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cfx.errors import check_flag
from cfx.files import probe_writable
from cfx.label.classes import label_name
from cfx.label.labels import read_labels, record_label
from cfx.label.store import Task, TaskFolder, read_task

logger = logging.getLogger(__name__)

MAX_BODY = 4096  # bytes; a label post is a few dozen


class LabelServer(ThreadingHTTPServer):
    """A threading HTTP server that holds one labelling task (read once at start)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], task: Task, page: bytes) -> None:
        self.task = task
        self.page = page
        self.write_lock = threading.Lock()  # one label written at a time
        if ":" in address[0]:  # an IPv6 address such as ::1 (the class default is IPv4)
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def __repr__(self) -> str:  # in a notebook: where the page is, not an object address
        return f"LabelServer(url={self.url!r}, task={str(self.task.directory)!r})"

    @property
    def port(self) -> int:
        """The port actually bound (useful after asking for port 0)."""
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The page's address on this machine, e.g. ``http://127.0.0.1:8765/``; served on
        every address (``0.0.0.0``, ``::``), the loopback one (``http://0.0.0.0:8765/`` was
        printed, and opened by ``--open``: no address to open; other machines use
        :attr:`network_url`)."""
        host = self.bound_host()
        if host in WILDCARDS:
            host = "::1" if ":" in host else "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    @property
    def network_url(self) -> str | None:
        """Served on every address: the page's address by this machine's name, for other
        machines; None otherwise."""
        if self.bound_host() not in WILDCARDS:
            return None
        return f"http://{socket.gethostname()}:{self.port}/"

    def bound_host(self) -> str:
        """The address bound, as text (``0.0.0.0`` for every one)."""
        host = self.server_address[0]
        return host.decode() if isinstance(host, bytes) else str(host)


WILDCARDS = ("0.0.0.0", "::")
"""Hosts that serve every address of the machine."""


def make_server(directory: TaskFolder, host: str = "127.0.0.1", port: int = 0) -> LabelServer:
    """A server for the task in ``directory``, bound but not yet serving.

    ``port=0`` picks a free port (read it back from ``server.port``). Call
    ``server.serve_forever()`` (e.g. in a thread) and ``server.shutdown()`` /
    ``server.server_close()`` when done.
    """
    wanted = f"`port` must be an int in 0..65535, got {port!r}"
    if not isinstance(port, Integral) or isinstance(port, bool):  # "8765": a type, as check_int
        raise TypeError(wanted)
    if not 0 <= port <= 65535:
        raise ValueError(wanted)
    port = int(port)  # a numpy int too
    if not isinstance(host, str) or not host.strip():  # "" served every address, unsaid
        raise ValueError(
            f"`host` must be an address of this machine (127.0.0.1, or 0.0.0.0 to serve "
            f"every one), got {host!r}"
        )
    task = read_task(directory)
    # a damaged labels.csv is named now, not in every answer the page gets (the page
    # started, and each click failed with the error)
    read_labels(directory)
    try:  # a folder it cannot write: said now, not at the first click
        probe_writable(task.directory)
    except OSError as err:
        raise PermissionError(
            f"cannot save labels in the task folder {task.directory}: {err.strerror or err}; "
            "expected a folder this user can write"
        ) from err
    page = resources.files("cfx.label").joinpath("page.html").read_bytes()
    try:
        server = LabelServer((host, port), task, page)
    except OSError as err:  # "[Errno -2] Name or service not known" names neither
        raise OSError(
            f"cannot serve on host {host!r}, port {port}: {err.strerror or err} (a host is an "
            "address of this machine, e.g. 127.0.0.1, or 0.0.0.0 for every one; port 0 picks "
            "a free port)"
        ) from err
    if not _is_loopback(host):  # after the bind: a host that cannot be served gets no warning
        logger.warning(
            "serving on %s: anyone who can reach this address can label%s",
            host,
            ""
            if server.network_url is None
            else f" (every address of this machine; from another, open {server.network_url})",
        )
    return server


def serve(
    directory: TaskFolder,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the labelling page for ``directory`` until Ctrl-C.

    ``on_ready`` is called with the page's URL once the port is bound.
    """
    check_flag("open_browser", open_browser)
    server = make_server(directory, host, port)
    logger.info("labelling page for %s at %s", directory, server.url)
    if on_ready is not None:
        on_ready(server.url)
    if open_browser and not webbrowser.open(server.url):  # no browser here (a server, ssh)
        logger.warning(
            "no web browser could be opened here: open %s yourself%s",
            server.url,
            "" if server.network_url is None else f" (from another machine {server.network_url})",
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("stopped")
    finally:
        server.server_close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _progress(task: Task, labels: dict[str, int]) -> dict[str, int]:
    return {"labelled": sum(i in labels for i in task.ids), "total": len(task.items)}


def _answer(task: Task, labels: dict[str, int], item_id: str | None) -> dict[str, Any]:
    """The page's view of one item (or of "all done" when ``item_id`` is None)."""
    if item_id is None:
        return {"done": True, "item": None, **_progress(task, labels)}
    item = task.item(item_id)
    return {
        "done": False,
        "item": {
            "id": item.id,
            "index": task.ids.index(item.id) + 1,
            "image": f"/image?id={item.id}",
            "context": None if item.context is None else f"/context?id={item.id}",
            "suggested": item.suggested,
            "label": labels.get(item.id),
        },
        **_progress(task, labels),
    }


def next_pending(task: Task, labels: dict[str, int], after: str | None = None) -> str | None:
    """The first unlabelled id after ``after`` in manifest order, wrapping round to the start
    (so a skipped item comes back last); the first unlabelled id when ``after`` is None; None
    when every item has a label."""
    ids = task.ids
    todo = [k for k, i in enumerate(ids) if i not in labels]
    if not todo:
        return None
    start = ids.index(after) if after in ids else -1
    later = [k for k in todo if k > start]
    return ids[later[0] if later else todo[0]]


class _Handler(BaseHTTPRequestHandler):
    server: LabelServer
    server_version = "cfx-label"
    # seconds a connection may sit silent: a client whose body falls short of its
    # Content-Length held its thread (and the post's answer) for as long as it stayed open
    timeout = 30.0

    # -- plumbing ---------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # not to be framed by another page (clicks tricked onto the class buttons), nor a
        # response read as another type than it says
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "frame-ancestors 'none'")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: object, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def _query(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        return parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}

    # -- routes -----------------------------------------------------------------------------

    def _host_allowed(self) -> bool:
        """Whether the request names this machine (DNS rebinding: a hostile site whose name
        points at 127.0.0.1 would read the images and post labels as the same origin)."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        bound = self.server.bound_host()
        if bound in (*WILDCARDS, ""):  # served to the network on purpose (--host)
            return True
        names = ("localhost", "127.0.0.1", "::1", bound, str(self.server.server_name).lower())
        if host in names or not host:
            return True
        self._error(HTTPStatus.FORBIDDEN, f"requests must name this machine, got Host {host!r}")
        return False

    def do_GET(self) -> None:
        task = self.server.task
        path, query = self._query()
        if not self._host_allowed():
            return
        try:
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
            elif path == "/api/task":
                labels = read_labels(task.directory)
                self._json({"class_names": list(task.class_names), **_progress(task, labels)})
            elif path == "/api/next":
                labels = read_labels(task.directory)
                self._json(_answer(task, labels, next_pending(task, labels, query.get("after"))))
            elif path == "/api/item":
                labels = read_labels(task.directory)
                self._json(_answer(task, labels, query.get("id", "")))
            elif path in ("/image", "/context"):
                self._picture(task, query.get("id", ""), context=path == "/context")
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        except KeyError as err:
            self._error(HTTPStatus.NOT_FOUND, str(err.args[0]))
        except (ValueError, OSError) as err:  # a labels.csv that no longer parses, a moved task
            logger.error("%s", err)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(err))

    def _picture(self, task: Task, item_id: str, *, context: bool) -> None:
        item = task.item(item_id)
        rel = item.context if context else item.image
        if rel is None:
            raise KeyError(f"item {item_id!r} has no context strip")
        root = task.directory.resolve()
        file = (root / rel).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            raise KeyError(f"image file {rel!r} of item {item_id!r} is missing")
        data = file.read_bytes()
        if not context and hashlib.sha256(data).hexdigest() != item.sha256:
            # a label given to a replaced picture would be recorded against the original
            message = (
                f"image file {rel!r} of item {item_id!r} changed since the task was made "
                "(its sha256 differs from manifest.json); not shown, so not labelled"
            )
            logger.warning("%s", message)  # the page shows it too; the item stays pending
            self._error(HTTPStatus.CONFLICT, message)
            return
        self._send(HTTPStatus.OK, data, "image/png")

    def _labels_read(self, task: Task) -> bool:
        """Whether ``labels.csv`` reads; if not (a hand edit gone wrong), a 500 that the
        console logs too: the person at the terminal saw nothing while every click failed
        as a bad request."""
        try:
            read_labels(task.directory)
        except ValueError as err:
            logger.error("%s", err)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"the label was not saved: {err}")
            return False
        return True

    def do_POST(self) -> None:
        task = self.server.task
        path, _ = self._query()
        if not self._host_allowed():
            return
        if path != "/api/label":
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
            return
        # JSON only: a cross-site form cannot send it without a CORS preflight we never allow
        if self.headers.get_content_type() != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected Content-Type application/json")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if not 0 < length <= MAX_BODY:
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0 else HTTPStatus.BAD_REQUEST
            self._error(status, f"expected a JSON body of 1..{MAX_BODY} bytes, got {length}")
            return
        try:
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError as err:  # "Expecting value: line 1 column 1" said not what
                raise ValueError(
                    f'expected a JSON object {{"id": ..., "label": ...}}, got invalid JSON ({err})'
                ) from None
            if not isinstance(body, dict) or set(body) != {"id", "label"}:
                raise ValueError(f'expected {{"id": ..., "label": ...}}, got {body!r}')
            with self.server.write_lock:
                if not self._labels_read(task):  # the file's fault, not the request's
                    return
                record_label(task.directory, body["id"], body["label"], labeller="web")
                labels = read_labels(task.directory)
        except (KeyError, ValueError, TypeError, RecursionError) as err:
            message = str(err.args[0]) if isinstance(err, KeyError) else str(err)
            self._error(HTTPStatus.BAD_REQUEST, message)
            return
        except TimeoutError:
            self._error(
                HTTPStatus.REQUEST_TIMEOUT,
                f"the body stopped short of its Content-Length ({length} bytes) "
                f"for {self.timeout:g} s; nothing was saved",
            )
            return
        except OSError as err:  # a full disk, a task folder moved away: said, not a dropped line
            logger.error("%s", err)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"the label was not saved: {err}")
            return
        logger.info("labelled %s as %s", body["id"], label_name(body["label"], task.class_names))
        self._json({"ok": True, **_progress(task, labels)})
