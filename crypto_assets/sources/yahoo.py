"""Yahoo Finance daily bars from the v8/finance/chart endpoint: resource and parser.

This is the endpoint `yfinance` calls for `Ticker.history()`. We fetch it through the shared
`SourceClient` (retries honouring Retry-After, per-run budget, replay) instead of through
yfinance, whose own HTTP session cannot be routed through that client (docs/macro.md). What
yfinance does to be accepted by Yahoo we do too: live requests carry a Chrome TLS
fingerprint via `curl_cffi` (yfinance's own HTTP backend). The parser is the same in live and
replay mode; a test checks it against yfinance's `parse_quotes` on the recorded payloads.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pandas as pd

from crypto_assets.quality.bars import CLOSE_OUTSIDE_RANGE, WEEKEND_BAR, close_outside_range, on_weekend
from crypto_assets.sources.catalog import HttpSource
from crypto_assets.sources.numbers import read_numbers
from crypto_assets.sources.parsing import JsonObject, fetch_json, parser
from crypto_assets.sources.series_catalog import MacroSeries
from crypto_assets.warehouse.store import to_utc

CHART_COLUMNS = ["observation_date", "bar_time", "raw_value", "value", "high", "low", "available_at", "problem"]


class YahooFinance(HttpSource):
    """Yahoo Finance chart API (no key)."""

    source_name = "yahoo"

    def live_transport(self) -> httpx.BaseTransport | None:
        return BrowserTLSTransport()

    def daily_chart(self, symbol: str, start: datetime, end: datetime) -> JsonObject:
        """Daily bars whose timestamps fall in [start, end)."""
        params = {
            "period1": int(to_utc(start).timestamp()),
            "period2": int(to_utc(end).timestamp()),
            "interval": "1d",
            "includePrePost": "false",
        }
        return fetch_json(self.client, f"/v8/finance/chart/{symbol}", params, subject=f"series {symbol}")


class BrowserTLSTransport(httpx.BaseTransport):
    """An httpx transport that sends requests with curl_cffi impersonating Chrome.

    Yahoo throttles clients whose TLS fingerprint is not a browser's; yfinance solves this with
    curl_cffi and so do we, below our own client (which keeps retries, budget and replay).
    curl_cffi already decodes gzip bodies, so the encoding headers are dropped on the way back.
    """

    _DROP_REQUEST = {"user-agent", "accept-encoding", "host", "connection", "content-length"}
    _DROP_RESPONSE = {"content-encoding", "content-length", "transfer-encoding"}

    def __init__(self, impersonate: str = "chrome"):
        from curl_cffi import requests as curl_requests  # imported lazily: live mode only

        self._errors = curl_requests.exceptions.RequestException
        self._session = curl_requests.Session(impersonate=impersonate)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # The impersonated browser supplies its own User-Agent/Accept-Encoding: a mismatch
        # between fingerprint and headers is what gets clients flagged.
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self._DROP_REQUEST}
        timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            reply = self._session.request(
                request.method, str(request.url), headers=headers, data=request.content or None, timeout=timeout
            )
        except self._errors as exc:  # surfaces as a transport error: the client retries it
            raise httpx.ConnectError(f"curl_cffi: {exc}", request=request) from exc
        kept = [(k, v) for k, v in reply.headers.items() if k.lower() not in self._DROP_RESPONSE]
        return httpx.Response(reply.status_code, headers=kept, content=reply.content, request=request)

    def close(self) -> None:
        self._session.close()


@parser("the daily chart")
def parse_chart(payload: dict, series: MacroSeries) -> pd.DataFrame:
    """v8/finance/chart daily payload -> one row per bar (not yet validated).

    `observation_date` is the trading date: the bar's timestamp read in the exchange timezone
    Yahoo states (meta.exchangeTimezoneName). `value` is the unadjusted close: Yahoo's
    `adjclose` is rewritten backwards after every later dividend or split, so it would leak
    future corporate actions into past rows. `available_at` is the series' close time.
    Bars Yahoo does not send (weekends, holidays) are simply absent. Bars it does send for a
    Saturday or Sunday (some futures, e.g. CL=F/GC=F, get a Sunday bar repeating Friday's close)
    and bars whose close lies outside their own high-low range get a `problem` (quarantined).
    """
    result = ((payload or {}).get("chart") or {}).get("result") or []
    if not result:
        return pd.DataFrame(columns=CHART_COLUMNS)
    chart = result[0]
    meta = chart.get("meta") or {}
    granularity = meta.get("dataGranularity")
    if granularity not in (None, "1d"):
        raise ValueError(f"yahoo {series.symbol}: expected daily bars, got granularity {granularity!r}")
    timezone = meta.get("exchangeTimezoneName") or series.timezone
    stamps = list(chart.get("timestamp") or [])
    quote = ((chart.get("indicators") or {}).get("quote") or [{}])[0] or {}
    closes, highs, lows = (list(quote.get(k) or []) for k in ("close", "high", "low"))
    n = max(len(stamps), len(closes))
    stamps += [None] * (n - len(stamps))
    closes += [None] * (n - len(closes))
    highs, lows = (list(x[:n]) + [None] * (n - len(x[:n])) for x in (highs, lows))

    frame = pd.DataFrame({"bar_time": pd.to_datetime(pd.Series(stamps, dtype="float64"), unit="s", utc=True),
                          "raw_value": pd.Series(closes, dtype=object)})
    frame["value"], frame["problem"] = read_numbers(frame["raw_value"])
    frame["high"] = read_numbers(pd.Series(highs, dtype=object))[0]
    frame["low"] = read_numbers(pd.Series(lows, dtype=object))[0]
    frame.loc[frame.bar_time.isna(), "problem"] = "bar without timestamp"
    local_day = frame.bar_time.dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    usable = frame.problem == ""
    frame.loc[usable & on_weekend(local_day), "problem"] = WEEKEND_BAR
    usable = frame.problem == ""
    frame.loc[usable & close_outside_range(frame.value, frame.high, frame.low), "problem"] = CLOSE_OUTSIDE_RANGE
    frame["observation_date"] = local_day.dt.date
    frame["available_at"] = pd.to_datetime(
        [series.close_utc(d) if pd.notna(d) else pd.NaT for d in local_day], utc=True
    )
    return frame[CHART_COLUMNS]


def request_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Bar timestamps are session starts in the exchange's timezone (13:30 UTC for New York,
    15:00 UTC of the previous day for Tokyo): ask two days around the window, keep the
    trading dates inside it."""
    return to_utc(start) - timedelta(days=2), to_utc(end) + timedelta(days=2)
