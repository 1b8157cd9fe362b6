"""What each endpoint reads from the warehouse, through `crypto_assets.loading.load` (the same layer
notebooks use). Plain synchronous functions returning JSON-ready dicts; the routes run them
in a worker thread. Every read is bounded: a row limit, or a window the route validated.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pandas as pd

from crypto_assets.api import paging, render
from crypto_assets.loading import load
from crypto_assets.tables import table


class DatasetUnavailable(RuntimeError):
    """The build declares no such table (e.g. ml_features before its module lands): 503."""


class NoData(LookupError):
    """A valid request with nothing to return where something is required: 404."""


class BadQuery(ValueError):
    """Parameters that validate one by one but not together (a reversed range): 422."""


PRICE_COLUMNS = ["price_usd", "market_cap_usd", "volume_24h_usd", "coingecko_id", "endpoint", "source", "ingested_at"]
NEWS_COLUMNS = ["published_at", "title", "summary", "url", "publisher", "feed", "authors", "symbols_mentioned",
                "source", "ingested_at"]
SENTIMENT_COLUMNS = ["item_type", "model", "label", "score", "confidence", "published_at"]
DOWNSAMPLE_SCAN_ROWS = 20_000  # raw observations read per page when picking one per interval
ML_FEATURES = "ml_features"


def declared(name: str):
    try:
        return table(name)
    except KeyError:
        raise DatasetUnavailable(
            f"the {name} table is not declared in this build of crypto-assets; its endpoints answer once it is"
        ) from None


def universe(url: str | None) -> pd.DataFrame:
    return load("coin_universe", warehouse_url=url).sort_values("symbol", kind="stable")


def symbols_payload(url: str | None) -> dict:
    frame = universe(url)[["symbol", "name", "coingecko_id", "market_cap_rank"]]
    return {"count": len(frame), "symbols": render.records(frame)}


def _age_seconds(value: pd.Timestamp, now: pd.Timestamp) -> float:
    return round((now - value).total_seconds(), 3)


def current_price(url: str | None, symbol: str, now: pd.Timestamp) -> dict:
    rows = load("price_observations", symbols=[symbol], columns=PRICE_COLUMNS, warehouse_url=url,
                newest_first=True, limit=1)
    if rows.empty:
        raise NoData(f"no price observations for {symbol} yet")
    return {"symbol": symbol, "age_seconds": _age_seconds(rows.observed_at.iloc[0], now),
            "observation": render.records(rows)[0]}


EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
DEFAULT_RANGE = pd.Timedelta("24h")


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _bounded(name: str, value: datetime | None) -> pd.Timestamp | None:
    """A client's time (naive = UTC), refused outside 1970..2200 (pandas cannot hold year 9999)."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if not EARLIEST <= aware <= LATEST:
        raise BadQuery(f"{name} must lie between {EARLIEST.date()} and {LATEST.date()}")
    return _utc(aware)


def resolve_range(start, end, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) in UTC; defaults: end = now, start = end - 24 h."""
    start, end = _bounded("start", start), _bounded("end", end)
    end = end if end is not None else now
    start = start if start is not None else end - DEFAULT_RANGE
    if start >= end:
        raise BadQuery(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    return start, end


SYMBOL_TEXT = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,19}$")  # an upper-cased ticker, as the routes accept them


class Pager:
    """Keyset paging of one query: where this page starts, and the token of the next.

    A page token is signed (paging.py) and what it says is validated like the query
    parameters: its range by `resolve_range` (1970..2200, start before end), its time inside
    that range, its symbol a ticker. A token therefore never yields a 500 nor more than the
    same query with parameters would: bad ones answer 422.
    """

    def __init__(self, endpoint: str, params: dict, start, end, page_token: str | None, now: pd.Timestamp,
                 secret: bytes):
        self.query = paging.fingerprint(ep=endpoint, **params, start=start, end=end)
        self.secret = secret
        if page_token:
            position = paging.decode(page_token, self.query, secret)
            try:
                self.start, self.end = resolve_range(position.start, position.end, now)
            except BadQuery as exc:
                raise paging.PageTokenError(f"page_token is not valid: {exc}") from None
            if not self.start <= position.time <= self.end:
                raise paging.PageTokenError("page_token is not valid: its position lies outside its range")
            if position.symbol is not None and not SYMBOL_TEXT.match(position.symbol):
                raise paging.PageTokenError("page_token is not valid: its symbol is not a ticker")
            self.time, self.symbol = position.time, position.symbol
        else:
            self.start, self.end = resolve_range(start, end, now)
            self.time, self.symbol = self.start, None

    def token(self, time, symbol: str | None = None) -> str:
        return paging.encode(self.query, paging.Position(_utc(time), symbol, self.start, self.end), self.secret)

    def cut(self, rows: pd.DataFrame, limit: int, time_col: str, *, by_symbol: bool = False):
        """First `limit` rows and the next page's token (rows holds up to limit + 1)."""
        if len(rows) <= limit:
            return rows, None
        nxt = rows.iloc[limit]
        return rows.iloc[:limit], self.token(nxt[time_col], nxt["symbol"] if by_symbol else None)

    def envelope(self, rows: pd.DataFrame, token: str | None, **fields) -> dict:
        return {**fields, "start": render.iso(self.start), "end": render.iso(self.end), "count": len(rows),
                "next_page_token": token, "data": render.records(rows)}


def price_history(url, symbol, start, end, interval, limit, page_token, now, secret: bytes) -> dict:
    pager = Pager("prices", {"symbol": symbol, "interval": interval, "limit": limit}, start, end, page_token, now,
                  secret)
    if interval == "raw":
        rows = load("price_observations", pager.time, pager.end, symbols=[symbol], columns=PRICE_COLUMNS,
                    warehouse_url=url, limit=limit + 1)
        rows, token = pager.cut(rows, limit, "observed_at")
    else:
        rows, token = _last_per_interval(url, symbol, pager, interval, limit)
    return pager.envelope(rows, token, symbol=symbol, interval=interval)


def _last_per_interval(url, symbol, pager: Pager, interval, limit):
    """The last real observation of each interval (a price is never turned into a candle)."""
    raw = load("price_observations", pager.time, pager.end, symbols=[symbol], columns=PRICE_COLUMNS,
               warehouse_url=url, limit=DOWNSAMPLE_SCAN_ROWS)
    buckets = raw.observed_at.dt.floor(interval)
    token = None
    if len(raw) == DOWNSAMPLE_SCAN_ROWS:  # more rows follow: the last interval may be incomplete
        last = buckets.iloc[-1]
        if (buckets < last).any():
            raw, buckets = raw[buckets < last], buckets[buckets < last]
            token = pager.token(last)
        else:  # one interval holds more than the scan: continue right after what was read
            token = pager.token(raw.observed_at.iloc[-1] + pd.Timedelta("1us"))
    picks = raw.assign(interval_start=buckets).groupby("interval_start", sort=True).tail(1)
    if len(picks) > limit:
        token = pager.token(picks.interval_start.iloc[limit])
        picks = picks.iloc[:limit]
    return picks[["interval_start", *[c for c in picks.columns if c != "interval_start"]]], token


def ohlcv(url, symbol, interval, start, end, limit, page_token, now, secret: bytes) -> dict:
    pager = Pager("ohlcv", {"symbol": symbol, "interval": interval, "limit": limit}, start, end, page_token, now,
                  secret)
    rows = load("ohlcv_bars", pager.time, pager.end, symbols=[symbol], filters={"interval": [interval]},
                warehouse_url=url, limit=limit + 1)
    rows, token = pager.cut(rows, limit, "bar_start")
    return pager.envelope(rows, token, symbol=symbol, interval=interval)


DERIVATIVES = "derivatives_metrics"
DERIVATIVES_ORDER = ["observed_at", "exchange", "kind"]
DERIVATIVES_MAX_TIES = 64  # rows one instant can hold (exchanges x kinds): a page never splits them


def derivatives(url, symbol, kind, exchange, start, end, limit, page_token, now, secret: bytes) -> dict:
    """derivatives_metrics rows of a symbol by observed_at (then exchange, kind), keyset-paged on
    observed_at. Rows sharing one instant (several exchanges settle funding at 00/08/16 UTC) are
    never split across pages: a page ends before such a group, or holds all of it."""
    from crypto_assets.loading import _warehouse  # noqa: PLC0415 - the same warehouse cache as load()

    spec = declared(DERIVATIVES)
    params = {"symbol": symbol, "kind": kind, "exchange": exchange, "limit": limit}
    pager = Pager("derivatives", params, start, end, page_token, now, secret)
    filters = {"symbol": [symbol]}
    if kind:
        filters["kind"] = [kind]
    if exchange:
        filters["exchange"] = [exchange]
    rows = _warehouse(url).read(spec, pager.time, pager.end, filters=filters, order_by=DERIVATIVES_ORDER,
                                limit=limit + 1 + DERIVATIVES_MAX_TIES)
    token = None
    if len(rows) > limit:
        times = rows["observed_at"]
        boundary = times.iloc[limit]
        first = int((times < boundary).sum())  # the page ends before the group at the boundary ...
        if first == 0:  # ... unless that group starts the page: then all of it
            first = int((times <= boundary).sum())
        if first < len(rows):
            token = pager.token(rows["observed_at"].iloc[first])
        rows = rows.iloc[:first]
    return pager.envelope(rows, token, symbol=symbol, kind=kind, exchange=exchange)


def sentiment(url, symbol, window: pd.Timedelta, window_label: str, now: pd.Timestamp,
              market_type: str | None = None) -> dict:
    """Scores of items mentioning `symbol` in the window; `market_type` (stock/crypto) keeps only the
    scores of that market's items (stock: news from markets/macro feeds, scored by the finance model)."""
    start = now - window
    filters = {"market_type": [market_type]} if market_type else None
    rows = load("sentiment_scores", start, None, symbols=[symbol], columns=SENTIMENT_COLUMNS, filters=filters,
                warehouse_url=url)
    per_item = rows.groupby("item_id")["score"].mean()
    by_type = rows.groupby("item_type").agg(items=("item_id", "nunique"), mean_score=("score", "mean")).reset_index()
    by_model = rows.groupby("model").agg(scores=("score", "size"), mean_score=("score", "mean"),
                                         mean_confidence=("confidence", "mean")).reset_index()
    labels = rows["label"].value_counts()
    return {
        "symbol": symbol, "window": window_label, "start": render.iso(start), "end": render.iso(now),
        **({"market_type": market_type} if market_type else {}),
        "items": int(per_item.size), "scores": len(rows),
        "mean_score": float(per_item.mean()) if per_item.size else None,
        "labels": {label: int(labels.get(label, 0)) for label in ("positive", "neutral", "negative")},
        "by_item_type": render.records(by_type), "by_model": render.records(by_model),
        "latest_published_at": render.iso(rows.published_at.max()) if len(rows) else None,
    }


NARRATIVE_COLUMNS = ["hour_start", "status", "summary", "themes_json", "top_theme", "coins", "article_count",
                     "available_at", "model", "prompt_version", "error"]


def latest_narratives(url, status: str | None, limit: int) -> dict:
    """The newest hourly LLM narratives (news_narratives), newest hour first; themes parsed from JSON.
    Empty with a note when the table has none (no LLM configured, or nothing narrated yet)."""
    import json

    from crypto_assets.llm.narratives import THEMES

    columns = [*NARRATIVE_COLUMNS, *(f"strength_{t}" for t in THEMES)]
    rows = load("news_narratives", columns=columns, filters={"status": [status]} if status else None,
                warehouse_url=url, newest_first=True, limit=limit)
    data = render.records(rows.drop(columns=["themes_json"]))
    for record, themes in zip(data, rows.themes_json):
        record["themes"] = json.loads(themes) if isinstance(themes, str) else None
        record["strengths"] = {t: record.pop(f"strength_{t}") for t in THEMES}
    note = None if len(rows) else ("no narratives: news_narratives is optional and needs a local LLM "
                                   "(CRYPTO_LLM_URL, CRYPTO_LLM_MODEL); see docs/intelligence.md")
    return {"count": len(rows), "note": note, "data": data}


REGIME_COLUMNS = ["scope", "asof_time", "close", "sma_fast", "sma_slow", "trend_score", "trend_band",
                  "realized_vol_24h", "vol_percentile", "trend_regime", "volatility_regime", "regime",
                  "previous_regime", "regime_changed", "history_hours", "symbols", "breadth_bull", "breadth_bear",
                  "method"]


def regime(url, symbol: str, limit: int) -> dict:
    """The newest `limit` hourly regimes of a symbol (or `_MARKET`), newest first, with the regime
    changes among them. 404 when the symbol has none yet."""
    declared("market_regimes")
    rows = load("market_regimes", symbols=[symbol], columns=REGIME_COLUMNS, warehouse_url=url, newest_first=True,
                limit=limit)
    if rows.empty:
        raise NoData(f"no regime for {symbol} yet: market_regimes needs its bars (and 7-8 days of history for a "
                     "known regime); see docs/intelligence.md")
    data = render.records(rows)
    changes = [r for r in data if r.get("regime_changed")]
    return {"symbol": symbol, "count": len(data), "latest": data[0], "changes": changes, "data": data}


FEAR_GREED_COLUMNS = ["date", "value", "classification", "available_at", "source"]


def fear_greed(url, limit: int) -> dict:
    """The newest `limit` daily Fear & Greed values, newest first; empty with a note when there are none."""
    declared("fear_greed_index")
    rows = load("fear_greed_index", columns=FEAR_GREED_COLUMNS, warehouse_url=url, newest_first=True, limit=limit)
    data = render.records(rows)
    note = None if data else ("no Fear & Greed values yet: fear_greed_index fetches Alternative.me daily; in "
                              "replay/demo mode there is no recording, so it stays empty (docs/intelligence.md)")
    return {"count": len(data), "note": note, "latest": data[0] if data else None, "data": data}


def latest_news(url, symbol: str | None, limit: int) -> dict:
    rows = load("news_articles", symbols=[symbol] if symbol else None, columns=NEWS_COLUMNS,
                warehouse_url=url, newest_first=True, limit=limit)
    return {"symbol": symbol, "count": len(rows), "data": render.records(rows)}


def technical(url, symbol, interval, limit) -> dict:
    rows = load("technical_indicators", symbols=[symbol], filters={"interval": [interval]}, warehouse_url=url,
                newest_first=True, limit=limit)
    if rows.empty:
        raise NoData(f"no technical indicators for {symbol} at interval {interval} yet "
                     "(intervals computed: 5min, 30min, 1h)")
    return {"symbol": symbol, "interval": interval, "count": len(rows), "data": render.records(rows)}


def ml_current(url, symbol, now: pd.Timestamp) -> dict:
    spec = declared(ML_FEATURES)
    rows = load(ML_FEATURES, symbols=[symbol], warehouse_url=url, newest_first=True, limit=1)
    if rows.empty:
        raise NoData(f"no ml_features rows for {symbol} yet")
    return {"symbol": symbol, "age_seconds": _age_seconds(rows[spec.time_column].iloc[0], now),
            "features": render.records(rows)[0]}


def ml_bulk(url, symbols: list[str], start, end, limit, page_token, columns: list[str] | None, now,
            secret: bytes) -> dict:
    """Rows ordered by (symbol, time), keyset-paged: at most two queries per page. Symbols are
    upper-case tickers, which sort the same in Python, SQLite and MySQL collations."""
    spec = declared(ML_FEATURES)
    if columns:
        unknown = sorted(set(columns) - set(spec.column_names))
        if unknown:
            raise BadQuery(f"ml_features has no columns {unknown}; GET /openapi.json or docs/api.md list them")
    symbols = sorted(set(symbols))
    params = {"symbols": ",".join(symbols), "limit": limit, "columns": ",".join(columns or [])}
    pager = Pager("ml_bulk", params, start, end, page_token, now, secret)
    first = pager.symbol or symbols[0]
    if first not in symbols:
        raise paging.PageTokenError("page_token belongs to another query")
    remaining = symbols[symbols.index(first):]
    if pager.time == pager.start:  # a first page, or a page starting on a new symbol: one query
        rows = load(ML_FEATURES, pager.start, pager.end, symbols=remaining, columns=columns, warehouse_url=url,
                    limit=limit + 1)
    else:  # the rest of `first` from the token's time, then the following symbols from the start
        rows = load(ML_FEATURES, pager.time, pager.end, symbols=remaining[:1], columns=columns, warehouse_url=url,
                    limit=limit + 1)
        if len(rows) <= limit and len(remaining) > 1:
            rest = load(ML_FEATURES, pager.start, pager.end, symbols=remaining[1:], columns=columns,
                        warehouse_url=url, limit=limit + 1 - len(rows))
            rows = pd.concat([rows, rest], ignore_index=True) if len(rows) else rest
    rows, token = pager.cut(rows, limit, spec.time_column, by_symbol=True)
    return pager.envelope(rows, token, symbols=symbols)
