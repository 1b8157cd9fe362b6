"""Derivatives and exchange-volume features of `ml_features`. Pure: DataFrames in, arrays out.

Derivatives (`derivatives_metrics`, an OPTIONAL input): per row (symbol, as-of time t) and per
exchange, the newest figure whose `available_at` <= t (as-of, never by calendar time), within a
staleness limit; then the mean across the exchanges that have one. Changes are per exchange
(value known at t minus/over value known at t - 8h / t - 24h, both known by then) before the mean,
so an exchange joining or leaving does not show up as a change. Nothing known: NaN, and the dq_*
columns say how many exchanges contributed and how old the newest figure is.

Volume (`ohlcv_bars` from exchange candles): quote volume, trade count and average trade size of
the row's own bar, where the exchange gave them; NaN otherwise (CoinGecko bars have no volume).

This module does not import the registry: `dictionary.py` builds its FeatureDefs from `SPECS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Staleness: a funding rate is settled every 8 h (snapshots are hourly); older than this -> NaN.
FUNDING_MAX_AGE = pd.Timedelta(hours=9)
OI_MAX_AGE = pd.Timedelta(hours=3)
BASIS_MAX_AGE = pd.Timedelta(hours=3)
CHANGE_LAGS = {"8h": pd.Timedelta(hours=8), "24h": pd.Timedelta(hours=24)}
OI_CHANGE_LAGS = {"1h": pd.Timedelta(hours=1), "24h": pd.Timedelta(hours=24)}
# How far before the run's window derivatives rows are read: the longest lag + its staleness.
READ_LOOKBACK = max(CHANGE_LAGS["24h"] + FUNDING_MAX_AGE, OI_CHANGE_LAGS["24h"] + OI_MAX_AGE)
DERIVATIVES_COLUMNS = ["exchange", "symbol", "kind", "observed_at", "available_at", "funding_rate", "open_interest",
                       "basis"]
VOLUME_BAR_COLUMNS = ["quote_volume", "trade_count"]

_IN = ["derivatives_metrics.available_at"]
# (name, kind, group, description, inputs): the registry entries (dictionary.py)
SPECS: tuple[tuple[str, str, str, str, list[str]], ...] = (
    ("deriv_funding_rate", "float", "derivatives",
     "Perpetual-swap funding rate per funding interval (0.0001 = 0.01 %): per exchange the newest rate (current "
     "or settled) with available_at <= asof_time and at most 9 h old, then the mean across exchanges. NaN when "
     "no exchange has one (dq_derivatives_exchanges).", ["derivatives_metrics.funding_rate", *_IN]),
    ("deriv_funding_rate_chg_8h", "float", "derivatives",
     "Funding rate known at asof_time minus the one known at asof_time - 8h, per exchange, then the mean "
     "(absolute change). NaN unless an exchange has both, and a newer figure arrived in between.",
     ["derivatives_metrics.funding_rate", *_IN]),
    ("deriv_funding_rate_chg_24h", "float", "derivatives",
     "As deriv_funding_rate_chg_8h, against asof_time - 24h.", ["derivatives_metrics.funding_rate", *_IN]),
    ("deriv_oi_chg_1h", "float", "derivatives",
     "Open interest (base currency) known at asof_time / the one known at asof_time - 1h - 1, per exchange "
     "(each at most 3 h old, the later one newer), then the mean. NaN unless an exchange has both.",
     ["derivatives_metrics.open_interest", *_IN]),
    ("deriv_oi_chg_24h", "float", "derivatives", "As deriv_oi_chg_1h, against asof_time - 24h.",
     ["derivatives_metrics.open_interest", *_IN]),
    ("deriv_basis", "float", "derivatives",
     "Perpetual premium over the spot index, mark / index - 1 as the exchange answered (at most 3 h old at "
     "asof_time), mean across exchanges. NaN where no exchange gave both prices.",
     ["derivatives_metrics.basis", *_IN]),
    ("quote_volume", "float", "volume",
     "Traded volume of the bar in the quote currency (ohlcv_bars.quote), as the exchange gave it; NaN otherwise.",
     ["ohlcv_bars.quote_volume"]),
    ("trade_count", "float", "volume", "Trades in the bar, where the exchange gives it (binance, kraken); NaN "
     "otherwise.", ["ohlcv_bars.trade_count"]),
    ("avg_trade_size", "float", "volume", "volume / trade_count: mean trade size in the base currency; NaN "
     "without both.", ["ohlcv_bars.volume", "ohlcv_bars.trade_count"]),
    ("dq_volume_from_exchange", "bool", "quality", "The bar is an exchange candle (bar_method = exchange): its "
     "volume is traded volume.", ["ohlcv_bars.method"]),
    ("dq_derivatives_exchanges", "int", "quality", "Exchanges with a usable funding rate at asof_time (0: no "
     "derivatives input; every deriv_* funding column is NaN).", ["derivatives_metrics"]),
    ("dq_derivatives_newest_age_hours", "float", "quality", "Hours from the newest derivatives figure "
     "(available_at) of the symbol to asof_time; NaN when none is known.", ["derivatives_metrics.available_at"]),
)
NAMES = tuple(s[0] for s in SPECS)


def _empty_obs() -> pd.DataFrame:
    return pd.DataFrame({"symbol": pd.Series(dtype=object), "exchange": pd.Series(dtype=object),
                         "available_at": pd.Series(dtype="datetime64[ns, UTC]"), "value": pd.Series(dtype="float64")})


def _observations(frame: pd.DataFrame | None, column: str) -> pd.DataFrame:
    """(symbol, exchange, available_at, value) of one figure; rows without a time or value are unusable."""
    if frame is None or frame.empty or column not in frame:
        return _empty_obs()
    out = pd.DataFrame({
        "symbol": frame["symbol"].astype(str).to_numpy(), "exchange": frame["exchange"].astype(str).to_numpy(),
        "available_at": pd.to_datetime(frame["available_at"], utc=True).astype("datetime64[ns, UTC]").to_numpy(),
        "value": pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64"),
    })
    out["available_at"] = pd.to_datetime(out["available_at"], utc=True)
    out = out.dropna(subset=["available_at", "value"])
    # Two figures known at the same instant (a snapshot and a settlement): the later observation wins,
    # deterministically, whatever the read order.
    return out.sort_values(["available_at", "value"], kind="stable").drop_duplicates(
        ["symbol", "exchange", "available_at"], keep="last")


def _asof(symbols: np.ndarray, times: pd.DatetimeIndex, obs: pd.DataFrame, max_age: pd.Timedelta):
    """{exchange: (value, available_at ns)} known at each (symbol, time), at most `max_age` old."""
    n = len(symbols)
    out = {}
    if obs.empty or not n:
        return out
    left = pd.DataFrame({"symbol": symbols, "t": times, "i": np.arange(n)}).sort_values("t", kind="stable")
    for exchange, part in obs.groupby("exchange", sort=True):
        right = part.sort_values("available_at", kind="stable")[["symbol", "available_at", "value"]]
        joined = pd.merge_asof(left, right, left_on="t", right_on="available_at", by="symbol",
                               direction="backward", allow_exact_matches=True, tolerance=max_age)
        joined = joined.sort_values("i")
        value = joined["value"].to_numpy(dtype="float64")
        when = pd.DatetimeIndex(joined["available_at"]).as_unit("ns").asi8.astype("float64")
        when[np.isnan(value)] = np.nan
        out[exchange] = (value, when)
    return out


def _mean(arrays: list[np.ndarray], n: int) -> np.ndarray:
    if not arrays:
        return np.full(n, np.nan)
    stack = np.vstack(arrays)
    count = np.isfinite(stack).sum(axis=0)
    total = np.nansum(stack, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _distinct(now, then, change: np.ndarray) -> np.ndarray:
    """A change only between two different figures: when no newer figure arrived since the earlier
    time, the state at both times is the same observation and the change is unknown (NaN), not 0."""
    return np.where(now[1] > then[1], change, np.nan)


def derivative_features(symbols, as_of, derivatives: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """deriv_* and dq_derivatives_* columns for rows (symbol, as-of time)."""
    symbols = np.asarray(symbols, dtype=object)
    times = pd.DatetimeIndex(pd.to_datetime(as_of, utc=True)).astype("datetime64[ns, UTC]")
    n = len(symbols)
    funding = _observations(derivatives, "funding_rate")
    oi = _observations(derivatives, "open_interest")
    basis = _observations(derivatives, "basis")

    now_f = _asof(symbols, times, funding, FUNDING_MAX_AGE)
    cols = {"deriv_funding_rate": _mean([v for v, _ in now_f.values()], n)}
    for label, lag in CHANGE_LAGS.items():
        then = _asof(symbols, times - lag, funding, FUNDING_MAX_AGE)
        cols[f"deriv_funding_rate_chg_{label}"] = _mean(
            [_distinct(now_f[e], then[e], now_f[e][0] - then[e][0]) for e in now_f if e in then], n)
    now_oi = _asof(symbols, times, oi, OI_MAX_AGE)
    for label, lag in OI_CHANGE_LAGS.items():
        then = _asof(symbols, times - lag, oi, OI_MAX_AGE)
        changes = []
        for e in now_oi:
            if e in then:
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = now_oi[e][0] / then[e][0] - 1.0
                changes.append(_distinct(now_oi[e], then[e], np.where(np.isfinite(ratio), ratio, np.nan)))
        cols[f"deriv_oi_chg_{label}"] = _mean(changes, n)
    now_b = _asof(symbols, times, basis, BASIS_MAX_AGE)
    cols["deriv_basis"] = _mean([v for v, _ in now_b.values()], n)

    cols["dq_derivatives_exchanges"] = (np.sum([np.isfinite(v) for v, _ in now_f.values()], axis=0).astype("int64")
                                        if now_f else np.zeros(n, dtype="int64"))
    # newest figure of any kind known at t (no staleness limit: the age is what this column shows)
    everything = pd.concat([funding, oi, basis], ignore_index=True)
    newest = _asof(symbols, times, everything.assign(exchange="any"), pd.Timedelta(days=36500)).get("any")
    if newest is None:
        cols["dq_derivatives_newest_age_hours"] = np.full(n, np.nan)
    else:
        cols["dq_derivatives_newest_age_hours"] = (times.asi8 - newest[1]) / pd.Timedelta(hours=1).value
    return cols


def volume_features(rows: pd.DataFrame, bars: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """quote_volume, trade_count, avg_trade_size of each featured row's own bar (same symbol,
    bar_start, interval), and whether the bar is an exchange candle."""
    n = len(rows)
    key = ["symbol", "bar_start", "interval"]
    extras = pd.DataFrame({c: np.full(n, np.nan) for c in VOLUME_BAR_COLUMNS})
    if bars is not None and len(bars) and all(c in bars for c in VOLUME_BAR_COLUMNS):
        right = bars[[*key, *VOLUME_BAR_COLUMNS]].copy()
        right["bar_start"] = pd.to_datetime(right["bar_start"], utc=True).astype("datetime64[ns, UTC]")
        right = right.drop_duplicates(key, keep="last")
        left = rows[key].copy()
        left["bar_start"] = pd.to_datetime(left["bar_start"], utc=True).astype("datetime64[ns, UTC]")
        extras = left.merge(right, on=key, how="left")[VOLUME_BAR_COLUMNS]
    quote_volume = pd.to_numeric(extras["quote_volume"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    trades = pd.to_numeric(extras["trade_count"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    volume = pd.to_numeric(rows["volume"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        size = np.where(trades > 0, volume / trades, np.nan)
    return {
        "quote_volume": quote_volume,
        "trade_count": trades,
        "avg_trade_size": np.where(np.isfinite(size), size, np.nan),
        "dq_volume_from_exchange": (rows["method"].astype(str) == "exchange").to_numpy(dtype=bool),
    }


def read_window(start, last_as_of) -> tuple[pd.Timestamp, pd.Timestamp]:
    """derivatives_metrics rows (by observed_at) a window needs: the longest lag and staleness before
    its start, up to its last as-of time (inclusive)."""
    return pd.Timestamp(start) - READ_LOOKBACK, pd.Timestamp(last_as_of) + pd.Timedelta(microseconds=1)
