"""Wait for a condition, not for a fixed time: poll often (the check is cheap), stop at a deadline.

Tests that watch the Dagster daemon, a server or a process use this instead of `time.sleep(n)` in
a loop, so each waits about as long as the thing takes, not up to n seconds more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.25


def wait_until(condition: Callable[[], T], timeout_s: float, what: str,
               alive: Callable[[], str | None] | None = None, every_s: float = POLL_S) -> T:
    """The first truthy value of `condition()`, polled every `every_s` seconds for up to `timeout_s`.

    `alive()` returns None while what we wait on is running, or why it stopped (e.g. a process's
    exit and log tail), which fails the wait at once instead of at the deadline.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if alive is not None and (stopped := alive()):
            raise AssertionError(f"stopped while waiting for {what}: {stopped}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        time.sleep(every_s)
