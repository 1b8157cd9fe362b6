"""Which bars become feature rows, and the features of the bar itself, its indicators and the
cross-section of symbols at the same bar. Pure functions on DataFrames.

Interval precedence: a symbol may have bars of several intervals in one hour (5-minute bars
resampled from live observations, 1-hour history, the provider's 4-hour candles). The feature
key is (symbol, bar_start), so per symbol and UTC hour the FINEST interval present is featured
and the others are left out (counted). The choice looks at which bar series exist in the hour,
never at values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_assets.features import params as p
from crypto_assets.features.dictionary import AS_OF
from crypto_assets.indicators.columns import INDICATOR_NAMES

BAR_COLUMNS = ["symbol", "bar_start", "interval", "bar_end", "open", "high", "low", "close", "volume",
               "n_observations", "method"]
INDICATOR_INPUT_COLUMNS = ["symbol", "bar_start", "interval", *INDICATOR_NAMES]


@dataclass(frozen=True)
class SelectedBars:
    rows: pd.DataFrame  # one row per (symbol, bar_start), sorted by symbol then bar_start
    not_featured_by_interval: dict[str, int]  # bars left out because a finer interval existed


def _interval_lengths(intervals: pd.Series) -> pd.Series:
    lengths = {i: pd.Timedelta(i) for i in pd.unique(intervals)}
    return intervals.map(lengths).astype("timedelta64[ns]")


def select_bars(bars: pd.DataFrame) -> SelectedBars:
    """The featured bars with their as-of time (bar_end, never before bar_start + interval)."""
    if bars.empty:
        empty = pd.DataFrame(columns=[*BAR_COLUMNS, "length", AS_OF, "intervals_available"])
        return SelectedBars(empty, {})
    frame = bars.loc[:, BAR_COLUMNS].reset_index(drop=True)
    frame["bar_start"] = pd.to_datetime(frame["bar_start"], utc=True).astype("datetime64[ns, UTC]")
    length = _interval_lengths(frame["interval"])
    hour = frame["bar_start"].dt.floor("h")
    group = frame.groupby([frame["symbol"], hour], sort=False)
    finest = length.groupby([frame["symbol"], hour], sort=False).transform("min")
    available = group["interval"].transform("nunique")
    keep = (length == finest).to_numpy()
    dropped = frame.loc[~keep, "interval"].value_counts().astype(int).to_dict()

    rows = frame.loc[keep].assign(length=length[keep], intervals_available=available[keep])
    earliest = rows["bar_start"] + rows["length"]
    bar_end = pd.to_datetime(rows["bar_end"], utc=True).astype("datetime64[ns, UTC]")
    rows[AS_OF] = bar_end.where(bar_end > earliest, earliest)  # NaT or too early -> bar_start + interval
    rows = rows.sort_values(["symbol", "bar_start"], kind="stable").reset_index(drop=True)
    return SelectedBars(rows, dropped)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[~np.isfinite(out)] = np.nan
    return out


def bar_features(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    o, h, lo, c = (rows[k].to_numpy(dtype="float64", na_value=np.nan) for k in ("open", "high", "low", "close"))
    volume = rows["volume"].to_numpy(dtype="float64", na_value=np.nan)
    return {
        "open": o, "high": h, "low": lo, "close": c, "volume": volume,
        "n_observations": pd.array(rows["n_observations"], dtype="Int64"),
        "bar_minutes": rows["length"].dt.total_seconds().to_numpy() / 60.0,
        "bar_return": _ratio(c, o) - 1.0,
        "bar_range": _ratio(h - lo, c),
        "close_location": _ratio(c - lo, h - lo),
    }


def join_indicators(rows: pd.DataFrame, indicators: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Indicator columns aligned to `rows` (NaN where technical_indicators has no row) and a found mask."""
    n = len(rows)
    if indicators is None or indicators.empty:
        return {name: np.full(n, np.nan) for name in INDICATOR_NAMES}, np.zeros(n, dtype=bool)
    ind = indicators.loc[:, INDICATOR_INPUT_COLUMNS].assign(
        bar_start=pd.to_datetime(indicators["bar_start"], utc=True).astype("datetime64[ns, UTC]"), _found=True
    )
    left = rows[["symbol", "bar_start", "interval"]]
    joined = left.merge(ind, on=["symbol", "bar_start", "interval"], how="left", sort=False, validate="one_to_one")
    found = joined["_found"].fillna(False).to_numpy(dtype=bool)
    return {name: joined[name].to_numpy(dtype="float64", na_value=np.nan) for name in INDICATOR_NAMES}, found


def trend_features(close: np.ndarray, ind: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {f"close_to_{level}": _ratio(close, ind[level]) - 1.0 for level in p.CLOSE_RATIO_LEVELS}
    out.update({f"{fast}_to_{slow}": _ratio(ind[fast], ind[slow]) - 1.0 for fast, slow in p.MA_PAIRS})
    out["atr_pct"] = _ratio(ind["atr_14"], close)
    out["macd_pct"] = _ratio(ind["macd"], close)
    out["macd_hist_pct"] = _ratio(ind["macd_hist"], close)
    return out


def calendar_features(bar_start: pd.Series) -> dict[str, np.ndarray]:
    hour = bar_start.dt.hour.to_numpy(dtype="int64")
    dow = bar_start.dt.day_of_week.to_numpy(dtype="int64")
    angle = 2 * np.pi * hour / 24.0
    return {"hour_of_day": hour, "day_of_week": dow, "is_weekend": dow >= 5,
            "hour_sin": np.sin(angle), "hour_cos": np.cos(angle)}


def cross_section_features(rows: pd.DataFrame, return_1: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics over the symbols that have a bar at the same bar_start and interval."""
    bar_key = pd.DataFrame({"t": pd.DatetimeIndex(rows["bar_start"]).asi8,
                            "i": pd.factorize(rows["interval"])[0]})
    bar_id = bar_key.groupby(["t", "i"], sort=False).ngroup().to_numpy()
    r = pd.Series(return_1)
    by_bar = r.groupby(bar_id, sort=False)
    is_ref = (rows["symbol"] == p.REFERENCE_SYMBOL).to_numpy()
    ref_by_bar = np.full(bar_id.max() + 1, np.nan)
    ref_by_bar[bar_id[is_ref]] = return_1[is_ref]
    return {
        "xs_symbols": np.bincount(bar_id)[bar_id].astype("int64"),
        "xs_return_1_mean": by_bar.transform("mean").to_numpy(dtype="float64"),
        "xs_return_1_rank": by_bar.rank(pct=True, method="average").to_numpy(dtype="float64"),
        f"return_1_vs_{p.REFERENCE_SYMBOL.lower()}": return_1 - ref_by_bar[bar_id],
    }
