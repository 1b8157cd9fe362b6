"""Partition-local = global: each hourly partition, computed from its own window plus the
lookback, gives the values the full-history computation gives."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from crypto_assets.assets.enrich.indicators import LOOKBACK
from crypto_assets.indicators import (
    INDICATOR_NAMES,
    LOOKBACK_PARTITIONS,
    REQUIRED_HISTORY_BARS,
    compute_indicators,
    compute_window,
    supported_interval,
)
from crypto_assets.partitions import HOURLY
from crypto_assets_tests.indicator_data import bitstamp_restamped, coingecko_4h, random_walk_bars
from crypto_assets_tests.test_indicators_values import TOLERANCE, max_relative_error

HOUR = pd.Timedelta(hours=1)
KEYS = ["symbol", "interval", "bar_start"]


def test_required_history_follows_from_the_slowest_ema():
    # EMA(50) keeps 49/51 per bar: 49 seed bars + ceil(ln 1e-9 / ln(49/51)) bars to forget the seed.
    assert REQUIRED_HISTORY_BARS == 49 + math.ceil(math.log(1e-9) / math.log(49 / 51)) == 568
    assert (49 / 51) ** (LOOKBACK_PARTITIONS - 49) <= 1e-9  # 1h bars: partitions = bars
    assert [supported_interval(i) for i in ("5min", "30min", "1h")] == [True, True, True]
    assert [supported_interval(i) for i in ("4h", "4D", "1D")] == [False, False, False]


def test_mapping_offset_counts_hourly_upstream_partitions():
    def upstream(key):
        subset = HOURLY.subset_with_partition_keys([key])
        keys = LOOKBACK.get_upstream_mapped_partitions_result_for_partitions(subset, HOURLY, HOURLY)
        return list(keys.partitions_subset.get_partition_keys())

    keys = upstream("2021-06-01-05:00")
    assert len(keys) == LOOKBACK_PARTITIONS + 1
    assert keys[0] == (pd.Timestamp("2021-06-01 05:00") - LOOKBACK_PARTITIONS * HOUR).strftime("%Y-%m-%d-%H:%M")
    assert keys[-1] == "2021-06-01-05:00"
    # The first partitions of the history read what exists instead of failing.
    assert upstream("2021-04-02-00:00")[0] == "2021-04-01-00:00"


def _partition_by_partition(bars: pd.DataFrame, starts) -> pd.DataFrame:
    """What the asset does for each partition: read [start - lookback, start + 1h), keep the hour."""
    frames = []
    for start in starts:
        read = bars[(bars.bar_start >= start - LOOKBACK_PARTITIONS * HOUR) & (bars.bar_start < start + HOUR)]
        frames.append(compute_window(read, start, start + HOUR).frame)
    return pd.concat(frames, ignore_index=True).sort_values(KEYS).reset_index(drop=True)


def _worst_errors(local: pd.DataFrame, full: pd.DataFrame) -> dict[str, float]:
    full = full.merge(local[KEYS], on=KEYS).sort_values(KEYS).reset_index(drop=True)
    assert len(full) == len(local)
    return {col: max_relative_error(local[col], full[col]) for col in INDICATOR_NAMES}


def test_partition_local_equals_global_on_real_hourly_bars():
    # 1,865 real BTC bars (and later-listed ETH, LTC) on consecutive hours: 78 days of partitions,
    # so most partitions see only the 600-bar lookback, not the series start.
    bars = bitstamp_restamped("1h")
    full = compute_indicators(bars)
    hours = pd.date_range(bars.bar_start.min(), bars.bar_start.max(), freq="h")
    starts = list(hours[::4]) + list(hours[-24:])  # every 4th hour plus the whole last day
    local = _partition_by_partition(bars, starts)
    assert len(local) > 900
    worst = _worst_errors(local, full)
    print("1h real bars, max relative error per column:", {k: f"{v:.1e}" for k, v in worst.items() if v})
    assert max(worst.values()) <= TOLERANCE
    assert worst["ema_12"] == worst["rsi_14"] == worst["macd"] == worst["adx_14"] == 0.0  # bit-identical


def test_partition_local_equals_global_on_5min_bars():
    # SYNTHETIC random walk: 26 days of 5-minute bars, longer than the 25-day lookback.
    bars = random_walk_bars(3, 26 * 288, interval="5min", seed=11)
    full = compute_indicators(bars)
    last = bars.bar_start.max().floor("h")
    local = _partition_by_partition(bars, [last - k * HOUR for k in range(0, 30, 3)])
    worst = _worst_errors(local, full)
    print("5min bars, max relative error per column:", {k: f"{v:.1e}" for k, v in worst.items() if v})
    assert max(worst.values()) <= TOLERANCE
    recursive = ["ema_12", "ema_26", "ema_50", "macd", "macd_signal", "rsi_14", "atr_14", "adx_14"]
    assert all(worst[c] == 0.0 for c in recursive)  # 7,200 bars of history forget any seed


def test_a_ranged_run_equals_its_partitions_one_by_one():
    bars = bitstamp_restamped("1h", symbols=("BTC",))
    start = bars.bar_start.max().floor("h") - 5 * HOUR
    ranged = compute_window(
        bars[(bars.bar_start >= start - LOOKBACK_PARTITIONS * HOUR) & (bars.bar_start < start + 6 * HOUR)],
        start, start + 6 * HOUR,
    ).frame.sort_values(KEYS).reset_index(drop=True)
    singles = _partition_by_partition(bars, [start + k * HOUR for k in range(6)])
    assert len(ranged) == len(singles) == 6
    for col in INDICATOR_NAMES:
        assert max_relative_error(ranged[col], singles[col]) <= TOLERANCE, col


def test_intervals_the_lookback_cannot_serve_are_counted_not_written():
    hourly = bitstamp_restamped("1h", end="2021-05-15 12:00", symbols=("BTC",))
    bars = pd.concat([hourly, coingecko_4h()], ignore_index=True)  # real 4h candles end 2021-05-15 12:00
    result = compute_window(bars, "2021-05-15 12:00", "2021-05-15 13:00")
    assert set(result.frame.interval) == {"1h"}
    assert result.skipped_by_interval == {"4h": 1}
    assert result.symbols == 1 and result.rows_in == len(hourly)


@pytest.mark.parametrize("engine", ["talib", "pandas-ta"])
def test_empty_window(engine):
    bars = random_walk_bars(1, 50, interval="1h")
    result = compute_window(bars, "2030-01-01", "2030-01-01 01:00", engine=engine)
    assert result.frame.empty and result.rows_in == 0
    assert compute_window(bars.iloc[:0], "2024-01-01", "2024-01-01 01:00").frame.empty
