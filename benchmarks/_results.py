"""Merge one benchmark's numbers into benchmarks/results.json (other benchmarks own other keys),
framed the same way for every benchmark: the machine, when it ran, and the load average at its
start and end (this is a shared machine: a timing means little without the load beside it).

    with measured("topic") as numbers:
        numbers["something_s"] = ...

records `numbers` plus the frame under `topic` when the block ends normally (a benchmark that
fails records nothing, so the last good numbers stay).
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"
# The frame's keys: a benchmark's own numbers use other names.
FRAME_KEYS = ("machine", "measured_at", "load_average_at_start", "load_average_at_end")


def record(topic: str, numbers: dict) -> Path:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[topic] = numbers
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return RESULTS


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus (shared, timings noisy), "
            f"python {platform.python_version()}")


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


@contextmanager
def framed() -> Iterator[dict]:
    """A dict to fill, given the frame's keys when the block ends normally (see `measured`);
    for a part of a benchmark that is recorded inside another's numbers."""
    numbers: dict = {}
    start = {"machine": machine(), "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "load_average_at_start": load_average()}
    yield numbers
    numbers.update(start, load_average_at_end=load_average())


@contextmanager
def measured(topic: str) -> Iterator[dict]:
    """A dict to fill with one benchmark's numbers; framed and recorded under `topic` when the
    block ends normally."""
    with framed() as numbers:
        yield numbers
    print(f"recorded {topic!r} in {record(topic, numbers)}")
