"""CoinGecko v3: the resource (endpoints) and the parsers (payload -> frames).

Parsers are plain functions so tests feed them the recorded real payloads directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

import pandas as pd

from crypto_assets.sources.catalog import HttpSource
from crypto_assets.sources.parsing import JsonArray, JsonObject, fetch_json, parser
from crypto_assets.warehouse.store import to_utc

MAX_PER_PAGE = 250  # the provider's cap for /coins/markets
OHLC_DAYS = (1, 7, 14, 30, 90, 180, 365)  # values /coins/{id}/ohlc accepts

# /coins/{id}/market_chart/range chooses the spacing of its points from the LENGTH of the range
# asked for ("auto-granularity", https://docs.coingecko.com/v3.0.1/reference/coins-id-market-chart-range):
# 1 day from the current time: 5-minutely; 1 day at any other time, and 2-90 days: hourly;
# above 90 days: daily (00:00 UTC). So a range is asked for in pieces of at most 90 days,
# each of which the provider answers hourly (or finer). The `interval=hourly` parameter that
# would lift this is for paid plans only.
MARKET_CHART_HOURLY_MAX_RANGE = timedelta(days=90)
_SERIES_KEYS = ("prices", "market_caps", "total_volumes")


class CoinGecko(HttpSource):
    """CoinGecko API (free/demo tier). Set COINGECKO_API_KEY for a demo key."""

    source_name = "coingecko"

    def markets(self, ids: Iterable[str] | None = None, *, vs_currency: str = "usd",
                per_page: int = MAX_PER_PAGE, max_pages: int = 20) -> JsonArray:
        """All `/coins/markets` rows for `ids` (or the top `per_page * max_pages` by market cap)."""
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}, got {per_page}")
        params = {"vs_currency": vs_currency, "order": "market_cap_desc", "per_page": per_page}
        if ids is not None:
            params["ids"] = ",".join(ids)  # no spaces: the provider drops ids after ", "
        rows = JsonArray()
        for page in range(1, max_pages + 1):
            batch = fetch_json(self.client, "/coins/markets", {**params, "page": page},
                               subject=f"coins/markets page {page}", expect=list)
            for i, row in enumerate(batch):
                if not isinstance(row, dict):
                    raise batch.origin.error(f"row {i} is {type(row).__name__}, expected a JSON object")
            rows.extend(batch)
            rows.origin = batch.origin
            if len(batch) < per_page:
                break
        return rows

    def market_chart_range(self, coin_id: str, start: datetime, end: datetime, *,
                           vs_currency: str = "usd") -> JsonObject:
        """Points of [start, end], asked for in pieces of at most 90 days (`market_chart_pieces`)
        so that the provider answers hourly, merged into one payload of the provider's shape.

        One request per piece, each through the client (rate spacing, request budget, retries).
        A point on the boundary of two pieces is kept once.
        """
        merged = JsonObject({key: [] for key in _SERIES_KEYS})
        for piece_start, piece_end in market_chart_pieces(start, end):
            params = {"vs_currency": vs_currency, "from": piece_start, "to": piece_end}
            payload = fetch_json(self.client, f"/coins/{coin_id}/market_chart/range", params,
                                 subject=f"coin {coin_id}")
            _merge_chart(merged, payload)
            merged.origin = payload.origin
        return merged

    def ohlc(self, coin_id: str, days: int, *, vs_currency: str = "usd") -> JsonArray:
        if days not in OHLC_DAYS:
            raise ValueError(f"ohlc days must be one of {OHLC_DAYS}")
        return fetch_json(self.client, f"/coins/{coin_id}/ohlc", {"vs_currency": vs_currency, "days": days},
                          subject=f"coin {coin_id}", expect=list)


def market_chart_pieces(start: datetime, end: datetime,
                        max_range: timedelta = MARKET_CHART_HOURLY_MAX_RANGE) -> list[tuple[int, int]]:
    """[start, end] as consecutive (from, to) UNIX-second ranges of at most `max_range` each
    (consecutive pieces share their boundary second). One piece when the range is short."""
    first, last = int(to_utc(start).timestamp()), int(to_utc(end).timestamp())
    step = int(max_range.total_seconds())
    pieces = []
    lo = first
    while True:
        hi = min(lo + step, last)
        pieces.append((lo, hi))
        if hi >= last:
            return pieces
        lo = hi


def market_chart_requests(start: datetime, end: datetime) -> int:
    """Requests `CoinGecko.market_chart_range` makes for one coin over [start, end]."""
    return len(market_chart_pieces(start, end))


def _merge_chart(merged: dict, payload: JsonObject) -> None:
    """Append one piece's series to `merged`, skipping points at or before what earlier pieces
    already gave (the shared boundary second). A series that is not a list fails the coin."""
    for key in _SERIES_KEYS:
        points = payload.get(key)
        if points is None:
            continue
        if not isinstance(points, list):
            raise payload.origin.error(f"'{key}' is {type(points).__name__}, expected a list of points")
        done = merged[key]
        last = done[-1][0] if done and isinstance(done[-1], (list, tuple)) and done[-1] else None
        for point in points:
            ts = point[0] if isinstance(point, (list, tuple)) and point else None
            if last is not None and isinstance(ts, (int, float)) and isinstance(last, (int, float)) and ts <= last:
                continue
            done.append(point)


def ohlc_days_covering(start: datetime, now: datetime) -> int:
    """Smallest `days` value whose candles reach back to `start`."""
    needed = math.ceil((to_utc(now) - to_utc(start)) / timedelta(days=1))
    return next((d for d in OHLC_DAYS if d >= needed), OHLC_DAYS[-1])


def _ms_to_utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit="ms", utc=True)


@parser("/coins/markets rows")
def parse_markets(payload: list[dict]) -> pd.DataFrame:
    """`/coins/markets` rows -> one raw observation per coin (values not yet validated)."""
    rows = [
        {
            "coingecko_id": item.get("id"),
            "provider_symbol": (item.get("symbol") or "").upper() or None,
            "price_usd": item.get("current_price"),
            "market_cap_usd": item.get("market_cap"),
            "volume_24h_usd": item.get("total_volume"),
            "market_cap_rank": item.get("market_cap_rank"),
            "name": item.get("name"),
            "observed_at": pd.to_datetime(item.get("last_updated"), utc=True, errors="coerce"),
        }
        for item in payload
    ]
    return pd.DataFrame(rows, columns=["coingecko_id", "provider_symbol", "price_usd", "market_cap_usd",
                                       "volume_24h_usd", "market_cap_rank", "name", "observed_at"])


@parser("market_chart points")
def parse_market_chart(payload: dict) -> pd.DataFrame:
    """`/market_chart` or `/market_chart/range` -> observed_at, price, market cap, 24h volume.

    The three series are aligned on their millisecond timestamps; a point missing from one
    series is empty in that column, never filled.
    """
    frames = []
    for key, col in (("prices", "price_usd"), ("market_caps", "market_cap_usd"), ("total_volumes", "volume_24h_usd")):
        points = payload.get(key) or []
        frame = pd.DataFrame(
            [(p[0], p[1]) if isinstance(p, (list, tuple)) and len(p) >= 2 else (None, None) for p in points],
            columns=["ts_ms", col],
        )
        frames.append(frame.drop_duplicates("ts_ms", keep=False).set_index("ts_ms") if col != "price_usd" else frame)
    prices = frames[0]
    out = prices.join(frames[1], on="ts_ms").join(frames[2], on="ts_ms")
    out = out.reset_index(drop=True)
    out.insert(0, "observed_at", _ms_to_utc(out.pop("ts_ms")))
    return out.reset_index(drop=True)


@parser("OHLC candles")
def parse_ohlc(payload: list) -> pd.DataFrame:
    """`/coins/{id}/ohlc` -> candles. The provider's timestamp is the candle CLOSE time.

    The candle length is not in the payload: it is the spacing of the timestamps (30 min for
    1-2 days, 4 h for 3-30 days, 4 days beyond).
    """
    rows = [p for p in payload if isinstance(p, (list, tuple)) and len(p) == 5]
    frame = pd.DataFrame(rows, columns=["ts_ms", "open", "high", "low", "close"])
    frame["bar_end"] = _ms_to_utc(frame.pop("ts_ms"))
    frame = frame.sort_values("bar_end").reset_index(drop=True)
    if len(frame) < 2:
        return frame.assign(interval=None, bar_start=pd.NaT).iloc[0:0]
    step = frame["bar_end"].diff().median()
    interval = _offset_alias(step)
    frame["interval"] = interval
    frame["bar_start"] = frame["bar_end"] - pd.Timedelta(interval)
    return frame


def _offset_alias(step: pd.Timedelta) -> str:
    """Round a candle spacing to the provider's candle lengths."""
    for alias in ("30min", "4h", "4D"):
        if abs(step - pd.Timedelta(alias)) <= pd.Timedelta(alias) * 0.25:
            return alias
    raise ValueError(f"unexpected OHLC candle spacing {step}")
