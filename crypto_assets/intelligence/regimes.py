"""Market regimes: trend (bull / bear / sideways) x volatility (high / low), per symbol and hour,
and market-wide. Deterministic, nothing fitted; every value of hour h uses hourly closes up to
the close of hour h only (known at h + 1h = `asof_time`).

Per symbol, from the hourly closes c (see `hourly.hourly_series`):
- sma_fast = mean of the last 24 closes, sma_slow = mean of the last 168 (7 days);
- realized_vol_24h = sample std of the last 24 hourly log returns x sqrt(24);
- vol_percentile = mid-rank of this hour's realized_vol_24h among its last 168 values (this hour
  included; values below + half the equal ones, over the count): the volatility ranked against
  its OWN past week only;
- trend_score = sma_fast / sma_slow - 1, trend_band = 0.5 x realized_vol_24h;
- trend: bull when trend_score > trend_band and close > sma_slow; bear when trend_score <
  -trend_band and close < sma_slow; sideways otherwise;
- volatility: high when vol_percentile > 0.5 (above its trailing-week median), low otherwise.
A window needs 80 % of its points; otherwise the value and the regime are unknown (NULL).

Market-wide (symbol `_MARKET`), per hour over the symbols whose regime is known: the medians of
trend_score, trend_band, realized_vol_24h and vol_percentile, classified by the same rules
(without the close condition), plus the breadth (share of those symbols in bull / bear).

`previous_regime` is the regime of the hour before; `regime_changed` says it differs (both known).
Windows are evaluated whole (no running sums), so a partition computed with
`REGIME_LOOKBACK_HOURS` of earlier closes equals the full-history computation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from crypto_assets.intelligence import params as p
from crypto_assets.intelligence.hourly import hourly_series, log_returns, to_matrix, window_stats, windows

BULL, BEAR, SIDEWAYS = "bull", "bear", "sideways"
HIGH, LOW = "high", "low"
COLUMNS = [
    "symbol", "scope", "bar_start", "asof_time", "close", "sma_fast", "sma_slow", "trend_score", "trend_band",
    "realized_vol_24h", "vol_percentile", "trend_regime", "volatility_regime", "regime", "previous_regime",
    "regime_changed", "history_hours", "symbols", "breadth_bull", "breadth_bear", "method",
]


def _min(width: int) -> int:
    return math.ceil(p.MIN_COVERAGE * width)


def _rolling_mean(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    count, mean = np.zeros(values.shape, dtype="int64"), np.full(values.shape, np.nan)
    for rows, win in windows(values, width):
        count[rows], mean[rows], _ = window_stats(win, _min(width), std=False)
    return count, mean


def _rolling_std(values: np.ndarray, width: int) -> np.ndarray:
    std = np.full(values.shape, np.nan)
    for rows, win in windows(values, width):
        _, _, std[rows] = window_stats(win, _min(width))
    return std


def _trailing_percentile(values: np.ndarray, width: int) -> np.ndarray:
    """Mid-rank of the current value among the last `width` finite values (the current one included):
    (values below + half the values equal) / values. A constant series ranks 0.5."""
    out = np.full(values.shape, np.nan)
    for rows, win in windows(values, width):
        current = values[rows]
        finite = np.isfinite(win)
        with np.errstate(invalid="ignore", divide="ignore"):
            below = (finite & (win < current[..., None])).sum(axis=-1)
            equal = (finite & (win == current[..., None])).sum(axis=-1)
            share = (below + 0.5 * equal) / finite.sum(axis=-1)
        out[rows] = np.where((finite.sum(axis=-1) >= _min(width)) & np.isfinite(current), share, np.nan)
    return out


TRENDS = (None, BULL, BEAR, SIDEWAYS)  # codes 0..3 (0: unknown)
VOLS = (None, HIGH, LOW)  # codes 0..2
REGIMES = np.array([None] + [f"{t}_{v}_vol" for t in TRENDS[1:] for v in VOLS[1:]], dtype=object)


def _classify(score: np.ndarray, band: np.ndarray, pct: np.ndarray,
              above: np.ndarray | None = None, below: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(trend code, volatility code, regime code); 0 = unknown. Regime code = (trend-1)*2 + vol."""
    known_trend = np.isfinite(score) & np.isfinite(band)
    if above is None:
        above = below = np.ones(score.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        trend = np.where((score > band) & above, 1, np.where((score < -band) & below, 2, 3))
        vol = np.where(pct > p.HIGH_VOL_PERCENTILE, 1, 2)
    trend = np.where(known_trend, trend, 0)
    vol = np.where(np.isfinite(pct), vol, 0)
    regime = np.where((trend > 0) & (vol > 0), (trend - 1) * 2 + vol, 0)
    return trend, vol, regime


def _previous(regime: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prev = np.zeros_like(regime)
    prev[1:] = regime[:-1]
    return prev, (prev > 0) & (regime > 0) & (prev != regime)


def _names(codes: np.ndarray, names) -> np.ndarray:
    return np.asarray(names, dtype=object)[codes]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})


def compute_regimes(bars: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Regime rows for the hours in [start, end) (all hours when no bounds): one per symbol with a
    close in that hour, and one `_MARKET` row per hour. `bars` must reach REGIME_LOOKBACK_HOURS
    before `start` for the values to equal the full-history computation."""
    series = hourly_series(bars)
    if series.empty:
        return _empty()
    close = to_matrix(series, "close")
    c = close.values
    _, sma_fast = _rolling_mean(c, p.TREND_FAST_HOURS)
    history, sma_slow = _rolling_mean(c, p.TREND_SLOW_HOURS)
    rv = _rolling_std(log_returns(c), p.VOL_WINDOW_HOURS) * math.sqrt(p.VOL_WINDOW_HOURS)
    pct = _trailing_percentile(rv, p.VOL_RANK_HOURS)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = sma_fast / sma_slow - 1.0
    band = p.TREND_BAND_SIGMAS * rv
    with np.errstate(invalid="ignore"):
        above, below = c > sma_slow, c < sma_slow
    trend, vol, regime = _classify(score, band, pct, above=above, below=below)
    prev, changed = _previous(regime)

    hours = close.hours
    n, k = c.shape
    sym = pd.DataFrame({
        "symbol": np.tile(np.array(close.symbols, dtype=object), n),
        "scope": "symbol",
        "bar_start": np.repeat(hours, k),
        "close": c.ravel(), "sma_fast": sma_fast.ravel(), "sma_slow": sma_slow.ravel(),
        "trend_score": score.ravel(), "trend_band": band.ravel(), "realized_vol_24h": rv.ravel(),
        "vol_percentile": pct.ravel(), "trend_regime": _names(trend.ravel(), TRENDS),
        "volatility_regime": _names(vol.ravel(), VOLS), "regime": _names(regime.ravel(), REGIMES),
        "previous_regime": _names(prev.ravel(), REGIMES), "regime_changed": changed.ravel(),
        "history_hours": history.ravel(),
    })
    sym = sym[np.isfinite(c.ravel())]
    market = _market(hours, score, band, rv, pct, trend, regime)
    frame = pd.concat([sym, market], ignore_index=True)
    frame["asof_time"] = frame["bar_start"] + p.HOUR
    frame["method"] = p.REGIME_METHOD_VERSION
    t = pd.DatetimeIndex(frame["bar_start"])
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= t >= pd.Timestamp(start)
    if end is not None:
        keep &= t < pd.Timestamp(end)
    frame = frame[keep].sort_values(["bar_start", "symbol"], kind="stable").reset_index(drop=True)
    return frame.reindex(columns=COLUMNS)


def _market(hours, score, band, rv, pct, trend, regime) -> pd.DataFrame:
    known = regime > 0
    n = known.sum(axis=1)

    def med(values):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(np.where(known, values, np.nan), axis=1) if values.shape[1] else np.full(len(n), np.nan)

    m_score, m_band, m_rv, m_pct = med(score), med(band), med(rv), med(pct)
    with np.errstate(invalid="ignore", divide="ignore"):
        bull = np.where(n > 0, ((trend == 1) & known).sum(axis=1) / n, np.nan)
        bear = np.where(n > 0, ((trend == 2) & known).sum(axis=1) / n, np.nan)
    m_trend, m_vol, m_regime = _classify(m_score, m_band, m_pct)
    m_prev, m_changed = _previous(m_regime)
    frame = pd.DataFrame({
        "symbol": p.MARKET, "scope": "market", "bar_start": hours, "trend_score": m_score, "trend_band": m_band,
        "realized_vol_24h": m_rv, "vol_percentile": m_pct, "trend_regime": _names(m_trend, TRENDS),
        "volatility_regime": _names(m_vol, VOLS), "regime": _names(m_regime, REGIMES),
        "previous_regime": _names(m_prev, REGIMES), "regime_changed": m_changed, "symbols": n,
        "breadth_bull": bull, "breadth_bear": bear,
    })
    return frame[n > 0]


def regime_changes(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows where the regime changed (previous -> regime)."""
    return frame[frame["regime_changed"].astype(bool)]
