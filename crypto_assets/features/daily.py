"""Macro and on-chain features as of each row's as-of time (daily inputs, as-of joins).

Both go through `crypto_assets.features.asof.asof_join`: for every as-of time t and series, the
newest observation with availability <= t and the observation before it (also known at t).
Macro availability is `available_at` (market close, FRED first vintage); an on-chain day is
usable once that UTC day has closed: max(available_at, day + 1 day). A value whose observation
is older than its staleness limit (`params`) is NaN, so a stuck feed shows up as missing data.
Everything is computed once per distinct as-of time and then spread to the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_assets.features import params as p
from crypto_assets.features.asof import asof_join
from crypto_assets.features.dictionary import is_rate, macro_column, onchain_column
from crypto_assets.sources.series_catalog import MacroSeries, OnchainMetric

_HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class DailyResult:
    columns: dict[str, np.ndarray]  # per distinct as-of time
    present: np.ndarray  # int: series with a usable value
    newest_age_hours: np.ndarray


@dataclass(frozen=True)
class SeriesState:
    value: np.ndarray
    prev: np.ndarray
    observed: np.ndarray  # datetime64[ns]: observation date (UTC midnight) of `value`
    available: np.ndarray  # datetime64[ns]: when the state became known


@dataclass(frozen=True)
class Limits:
    max_age: pd.Timedelta  # a value whose observation is older than this at t is not used
    prev_max_age: pd.Timedelta  # nor a previous observation older than this (for the change)


def _date_ns(dates: pd.Series) -> np.ndarray:
    """Observation dates (datetime.date) as UTC-midnight nanoseconds."""
    days = np.array(dates.to_numpy(dtype=object), dtype="datetime64[D]")  # numpy converts date objects fast
    return days.astype("datetime64[ns]").view("int64")


def _states(times: pd.DatetimeIndex, observations: pd.DataFrame, limits: dict[str, Limits]) -> dict[str, SeriesState]:
    """Per series, the as-of state at each time, within the series' age limits.

    Observations older than any time's limit are dropped first: the result does not depend on
    how much history the caller read, as long as it covers `params.*_READ_LOOKBACK`.
    """
    n = len(times)
    t_ns = times.as_unit("ns").asi8
    unknown = np.iinfo(np.int64).min
    wanted = observations[observations["series_id"].isin(list(limits))] if len(observations) else observations
    if len(wanted) and n:
        reach = {sid: limit.prev_max_age.value for sid, limit in limits.items()}
        oldest = t_ns.min() - wanted["series_id"].map(reach).to_numpy(dtype="int64")
        wanted = wanted[_date_ns(wanted["observation_date"]) >= oldest]
    long = asof_join(pd.DataFrame({"t": times}), wanted, time_col="t") if len(wanted) and n else None
    states = {}
    for sid, limit in limits.items():
        value, prev = np.full(n, np.nan), np.full(n, np.nan)
        observed, available = np.full(n, unknown, dtype=np.int64), np.full(n, unknown, dtype=np.int64)
        part = long[long["series_id"] == sid] if long is not None else None
        if part is not None and len(part):
            part = part[part["observation_date"].notna()]
            idx = part["bar_index"].to_numpy()
            obs_ns = _date_ns(part["observation_date"])
            fresh = (t_ns[idx] - obs_ns) <= limit.max_age.value
            sel = idx[fresh]
            value[sel] = part["value"].to_numpy(dtype="float64")[fresh]
            observed[sel] = obs_ns[fresh]
            available[sel] = pd.DatetimeIndex(part["available_at"]).as_unit("ns").asi8[fresh]
            has_prev = part["prev_observation_date"].notna().to_numpy()
            prev_ns = np.full(len(part), unknown, dtype=np.int64)
            prev_ns[has_prev] = _date_ns(part["prev_observation_date"][has_prev])
            prev_ok = fresh & has_prev & ((t_ns[idx] - prev_ns) <= limit.prev_max_age.value)
            prev[idx[prev_ok]] = part["prev_value"].to_numpy(dtype="float64")[prev_ok]
        states[sid] = SeriesState(value, prev, observed, available)
    return states


def _change(state: SeriesState, rate: bool) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = state.value - state.prev if rate else state.value / state.prev - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def _newest_age_hours(times: pd.DatetimeIndex, stamps: list[np.ndarray]) -> np.ndarray:
    if not stamps:
        return np.full(len(times), np.nan)
    newest = np.max(np.vstack(stamps), axis=0)
    age = (times.as_unit("ns").asi8 - newest) / _HOUR.value
    return np.where(newest == np.iinfo(np.int64).min, np.nan, age)


def macro_features(times: pd.DatetimeIndex, macro: pd.DataFrame | None, catalog: list[MacroSeries]) -> DailyResult:
    """macro_* levels and changes, cross-asset features and macro quality, per distinct as-of time."""
    obs = _macro_observations(macro)
    ids = [s.id for s in catalog]
    limits = {s.id: Limits(p.MACRO_MAX_AGE[s.frequency], p.MACRO_MAX_AGE[s.frequency] + p.MACRO_PREV_GAP[s.frequency])
              for s in catalog}
    states = _states(times, obs, limits)
    columns: dict[str, np.ndarray] = {}
    changes: dict[str, np.ndarray] = {}
    for s in catalog:
        col = macro_column(s.id)
        columns[col] = states[s.id].value
        columns[f"{col}_chg"] = changes[s.id] = _change(states[s.id], is_rate(s.unit))
    nan = np.full(len(times), np.nan)
    for name, kind, a, b in p.CROSS_ASSET:
        va = states[a].value if a in states else nan
        vb = states[b].value if b in states else nan
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == "ratio":
                out = va / vb
            elif kind == "difference":
                out = va - vb
            else:
                out = changes.get(a, nan) - changes.get(b, nan)
        columns[name] = np.where(np.isfinite(out), out, np.nan)
    present = np.sum([np.isfinite(states[i].value) for i in ids], axis=0) if ids else np.zeros(len(times))
    ages = _newest_age_hours(times, [states[i].available for i in ids])
    return DailyResult(columns, np.asarray(present, dtype="int64"), ages)


def _macro_observations(macro: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["series_id", "observation_date", "value", "available_at"]
    if macro is None or macro.empty:
        return pd.DataFrame(columns=cols)
    # A value without an availability time cannot be placed in time: it is never used.
    return macro.loc[:, cols].dropna(subset=["observation_date", "available_at"])


def onchain_observations(onchain: pd.DataFrame | None) -> pd.DataFrame:
    """On-chain rows as as-of observations: usable from the end of their UTC day at the earliest."""
    cols = ["series_id", "observation_date", "value", "available_at"]
    if onchain is None or onchain.empty:
        return pd.DataFrame(columns=cols)
    frame = onchain.dropna(subset=["date"]).reset_index(drop=True)
    day_end = pd.to_datetime(frame["date"]).dt.tz_localize("UTC") + pd.Timedelta(days=1)
    stated = pd.to_datetime(frame["available_at"], utc=True)
    usable = stated.where(stated > day_end, day_end)  # NaT or earlier than the day's end -> day's end
    return pd.DataFrame({
        "series_id": [onchain_column(c, m) for c, m in zip(frame["chain"], frame["metric"])],
        "observation_date": frame["date"].to_numpy(),
        "value": frame["value"].to_numpy(dtype="float64", na_value=np.nan),
        "available_at": usable,
    })


def onchain_features(times: pd.DatetimeIndex, onchain: pd.DataFrame | None,
                     catalog: list[OnchainMetric]) -> DailyResult:
    obs = onchain_observations(onchain)
    ids = [onchain_column(m.chain, m.metric) for m in catalog]
    limits = {i: Limits(p.ONCHAIN_MAX_AGE, p.ONCHAIN_MAX_AGE + p.ONCHAIN_PREV_GAP) for i in ids}
    states = _states(times, obs, limits)
    columns: dict[str, np.ndarray] = {}
    for sid in ids:
        columns[sid] = states[sid].value
        columns[f"{sid}_chg"] = _change(states[sid], rate=False)
    present = np.sum([np.isfinite(states[i].value) for i in ids], axis=0) if ids else np.zeros(len(times))
    # Age of the newest known day, from the end of that day.
    day_ends = [np.where(states[i].observed == np.iinfo(np.int64).min, states[i].observed,
                         states[i].observed + pd.Timedelta(days=1).value) for i in ids]
    return DailyResult(columns, np.asarray(present, dtype="int64"), _newest_age_hours(times, day_ends))
