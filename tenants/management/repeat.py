"""What the commands that keep going (`--follow`) share: a step every few seconds until a signal."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def every_until_stopped(interval: float, step: Callable[[], object]) -> None:
    """Run `step` every `interval` seconds until SIGTERM or SIGINT (the wait ends at once then, not
    after the interval)."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    while not stopping.wait(interval):
        step()
