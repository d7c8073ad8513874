"""Ctrl-C between training steps: the first SIGINT is held until the step it arrived in has
finished, so the loop can save a checkpoint of a whole step and stop; a second one interrupts
at once. Without this, Ctrl-C lost everything since the last periodic checkpoint (up to
``checkpoint_every`` steps, minutes of a generator's training)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def held_interrupt() -> Iterator[Callable[[], bool]]:
    """Within the block, a first SIGINT sets a flag instead of raising; the block reads it
    with the function it is given and raises :class:`KeyboardInterrupt` itself when ready. A
    second SIGINT raises at once. The previous handler is restored on exit. Off the main
    thread (signals cannot be caught there) the flag is never set and Ctrl-C acts as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    asked = False
    previous = signal.getsignal(signal.SIGINT)

    def hold(signum: int, frame: FrameType | None) -> None:
        nonlocal asked
        if asked:  # the second Ctrl-C: the user will not wait for the step
            raise KeyboardInterrupt
        asked = True

    signal.signal(signal.SIGINT, hold)
    try:
        yield lambda: asked
    finally:
        signal.signal(signal.SIGINT, previous)
