"""The labelling page end to end in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright; `playwright install` is never needed)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cfx.label import LabelServer, read_labels
from tests.label.toy import label_lines, start, stop

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@contextmanager
def served_page(browser, task_dir: Path) -> Iterator[tuple[LabelServer, object]]:
    """A server for ``task_dir`` and a new browser page (15 s timeouts), closed afterwards."""
    server, thread = start(task_dir)
    page = browser.new_page()
    page.set_default_timeout(15_000)
    try:
        yield server, page
    finally:
        page.close()
        stop(server, thread)


def wait_for(page, item_id: str) -> None:
    """Wait until the page shows ``item_id`` and takes input again."""
    page.wait_for_selector(f'body[data-state="ready"][data-item="{item_id}"]')


def test_label_with_keys_and_buttons_undo_and_resume_after_restart(browser, task_dir):
    server, thread = start(task_dir)
    page = browser.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(server.url)
        wait_for(page, "000000")
        assert page.inner_text("#progress-text") == "0 of 5 labelled"
        assert "the model suggests: healthy" in page.inner_text("#suggested")
        # the page takes input before its pictures arrive; an <img> has no size (so is not
        # "visible") until its picture has loaded, which under load can come later
        page.wait_for_function(
            "['main', 'context'].every(id => document.getElementById(id).complete)"
        )
        assert page.is_visible("#context")
        assert page.evaluate("document.getElementById('main').naturalWidth") == 256

        # the digit keys are the class indices a sheet or Python gives (key 1 was the first
        # class, and 1 in a sheet the second): each button shows its own
        assert page.inner_text('#classes button[data-label="0"]').split() == ["healthy", "0", "h"]
        assert page.inner_text('#classes button[data-label="1"]').split() == ["tumour", "1", "t"]
        page.keyboard.press("0")  # digit 0 -> class 0, healthy
        wait_for(page, "000001")
        page.keyboard.press("t")  # initial of tumour
        wait_for(page, "000002")
        page.click('#classes button[data-label="1"]')  # the tumour button
        wait_for(page, "000003")
        assert page.inner_text("#progress-text") == "3 of 5 labelled"

        page.keyboard.press("u")  # back to the third item, which still has its label
        wait_for(page, "000002")
        assert "labelled before as: tumour" in page.inner_text("#suggested")
        assert label_lines(task_dir) == [
            ("000000", "0", "web"),
            ("000001", "1", "web"),
            ("000002", "1", "web"),
        ]
        page.keyboard.press("h")  # relabel it healthy: a new line, the last one wins
        wait_for(page, "000003")
        assert label_lines(task_dir)[-1] == ("000002", "0", "web")
        assert read_labels(task_dir) == {"000000": 0, "000001": 1, "000002": 0}

        # restart the server on the same port; the reloaded page resumes at the first pending
        port = server.port
        stop(server, thread)
        server, thread = start(task_dir, port=port)
        page.reload()
        wait_for(page, "000003")
        assert page.inner_text("#progress-text") == "3 of 5 labelled"

        page.keyboard.press("s")  # skip 000003 ...
        wait_for(page, "000004")
        # a held key repeats: one item is labelled, not every item after it
        page.evaluate(
            "document.dispatchEvent(new KeyboardEvent('keydown', {key: '0', code: 'Digit0', "
            "repeat: true}))"
        )
        # the digit key by position on an AZERTY keyboard types '&' for Digit1: class 1
        page.evaluate(
            "document.dispatchEvent(new KeyboardEvent('keydown', {key: '&', code: 'Digit1'}))"
        )
        wait_for(page, "000003")  # ... and it comes back once the rest is done
        assert read_labels(task_dir)["000004"] == 1
        page.keyboard.press("Backspace")  # Backspace undoes too: back to 000004
        wait_for(page, "000004")
        page.keyboard.press("0")
        wait_for(page, "000003")
        page.keyboard.press("0")
        page.wait_for_selector('body[data-state="done"]')
        assert page.is_visible("#done") and "All done" in page.inner_text("#done")
        assert "rerun the command that asked" in page.inner_text("#done")
        assert page.inner_text("#progress-text") == "5 of 5 labelled"
    finally:
        page.close()
        stop(server, thread)
    assert read_labels(task_dir) == {
        "000000": 0,
        "000001": 1,
        "000002": 0,
        "000003": 0,
        "000004": 0,
    }


def test_an_image_you_cannot_call_is_answered_unsure_with_x_or_its_button(browser, task_dir):
    """Near-boundary frames are hard to call by design; skipping left them pending, so the
    run waited for a label no one could give."""
    with served_page(browser, task_dir) as (server, page):
        page.goto(server.url)
        wait_for(page, "000000")
        page.keyboard.press("x")
        wait_for(page, "000001")
        assert page.inner_text("#status") == "saved 000000: can't tell"
        page.click("#unsure")
        wait_for(page, "000002")
        assert page.inner_text("#progress-text") == "2 of 5 labelled"  # answered, not pending
        page.keyboard.press("u")
        wait_for(page, "000001")
        assert "labelled before as: can't tell" in page.inner_text("#suggested")
    assert label_lines(task_dir) == [("000000", "unsure", "web"), ("000001", "unsure", "web")]
    assert read_labels(task_dir) == {"000000": -1, "000001": -1}


def test_a_replaced_image_says_why_and_cannot_be_labelled(browser, task_dir):
    """The page said only "did not load" for a picture the server refused as replaced."""
    (task_dir / "images" / "000000.png").write_bytes(
        (task_dir / "images" / "000001.png").read_bytes()
    )
    with served_page(browser, task_dir) as (server, page):
        page.goto(server.url)
        wait_for(page, "000000")
        page.wait_for_function(
            "document.getElementById('status').textContent.includes('changed since')"
        )
        assert page.inner_text("#status").endswith("not shown, so not labelled; skip it (s)")
        wait_for(page, "000000")  # taking keys again
        page.keyboard.press("1")  # refused: the labeller never saw the task's picture
        page.keyboard.press("s")
        wait_for(page, "000001")
    assert read_labels(task_dir) == {}
