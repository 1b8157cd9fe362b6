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
import numpy as np
import pandas as pd
import pyarrow as pa
import requests
import yaml
from pydantic import Field
from requests.adapters import BaseAdapter

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.catalog import SOURCE_MODES, mode_transport, provenance, source_spec
from crypto_assets.sources.client import SourceClient, SourceError, SourceSpec, redact_then_cut
from crypto_assets.sources.replay import REPLAY_DIR
from crypto_assets.sources.requests_bridge import requests_response
from crypto_assets.sources.simulated import SIMULATED, simulated_markets

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
    # Coins whose live runs also fetch closed 5-minute candles (`live_5m_symbols`).
    live_5m_symbols: tuple[str, ...] = ()

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
    live_5m = raw.get("live_5m_symbols") or []
    if not isinstance(live_5m, list) or not all(isinstance(s, str) and s.strip() for s in live_5m):
        raise ValueError(f"{path}: live_5m_symbols must be a list of coin symbols, got {live_5m!r}")
    return ExchangeCatalog(exchanges, preference, symbols, tuple(raw.get("quotes") or ("USDT", "USD", "USDC")),
                           timeframe, tuple(dict.fromkeys(s.strip().upper() for s in live_5m)))


def load_exchange_catalog(path: str | Path | None = None) -> ExchangeCatalog:
    path = Path(path or CATALOG)
    return _catalog(str(path), path.read_text())  # re-read: a user's edit applies to the next run


# -- request plan: the rate the SourceClient's spacing allows vs the published limit ---------------

# Clients of one exchange that send at the same time: the `exchanges` Dagster pool has one slot
# (`default_limit: 1` in dagster.yaml, deploy/dagster.mysql.yaml and k8s/dagster-instance.yaml),
# so exchange_candles and derivatives_metrics never run at once, and a run has one thread per
# exchange. Raising that pool multiplies every exchange's rate by its slots.
CLIENTS_PER_EXCHANGE = 1


def request_plan(spec: SourceSpec, clients: int = CLIENTS_PER_EXCHANGE) -> dict:
    """What `spec`'s spacing lets `clients` SourceClients send, against `spec.published_limit`.

    The client starts a request at most every `min_interval_s` (retries pass the same gate), so
    `clients` of them send at most clients x 60 / min_interval_s requests a minute, and at most
    clients x (floor(per_s / min_interval_s) + 1) in any window of the limit's length."""
    published = spec.published_limit or {}
    if not spec.min_interval_s or not published:
        return {"planned_requests_per_minute": None, "published_limit_per_minute": None, "share_of_limit": None,
                "within_limit": False, "published_limit_source": published.get("source")}
    requests_, per_s = int(published["requests"]), float(published["per_s"])
    planned = clients * 60.0 / spec.min_interval_s
    limit_per_minute = requests_ * 60.0 / per_s
    in_window = clients * (int(per_s / spec.min_interval_s + 1e-9) + 1)
    share = planned / limit_per_minute
    return {
        "min_interval_s": spec.min_interval_s, "clients_at_once": clients,
        "planned_requests_per_minute": round(planned, 1), "published_limit_per_minute": round(limit_per_minute, 1),
        "published_limit": f"{requests_} requests / {per_s:g} s", "published_limit_source": published.get("source"),
        "share_of_limit": round(share, 3), "max_requests_in_a_published_window": in_window,
        "within_limit": planned <= limit_per_minute and in_window <= requests_, "at_least_80_percent": share >= 0.8,
    }


# -- HTTP: ccxt's requests session answered by the project's SourceClient --------------------------


class SourceClientAdapter(BaseAdapter):
    """A `requests` adapter that sends through a `SourceClient` (retries, Retry-After, spacing,
    budget; replay transport in replay mode). A failure raises the client's `SourceError`
    (naming the exchange and the URL), which ccxt lets through unchanged."""

    def __init__(self, client: SourceClient):
        super().__init__()
        self.client = client
        self.last_url = ""  # the last request's URL as errors show it (no secret)

    def send(self, request, **kwargs):
        if request.method != "GET":
            raise self.client.error(request.url, f"only public GET endpoints are used, not {request.method}")
        url = httpx.URL(request.url)  # the client's get() takes the query as params
        self.last_url = self.client._display_url(url)
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


# -- answers that are no candles: the exchange as a whole is out for the run ------------------------


class ExchangeUnavailable(SourceError):
    """The exchange cannot be asked for more this run: it rate-limited us (ccxt's RateLimitExceeded /
    DDoSProtection, also when the body says so with status 200), is in maintenance or unreachable
    (ccxt's NetworkError family), or answered something that is not its API. The caller stops
    querying that exchange and reports it in the exchange errors; the message names the exchange
    and the URL (the client's redaction: no secret)."""


class UnreadableAnswer(ExchangeUnavailable):
    """A 2xx answer that is not the exchange's API: an empty body, a truncated JSON, an HTML page
    (a block or maintenance page), or JSON of another shape than the candle endpoint's."""


# The documented top-level shape of each exchange's candle answer (what ccxt parses candles from).
_ANSWER_SHAPES = {
    "binance": ("a JSON array of klines", lambda raw: isinstance(raw, list)),
    "coinbase": ("a JSON array of candles", lambda raw: isinstance(raw, list)),
    "okx": ("a JSON object with a `data` array", lambda raw: isinstance(raw, dict) and isinstance(raw.get("data"), list)),
    "bybit": ("a JSON object with a `result.list` array",
              lambda raw: isinstance(raw, dict) and isinstance(raw.get("result"), dict)
              and isinstance(raw["result"].get("list"), list)),
    "kraken": ("a JSON object with a `result` object",
               lambda raw: isinstance(raw, dict) and isinstance(raw.get("result"), dict)),
}


def answer_problem(exchange: str, raw: Any, text: str | None) -> str:
    """Why the answer to a candle request is not a candle answer ('' when it is one). `raw`: the
    body as JSON (ccxt's `last_json_response`, None when it is not JSON); `text`: the body."""
    shown = repr(redact_then_cut((text or "").strip(), None, 120))
    if not (text or "").strip():
        return "the answer is empty (a 2xx status with no body): not a candle answer"
    if raw is None:
        return f"the answer is not JSON (truncated, or an HTML page): {shown}"
    expected, fits = _ANSWER_SHAPES.get(exchange, ("JSON", lambda _raw: True))
    return "" if fits(raw) else f"the answer is JSON but not {expected}: {shown}"


def exchange_wide(exc: BaseException) -> bool:
    """ccxt's NetworkError family (RateLimitExceeded, DDoSProtection, ExchangeNotAvailable,
    OnMaintenance, RequestTimeout): the exchange as a whole, not one market."""
    return any(cls.__name__ == "NetworkError" and cls.__module__.startswith("ccxt")
               for cls in type(exc).__mro__)


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


def _floats(values: list) -> np.ndarray:
    """`_num` of every value as float64 (None -> NaN): numpy's conversion, which parses numeric
    strings as `float()` does, and the per-value path only when some value is not a number."""
    try:
        return np.array(values, dtype="float64")
    except (TypeError, ValueError):
        return np.array([_num(v) for v in values], dtype="float64")


@dataclass(frozen=True)
class Extras:
    """The raw answer's extras per candle, as arrays over its rows (`raw_extras` in columns)."""
    ts: np.ndarray  # candle open time, ms (int64)
    quote_volume: np.ndarray  # float64, NaN where absent
    trade_count: np.ndarray  # float64, NaN where absent
    confirmed: np.ndarray  # bool; False only where the exchange says the candle is still open

    def __len__(self) -> int:
        return len(self.ts)

    def aligned(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(quote_volume, trade_count, confirmed) for candle times `ts`; for a time the raw answer
        has twice, its last row (as a dict keyed by time would keep); absent: NaN, NaN, True."""
        n = len(ts)
        if not len(self.ts):
            return np.full(n, np.nan), np.full(n, np.nan), np.ones(n, dtype=bool)
        if len(self.ts) == n and np.array_equal(self.ts, ts):
            return self.quote_volume, self.trade_count, self.confirmed
        reversed_ts = self.ts[::-1]
        unique, first_of_reversed = np.unique(reversed_ts, return_index=True)
        last = len(self.ts) - 1 - first_of_reversed  # index of each time's last row
        pos = np.searchsorted(unique, ts)
        pos_clipped = np.minimum(pos, len(unique) - 1)
        found = (pos < len(unique)) & (unique[pos_clipped] == ts)
        rows = last[pos_clipped]
        qv = np.where(found, self.quote_volume[rows], np.nan)
        tc = np.where(found, self.trade_count[rows], np.nan)
        confirmed = np.where(found, self.confirmed[rows], True)
        return qv, tc, confirmed


def extras_of(exchange: str, raw: Any) -> Extras | None:
    """Quote volume, trade count and `confirmed` where the exchange's raw answer gives them
    (ccxt's unified row stops at base volume). Documented fields only: binance kline [7] quote
    asset volume, [8] number of trades; okx [7] volCcyQuote, [8] confirm; bybit [6] turnover;
    kraken [7] count. Anything else, or a differently shaped answer: None (no extras; the unified
    candle stays)."""
    try:
        if exchange == "binance" and isinstance(raw, list):
            rows, scale, qv_at, tc_at, confirm_at = raw, 1, 7, 8, None
        elif exchange == "okx" and isinstance(raw, dict):
            rows, scale, qv_at, tc_at, confirm_at = list(raw.get("data") or []), 1, 7, None, 8
        elif exchange == "bybit" and isinstance(raw, dict):
            rows, scale, qv_at, tc_at, confirm_at = list((raw.get("result") or {}).get("list") or []), 1, 6, None, None
        elif exchange == "kraken" and isinstance(raw, dict):
            rows = [row for rows in (raw.get("result") or {}).values() if isinstance(rows, list) for row in rows]
            scale, qv_at, tc_at, confirm_at = 1000, None, 7, None
        else:
            return None
        n = len(rows)
        ts = np.array([int(row[0]) * scale for row in rows], dtype="int64")
        qv = _floats([row[qv_at] for row in rows]) if qv_at is not None else np.full(n, np.nan)
        tc = _floats([row[tc_at] for row in rows]) if tc_at is not None else np.full(n, np.nan)
        confirmed = (np.array([str(row[confirm_at]) != "0" for row in rows], dtype=bool) if confirm_at is not None
                     else np.ones(n, dtype=bool))
    except (IndexError, KeyError, TypeError, ValueError, OverflowError):
        return None
    return Extras(ts, qv, tc, confirmed)


def raw_extras(exchange: str, raw: Any) -> dict[int, dict]:
    """`extras_of` as a dict per candle open time (ms): the fields the exchange documents
    (`quote_volume`, `trade_count`, okx `confirmed`), None where a value is not a number."""
    extras = extras_of(exchange, raw)
    if extras is None:
        return {}
    fields = {"binance": ("quote_volume", "trade_count"), "okx": ("quote_volume", "confirmed"),
              "bybit": ("quote_volume",), "kraken": ("trade_count",)}[exchange]
    out: dict[int, dict] = {}
    for i, ts in enumerate(extras.ts.tolist()):
        row = {}
        for name in fields:
            value = getattr(extras, name)[i]
            row[name] = bool(value) if name == "confirmed" else (None if value != value else float(value))
        out[ts] = row
    return out


# -- candles ---------------------------------------------------------------------------------------


@dataclass
class CandleResult:
    candles: pd.DataFrame
    open_dropped: int = 0
    requests: int = 0
    gaps: list[list[str]] = field(default_factory=list)
    # Earlier rows of candle times the exchange answered more than once with OTHER values (the
    # last row of each such time is in `candles`): a conflict the caller quarantines, never a
    # silent choice. Identical repeats are collapsed and not listed.
    conflicts: pd.DataFrame | None = None


def _ms(ts) -> int:
    return int(pd.Timestamp(ts).timestamp() * 1000)


def missing_ranges(have: pd.Series, start, end, step: pd.Timedelta) -> list[list[str]]:
    """[first, last] bar starts of each run of missing bars in [start, end): the bars expected
    every `step` from `start` that `have` lacks. Vectorized: one membership test over the expected
    bars, then the boundaries of each run of missing ones."""
    expected = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=step, inclusive="left")
    if not len(expected):
        return []
    present = pd.DatetimeIndex(have)
    missing = ~expected.isin(present) if len(present) else np.ones(len(expected), dtype=bool)
    where = np.flatnonzero(missing)
    if not len(where):
        return []
    breaks = np.flatnonzero(np.diff(where) > 1)
    firsts = where[np.concatenate([[0], breaks + 1])]
    lasts = where[np.concatenate([breaks, [len(where) - 1]])]
    return [[expected[a].isoformat(), expected[b].isoformat()] for a, b in zip(firsts.tolist(), lasts.tolist())]


def _page_array(page: list) -> np.ndarray:
    """ccxt's unified rows [timestamp, open, high, low, close, volume] as an (n, 6) float64 array;
    a value that is not a number is NaN (as `pd.to_numeric(errors="coerce")`), an empty row is left out."""
    try:
        arr = np.asarray(page, dtype="float64")
        if arr.ndim == 2 and arr.shape[1] >= 6:
            return arr[:, :6]
        if arr.size == 0:
            return np.empty((0, 6))
    except (TypeError, ValueError):
        pass
    rows = [list(r[:6]) + [None] * (6 - len(r[:6])) for r in page if r]
    if not rows:
        return np.empty((0, 6))
    return pd.DataFrame(rows).apply(pd.to_numeric, errors="coerce").to_numpy("float64")


_NO_EXTRAS = (np.empty(0, dtype="int64"), np.empty(0), np.empty(0), np.empty(0, dtype=bool))


class ExchangeClient:
    """One exchange: a ccxt instance whose HTTP is the project's `SourceClient`."""

    def __init__(self, config: ExchangeConfig, client: SourceClient, mode: str, replay_dir: str | None = None):
        import ccxt  # lazy: heavy, and only runs that call exchanges need it

        self.config, self.client, self.mode = config, client, mode
        session = session_for(client)
        self._adapter: SourceClientAdapter = session.get_adapter("https://")
        self.ccxt = getattr(ccxt, config.ccxt_id)({
            "session": session,
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
            if self.mode in ("replay", SIMULATED):
                self._markets = (replay_markets(self.name, self._replay_dir) if self.mode == "replay"
                                 else simulated_markets(self.name))
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
        Kraken's last row) is dropped and counted. Missing bars before `now` are listed as gaps.

        An answer that is not a candle answer (empty, truncated, HTML, another JSON shape) and a
        rate limit or outage ccxt reports (also in a 200 body) raise `ExchangeUnavailable` naming
        the exchange and the URL: never zero candles."""
        self.markets()  # replay: the recorded market list, never a live /markets request
        step_ms = TIMEFRAME_MS[timeframe]
        start_ms, end_ms = _ms(start), _ms(end)
        limit = self.config.max_candles_per_request
        kept: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        open_dropped = requests_made = 0
        since = start_ms
        while since < end_ms:
            page = self._fetch_page(market, timeframe, since, limit)
            requests_made += 1
            extras = extras_of(self.name, self.ccxt.last_json_response)
            answered_at = min(datetime.now(timezone.utc), self.client.last_response_at or datetime.now(timezone.utc))
            cutoff = _ms(now) if now is not None else _ms(answered_at)
            newest_raw = int(extras.ts.max()) if self.config.last_row_open and extras is not None and len(extras) else None
            values = _page_array(page)
            values = values[~np.isnan(values[:, 0]) & (values[:, 0] >= since)]
            if not len(values):
                break
            values = values[np.argsort(values[:, 0], kind="stable")]
            ts = values[:, 0].astype("int64")
            quote_volume, trade_count, confirmed = (extras or Extras(*_NO_EXTRAS)).aligned(ts)
            after = ts > cutoff  # starts after the answer's time: not a candle of this answer
            is_open = (ts + step_ms > cutoff) | ~confirmed
            if newest_raw is not None:
                is_open |= ts == newest_raw
            dropped = ~after & is_open
            keep = ~after & ~is_open & (ts < end_ms)
            open_dropped += int(dropped.sum())
            kept.append((ts[keep], values[keep, 1:6], quote_volume[keep], trade_count[keep]))
            last = int(ts[-1])
            if after.any() or dropped.any() or last + step_ms <= since:
                break
            since = last + step_ms
        frame, conflicts = self._frame(market, kept, step_ms)
        horizon = min(end_ms, (_ms(now) if now is not None else _ms(datetime.now(timezone.utc))) // step_ms * step_ms)
        gaps = missing_ranges(frame.bar_start, start, pd.Timestamp(max(start_ms, horizon), unit="ms", tz="UTC"),
                              pd.Timedelta(milliseconds=step_ms)) if horizon > start_ms else []
        return CandleResult(frame, open_dropped, requests_made, gaps, conflicts)

    def _fetch_page(self, market: Market, timeframe: str, since: int, limit: int) -> list:
        """One `fetch_ohlcv` page; what is not a candle answer raises `ExchangeUnavailable`."""
        try:
            page = self.ccxt.fetch_ohlcv(market.market, timeframe, since=since, limit=limit)
        except SourceError:
            raise
        except Exception as exc:
            if not exchange_wide(exc):
                raise  # a ccxt error about this market (BadSymbol, ...): the caller's per-market failure
            raise self.client.error(
                self._adapter.last_url or self.client.spec.base_url,
                f"{market.market} {timeframe}: {type(exc).__name__}: {redact_then_cut(exc, None, 160)}; no further request to this "
                "exchange in this run", kind=ExchangeUnavailable) from None
        problem = answer_problem(self.name, self.ccxt.last_json_response, getattr(self.ccxt, "last_http_response", None))
        if problem:
            raise self.client.error(self._adapter.last_url or self.client.spec.base_url,
                                    f"{market.market} {timeframe}: {problem}", kind=UnreadableAnswer)
        return page

    def _frame(self, market: Market, kept: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
               step_ms: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """One row per candle time (a time seen twice: its last candle), ordered by time; and the
        earlier rows of times seen twice whose values differ from that last one (None if none)."""
        ts = np.concatenate([k[0] for k in kept]) if kept else np.empty(0, dtype="int64")
        if not len(ts):
            return pd.DataFrame(columns=CANDLE_COLUMNS), None
        values = np.concatenate([k[1] for k in kept])
        quote_volume = np.concatenate([k[2] for k in kept])
        trade_count = np.concatenate([k[3] for k in kept])
        conflicts = None
        if len(ts) > 1 and not (np.diff(ts) > 0).all():
            unique, first_of_reversed = np.unique(ts[::-1], return_index=True)
            last = len(ts) - 1 - first_of_reversed  # the last candle of each time, in time order
            earlier = np.setdiff1d(np.arange(len(ts)), last)
            if len(earlier):
                rows = np.column_stack([values, quote_volume, trade_count])
                mine, kept_row = rows[earlier], rows[last[np.searchsorted(unique, ts[earlier])]]
                same = ((mine == kept_row) | (np.isnan(mine) & np.isnan(kept_row))).all(axis=1)
                differ = earlier[~same]
                if len(differ):
                    conflicts = self._columns(market, ts[differ], values[differ], quote_volume[differ],
                                              trade_count[differ], step_ms)
            ts, values, quote_volume, trade_count = unique, values[last], quote_volume[last], trade_count[last]
        return self._columns(market, ts, values, quote_volume, trade_count, step_ms), conflicts

    def _columns(self, market: Market, ts: np.ndarray, values: np.ndarray, quote_volume: np.ndarray,
                 trade_count: np.ndarray, step_ms: int) -> pd.DataFrame:
        """Candle rows (CANDLE_COLUMNS) from arrays over their times."""
        n = len(ts)
        bar_start = pd.to_datetime(pd.Series(ts), unit="ms", utc=True)
        columns = {
            **{name: repeated_text(value, n)
               for name, value in (("exchange", self.name), ("market", market.market), ("symbol", market.symbol),
                                   ("quote", market.quote))},
            "bar_start": bar_start, "bar_end": bar_start + pd.Timedelta(milliseconds=step_ms),
            "open": values[:, 0], "high": values[:, 1], "low": values[:, 2], "close": values[:, 3],
            "volume": values[:, 4], "quote_volume": quote_volume.astype("float64"),
            "trade_count": trade_count.astype("float64"),
        }
        return pd.DataFrame(columns)  # in CANDLE_COLUMNS order


def repeated_text(value: str, n: int) -> pd.api.extensions.ExtensionArray:
    """`value` in each of `n` rows, as a "str" column: one Arrow value repeated (building it from a
    Python scalar per row costs ~1 ms per column and coin-year of candles)."""
    return pd.array(pa.repeat(pa.scalar(value, pa.large_string()), n), dtype="str")


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
        if self.mode not in SOURCE_MODES:
            raise ValueError(f"exchanges: mode must be one of {SOURCE_MODES}, got {self.mode!r}")
        config = self.catalog().exchanges[name]
        spec = source_spec(name)
        client = SourceClient(spec, **mode_transport(self.mode, name, spec.base_url, self.replay_dir, client_kwargs))
        return ExchangeClient(config, client, self.mode, self.replay_dir)

    def provenance(self, exchange: str) -> str:
        return provenance(self.mode, exchange)


__all__ = ["CANDLE_COLUMNS", "CLIENTS_PER_EXCHANGE", "CandleResult", "ExchangeCatalog", "ExchangeClient", "Exchanges", "Market",
           "ExchangeUnavailable", "SourceError", "UnreadableAnswer", "answer_problem", "exchange_wide", "extras_of", "load_exchange_catalog", "map_markets", "missing_ranges", "raw_extras", "repeated_text", "request_plan"]
