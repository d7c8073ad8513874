import json
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cfx.label import make_server, read_labels, read_task, record_label
from cfx.label.server import next_pending
from tests.label.toy import IDS, N, label_lines, start, stop

ROOT = Path(__file__).resolve().parents[2]


def get(server, path: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=10) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers["Content-Type"]


def get_json(server, path: str) -> dict:
    status, body, kind = get(server, path)
    assert kind == "application/json"
    return {"status": status, **json.loads(body)}


def post(server, body: object, content_type: str = "application/json") -> dict:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + "api/label", data=data, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return {"status": response.status, **json.loads(response.read())}
    except urllib.error.HTTPError as err:
        return {"status": err.code, **json.loads(err.read())}


def test_a_broken_labels_file_is_refused_before_writing(server, task_dir, caplog):
    """The server's file, not the request, is at fault: a 500 that the console logs (it
    was a 400 and the person at the terminal saw nothing while every click failed)."""
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "a") as f:
        f.write("000001,maybe,hand,2024-01-01\n")
    before = (task_dir / "labels.csv").read_bytes()
    with caplog.at_level("ERROR", logger="cfx.label.server"):
        answer = post(server, {"id": "000002", "label": 0})
    assert answer["status"] == 500 and "labels.csv line 3" in answer["error"]
    assert "labels.csv line 3" in caplog.text
    assert (task_dir / "labels.csv").read_bytes() == before  # the label was not saved
    assert post(server, {"id": "nope", "label": 0})["status"] == 500  # the file first


def test_a_body_too_large_or_not_json_is_said_as_such(server):
    answer = post(server, b'{"id": "000000", "label": 0, "x": "' + b"a" * 5000 + b'"}')
    assert answer["status"] == 413 and "expected a JSON body of 1..4096 bytes" in answer["error"]
    answer = post(server, b'\xff\xfe{"id"}')
    assert answer["status"] == 400
    assert answer["error"].startswith(
        'expected a JSON object {"id": ..., "label": ...}, got invalid JSON ('
    )


def test_a_task_whose_labels_file_is_broken_is_not_served(task_dir):
    """`cfx label serve` started on it, and every answer the page got was the error."""
    record_label(task_dir, "000000", 1)
    with open(task_dir / "labels.csv", "a") as f:
        f.write("000001,maybe\n")
    with pytest.raises(ValueError, match=r"labels\.csv line 3"):
        make_server(task_dir, port=0)


def test_a_host_that_cannot_be_served_is_named(task_dir, caplog):
    """`--host 999.1.1.1` printed the 'anyone can label' warning, then a bare
    `[Errno -2] Name or service not known`."""
    with pytest.raises(OSError, match=r"cannot serve on host '192\.0\.2\.1', port 0: "):
        make_server(task_dir, host="192.0.2.1", port=0)  # TEST-NET-1: not this machine's
    assert "anyone who can reach" not in caplog.text


def test_a_server_shows_its_page_address(server, task_dir):
    assert repr(server) == f"LabelServer(url={server.url!r}, task={str(task_dir)!r})"


def test_port_zero_binds_a_free_port(server):
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"
    assert server.network_url is None  # served on this machine only


def test_page_and_task(server):
    status, body, kind = get(server, "/")
    assert status == 200 and kind.startswith("text/html")
    assert b"<title>cfx label</title>" in body
    assert get_json(server, "/api/task") == {
        "status": 200,
        "class_names": ["healthy", "tumour"],
        "labelled": 0,
        "total": N,
    }


def test_next_item_and_its_pictures(server, task_dir):
    answer = get_json(server, "/api/next")
    assert answer["done"] is False and (answer["labelled"], answer["total"]) == (0, N)
    assert answer["item"] == {
        "id": "000000",
        "index": 1,
        "image": "/image?id=000000",
        "context": "/context?id=000000",
        "suggested": 0,
        "label": None,
    }
    status, png, kind = get(server, answer["item"]["image"])
    assert (status, kind) == (200, "image/png")
    assert png == (task_dir / "images" / "000000.png").read_bytes()
    _, strip, _ = get(server, answer["item"]["context"])
    assert strip == (task_dir / "context" / "000000.png").read_bytes()


def test_a_replaced_image_is_not_served(server, task_dir):
    """The page showed whatever sat at images/<id>.png, and its label was recorded against
    the image the manifest names."""
    (task_dir / "images" / "000001.png").write_bytes(
        (task_dir / "images" / "000002.png").read_bytes()
    )
    status, body, kind = get(server, "/image?id=000001")
    assert (status, kind) == (409, "application/json")
    assert "changed since the task was made" in json.loads(body)["error"]
    assert get(server, "/image?id=000002")[0] == 200


def test_label_is_written_before_the_answer(server, task_dir):
    answer = post(server, {"id": "000000", "label": 1})
    assert answer == {"status": 200, "ok": True, "labelled": 1, "total": N}
    assert label_lines(task_dir) == [("000000", "1", "web")]
    assert get_json(server, "/api/next")["item"]["id"] == "000001"
    item = get_json(server, "/api/item?id=000000")["item"]
    assert (item["id"], item["label"], item["index"]) == ("000000", 1, 1)


def test_next_after_skips_forward_then_wraps_round(server, task_dir):
    record_label(task_dir, "000000", 0)
    assert get_json(server, "/api/next?after=000002")["item"]["id"] == "000003"
    for item_id in ("000002", "000003", "000004"):
        record_label(task_dir, item_id, 1)
    # only 000001 is left: after it comes itself again (a lone skipped item stays on screen)
    assert get_json(server, "/api/next?after=000004")["item"]["id"] == "000001"
    assert get_json(server, "/api/next?after=000001")["item"]["id"] == "000001"
    record_label(task_dir, "000001", 1)
    done = get_json(server, "/api/next")
    assert (done["done"], done["item"], done["labelled"]) == (True, None, N)


def test_next_pending_known_answers(task_dir):
    task = read_task(task_dir)
    assert next_pending(task, {}) == "000000"
    assert next_pending(task, {}, after="000004") == "000000"
    assert next_pending(task, {"000001": 0, "000002": 1}, after="000000") == "000003"
    assert next_pending(task, {"000003": 0, "000004": 1}, after="000002") == "000000"
    assert next_pending(task, {"000003": 0}, after="unknown") == "000000"
    assert next_pending(task, dict.fromkeys(IDS, 0)) is None


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        ({"id": "nope", "label": 0}, "application/json", 400, "`item_id` must be an id"),
        ({"id": "000000", "label": 2}, "application/json", 400, "`label` must be a class index"),
        ({"id": "000000", "label": "1"}, "application/json", 400, "`label` must be a class"),
        ({"id": "000000"}, "application/json", 400, 'expected {"id": ..., "label": ...}'),
        (b"{not json", "application/json", 400, "Expecting property name"),
        ({"id": "000000", "label": 0}, "text/plain", 415, "expected Content-Type application"),
    ],
)
def test_bad_posts_are_refused_and_record_nothing(
    server, task_dir, body, content_type, status, message
):
    answer = post(server, body, content_type)
    assert answer["status"] == status
    assert message in answer["error"]
    assert read_labels(task_dir) == {}


def test_unknown_pages_and_items_are_404(server):
    assert get_json(server, "/nothing")["status"] == 404
    missing = get_json(server, "/image?id=nope")
    assert missing["status"] == 404 and "no item with id 'nope'" in missing["error"]
    assert get_json(server, "/api/item?id=nope")["status"] == 404


def test_labels_survive_a_server_restart(task_dir):
    first, thread = start(task_dir)
    try:
        assert post(first, {"id": "000000", "label": 0})["ok"]
        assert post(first, {"id": "000001", "label": 1})["ok"]
    finally:
        stop(first, thread)
    second, thread = start(task_dir)
    try:
        answer = get_json(second, "/api/next")
        assert (answer["item"]["id"], answer["labelled"]) == ("000002", 2)
    finally:
        stop(second, thread)
    assert read_labels(task_dir) == {"000000": 0, "000001": 1}


def test_make_server_checks_its_arguments(task_dir, tmp_path):
    with pytest.raises(ValueError, match=r"`port` must be an int in 0..65535, got 70000"):
        make_server(task_dir, port=70000)
    with pytest.raises(TypeError, match=r"`port` must be an int in 0..65535, got '8765'"):
        make_server(task_dir, port="8765")  # a wrong type, as every count's check says
    with pytest.raises(FileNotFoundError, match="no labelling task"):
        make_server(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"`host` must be an address of this machine .*got ''"):
        make_server(task_dir, host="")


def test_page_html_ships_in_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "cfx.label" in config["tool"]["setuptools"]["packages"]
    assert config["tool"]["setuptools"]["package-data"]["cfx.label"] == ["page.html"]
    assert (ROOT / "cfx" / "label" / "page.html").is_file()


def test_another_host_name_is_refused_and_the_page_cannot_be_framed(server):
    """DNS rebinding: a hostile site whose name points at 127.0.0.1 read the images and
    posted labels as the same origin; the page could be framed to trick clicks."""
    request = urllib.request.Request(server.url + "api/task", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403 and b"must name this machine" in err.value.read()
    post_request = urllib.request.Request(
        server.url + "api/label",
        data=json.dumps({"id": IDS[0], "label": 1}).encode(),
        headers={"Content-Type": "application/json", "Host": "evil.example:8765"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(post_request, timeout=10)
    assert err.value.code == 403
    with urllib.request.urlopen(server.url, timeout=10) as response:  # its own name: served
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_bad_content_length_is_a_clear_refusal(server):
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("POST", "/api/label")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", "abc")
    conn.endheaders()
    answer = conn.getresponse()
    assert answer.status == 400 and b"expected a JSON body" in answer.read()
    conn.close()


def test_a_body_shorter_than_its_content_length_times_out(server, task_dir, monkeypatch):
    """The post waited for the missing bytes as long as the client kept the connection open."""
    import http.client
    from urllib.parse import urlsplit

    from cfx.label.server import _Handler

    monkeypatch.setattr(_Handler, "timeout", 0.5)
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("POST", "/api/label")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", "200")
    conn.endheaders(b'{"id": "000000", "label": 1}')  # 28 bytes of the 200 promised
    answer = conn.getresponse()
    assert answer.status == 408 and b"Content-Length (200 bytes)" in answer.read()
    conn.close()
    assert read_labels(task_dir) == {}


def test_a_folder_it_cannot_write_is_named_before_serving(task_dir, monkeypatch):
    """The page started, and every click failed with "the label was not saved"."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(PermissionError, match=r"cannot save labels in the task folder .*task"):
        make_server(task_dir)


def test_an_ipv6_host_is_served(task_dir):
    """--host ::1 failed: the server bound IPv4 only."""
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server, thread = start(task_dir, host="::1")
    try:
        assert server.url.startswith("http://[::1]:")
        assert get_json(server, "/api/task")["total"] == N
    finally:
        stop(server, thread)


def test_every_address_is_served_with_addresses_one_can_open(task_dir, caplog):
    """--host 0.0.0.0 printed (and --open opened) http://0.0.0.0:PORT/, which no browser on
    another machine can open (a user review)."""
    import socket

    with caplog.at_level("WARNING", logger="cfx.label.server"):
        server, thread = start(task_dir, host="0.0.0.0")
    try:
        assert server.url == f"http://127.0.0.1:{server.port}/"  # this machine's
        assert server.network_url == f"http://{socket.gethostname()}:{server.port}/"
        assert f"from another, open {server.network_url}" in caplog.text
        assert get_json(server, "/api/task")["total"] == N
    finally:
        stop(server, thread)


def test_open_without_a_browser_says_where_the_page_is(monkeypatch, caplog, tmp_path):
    """--open on a machine without a browser (a server, over ssh) said nothing."""
    import cfx.label.server as server_module

    class Stub:
        url = "http://127.0.0.1:9/"
        network_url: str | None = None

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    monkeypatch.setattr(server_module, "make_server", lambda *a, **k: Stub())
    monkeypatch.setattr(server_module.webbrowser, "open", lambda url: False)
    with caplog.at_level("WARNING", logger="cfx.label.server"):
        server_module.serve(tmp_path, open_browser=True)
    assert "no web browser could be opened here: open http://127.0.0.1:9/ yourself" in caplog.text
    caplog.clear()
    Stub.network_url = "http://labeller-box:9/"  # --host 0.0.0.0: others' address too
    with caplog.at_level("WARNING", logger="cfx.label.server"):
        server_module.serve(tmp_path, open_browser=True)
    assert "yourself (from another machine http://labeller-box:9/)" in caplog.text
    caplog.clear()
    monkeypatch.setattr(server_module.webbrowser, "open", lambda url: True)
    with caplog.at_level("WARNING", logger="cfx.label.server"):
        server_module.serve(tmp_path, open_browser=True)
    assert "browser" not in caplog.text
