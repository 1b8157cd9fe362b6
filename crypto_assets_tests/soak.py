"""The simulated soak: the real stack (`live_stack`) in simulated mode, default automation, the
default universe (320 coins plus resources/coins.csv). Shared by the bounded soak test
(crypto_assets_tests/automation/test_simulated_soak.py) and the benchmark (benchmarks/bench_soak.py)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from crypto_assets.loading import load
from crypto_assets.partitions import HOURLY

# Simulated market, the default automation with the live price cron shortened to every minute and
# the automation sensor ticking every 10 s (as the live daemon test does).
SOAK_ENV = {"CRYPTO_SOURCE_MODE": "simulated", "CRYPTO_LIVE_CRON": "* * * * *",
            "CRYPTO_AUTOMATION_INTERVAL_SECONDS": "10"}


def warehouse_url(tmp: Path) -> str:
    """The warehouse `live_stack(tmp)` gives the stack."""
    return f"delta://{tmp / 'warehouse'}"


def features_coverage(url: str, hour: str) -> tuple[int, int]:
    """(coins with an ml_features row in `hour`, coins in the universe)."""
    universe = load("coin_universe", warehouse_url=url, columns=["symbol"])
    window = HOURLY.time_window_for_partition_key(hour)
    features = load("ml_features", pd.Timestamp(window.start), pd.Timestamp(window.end), warehouse_url=url,
                    columns=["symbol"])
    return features.symbol.nunique(), universe.symbol.nunique()


def covered_hour(url: str, hours: set[str]) -> str | None:
    """The first of `hours` whose ml_features cover every coin of the universe, else None."""
    for hour in sorted(hours):
        try:
            covered, universe = features_coverage(url, hour)
        except Exception:  # noqa: BLE001 - a table not written yet
            return None
        if universe and covered >= universe:
            return hour
    return None


def runs_by_status(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Status -> the runs in it, each as 'assets@partition'."""
    out: dict[str, list[str]] = {}
    for run in instance.get_runs(limit=100_000):
        assets = "+".join(sorted(k.to_user_string() for k in run.asset_selection or ())) or run.job_name
        out.setdefault(run.status.value, []).append(f"{assets}@{run.tags.get('dagster/partition', '')}")
    return out
