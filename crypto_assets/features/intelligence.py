"""Market-intelligence features of `ml_features`: regimes and the Fear & Greed index. Pure.

Both are OPTIONAL inputs, read from the warehouse (never required parents): missing ones give NaN
features and the dq_* columns say so.

Regimes (`market_regimes`): the regime known when the row's bar HOUR began, i.e. the newest
regime row whose asof_time (its hour's close) is <= floor(bar_start, hour), at most
REGIME_MAX_AGE old. For sub-hour bars that is exactly the newest regime known at the row's
asof_time; a 1h bar uses the previous hour's regime, which its own hour's run never has to wait
for (market_regimes and ml_features of the same hour run side by side, neither blocks the other).
Per symbol and market-wide (`_MARKET`).

Fear & Greed (`fear_greed_index`): the newest daily value with available_at <= asof_time, at most
FNG_MAX_AGE old, and its change from the day before (also known at asof_time).

This module does not import the registry: `dictionary.py` builds its FeatureDefs from `SPECS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crypto_assets.intelligence.params import MARKET

REGIME_MAX_AGE = pd.Timedelta(hours=2)
FNG_MAX_AGE = pd.Timedelta(hours=48)
FNG_PREV_MAX_GAP = pd.Timedelta(days=2)  # the change compares with a value at most 2 days older
REGIME_COLUMNS = ["symbol", "bar_start", "asof_time", "trend_score", "vol_percentile", "trend_regime",
                  "volatility_regime", "regime", "regime_changed", "breadth_bull", "breadth_bear"]
FNG_COLUMNS = ["date", "value", "available_at"]
TREND_CODES = {"bull": 1.0, "sideways": 0.0, "bear": -1.0}

_R = ["market_regimes.asof_time"]
_F = ["fear_greed_index.value", "fear_greed_index.available_at"]
_WHEN = ("the symbol's regime known when the bar's hour began (market_regimes.asof_time <= the hour's start, at "
         "most 2 h old); NaN/empty without one (optional input, or warming up)")
# (name, kind, group, description, inputs): the registry entries (dictionary.py)
SPECS: tuple[tuple[str, str, str, str, list[str]], ...] = (
    ("regime", "str", "regime", f"Regime label, e.g. bull_high_vol: {_WHEN}.", ["market_regimes.regime", *_R]),
    ("regime_trend", "float", "regime", f"Trend of the regime: 1 bull, 0 sideways, -1 bear; {_WHEN}.",
     ["market_regimes.trend_regime", *_R]),
    ("regime_trend_score", "float", "regime", f"sma_24h / sma_168h - 1 of hourly closes; {_WHEN}.",
     ["market_regimes.trend_score", *_R]),
    ("regime_vol_high", "float", "regime", f"1 when the volatility regime is high, 0 when low; {_WHEN}.",
     ["market_regimes.volatility_regime", *_R]),
    ("regime_vol_percentile", "float", "regime",
     f"Mid-rank of the 24h realized volatility within its own trailing week (0-1); {_WHEN}.",
     ["market_regimes.vol_percentile", *_R]),
    ("regime_changed", "float", "regime", f"1 when that regime differs from the hour before's, else 0; {_WHEN}.",
     ["market_regimes.regime_changed", *_R]),
    ("mkt_regime", "str", "regime", "Market-wide regime label (the _MARKET row), known as above.",
     ["market_regimes[_MARKET].regime", *_R]),
    ("mkt_regime_trend", "float", "regime", "Market-wide trend: 1 bull, 0 sideways, -1 bear, known as above.",
     ["market_regimes[_MARKET].trend_regime", *_R]),
    ("mkt_regime_vol_high", "float", "regime", "Market-wide volatility regime: 1 high, 0 low, known as above.",
     ["market_regimes[_MARKET].volatility_regime", *_R]),
    ("mkt_regime_breadth_bull", "float", "regime", "Share of symbols in a bull trend, known as above.",
     ["market_regimes[_MARKET].breadth_bull", *_R]),
    ("mkt_regime_breadth_bear", "float", "regime", "Share of symbols in a bear trend, known as above.",
     ["market_regimes[_MARKET].breadth_bear", *_R]),
    ("fng_value", "float", "fear_greed",
     "Alternative.me Crypto Fear & Greed index (0 extreme fear - 100 extreme greed): the newest daily value with "
     "available_at <= asof_time, at most 48 h old; NaN without one (optional input; replay has no recording).",
     _F),
    ("fng_change_1d", "float", "fear_greed",
     "fng_value minus the previous day's value (also known at asof_time, at most 2 days older); NaN when "
     "either is missing.", _F),
    ("dq_regime_present", "bool", "regime", "The symbol's regime is known for the row (see regime).", _R),
    ("dq_fng_age_hours", "float", "fear_greed",
     "Hours from the fng_value's available_at to asof_time; NaN without a value.", ["fear_greed_index.available_at"]),
)
FEATURE_NAMES = tuple(name for name, *_ in SPECS)


def regime_read_window(start, last_as_of) -> tuple[pd.Timestamp, pd.Timestamp]:
    """market_regimes rows (by bar_start) a window needs."""
    return pd.Timestamp(start) - REGIME_MAX_AGE - pd.Timedelta(hours=2), pd.Timestamp(last_as_of)


def fng_read_window(start, last_as_of) -> tuple[pd.Timestamp, pd.Timestamp]:
    """fear_greed_index rows (by date) a window needs: the value and the one before it."""
    first = (pd.Timestamp(start) - FNG_MAX_AGE - FNG_PREV_MAX_GAP).floor("D")
    return first, pd.Timestamp(last_as_of).floor("D") + pd.Timedelta(days=1)


def _asof(keys: np.ndarray, times: pd.DatetimeIndex, table: pd.DataFrame, key_col: str, time_col: str,
          max_age: pd.Timedelta) -> np.ndarray:
    """Index into `table` of the newest row per key with time_col <= time (and not older than max_age); -1 if none."""
    out = np.full(len(times), -1, dtype="int64")
    if table is None or table.empty or not len(times):
        return out
    right = pd.DataFrame({"k": table[key_col].astype(str).to_numpy(), "t": pd.to_datetime(table[time_col], utc=True)
                          .astype("datetime64[ns, UTC]"), "pos": np.arange(len(table))}).dropna(subset=["t"])
    left = pd.DataFrame({"k": keys.astype(str), "t": pd.DatetimeIndex(times).astype("datetime64[ns, UTC]"),
                         "row": np.arange(len(times))})
    joined = pd.merge_asof(left.sort_values("t", kind="stable"), right.sort_values("t", kind="stable"), on="t",
                           by="k", direction="backward", tolerance=max_age)
    ok = joined["pos"].notna().to_numpy()
    out[joined["row"].to_numpy()[ok]] = joined["pos"].to_numpy()[ok].astype("int64")
    return out


def _take(values: np.ndarray, idx: np.ndarray, fill=np.nan) -> np.ndarray:
    out = np.full(len(idx), fill, dtype=object if values.dtype == object else "float64")
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def regime_features(symbols: np.ndarray, bar_start: pd.Series, regimes: pd.DataFrame | None) -> dict[str, np.ndarray]:
    n = len(symbols)
    hour = pd.DatetimeIndex(pd.to_datetime(bar_start, utc=True)).floor("h")
    table = regimes if regimes is not None and len(regimes) else pd.DataFrame(columns=REGIME_COLUMNS)
    table = table.reset_index(drop=True)
    sym = _asof(np.asarray(symbols, dtype=object), hour, table, "symbol", "asof_time", REGIME_MAX_AGE)
    mkt = _asof(np.full(n, MARKET, dtype=object), hour, table, "symbol", "asof_time", REGIME_MAX_AGE)

    def col(name, idx, numeric=True):
        values = table[name].to_numpy(dtype="float64", na_value=np.nan) if numeric else table[name].to_numpy(dtype=object)
        return _take(values, idx, np.nan if numeric else None)

    def trend(idx):
        return _take(table["trend_regime"].map(TREND_CODES).to_numpy(dtype="float64", na_value=np.nan), idx)

    def vol_high(idx):
        return _take(table["volatility_regime"].map({"high": 1.0, "low": 0.0}).to_numpy(dtype="float64",
                                                                                         na_value=np.nan), idx)

    changed = table["regime_changed"].map(lambda v: np.nan if pd.isna(v) else float(bool(v)))
    regime = col("regime", sym, numeric=False)
    return {
        "regime": regime,
        "regime_trend": trend(sym),
        "regime_trend_score": col("trend_score", sym),
        "regime_vol_high": vol_high(sym),
        "regime_vol_percentile": col("vol_percentile", sym),
        "regime_changed": _take(changed.to_numpy(dtype="float64", na_value=np.nan), sym),
        "mkt_regime": col("regime", mkt, numeric=False),
        "mkt_regime_trend": trend(mkt),
        "mkt_regime_vol_high": vol_high(mkt),
        "mkt_regime_breadth_bull": col("breadth_bull", mkt),
        "mkt_regime_breadth_bear": col("breadth_bear", mkt),
        "dq_regime_present": np.array([isinstance(r, str) for r in regime], dtype=bool),
    }


def fear_greed_features(as_of: pd.Series, fng: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """fng_* columns per row, computed once per distinct as-of time."""
    n = len(as_of)
    out = {"fng_value": np.full(n, np.nan), "fng_change_1d": np.full(n, np.nan), "dq_fng_age_hours": np.full(n, np.nan)}
    if fng is None or fng.empty or n == 0:
        return out
    table = fng.dropna(subset=["available_at", "value", "date"])
    avail = pd.DatetimeIndex(pd.to_datetime(table["available_at"], utc=True)).as_unit("ns").asi8
    day = np.array(table["date"].to_numpy(dtype=object), dtype="datetime64[D]").astype("datetime64[ns]").view("int64")
    value = table["value"].to_numpy(dtype="float64", na_value=np.nan)
    row_ns = pd.DatetimeIndex(pd.to_datetime(as_of, utc=True)).as_unit("ns").asi8
    times, inverse = np.unique(row_ns, return_inverse=True)
    cur, chg, age = np.full(len(times), np.nan), np.full(len(times), np.nan), np.full(len(times), np.nan)
    for k, t in enumerate(times):
        known = avail <= t
        if not known.any():
            continue
        # the newest day known at t (a re-published day: its newest availability)
        days = day[known]
        newest = days.max()
        pick = np.flatnonzero(known & (day == newest))
        j = pick[np.argmax(avail[pick])]
        if t - avail[j] > FNG_MAX_AGE.value:
            continue
        cur[k], age[k] = value[j], (t - avail[j]) / 3.6e12
        earlier = known & (day < newest)
        if earlier.any():
            prev_day = day[earlier].max()
            if newest - prev_day <= FNG_PREV_MAX_GAP.value:
                pick = np.flatnonzero(earlier & (day == prev_day))
                chg[k] = value[j] - value[pick[np.argmax(avail[pick])]]
    out["fng_value"], out["fng_change_1d"], out["dq_fng_age_hours"] = cur[inverse], chg[inverse], age[inverse]
    return out
