"""Benchmark of the as-of join that puts macro/on-chain values on feature bars.

Shape of the `ml_features` job: 320 symbols x hourly bars for 30 days (230k bars) against the
macro catalog's 23 series with two years of daily observations each. Inputs are SYNTHETIC
(random values, plausible availability lags); only the timing is the result.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_macro.py
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from benchmarks._results import measured
from crypto_assets.features.asof import asof_wide


def synthetic_inputs(symbols: int = 320, days: int = 30, series: int = 23, history_days: int = 730, seed: int = 0):
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2025-01-01", tz="UTC")
    hours = pd.date_range(end - pd.Timedelta(days=days), end, freq="1h", inclusive="left")
    bars = pd.DataFrame({"symbol": np.repeat([f"S{i}" for i in range(symbols)], len(hours)),
                         "bar_start": np.tile(hours, symbols)})
    frames = []
    first = date(2023, 1, 1)
    for s in range(series):
        dates = [first + timedelta(days=d) for d in range(history_days)]
        lag_h = rng.integers(16, 60, size=history_days)  # close / release lag after the observation date
        frames.append(pd.DataFrame({
            "series_id": f"M{s}", "observation_date": dates, "value": rng.normal(size=history_days),
            "available_at": pd.to_datetime(dates).tz_localize("UTC") + pd.to_timedelta(lag_h, unit="h"),
        }))
    return bars, pd.concat(frames, ignore_index=True)


def main() -> dict:
    with measured("macro_asof") as numbers:
        bars, observations = synthetic_inputs()
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            wide = asof_wide(bars, observations)
            best = min(best, time.perf_counter() - t0)
        numbers.update({
            "inputs": "synthetic: random values, 16-60 h availability lags",
            "bars": len(bars),
            "series": int(observations.series_id.nunique()),
            "observations": len(observations),
            "asof_wide_seconds": round(best, 3),
            "bar_series_values_per_second": int(len(bars) * observations.series_id.nunique() / best),
            "output_columns": wide.shape[1],
        })
    return numbers


if __name__ == "__main__":
    print(main())
