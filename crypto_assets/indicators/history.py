"""Which earlier bars a window needs, counted in bars of each interval (not in partitions).

    history = read_history(read, window_bars, window_start)
    result = compute_window(pd.concat([history.frame, window_bars]), window_start, window_end)

`read(interval, symbols, start, end)` returns the stored bars of that interval (and of those
symbols; `None` = all) with `start <= bar_start < end`. The asset passes a warehouse read, the
tests a filter on a frame, so both run the same selection. Why these numbers: `params`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from crypto_assets.indicators.params import (
    REQUIRED_HISTORY_BARS,
    TOP_UP_SPANS,
    lookback_span,
    supported_interval,
)
from crypto_assets.indicators.series import usable_ohlc

Reader = Callable[[str, Sequence[str] | None, pd.Timestamp, pd.Timestamp], pd.DataFrame]


@dataclass
class HistoryRead:
    frame: pd.DataFrame  # bars before the window, every interval the window needs
    bars_by_interval: dict[str, int] = field(default_factory=dict)
    hours_by_interval: dict[str, float] = field(default_factory=dict)  # how far back the main read went
    topped_up: list[str] = field(default_factory=list)  # "SYMBOL/interval" read further back (gaps, new coins)
    short: list[str] = field(default_factory=list)  # still short after the top-up: no more history that close


def _usable_counts(frame: pd.DataFrame) -> pd.Series:
    if frame.empty:
        return pd.Series(dtype="int64")
    return frame.loc[usable_ohlc(frame), "symbol"].value_counts()


def read_history(read: Reader, window_bars: pd.DataFrame, window_start) -> HistoryRead:
    """The bars before `window_start` that the series of `window_bars` need.

    Per interval present in the window (and computed, see `supported_interval`): one read of
    `lookback_span(interval)` = LOOKBACK_BARS bars of that interval (at least one UTC day).
    Series holding fewer than REQUIRED_HISTORY_BARS usable bars there (gaps in the data, or a
    coin listed recently) get one more read, of those symbols only, over the TOP_UP_SPANS
    spans before. A series still short after that has no more history within reach; it is
    listed in `short` (a new coin: its values start at its first bar, as in the full history).
    """
    start = pd.Timestamp(window_start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    out = HistoryRead(frame=pd.DataFrame())
    frames = []
    if window_bars.empty:
        return out
    intervals = window_bars["interval"].astype(str)
    for interval in sorted(intervals.unique()):
        if not supported_interval(interval):
            continue
        symbols = sorted(window_bars.loc[intervals == interval, "symbol"].astype(str).unique())
        span = lookback_span(interval)
        span_start = start - span
        # Naming the symbols lets a row store seek its (symbol, bar_start, ...) key instead of
        # scanning every stored bar for the time range.
        main = read(interval, symbols, span_start, start)
        counts = _usable_counts(main)
        short = [s for s in symbols if counts.get(s, 0) < REQUIRED_HISTORY_BARS]
        parts = [main]
        if short:
            more = read(interval, short, span_start - TOP_UP_SPANS * span, span_start)
            parts.append(more)
            counts = counts.add(_usable_counts(more), fill_value=0)
            out.topped_up += [f"{s}/{interval}" for s in short]
            out.short += [f"{s}/{interval}" for s in short if counts.get(s, 0) < REQUIRED_HISTORY_BARS]
        got = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else main
        out.bars_by_interval[interval] = int(len(got))
        out.hours_by_interval[interval] = round(span / pd.Timedelta(hours=1), 2)
        if len(got):
            frames.append(got)
    if frames:
        out.frame = pd.concat(frames, ignore_index=True)
    return out
