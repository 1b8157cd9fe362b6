"""Sentiment aggregates over trailing windows that end at each row's as-of time.

An item counts for a row when as_of - window < published_at <= as_of (its availability time is
its published time). Per-symbol aggregates count an item for every symbol in its
`symbols_mentioned`; market-wide aggregates count every item once.

Window sums are exact sums of the window's items (numpy `add.reduceat` over items sorted by
(key, time, item_id)), not differences of running totals: a running total would carry the
rounding of every earlier item, so values would depend, in the last bits, on how much history a
run happened to load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_assets.features import params as p
from crypto_assets.features.dictionary import SENTIMENT_STATS, sentiment_column

FALLBACK_MODEL = "vader"
_MS = 1_000_000  # ns per millisecond
_KEY_STRIDE = 10**13  # > any epoch time in ms until the year 2286: key = group * stride + time_ms
# Per-item values summed over a window, in this order.
_SUMS = ("n", "score", "conf_score", "conf", "pos", "neg", "fallback")


@dataclass(frozen=True)
class SentimentResult:
    columns: dict[str, np.ndarray]  # every sent_* column, aligned to the rows
    present: np.ndarray  # bool: any item in the market-wide 24h window
    fallback_share_24h: np.ndarray


def prepare_items(sentiment: pd.DataFrame | None) -> pd.DataFrame:
    """One row per item (a transformer score preferred over the VADER fallback), with its values."""
    cols = ["item_id", "model", "score", "confidence", "label", "published_at", "symbols_mentioned"]
    if sentiment is None or sentiment.empty:
        return pd.DataFrame(columns=[*cols, "t_ms"])
    items = sentiment.loc[:, cols].dropna(subset=["item_id", "published_at", "score"])
    items = items.assign(_fallback=(items["model"] == FALLBACK_MODEL))
    items = items.sort_values(["item_id", "_fallback", "model"], kind="stable").drop_duplicates("item_id")
    published = pd.DatetimeIndex(pd.to_datetime(items["published_at"], utc=True)).as_unit("ns").asi8
    # Round UP to the millisecond: an item is never counted before it was published.
    items = items.assign(t_ms=-((-published) // _MS))
    return items.sort_values(["t_ms", "item_id"], kind="stable").reset_index(drop=True)


def _item_values(items: pd.DataFrame) -> np.ndarray:
    score = items["score"].to_numpy(dtype="float64")
    conf = items["confidence"].to_numpy(dtype="float64", na_value=np.nan)
    conf = np.where(np.isfinite(conf), conf, 0.0)
    label = items["label"].astype(str).str.lower()
    return np.column_stack([
        np.ones(len(items)), score, conf * score, conf,
        (label == "positive").to_numpy(dtype="float64"), (label == "negative").to_numpy(dtype="float64"),
        items["_fallback"].to_numpy(dtype="float64"),
    ])


def window_sums(item_keys: np.ndarray, values: np.ndarray, lo_keys: np.ndarray, hi_keys: np.ndarray) -> np.ndarray:
    """Per query, the column sums of `values` over items with lo_key < key <= hi_key.

    `item_keys` must be sorted; queries are processed in key order so that the gaps between
    consecutive windows are walked once.
    """
    m, k = len(hi_keys), values.shape[1]
    out = np.zeros((m, k))
    if m == 0 or len(item_keys) == 0:
        return out
    order = np.argsort(hi_keys, kind="stable")
    lo = np.searchsorted(item_keys, lo_keys[order], side="right")
    hi = np.searchsorted(item_keys, hi_keys[order], side="right")
    padded = np.vstack([values, np.zeros((1, k))])  # reduceat indices must be < len
    bounds = np.empty(2 * m, dtype=np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    sums = np.add.reduceat(padded, bounds, axis=0)[0::2]
    sums[hi <= lo] = 0.0  # reduceat returns the first element for an empty segment
    out[order] = sums
    return out


def _stats(sums: np.ndarray) -> dict[str, np.ndarray]:
    n, score, conf_score, conf, pos, neg, _ = (sums[:, i] for i in range(len(_SUMS)))
    with np.errstate(divide="ignore", invalid="ignore"):
        has = n > 0
        return {
            "count": n,
            "mean": np.where(has, score / n, np.nan),
            "wmean": np.where(conf > 0, conf_score / conf, np.nan),
            "pos_share": np.where(has, pos / n, np.nan),
            "neg_share": np.where(has, neg / n, np.nan),
        }


def _mentions(items: pd.DataFrame, symbols: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(symbol code, item position) for every (item, mentioned symbol that has rows)."""
    split = items["symbols_mentioned"].fillna("").astype(str).str.upper().str.split("|")
    exploded = split.explode()
    codes = symbols.get_indexer(exploded.to_numpy())
    keep = codes >= 0
    return codes[keep], exploded.index.to_numpy()[keep]


def sentiment_features(symbols: pd.Series, as_of: pd.Series, sentiment: pd.DataFrame | None) -> SentimentResult:
    """Every sent_* column for rows given by their symbol and as-of time."""
    n_rows = len(symbols)
    items = prepare_items(sentiment)
    values = _item_values(items) if len(items) else np.zeros((0, len(_SUMS)))
    t_items = items["t_ms"].to_numpy(dtype="int64")
    as_of_ms = pd.DatetimeIndex(as_of).as_unit("ns").asi8 // _MS  # floor: never later than the as-of time

    # Market-wide: on the distinct as-of times, then spread to the rows.
    times, row_time = np.unique(as_of_ms, return_inverse=True)
    # Per symbol: keys (symbol code, time) so every symbol's items are contiguous and time-sorted.
    sym_index = pd.Index(pd.unique(symbols.to_numpy()))
    row_code = sym_index.get_indexer(symbols.to_numpy()).astype(np.int64)
    codes, positions = _mentions(items, sym_index) if len(items) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    sym_keys = codes * _KEY_STRIDE + t_items[positions]
    order = np.argsort(sym_keys, kind="stable")  # items were time/id sorted: stable keeps that within a key
    sym_keys, sym_values = sym_keys[order], values[positions[order]]
    row_keys = row_code * _KEY_STRIDE + as_of_ms

    columns: dict[str, np.ndarray] = {}
    market_24h = None
    for window, length in p.SENTIMENT_WINDOWS.items():
        w_ms = int(length / pd.Timedelta(milliseconds=1))
        mkt = window_sums(t_items, values, times - w_ms, times)[row_time]
        sym = window_sums(sym_keys, sym_values, row_keys - w_ms, row_keys)
        if window == "24h":
            market_24h = mkt
        for scope, sums in (("sym", sym), ("mkt", mkt)):
            for stat, column in _stats(sums).items():
                columns[sentiment_column(scope, window, stat)] = column
    if market_24h is None:  # the 24h window is what decides "sentiment present"
        market_24h = window_sums(t_items, values, times - 86_400_000, times)[row_time]

    present = market_24h[:, 0] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        fallback = np.where(present, market_24h[:, _SUMS.index("fallback")] / market_24h[:, 0], np.nan)
    for name, column in columns.items():
        if name.endswith("_count"):
            columns[name] = pd.array(np.where(present, column, 0).astype("int64"), dtype="Int64")
            columns[name][~present] = pd.NA
        else:
            columns[name] = np.where(present, column, np.nan)
    expected = [sentiment_column(s, w, k) for s in ("sym", "mkt") for w in p.SENTIMENT_WINDOWS for k in SENTIMENT_STATS]
    assert sorted(columns) == sorted(expected)
    assert all(len(c) == n_rows for c in columns.values())
    return SentimentResult(columns, present, fallback)
