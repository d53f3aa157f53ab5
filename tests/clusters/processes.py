"""What every test server needs: waiting for it to be ready, and stopping it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60, interval: float = 0.2) -> Any:
    """`check()`'s first true answer, asked every `interval` seconds for up to `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def stop_process(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """Ask a server to stop (SIGTERM), and kill it if it has not within `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
