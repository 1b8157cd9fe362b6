"""Reading numeric values from provider payloads without ever inventing one.

Providers mark "no value" in different ways: FRED writes ".", Yahoo writes null. Such a
value is missing (absent from the table), never zero. Zero and negative numbers are valid
for macro series (yields, the April 2020 WTI price), so only non-numbers are rejected.
"""

from __future__ import annotations

import math

import pandas as pd

MISSING_MARKERS = {".": "missing value ('.')", "": "missing value (empty)"}


def number_problem(raw) -> str:
    """Why `raw` is not a usable number ('' when it is)."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return "missing value (null)"
    if isinstance(raw, bool):
        return "non-numeric value"
    if isinstance(raw, str):
        text = raw.strip()
        if text in MISSING_MARKERS:
            return MISSING_MARKERS[text]
        try:
            value = float(text)
        except ValueError:
            return "non-numeric value"
    elif isinstance(raw, (int, float)):
        value = float(raw)
    else:
        return "non-numeric value"
    return "" if math.isfinite(value) else "non-finite value"


def read_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(values as float64 with NaN where unusable, problem per value)."""
    problems = raw.map(number_problem).astype(object)
    ok = problems == ""
    values = pd.Series(float("nan"), index=raw.index, dtype="float64")
    values[ok] = pd.to_numeric(raw[ok].map(lambda v: v.strip() if isinstance(v, str) else v)).astype("float64")
    return values, problems
