"""Market anomalies: robust z-scores of an hour's value against the hours BEFORE it.

For each measure x and hour h: baseline = median of x over the ANOMALY_WINDOW_HOURS hours before
h (h excluded), scale = 1.4826 x the median absolute deviation of those values (a standard
deviation for normal data, hardly moved by earlier outliers), z = (x_h - baseline) / scale.
|z| >= ANOMALY_Z is an anomaly. A window needs 80 % of its points; otherwise (and when the scale
is 0, a constant series) z is unknown and nothing is flagged. Measures, per symbol and hour:
- price_jump: the hourly log return ln(close_h / close_{h-1}) (closes: `hourly.hourly_series`);
- volume_spike: ln(volume_h), for hours whose bars all have a volume;
- exchange_divergence: (max - min) / median of the hour's 1h candle closes across exchanges
  (`exchange_candles`, at least two exchanges), flagged only when the spread is also at least
  DIVERGENCE_MIN_SPREAD;
and market-wide (symbol `_MARKET`):
- news_spike: articles published in the hour (`news_articles`); scale at least one article.

Every scored hour is a row (`is_anomaly` says which are anomalies; only those carry evidence),
so an hour without anomalies is visibly judged rather than silently empty.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from crypto_assets.intelligence import params as p
from crypto_assets.intelligence.hourly import hourly_series, log_returns, to_matrix, window_median_mad, windows

PRICE, VOLUME, DIVERGENCE, NEWS = "price_jump", "volume_spike", "exchange_divergence", "news_spike"
COLUMNS = ["symbol", "kind", "bar_start", "asof_time", "value", "baseline", "scale", "z", "threshold", "direction",
           "window_hours", "window_points", "is_anomaly", "evidence", "method"]


def robust_z(values: np.ndarray, width: int = p.ANOMALY_WINDOW_HOURS, min_scale: float = 0.0):
    """(baseline, scale, z, points) of each row against the `width` rows before it (per column)."""
    baseline, mad = np.full(values.shape, np.nan), np.full(values.shape, np.nan)
    points = np.zeros(values.shape, dtype="int64")
    for rows, win in windows(values, width, include_current=False):
        points[rows], baseline[rows], mad[rows] = window_median_mad(win, math.ceil(p.MIN_COVERAGE * width))
    scale = np.maximum(p.MAD_SCALE * mad, min_scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (values - baseline) / scale
    z[~np.isfinite(z)] = np.nan
    return baseline, scale, z, points


def _rows(kind: str, matrix_hours: pd.DatetimeIndex, keys: list[str], values: np.ndarray, min_scale: float = 0.0,
          extra_ok: np.ndarray | None = None) -> pd.DataFrame:
    baseline, scale, z, points = robust_z(values, min_scale=min_scale)
    n, k = values.shape
    flagged = np.abs(np.nan_to_num(z, nan=0.0)) >= p.ANOMALY_Z
    if extra_ok is not None:
        flagged &= extra_ok
    frame = pd.DataFrame({
        "symbol": np.tile(np.array(keys, dtype=object), n), "kind": kind,
        "bar_start": np.repeat(matrix_hours, k), "value": values.ravel(), "baseline": baseline.ravel(),
        "scale": scale.ravel(), "z": z.ravel(), "window_points": points.ravel(), "is_anomaly": flagged.ravel(),
    })
    return frame[np.isfinite(values.ravel())]


def _grid(start, end, first) -> pd.DatetimeIndex:
    return pd.date_range(min(pd.Timestamp(first), pd.Timestamp(start)), pd.Timestamp(end) - p.HOUR, freq="h")


def divergence_long(candles: pd.DataFrame | None) -> tuple[pd.DataFrame, dict]:
    """Per (symbol, hour) with >= 2 exchanges' 1h candles: the relative spread of their closes."""
    empty = pd.DataFrame(columns=["symbol", "hour", "spread"])
    if candles is None or candles.empty:
        return empty, {}
    c = candles[(candles["interval"].astype(str) == "1h")].copy()
    c = c[np.isfinite(c["close"].to_numpy(dtype="float64", na_value=np.nan)) & (c["close"] > 0)]
    if c.empty:
        return empty, {}
    c["hour"] = pd.to_datetime(c["bar_start"], utc=True)
    g = c.groupby(["symbol", "hour"])["close"]
    stats = g.agg(["max", "min", "median", "size"])
    stats = stats[stats["size"] >= 2]
    spread = ((stats["max"] - stats["min"]) / stats["median"]).rename("spread").reset_index()
    closes = {}
    for (symbol, hour), part in c.sort_values("exchange").groupby(["symbol", "hour"]):
        if len(part) >= 2:
            closes[(symbol, hour)] = dict(zip(part["exchange"], part["close"].astype(float)))
    return spread, closes


def compute_anomalies(bars: pd.DataFrame, start, end, *, candles: pd.DataFrame | None = None,
                      news: pd.DataFrame | None = None) -> pd.DataFrame:
    """Scored rows for the hours in [start, end). Inputs must reach ANOMALY_LOOKBACK_HOURS before `start`."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    frames = []
    series = hourly_series(bars)
    if len(series):
        hours = _grid(start, end, series["hour"].min())
        close = to_matrix(series, "close", hours)
        volume = to_matrix(series, "volume", hours)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_volume = np.where(volume.values > 0, np.log(volume.values), np.nan)
        price = _rows(PRICE, hours, close.symbols, log_returns(close.values))
        frames += [_with_evidence(price, lambda r: _price_evidence(r, close)),
                   _with_evidence(_rows(VOLUME, hours, volume.symbols, log_volume),
                                  lambda r: {"volume": float(math.exp(r.value))})]
    spread, closes = divergence_long(candles)
    if len(spread):
        hours = _grid(start, end, spread["hour"].min())
        matrix = to_matrix(spread, "spread", hours)
        ok = matrix.values >= p.DIVERGENCE_MIN_SPREAD
        rows = _rows(DIVERGENCE, hours, matrix.symbols, matrix.values, extra_ok=ok)
        frames.append(_with_evidence(rows, lambda r: {"closes": closes.get((r.symbol, r.bar_start), {})}))
    if news is not None and len(news):
        published = pd.to_datetime(news["published_at"], utc=True).dt.floor("h")
        hours = _grid(start, end, published.min())
        counts = published.value_counts().reindex(hours, fill_value=0).to_numpy(dtype="float64")
        frames.append(_with_evidence(_rows(NEWS, hours, [p.MARKET], counts[:, None], min_scale=p.NEWS_MIN_SCALE),
                                     lambda r: {"articles": int(r.value)}))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[(frame["bar_start"] >= start) & (frame["bar_start"] < end)]
    frame = frame.assign(
        asof_time=frame["bar_start"] + p.HOUR, threshold=p.ANOMALY_Z,
        direction=np.where(frame["value"] >= frame["baseline"], "up", "down"),
        window_hours=p.ANOMALY_WINDOW_HOURS, method=p.ANOMALY_METHOD_VERSION,
    )
    frame.loc[frame["baseline"].isna(), "direction"] = None
    return frame.sort_values(["bar_start", "kind", "symbol"], kind="stable").reset_index(drop=True)[COLUMNS]


def _price_evidence(row, close) -> dict:
    i = close.hours.get_loc(row.bar_start)
    j = close.symbols.index(row.symbol)
    return {"close": float(close.values[i, j]), "previous_close": float(close.values[i - 1, j])}


def _with_evidence(frame: pd.DataFrame, evidence) -> pd.DataFrame:
    """JSON evidence on the anomaly rows only (the score columns are the evidence of every row)."""
    texts = np.full(len(frame), None, dtype=object)
    flagged = np.flatnonzero(frame["is_anomaly"].to_numpy())
    for pos in flagged:
        row = frame.iloc[pos]
        texts[pos] = json.dumps(evidence(row), sort_keys=True, default=str)
    return frame.assign(evidence=texts)
