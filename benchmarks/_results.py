"""Merge one benchmark's numbers into benchmarks/results.json (other benchmarks own other keys)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def record(topic: str, numbers: dict) -> Path:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[topic] = numbers
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return RESULTS
