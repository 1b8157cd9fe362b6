"""Partition-local = global: each hourly partition, computed from its own window plus the
lookback `read_history` selects (counted in bars of each interval), gives the values the
full-history computation gives."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from crypto_assets.indicators import (
    INDICATOR_NAMES,
    LOOKBACK_BARS,
    REQUIRED_HISTORY_BARS,
    compute_indicators,
    compute_window,
    lookback_span,
    read_history,
    supported_interval,
)
from crypto_assets_tests.indicators.indicator_data import bitstamp_restamped, coingecko_4h, random_walk_bars
from crypto_assets_tests.indicators.test_indicators_values import TOLERANCE, max_relative_error

HOUR = pd.Timedelta(hours=1)
KEYS = ["symbol", "interval", "bar_start"]


def test_required_history_follows_from_the_slowest_ema():
    # EMA(50) keeps 49/51 per bar: 49 seed bars + ceil(ln 1e-9 / ln(49/51)) bars to forget the seed.
    assert REQUIRED_HISTORY_BARS == 49 + math.ceil(math.log(1e-9) / math.log(49 / 51)) == 568
    assert (49 / 51) ** (LOOKBACK_BARS - 49) <= 1e-9  # the bars read forget any seed, with 32 to spare
    assert [supported_interval(i) for i in ("5min", "30min", "1h")] == [True, True, True]
    assert [supported_interval(i) for i in ("4h", "4D", "1D")] == [False, False, False]


def test_lookback_is_counted_in_bars_of_each_interval():
    # 600 bars of each interval, never less than the UTC day the session OBV/VWAP need.
    assert lookback_span("5min") == 50 * HOUR
    assert lookback_span("1h") == 600 * HOUR
    assert lookback_span("30min") == 300 * HOUR
    assert lookback_span("1min") == 24 * HOUR


def frame_reader(bars: pd.DataFrame):
    """`read_history`'s reader over an in-memory frame (the asset passes a warehouse read)."""
    def read(interval, symbols, start, end):
        keep = (bars.interval == interval) & (bars.bar_start >= start) & (bars.bar_start < end)
        if symbols is not None:
            keep &= bars.symbol.isin(symbols)
        return bars[keep]
    return read


def _partition_by_partition(bars: pd.DataFrame, starts, hours: int = 1) -> tuple[pd.DataFrame, list]:
    """What the asset does for each partition: its window's bars plus the history `read_history`
    selects from everything stored, computed together, the window kept."""
    frames, reads = [], []
    for start in starts:
        window = bars[(bars.bar_start >= start) & (bars.bar_start < start + hours * HOUR)]
        history = read_history(frame_reader(bars), window, start)
        reads.append(history)
        frames.append(compute_window(pd.concat([history.frame, window]), start, start + hours * HOUR).frame)
    return pd.concat(frames, ignore_index=True).sort_values(KEYS).reset_index(drop=True), reads


def _worst_errors(local: pd.DataFrame, full: pd.DataFrame) -> dict[str, float]:
    full = full.merge(local[KEYS], on=KEYS).sort_values(KEYS).reset_index(drop=True)
    assert len(full) == len(local)
    return {col: max_relative_error(local[col], full[col]) for col in INDICATOR_NAMES}


@pytest.mark.slow
def test_partition_local_equals_global_on_real_hourly_bars():
    # 1,865 real BTC bars (and later-listed ETH, LTC) on consecutive hours: 78 days of partitions,
    # so most partitions see only the 600-bar lookback, not the series start.
    bars = bitstamp_restamped("1h")
    full = compute_indicators(bars)
    hours = pd.date_range(bars.bar_start.min(), bars.bar_start.max(), freq="h")
    starts = list(hours[::4]) + list(hours[-24:])  # every 4th hour plus the whole last day
    local, reads = _partition_by_partition(bars, starts)
    assert len(local) > 900
    worst = _worst_errors(local, full)
    print("1h real bars, max relative error per column:", {k: f"{v:.1e}" for k, v in worst.items() if v})
    assert max(worst.values()) <= TOLERANCE
    assert worst["ema_12"] == worst["rsi_14"] == worst["macd"] == worst["adx_14"] == 0.0  # bit-identical
    # 600 hourly bars per series (fewer only where the coin's history is shorter).
    assert max(r.bars_by_interval["1h"] for r in reads) == 3 * LOOKBACK_BARS


def test_partition_local_equals_global_on_5min_bars():
    # SYNTHETIC random walk: 26 days of 5-minute bars, of which a partition reads 50 hours.
    bars = random_walk_bars(3, 26 * 288, interval="5min", seed=11)
    full = compute_indicators(bars)
    last = bars.bar_start.max().floor("h")
    # Every 3rd hour of the last 30, plus 23:00 (the UTC day's session is 23 h old).
    starts = [last - k * HOUR for k in range(0, 30, 3)] + [last.floor("D") - HOUR]
    local, reads = _partition_by_partition(bars, starts)
    worst = _worst_errors(local, full)
    print("5min bars, max relative error per column:", {k: f"{v:.1e}" for k, v in worst.items() if v})
    assert max(worst.values()) <= TOLERANCE
    # Bars read: 600 per series (50 hours), not the 7,200 of 600 hours.
    assert {r.bars_by_interval["5min"] for r in reads} == {3 * LOOKBACK_BARS}
    assert {r.hours_by_interval["5min"] for r in reads} == {50.0}
    assert not any(r.topped_up for r in reads)
    # The session columns restart each UTC day, inside the 50 hours: bit-identical.
    assert worst["obv_session"] == worst["vwap_session"] == 0.0


def test_gaps_in_the_lookback_are_topped_up_counted_in_bars():
    # SYNTHETIC 5-minute bars; SYN001 misses 200 bars in the 50 hours before the partition,
    # so its 50-hour span holds 400 bars: fewer than the 568 needed. It is read further back.
    bars = random_walk_bars(2, 10 * 288, interval="5min", seed=5)
    start = bars.bar_start.max().floor("h")
    hole = (bars.symbol == "SYN001") & (bars.bar_start >= start - 30 * HOUR) & (bars.bar_start < start - 30 * HOUR + 200 * pd.Timedelta("5min"))
    gappy = bars[~hole].reset_index(drop=True)
    full = compute_indicators(gappy)
    local, (read,) = _partition_by_partition(gappy, [start])
    assert read.topped_up == ["SYN000/5min", "SYN001/5min"][1:] and read.short == []
    worst = _worst_errors(local, full)
    assert max(worst.values()) <= TOLERANCE, worst

    # Control: the 50-hour span alone (no top-up) would miss the tolerance on SYN001's EMA(50).
    window = gappy[gappy.bar_start >= start]
    span_only = gappy[(gappy.bar_start >= start - lookback_span("5min"))]
    alone = compute_window(span_only, start, start + HOUR).frame.sort_values(KEYS).reset_index(drop=True)
    assert len(window) == len(alone)
    assert _worst_errors(alone, full)["ema_50"] > TOLERANCE


def test_a_new_coin_is_computed_from_its_first_bar_like_the_full_history():
    # SYNTHETIC: SYN001 has only 100 hourly bars (listed recently); SYN000 has 1,000.
    old = random_walk_bars(1, 1000, interval="1h", seed=2)
    new = random_walk_bars(1, 100, interval="1h", seed=3, start=str(old.bar_start.iloc[-100].tz_localize(None)))
    bars = pd.concat([old, new.assign(symbol="SYN001")], ignore_index=True)
    full = compute_indicators(bars)
    start = bars.bar_start.max()
    local, (read,) = _partition_by_partition(bars, [start])
    assert read.short == ["SYN001/1h"] and read.topped_up == ["SYN001/1h"]
    assert max(_worst_errors(local, full).values()) <= TOLERANCE
    # The new coin's values are bit-identical: both computations start at its first bar.
    coin = local[local.symbol == "SYN001"].reset_index(drop=True)
    assert len(coin) == 1
    assert max(_worst_errors(coin, full).values()) == 0.0


def test_a_ranged_run_equals_its_partitions_one_by_one():
    bars = bitstamp_restamped("1h", symbols=("BTC",))
    start = bars.bar_start.max().floor("h") - 5 * HOUR
    ranged, _ = _partition_by_partition(bars, [start], hours=6)
    singles, _ = _partition_by_partition(bars, [start + k * HOUR for k in range(6)])
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
