import signal
import threading

import pytest

from cfx.training.interrupt import held_interrupt


def test_the_first_ctrl_c_is_held_the_second_interrupts_and_the_handler_comes_back():
    before = signal.getsignal(signal.SIGINT)
    with held_interrupt() as interrupted:
        assert not interrupted()
        signal.raise_signal(signal.SIGINT)  # held: no KeyboardInterrupt here
        assert interrupted()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_off_the_main_thread_it_changes_nothing():
    seen = []

    def run():
        with held_interrupt() as interrupted:
            seen.append((interrupted(), signal.getsignal(signal.SIGINT)))

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen == [(False, signal.getsignal(signal.SIGINT))]
