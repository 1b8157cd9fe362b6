"""Market-intelligence throughput: regimes and anomaly scores for 320 symbols x 30 days of hourly
bars (goal: >= 100k rows/s). Results go to benchmarks/results.json["intelligence"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_intelligence.py

Inputs are a SYNTHETIC geometric random walk (crypto_assets_tests/intelligence/intelligence_data.py), labelled
as such; compute only (no warehouse reads or writes), with the lookback the assets read.
"""

from __future__ import annotations

import statistics
import time

import pandas as pd

from benchmarks._results import measured
from crypto_assets.intelligence import params as ip
from crypto_assets.intelligence.anomalies import compute_anomalies
from crypto_assets.intelligence.regimes import compute_regimes
from crypto_assets_tests.intelligence.intelligence_data import walk

SYMBOLS, DAYS, REPEATS = 320, 30, 3


def _timed(fn):
    times, out = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> dict:
    lookback = max(ip.REGIME_LOOKBACK_HOURS, ip.ANOMALY_LOOKBACK_HOURS)
    start = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=lookback)
    end = start + pd.Timedelta(days=DAYS)
    with measured("intelligence") as numbers:
        bars = walk(SYMBOLS, lookback + DAYS * 24, start="2024-01-01", seed=1)
        regime_s, regimes = _timed(lambda: compute_regimes(bars, start, end))
        anomaly_s, anomalies = _timed(lambda: compute_anomalies(bars, start, end))
        numbers.update({
            "input": f"SYNTHETIC random walk, {SYMBOLS} symbols x {DAYS} days hourly (+{lookback} h lookback)",
            "regimes": {"rows": len(regimes), "seconds_median": round(regime_s, 3),
                        "rows_per_s": round(len(regimes) / regime_s)},
            "anomalies": {"rows": len(anomalies), "seconds_median": round(anomaly_s, 3),
                          "rows_per_s": round(len(anomalies) / anomaly_s)},
            "both_rows_per_s": round((len(regimes) + len(anomalies)) / (regime_s + anomaly_s)),
            "goal_rows_per_s": 100_000,
        })
    return numbers


if __name__ == "__main__":
    print(main())
