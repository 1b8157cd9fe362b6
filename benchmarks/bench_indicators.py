"""Indicator compute throughput: TA-Lib path vs pandas-ta-classic fallback, and what one hourly
partition costs (lookback read + compute). Results go to benchmarks/results.json["indicators"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_indicators.py [--skip-slow]

Inputs are a SYNTHETIC geometric random walk (320 symbols of 5-minute bars), labelled as such.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import pandas as pd

from benchmarks._results import measured
from crypto_assets.indicators import compute_indicators, compute_window, lookback_span
from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.indicators.indicator_data import random_walk_bars

SYMBOLS = 320
BARS_PER_DAY = 288  # 5-minute bars
# Hours a 5-minute partition reads before its own hour (600 bars; was 600 hours before issue 12).
LOOKBACK_HOURS_5MIN = int(lookback_span("5min") / pd.Timedelta(hours=1))
OLD_LOOKBACK_HOURS = 600


def _timed(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def bench_compute(days: int, engine: str, repeats: int) -> dict:
    bars = random_walk_bars(SYMBOLS, days * BARS_PER_DAY, interval="5min", seed=days)
    compute_indicators(bars.head(BARS_PER_DAY * 2), engine=engine)  # warm-up (imports, first calls)
    seconds, runs = _timed(lambda: compute_indicators(bars, engine=engine), repeats)
    return {"rows": len(bars), "seconds_median": round(seconds, 3), "runs_s": [round(t, 3) for t in runs],
            "rows_per_s": round(len(bars) / seconds)}


def bench_partition_run(repeats: int) -> dict:
    """One live hourly partition of 5-minute bars: the 50-hour (600-bar) lookback plus the hour itself.
    With reads: bench_indicator_partition.py."""
    hours = LOOKBACK_HOURS_5MIN + 1
    bars = random_walk_bars(SYMBOLS, hours * 12, interval="5min", seed=7)
    end = bars.bar_start.max() + pd.Timedelta("5min")
    start = end - pd.Timedelta(hours=1)
    seconds, runs = _timed(lambda: compute_window(bars, start, end), repeats)
    out = compute_window(bars, start, end)
    return {"bars_read": len(bars), "rows_out": len(out.frame), "compute_seconds_median": round(seconds, 3),
            "runs_s": [round(t, 3) for t in runs]}


def bench_lookback_read(days: int = 1) -> dict:
    """SQLite read speed of ohlcv_bars through Warehouse.read (what the IO manager calls)."""
    bars = random_walk_bars(SYMBOLS, days * BARS_PER_DAY, interval="5min", seed=3)
    rows = bars.assign(bar_end=bars.bar_start + pd.Timedelta("5min"), n_observations=1,
                       method="resampled_observations", source="synthetic",
                       ingested_at=pd.Timestamp.now(tz="UTC"))[OHLCV_BARS.column_names]
    with tempfile.TemporaryDirectory() as tmp:
        wh = open_warehouse(f"sqlite:///{os.path.join(tmp, 'w.sqlite')}")
        start, end = bars.bar_start.min(), bars.bar_start.max() + pd.Timedelta("5min")
        wh.replace_window(OHLCV_BARS, rows, start, end)
        seconds, _ = _timed(lambda: wh.read(OHLCV_BARS, start, end), 2)
        wh.dispose()
    per_s = len(bars) / seconds
    old_rows = SYMBOLS * 12 * (OLD_LOOKBACK_HOURS + 1)
    lookback_rows = SYMBOLS * 12 * (LOOKBACK_HOURS_5MIN + 1)
    return {"rows": len(bars), "seconds_median": round(seconds, 3), "rows_per_s": round(per_s),
            "extrapolated_600h_lookback_5min_before_issue_12": {"rows": old_rows,
                                                                "seconds": round(old_rows / per_s, 1)},
            "extrapolated_600bar_lookback_5min": {"rows": lookback_rows, "seconds": round(lookback_rows / per_s, 1)},
            "extrapolated_600bar_lookback_1h": {"rows": SYMBOLS * 601, "seconds": round(SYMBOLS * 601 / per_s, 2)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-slow", action="store_true", help="skip the 30-day pandas-ta run (~1 min)")
    args = parser.parse_args()

    with measured("indicators") as results:
        results.update({
            "input": f"SYNTHETIC random-walk OHLCV, {SYMBOLS} symbols x 5-minute bars (not real prices)",
            "target_rows_per_s": 100_000,
            "baseline_per_symbol_pandas_ta_loop_rows_per_s": 6924,  # notes/performance-baselines.md, 1 day
            "talib_1day": bench_compute(1, "talib", repeats=5),
            "pandas_ta_1day": bench_compute(1, "pandas-ta", repeats=1),
            "talib_30days": bench_compute(30, "talib", repeats=2),
        })
        if not args.skip_slow:
            results["pandas_ta_30days"] = bench_compute(30, "pandas-ta", repeats=1)
        results["hourly_partition_5min_compute"] = bench_partition_run(repeats=2)
        results["lookback_read_sqlite"] = bench_lookback_read()
        results["talib_vs_pandas_ta_1day_speedup"] = round(
            results["talib_1day"]["rows_per_s"] / results["pandas_ta_1day"]["rows_per_s"], 1
        )
    for key, value in results.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
