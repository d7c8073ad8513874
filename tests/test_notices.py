import logging
import threading

from cfx.notices import held, is_held


def test_a_hold_drops_its_tags_in_its_own_thread_only(caplog):
    """The hold was a filter on module-level loggers: a second explainer running in another
    thread at the same time lost its own notices."""
    log = logging.getLogger("cfx.test_notices")
    other_thread: list[bool] = []

    def other() -> None:
        other_thread.append(is_held(log, "cfx_x"))
        log.warning("from the other thread", extra={"cfx_x": True})

    with caplog.at_level(logging.WARNING), held((log,), "cfx_x"):
        log.warning("held here", extra={"cfx_x": True})
        log.warning("untagged here")
        assert is_held(log, "cfx_x") and not is_held(log, "cfx_y")
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert other_thread == [False]
    assert "held here" not in caplog.text
    assert "untagged here" in caplog.text and "from the other thread" in caplog.text
    assert not is_held(log, "cfx_x") and log.filters == []  # removed on exit


def test_holds_work_with_thread_names_off_in_logging(caplog, monkeypatch):
    """With `logging.logThreads = False` a record's `thread` is None: every held notice was
    let through."""
    monkeypatch.setattr(logging, "logThreads", False)
    log = logging.getLogger("cfx.test_notices")
    with caplog.at_level(logging.WARNING), held((log,), "cfx_x"):
        log.warning("held here", extra={"cfx_x": True})
    assert "held here" not in caplog.text
