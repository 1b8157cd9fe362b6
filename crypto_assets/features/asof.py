"""As-of joins on availability time: what was known at each bar time, and nothing later.

Daily series (macro, on-chain) are joined to bars by WHEN a value became known
(`available_at`), never by calendar date: joining by date hands a bar at 10:00 the close of
16:00 that day, or a CPI figure published weeks later. For each bar time t and series s the
join returns the latest observation of s (by observation date) among those with
available_at <= t, and the observation before it (for a daily change), also known at t.

    wide = asof_wide(bars, macro, time_col="bar_start")      # bars + VIX, VIX_prev, DGS10, ...

`pandas.merge_asof` does the search; the only preparation is the "knowledge timeline" of each
series, because values do not always become known in observation order (a backfilled older
observation can arrive after a newer one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TIMELINE_COLUMNS = ["available_at", "observation_date", "value", "prev_observation_date", "prev_value"]


def _utc_ns(values: pd.Series, what: str) -> pd.Series:
    times = pd.to_datetime(values)
    if getattr(times.dt, "tz", None) is None:
        raise ValueError(f"{what} must be timezone-aware UTC timestamps")
    if times.isna().any():
        raise ValueError(f"{what} has empty timestamps")
    return times.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _naive_ns(times: pd.Series) -> np.ndarray:
    """UTC instants as a plain datetime64[ns] array (a tz-aware Series converts to objects)."""
    return times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def knowledge_timeline(observations: pd.DataFrame, *, date_col: str = "observation_date",
                       value_col: str = "value", available_col: str = "available_at") -> pd.DataFrame:
    """For ONE series: after each availability time, the latest known observation and the one
    before it (both by observation date, both among the observations known by then)."""
    obs = observations[[available_col, date_col, value_col]].dropna(subset=[available_col, date_col])
    obs = obs.assign(**{available_col: _utc_ns(obs[available_col], available_col)})
    obs = obs.sort_values([available_col, date_col], kind="stable")
    times = _naive_ns(obs[available_col])
    dates = obs[date_col].to_numpy(dtype=object)
    values = obs[value_col].to_numpy(dtype="float64")
    rows = []
    latest = prev = None  # (date, value) of the two newest observations known so far
    for i in range(len(obs)):
        d, v = dates[i], values[i]
        if latest is None or d > latest[0]:
            prev, latest = latest, (d, v)
        elif d == latest[0]:
            latest = (d, v)  # same observation made known again: the newer availability wins
        elif prev is None or d >= prev[0]:
            prev = (d, v)  # an older observation arriving late can only be the "previous" one
        if i + 1 == len(obs) or times[i + 1] != times[i]:  # state after the whole event
            rows.append((times[i], latest[0], latest[1],
                         prev[0] if prev else None, prev[1] if prev else np.nan))
    timeline = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    timeline["available_at"] = pd.to_datetime(timeline["available_at"], utc=True).astype("datetime64[ns, UTC]")
    return timeline


def _states_by_series(bars: pd.DataFrame, observations: pd.DataFrame, time_col: str, series_col: str,
                      date_col: str, value_col: str, available_col: str):
    """(series, state known at each bar's time: one row per bar, in bar order)."""
    times = _naive_ns(_utc_ns(bars[time_col], time_col))
    # many symbols share a bar time: search each distinct time once
    unique, inverse = np.unique(times, return_inverse=True)
    left = pd.DataFrame({time_col: pd.to_datetime(unique, utc=True).astype("datetime64[ns, UTC]")})
    for series, obs in observations.groupby(series_col, sort=True):
        timeline = knowledge_timeline(obs, date_col=date_col, value_col=value_col, available_col=available_col)
        joined = pd.merge_asof(left, timeline, left_on=time_col, right_on="available_at",
                               direction="backward", allow_exact_matches=True)
        yield series, joined.iloc[inverse].reset_index(drop=True)


def asof_join(bars: pd.DataFrame, observations: pd.DataFrame, *, time_col: str = "bar_start",
              series_col: str = "series_id", date_col: str = "observation_date", value_col: str = "value",
              available_col: str = "available_at") -> pd.DataFrame:
    """Long result: one row per (bar, series) with the value known at the bar's time.

    Columns: `bar_index` (the bar's position in `bars`), `time_col`, `series_id`, `value`,
    `observation_date`, `available_at` (of the state used), `prev_value`, `prev_observation_date`.
    A series with nothing known yet at t has NaN/None there.
    """
    frames = [
        state.assign(bar_index=np.arange(len(bars)), series_id=series)
        for series, state in _states_by_series(bars, observations, time_col, series_col, date_col,
                                               value_col, available_col)
    ]
    columns = ["bar_index", time_col, "series_id", *TIMELINE_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    return out[columns].sort_values(["bar_index", "series_id"], kind="stable").reset_index(drop=True)


def asof_wide(bars: pd.DataFrame, observations: pd.DataFrame, *, time_col: str = "bar_start",
              prefix: str = "", series_col: str = "series_id", date_col: str = "observation_date",
              value_col: str = "value", available_col: str = "available_at") -> pd.DataFrame:
    """`bars` plus, per series s, the columns `{prefix}{s}` (value known at the bar time) and
    `{prefix}{s}_prev` (the previous observation known then). Row order and index are kept."""
    out = bars.copy()
    for series, state in _states_by_series(bars, observations, time_col, series_col, date_col,
                                           value_col, available_col):
        out[f"{prefix}{series}"] = state["value"].to_numpy(dtype="float64")
        out[f"{prefix}{series}_prev"] = state["prev_value"].to_numpy(dtype="float64")
    return out
