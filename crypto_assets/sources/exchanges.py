"""Exchange candles through ccxt: catalog, market mapping, paging, closed candles, gaps.

ccxt does the exchange-specific work (URLs, request parameters, parsing each exchange's
payload into unified `[timestamp, open, high, low, close, volume]` rows). Its HTTP goes through
the project's `SourceClient` (one per exchange, `resources/sources.yaml`) via a `requests`
adapter: the same retries on 429/5xx honouring `Retry-After`, spacing and per-run budget as
every other source, and in replay mode the same `httpx.MockTransport` over recorded payloads
(`resources/replay/<exchange>/`). ccxt is imported only when an exchange is opened, never by
`import crypto_assets`.

Only public market-data endpoints are called; no key is configured or sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pandas as pd
import requests
import yaml
from pydantic import Field
from requests.adapters import BaseAdapter

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.catalog import source_spec
from crypto_assets.sources.client import SourceClient, SourceError
from crypto_assets.sources.replay import REPLAY_DIR, replay_transport
from crypto_assets.sources.requests_bridge import requests_response

CATALOG = RESOURCES_DIR / "exchanges.yaml"
TIMEFRAME_MS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}
INTERVAL_OF = {"1m": "1min", "5m": "5min", "1h": "1h", "1d": "1D"}  # ccxt timeframe -> bar `interval`
CANDLE_COLUMNS = ["exchange", "market", "symbol", "quote", "bar_start", "bar_end", "open", "high", "low",
                  "close", "volume", "quote_volume", "trade_count"]


@dataclass(frozen=True)
class ExchangeConfig:
    name: str
    ccxt_id: str
    max_candles_per_request: int
    history_candles: int | None = None
    last_row_open: bool = False
    ccxt_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExchangeCatalog:
    exchanges: dict[str, ExchangeConfig]
    preference: tuple[str, ...]
    symbols: dict[str, tuple[str, ...]]
    quotes: tuple[str, ...]
    timeframe: str = "1h"

    def preference_for(self, symbol: str) -> tuple[str, ...]:
        """The exchanges tried for `symbol`, best first (per-coin list, else the default)."""
        order = self.symbols.get(symbol.upper(), self.preference)
        return tuple(name for name in order if name in self.exchanges)


@cache
def _catalog(path: str, text: str) -> ExchangeCatalog:
    raw = yaml.safe_load(text) or {}
    exchanges = {
        name: ExchangeConfig(name=name, ccxt_id=cfg.get("ccxt_id", name),
                             max_candles_per_request=int(cfg["max_candles_per_request"]),
                             history_candles=cfg.get("history_candles"),
                             last_row_open=bool(cfg.get("last_row_open", False)),
                             ccxt_options=cfg.get("ccxt_options") or {})
        for name, cfg in (raw.get("exchanges") or {}).items()
    }
    preference = tuple(raw.get("preference") or exchanges)
    symbols = {str(k).upper(): tuple(v) for k, v in (raw.get("symbols") or {}).items()}
    for name in (*preference, *(n for order in symbols.values() for n in order)):
        if name not in exchanges:
            raise ValueError(f"{path}: exchange {name!r} is in a preference list but not under `exchanges`")
    timeframe = str(raw.get("timeframe", "1h"))
    if timeframe not in TIMEFRAME_MS:
        raise ValueError(f"{path}: timeframe must be one of {sorted(TIMEFRAME_MS)}, got {timeframe!r}")
    return ExchangeCatalog(exchanges, preference, symbols, tuple(raw.get("quotes") or ("USDT", "USD", "USDC")),
                           timeframe)


def load_exchange_catalog(path: str | Path | None = None) -> ExchangeCatalog:
    path = Path(path or CATALOG)
    return _catalog(str(path), path.read_text())  # re-read: a user's edit applies to the next run


# -- HTTP: ccxt's requests session answered by the project's SourceClient --------------------------


class SourceClientAdapter(BaseAdapter):
    """A `requests` adapter that sends through a `SourceClient` (retries, Retry-After, spacing,
    budget; replay transport in replay mode). A failure raises the client's `SourceError`
    (naming the exchange and the URL), which ccxt lets through unchanged."""

    def __init__(self, client: SourceClient):
        super().__init__()
        self.client = client

    def send(self, request, **kwargs):
        if request.method != "GET":
            raise self.client.error(request.url, f"only public GET endpoints are used, not {request.method}")
        url = httpx.URL(request.url)  # the client's get() takes the query as params
        answer: httpx.Response = self.client.get(str(url.copy_with(query=None)), dict(url.params.multi_items()))
        return requests_response(answer, request)

    def close(self) -> None:
        pass


def session_for(client: SourceClient) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    adapter = SourceClientAdapter(client)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# -- markets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    exchange: str
    symbol: str  # the coin (coin_universe.symbol)
    market: str  # ccxt unified market symbol, e.g. BTC/USDT
    quote: str


def replay_markets(name: str, replay_dir: str | None = None) -> list[dict]:
    """Markets a replayed exchange serves: `resources/replay/<exchange>/markets.yaml` lists the
    markets its recorded requests were made for (ccxt's market structure, minimal). No file: none."""
    path = Path(replay_dir or REPLAY_DIR) / name / "markets.yaml"
    if not path.exists():
        return []
    return list((yaml.safe_load(path.read_text()) or {}).get("markets") or [])


def map_markets(markets: dict[str, dict] | list[dict], exchange: str, symbols: list[str],
                quotes: tuple[str, ...]) -> dict[str, Market]:
    """Coin -> the exchange's active spot market in the first quote of `quotes` it lists."""
    values = markets.values() if isinstance(markets, dict) else markets
    by_pair = {}
    for m in values:
        if not m.get("spot") or m.get("active") is False:
            continue
        by_pair.setdefault((str(m.get("base")).upper(), str(m.get("quote")).upper()), m["symbol"])
    out = {}
    for symbol in symbols:
        for quote in quotes:
            found = by_pair.get((symbol.upper(), quote.upper()))
            if found:
                out[symbol] = Market(exchange, symbol, found, quote.upper())
                break
    return out


# -- extras the unified OHLCV row does not carry ---------------------------------------------------


def _num(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None


def raw_extras(exchange: str, raw: Any) -> dict[int, dict]:
    """Per candle open time (ms): quote volume, trade count and `confirmed` where the exchange's
    raw answer gives them (ccxt's unified row stops at base volume). Documented fields only:
    binance kline [7] quote asset volume, [8] number of trades; okx [7] volCcyQuote, [8] confirm;
    bybit [6] turnover; kraken [7] count. Anything else: absent."""
    out: dict[int, dict] = {}
    try:
        if exchange == "binance" and isinstance(raw, list):
            for row in raw:
                out[int(row[0])] = {"quote_volume": _num(row[7]), "trade_count": _num(row[8])}
        elif exchange == "okx" and isinstance(raw, dict):
            for row in raw.get("data") or []:
                out[int(row[0])] = {"quote_volume": _num(row[7]), "confirmed": str(row[8]) != "0"}
        elif exchange == "bybit" and isinstance(raw, dict):
            for row in (raw.get("result") or {}).get("list") or []:
                out[int(row[0])] = {"quote_volume": _num(row[6])}
        elif exchange == "kraken" and isinstance(raw, dict):
            for key, rows in (raw.get("result") or {}).items():
                if isinstance(rows, list):
                    for row in rows:
                        out[int(row[0]) * 1000] = {"trade_count": _num(row[7])}
    except (IndexError, TypeError, ValueError):
        return {}  # a differently shaped answer: no extras, the unified candle stays
    return out


# -- candles ---------------------------------------------------------------------------------------


@dataclass
class CandleResult:
    candles: pd.DataFrame
    open_dropped: int = 0
    requests: int = 0
    gaps: list[list[str]] = field(default_factory=list)


def _ms(ts) -> int:
    return int(pd.Timestamp(ts).timestamp() * 1000)


def missing_ranges(have: pd.Series, start, end, step: pd.Timedelta) -> list[list[str]]:
    """[first, last] bar starts of each run of missing bars in [start, end)."""
    expected = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=step, inclusive="left")
    present = set(pd.DatetimeIndex(have))
    out, run = [], []
    for t in expected:
        if t in present:
            if run:
                out.append([run[0].isoformat(), run[-1].isoformat()])
                run = []
        else:
            run.append(t)
    if run:
        out.append([run[0].isoformat(), run[-1].isoformat()])
    return out


class ExchangeClient:
    """One exchange: a ccxt instance whose HTTP is the project's `SourceClient`."""

    def __init__(self, config: ExchangeConfig, client: SourceClient, mode: str, replay_dir: str | None = None):
        import ccxt  # lazy: heavy, and only runs that call exchanges need it

        self.config, self.client, self.mode = config, client, mode
        self.ccxt = getattr(ccxt, config.ccxt_id)({
            "session": session_for(client),
            "enableRateLimit": False,  # the SourceClient spaces requests (resources/sources.yaml)
            "enableLastJsonResponse": True,
            "options": dict(config.ccxt_options),
        })
        self._replay_dir = replay_dir
        self._markets: dict | list | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def markets(self):
        if self._markets is None:
            if self.mode == "replay":
                self._markets = replay_markets(self.name, self._replay_dir)
                if self._markets:
                    self.ccxt.set_markets(self._markets)
            else:
                self._markets = self.ccxt.load_markets()
        return self._markets

    def map(self, symbols: list[str], quotes: tuple[str, ...]) -> dict[str, Market]:
        return map_markets(self.markets(), self.name, symbols, quotes)

    def closed_candles(self, market: Market, start, end, timeframe: str = "1h", now=None) -> CandleResult:
        """Closed candles with open time in [start, end), paged `since`/`limit` within the
        exchange's limit. The still-open candle (bar end after the answer's time, OKX confirm=0,
        Kraken's last row) is dropped and counted. Missing bars before `now` are listed as gaps."""
        self.markets()  # replay: the recorded market list, never a live /markets request
        step_ms = TIMEFRAME_MS[timeframe]
        start_ms, end_ms = _ms(start), _ms(end)
        limit = self.config.max_candles_per_request
        rows: dict[int, list] = {}
        extras: dict[int, dict] = {}
        open_dropped = requests_made = 0
        since = start_ms
        while since < end_ms:
            page = self.ccxt.fetch_ohlcv(market.market, timeframe, since=since, limit=limit)
            requests_made += 1
            raw = self.ccxt.last_json_response
            page_extras = raw_extras(self.name, raw)
            answered_at = min(datetime.now(timezone.utc), self.client.last_response_at or datetime.now(timezone.utc))
            cutoff = _ms(now) if now is not None else _ms(answered_at)
            newest_raw = max(page_extras) if self.config.last_row_open and page_extras else None
            page = sorted((r for r in page if r and r[0] is not None and r[0] >= since), key=lambda r: r[0])
            if not page:
                break
            reached_open = False
            for row in page:
                ts = int(row[0])
                extra = page_extras.get(ts, {})
                is_open = (ts + step_ms > cutoff or extra.get("confirmed") is False
                           or (newest_raw is not None and ts == newest_raw))
                if ts > cutoff:  # starts after the answer's time: not a candle of this answer
                    reached_open = True
                    continue
                if is_open:
                    open_dropped += 1
                    reached_open = True
                    continue
                if ts < end_ms:
                    rows[ts] = row
                    extras[ts] = extra
            last = int(page[-1][0])
            if reached_open or last + step_ms <= since:
                break
            since = last + step_ms
        frame = self._frame(market, rows, extras, step_ms)
        horizon = min(end_ms, (_ms(now) if now is not None else _ms(datetime.now(timezone.utc))) // step_ms * step_ms)
        gaps = missing_ranges(frame.bar_start, start, pd.Timestamp(max(start_ms, horizon), unit="ms", tz="UTC"),
                              pd.Timedelta(milliseconds=step_ms)) if horizon > start_ms else []
        return CandleResult(frame, open_dropped, requests_made, gaps)

    def _frame(self, market: Market, rows: dict[int, list], extras: dict[int, dict], step_ms: int) -> pd.DataFrame:
        if not rows:
            return pd.DataFrame(columns=CANDLE_COLUMNS)
        times = sorted(rows)
        frame = pd.DataFrame([rows[t][:6] for t in times], columns=["ts", "open", "high", "low", "close", "volume"])
        frame["bar_start"] = pd.to_datetime(frame.ts, unit="ms", utc=True)
        frame["bar_end"] = frame.bar_start + pd.Timedelta(milliseconds=step_ms)
        frame["quote_volume"] = [extras[t].get("quote_volume") for t in times]
        frame["trade_count"] = [extras[t].get("trade_count") for t in times]
        frame = frame.assign(exchange=self.name, market=market.market, symbol=market.symbol, quote=market.quote)
        for col in ("open", "high", "low", "close", "volume", "quote_volume", "trade_count"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        return frame[CANDLE_COLUMNS]


class Exchanges(dg.ConfigurableResource):
    """The exchanges of `resources/exchanges.yaml`, live or replayed. Public endpoints only: no
    key exists in this resource."""

    mode: str = Field(default="live", description="'live' calls the exchanges; 'replay' serves recorded payloads.")
    replay_dir: str | None = Field(default=None, description="Folder of replay catalogs (default resources/replay).")
    catalog_path: str | None = Field(default=None, description="Exchange catalog (default resources/exchanges.yaml).")

    def catalog(self) -> ExchangeCatalog:
        return load_exchange_catalog(self.catalog_path)

    def open(self, name: str, **client_kwargs) -> ExchangeClient:
        """An exchange client; tests may pass `transport=` (a scripted httpx transport) and `sleep=`."""
        if self.mode not in ("live", "replay"):
            raise ValueError(f"exchanges: mode must be 'live' or 'replay', got {self.mode!r}")
        config = self.catalog().exchanges[name]
        spec = source_spec(name)
        transport = client_kwargs.pop("transport", None)
        if transport is None and self.mode == "replay":
            transport = replay_transport(name, spec.base_url, self.replay_dir)
            client_kwargs.setdefault("sleep", lambda _s: None)
        client = SourceClient(spec, transport=transport, **client_kwargs)
        return ExchangeClient(config, client, self.mode, self.replay_dir)

    def provenance(self, exchange: str) -> str:
        return f"replay:{exchange}" if self.mode == "replay" else exchange


__all__ = ["CANDLE_COLUMNS", "CandleResult", "ExchangeCatalog", "ExchangeClient", "Exchanges", "Market",
           "SourceError", "load_exchange_catalog", "map_markets", "missing_ranges", "raw_extras"]
