"""LLM narrative theme features of `ml_features` (from `news_narratives`, an OPTIONAL input).

As of each row's time t (its `asof_time`), only narratives with `available_at` <= t count
(`available_at` = the published time of the newest article the narrative was written from, so it
uses nothing published after t). Failed hours (status='failed') never count. Market-wide:
- `narr_<theme>`: the theme's strength in the newest narrative known at t, if at most 3 h old;
- `narr_<theme>_24h`: the mean strength over the narratives known at t and available in (t - 24h, t].
Per symbol: `narr_symbol_strength_24h`, the mean over those narratives of the summed strength of
the themes whose coins include the row's symbol. No narrative (no LLM configured, or none in
the window): NaN, and `dq_narratives_24h` = 0.

This module does not import the registry: `dictionary.py` builds its FeatureDefs from `SPECS`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from crypto_assets.llm.narratives import THEMES

LATEST_MAX_AGE = pd.Timedelta(hours=3)
WINDOW = pd.Timedelta(hours=24)
NARRATIVE_COLUMNS = ["hour_start", "status", "available_at", "themes_json", *(f"strength_{t}" for t in THEMES)]

_IN = ["news_narratives.available_at", "news_narratives.status"]
SPECS: tuple[tuple[str, str, str, str, list[str]], ...] = (
    *((f"narr_{t}", "float", "narratives",
       f"Strength in [0, 1] of the '{t}' theme in the newest hourly LLM news narrative with available_at <= "
       "asof_time, if at most 3 h old (0: the narrative did not report the theme). NaN without one (optional "
       "input: no LLM configured, or the hour failed validation).", [f"news_narratives.strength_{t}", *_IN])
      for t in THEMES),
    *((f"narr_{t}_24h", "float", "narratives",
       f"Mean strength of the '{t}' theme over the narratives with available_at in (asof_time - 24h, asof_time]. "
       "NaN without one.", [f"news_narratives.strength_{t}", *_IN]) for t in THEMES),
    ("narr_symbol_strength_24h", "float", "narratives",
     "Mean over the narratives of the last 24h (available_at <= asof_time) of the summed strength of the themes "
     "whose coins include the row's symbol (0: none touched it). NaN without a narrative.",
     ["news_narratives.themes_json", *_IN]),
    ("dq_narratives_24h", "int", "narratives",
     "Valid LLM narratives with available_at in (asof_time - 24h, asof_time]; 0 when the optional "
     "news_narratives input is off or empty.", _IN),
)
FEATURE_NAMES = tuple(name for name, *_ in SPECS)


def read_window(start, last_as_of) -> tuple[pd.Timestamp, pd.Timestamp]:
    """news_narratives rows (by hour_start) a window needs: available_at >= hour_start, so a narrative
    available in (first as-of - 24h, last as-of] started at most 24 h before the first as-of time."""
    return pd.Timestamp(start) - WINDOW - pd.Timedelta(hours=1), pd.Timestamp(last_as_of) + pd.Timedelta(microseconds=1)


def _coin_strengths(themes_json: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for theme in json.loads(themes_json) if isinstance(themes_json, str) else []:
        for coin in theme.get("coins", []):
            out[coin] = out.get(coin, 0.0) + float(theme["strength"])
    return out


def narrative_features(symbols: np.ndarray, as_of: pd.Series, narratives: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """The SPECS columns for rows (symbol, as_of)."""
    n = len(symbols)
    out = {name: np.full(n, np.nan) for name in FEATURE_NAMES}
    out["dq_narratives_24h"] = np.zeros(n, dtype="int64")
    if narratives is None or narratives.empty or n == 0:
        return out
    ok = narratives[(narratives["status"] == "ok") & narratives["available_at"].notna()]
    if ok.empty:
        return out
    ok = ok.assign(available_at=pd.to_datetime(ok["available_at"], utc=True)).sort_values(
        ["available_at", "hour_start"], kind="stable").reset_index(drop=True)
    avail = pd.DatetimeIndex(ok["available_at"]).as_unit("ns").asi8
    strengths = ok[[f"strength_{t}" for t in THEMES]].to_numpy(dtype="float64")
    coins = [_coin_strengths(j) for j in ok["themes_json"]]

    row_ns = pd.DatetimeIndex(pd.to_datetime(as_of, utc=True)).as_unit("ns").asi8
    times, row_time = np.unique(row_ns, return_inverse=True)
    hi = np.searchsorted(avail, times, side="right")  # narratives known at t: [0, hi)
    lo = np.searchsorted(avail, times - WINDOW.value, side="right")  # available after t - 24h
    count = hi - lo
    latest_ok = (hi > 0) & (times - avail[np.maximum(hi - 1, 0)] <= LATEST_MAX_AGE.value)
    latest = np.where(latest_ok[:, None], strengths[np.maximum(hi - 1, 0)], np.nan)
    means = np.full((len(times), len(THEMES)), np.nan)
    for i in np.flatnonzero(count):
        means[i] = strengths[lo[i]:hi[i]].mean(axis=0)
    for j, theme in enumerate(THEMES):
        out[f"narr_{theme}"] = latest[row_time, j]
        out[f"narr_{theme}_24h"] = means[row_time, j]
    out["dq_narratives_24h"] = count[row_time].astype("int64")

    # per symbol: 0 where narratives exist but none touched the symbol, the mean where they did
    per_symbol = np.where(count[row_time] > 0, 0.0, np.nan)
    touched = sorted({c for d in coins for c in d})
    symbols = np.asarray(symbols, dtype=object)
    for coin in touched:
        rows = np.flatnonzero(symbols == coin)
        if not len(rows):
            continue
        values = np.array([d.get(coin, 0.0) for d in coins])
        sums = np.array([values[lo[i]:hi[i]].sum() for i in range(len(times))])
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, sums / np.maximum(count, 1), np.nan)
        per_symbol[rows] = mean[row_time[rows]]
    out["narr_symbol_strength_24h"] = per_symbol
    return out
