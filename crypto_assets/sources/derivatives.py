"""Perpetual-swap metrics through ccxt: funding rates, open interest, mark/index price, basis.

Same path as the exchange candles (`crypto_assets.sources.exchanges`): one ccxt instance per
exchange whose HTTP goes through the project's `SourceClient` (retries on 429/5xx honouring
`Retry-After`, spacing, per-run budget, replay transport). Only the markets differ: linear
perpetual swaps (`BTC/USDT:USDT`) instead of spot (`resources/derivatives.yaml`).

Real values only. Every figure is what the exchange answered, parsed by ccxt; a figure the
exchange does not give (OKX's funding answer has no mark or index price, Binance's open
interest has no value in USD) is absent, never estimated or filled from another exchange.
The one derived figure, `basis` = mark / index - 1, exists only where the same answer carries
both prices.

Row kinds (one table, `derivatives_metrics`):
- `funding_snapshot`: the current funding rate (for the next settlement, `funding_time`), with
  mark/index price where the same answer has them; observed and available at the answer's time.
- `open_interest`: the current open interest; observed and available at the exchange's timestamp.
- `funding_history`: a settled funding rate; observed and available at its settlement time.
- `open_interest_history`: an hourly open-interest point; available at its timestamp.
- `open_interest_daily`: Binance's archive metrics (crypto_assets/sources/binance_archive.py): the
  day's last open-interest figure, observed at its time and available only once the day closed
  (the archive publishes a day's file after it).
History through ccxt exists in live mode only: no recording of funding-rate or open-interest history
exists for binance, bybit or okx (see crypto_assets_tests/data/exchanges/SOURCES.md). Binance's
funding history and daily open interest also come from its public data archive (`archive_history`):
in replay (real April/May 2021 BTCUSDT funding files are recorded) and for windows older than the
REST path serves (`archive.before_days` in resources/derivatives.yaml). The archive publishes funding
in monthly files only: the part of such a window that they cannot cover (the current month, and the
previous one while its file is not published; `DerivativesResult.rest_funding`) is asked from the
REST funding history (`fetch_metrics(..., history_kinds=("funding_history",), history_start=...)`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.catalog import mode_transport, source_spec
from crypto_assets.sources.client import SourceClient, redact_then_cut
from crypto_assets.sources.exchanges import ExchangeClient, Exchanges, _num

CATALOG = RESOURCES_DIR / "derivatives.yaml"
KINDS = ("funding_snapshot", "open_interest", "funding_history", "open_interest_history", "open_interest_daily")
HISTORY_KINDS = ("funding_history", "open_interest_history")
ARCHIVE_KINDS = ("funding_history", "open_interest_daily")
DERIVATIVE_COLUMNS = [
    "exchange", "symbol", "kind", "observed_at", "available_at", "market", "settle", "funding_rate",
    "funding_time", "open_interest", "open_interest_value", "value_currency", "mark_price", "index_price", "basis",
]
NO_HISTORY_RECORDING = ("replay: no recording of funding-rate or open-interest history exists for binance, bybit "
                        "or okx (ccxt's static cases have none), so replay has no history rows")


@dataclass(frozen=True)
class DerivativesCatalog:
    exchanges: tuple[str, ...]
    settle: tuple[str, ...]
    ccxt_options: dict[str, dict]
    history_limit: dict[str, int]
    max_history_pages: int = 50
    # Spacing of each exchange's derivatives requests (resources/derivatives.yaml); absent: the
    # exchange's `min_interval_s` in resources/sources.yaml.
    min_interval_s: dict[str, float] = field(default_factory=dict)
    # The published limit of the strictest endpoint each exchange's derivatives client calls
    # ({requests, per_s, source}); the spacing is planned against it like the candle plan.
    published_limit: dict[str, dict] = field(default_factory=dict)
    # Binance's public data archive (resources/derivatives.yaml `archive`): the exchange it serves,
    # and how old a window's start must be (days before now) for its history to come from it.
    archive_exchange: str | None = None
    archive_before_days: float = 30.0


@cache
def _catalog(path: str, text: str) -> DerivativesCatalog:
    raw = yaml.safe_load(text) or {}
    per = raw.get("exchanges") or {}
    return DerivativesCatalog(
        exchanges=tuple(per),
        settle=tuple(raw.get("settle") or ("USDT",)),
        ccxt_options={name: (cfg or {}).get("ccxt_options") or {} for name, cfg in per.items()},
        history_limit={name: int((cfg or {}).get("history_limit", 100)) for name, cfg in per.items()},
        max_history_pages=int(raw.get("max_history_pages", 50)),
        min_interval_s={name: float(cfg["min_interval_s"]) for name, cfg in per.items()
                        if (cfg or {}).get("min_interval_s") is not None},
        published_limit={name: dict(cfg["published_limit"]) for name, cfg in per.items()
                         if (cfg or {}).get("published_limit")},
        archive_exchange=(raw.get("archive") or {}).get("exchange"),
        archive_before_days=float((raw.get("archive") or {}).get("before_days", 30)),
    )


def load_derivatives_catalog(path: str | Path | None = None) -> DerivativesCatalog:
    path = Path(path or CATALOG)
    return _catalog(str(path), path.read_text())


def open_derivatives(exchanges: Exchanges, name: str, catalog: DerivativesCatalog | None = None,
                     **client_kwargs) -> ExchangeClient:
    """An exchange client on its swap markets: the candle client's config (resources/exchanges.yaml)
    with the ccxt options and spacing of resources/derivatives.yaml. Tests may pass `transport=`."""
    catalog = catalog or load_derivatives_catalog()
    config = dataclasses.replace(exchanges.catalog().exchanges[name], ccxt_options=catalog.ccxt_options.get(name, {}))
    spec = source_spec(name)
    if name in catalog.min_interval_s:
        spec = dataclasses.replace(spec, min_interval_s=catalog.min_interval_s[name])
    if name in catalog.published_limit:
        spec = dataclasses.replace(spec, published_limit=catalog.published_limit[name])
    client_kwargs = mode_transport(exchanges.mode, name, spec.base_url, exchanges.replay_dir, client_kwargs)
    return ExchangeClient(config, SourceClient(spec, **client_kwargs), exchanges.mode, exchanges.replay_dir)


@dataclass(frozen=True)
class SwapMarket:
    exchange: str
    symbol: str  # coin
    market: str  # ccxt unified, e.g. BTC/USDT:USDT
    settle: str
    contract_size: float | None


def map_swaps(markets, exchange: str, symbols: list[str], settle: tuple[str, ...]) -> dict[str, SwapMarket]:
    """Coin -> the exchange's active linear perpetual in the first settle currency it lists."""
    values = markets.values() if isinstance(markets, dict) else markets
    by_pair = {}
    for m in values:
        if not m.get("swap") or not m.get("linear") or m.get("active") is False:
            continue
        by_pair.setdefault((str(m.get("base")).upper(), str(m.get("settle")).upper()), m)
    out = {}
    for symbol in symbols:
        for currency in settle:
            m = by_pair.get((symbol.upper(), currency.upper()))
            if m:
                out[symbol] = SwapMarket(exchange, symbol, m["symbol"], currency.upper(), _num(m.get("contractSize")))
                break
    return out


def _ts(ms) -> pd.Timestamp | None:
    value = _num(ms)
    return pd.Timestamp(int(value), unit="ms", tz="UTC") if value is not None else None


def _row(market: SwapMarket, kind: str, observed_at, available_at=None, **values) -> dict:
    row = dict.fromkeys(DERIVATIVE_COLUMNS)
    row.update(exchange=market.exchange, symbol=market.symbol, kind=kind, market=market.market, settle=market.settle,
               observed_at=observed_at, available_at=available_at if available_at is not None else observed_at)
    row.update(values)
    return row


def basis(mark, index) -> float | None:
    """mark / index - 1 where the same answer gave both (a real premium, never estimated)."""
    mark, index = _num(mark), _num(index)
    return mark / index - 1.0 if mark is not None and index else None


def funding_snapshot_row(market: SwapMarket, parsed: dict, answered_at=None) -> dict | None:
    """A ccxt `fetch_funding_rate` result as a row. Bybit's answer (its /v5/market/tickers) also
    carries open interest in base currency and its value in the settle currency (documented fields
    `openInterest`, `openInterestValue`), read from the raw answer; other exchanges: absent."""
    observed = _ts(parsed.get("timestamp")) or (pd.Timestamp(answered_at) if answered_at is not None else None)
    if observed is None:
        return None  # a figure that cannot be placed in time is not used
    info = parsed.get("info") or {}
    oi = oi_value = None
    if market.exchange == "bybit":
        oi, oi_value = _num(info.get("openInterest")), _num(info.get("openInterestValue"))
    mark, index = _num(parsed.get("markPrice")), _num(parsed.get("indexPrice"))
    return _row(market, "funding_snapshot", observed, funding_rate=_num(parsed.get("fundingRate")),
                funding_time=_ts(parsed.get("fundingTimestamp")), mark_price=mark, index_price=index,
                basis=basis(mark, index), open_interest=oi, open_interest_value=oi_value,
                value_currency=market.settle if oi_value is not None else None)


def open_interest_row(market: SwapMarket, parsed: dict, kind: str = "open_interest") -> dict | None:
    """A ccxt open-interest structure as a row: open interest in the base currency (ccxt's
    `baseVolume`, else contracts x the market's contract size for a linear contract) and its value
    where the exchange gives one (OKX `oiUsd`: in USD)."""
    observed = _ts(parsed.get("timestamp"))
    if observed is None:
        return None
    base = _num(parsed.get("baseVolume"))
    amount = _num(parsed.get("openInterestAmount"))
    if base is None and amount is not None and market.contract_size is not None:
        base = amount * market.contract_size
    value = _num(parsed.get("openInterestValue"))
    currency = None
    if value is not None:
        currency = "USD" if market.exchange == "okx" else market.settle  # okx documents oiUsd in USD
    return _row(market, kind, observed, open_interest=base, open_interest_value=value, value_currency=currency)


def funding_history_row(market: SwapMarket, parsed: dict) -> dict | None:
    """A settled funding rate: known at its settlement time."""
    settled = _ts(parsed.get("timestamp"))
    if settled is None or _num(parsed.get("fundingRate")) is None:
        return None
    return _row(market, "funding_history", settled, funding_rate=_num(parsed.get("fundingRate")), funding_time=settled)


@dataclass
class DerivativesResult:
    rows: list[dict] = field(default_factory=list)
    markets: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # "SYMBOL:kind" -> message
    requests: int = 0
    attempted: int = 0  # (symbol, kind) fetches tried (not counting kinds ccxt does not offer)
    stopped: str | None = None  # why the exchange was asked nothing more (a block, a rate limit)
    # Archive only: symbol -> where the part of the window its funding files could not cover begins
    # (to the window's end): for the REST funding history.
    rest_funding: dict[str, pd.Timestamp] = field(default_factory=dict)


# HTTP statuses that block the caller, not a market: Bybit answers 403 from regions it refuses.
BLOCK_STATUSES = frozenset({401, 403, 451})


def stops_the_exchange(exc: BaseException) -> bool:
    """A block (401/403/451) or an exchange-wide error (rate limit, maintenance, unreachable, an
    answer that is not the API): asking its other markets would only repeat it."""
    from crypto_assets.sources.client import SourceError
    from crypto_assets.sources.exchanges import ExchangeUnavailable, exchange_wide

    if isinstance(exc, ExchangeUnavailable) or exchange_wide(exc):
        return True
    return isinstance(exc, SourceError) and exc.status in BLOCK_STATUSES


def _paged(fetch, start_ms: int, end_ms: int, limit: int, max_pages: int) -> list[dict]:
    """History pages by `since` until the window end, an empty page or no progress."""
    out, since = [], start_ms
    for _ in range(max_pages):
        page = [r for r in fetch(since, limit) if _num(r.get("timestamp")) is not None]
        page = sorted(page, key=lambda r: r["timestamp"])
        if not page:
            break
        out += [r for r in page if start_ms <= r["timestamp"] < end_ms]
        last = int(page[-1]["timestamp"])
        if last + 1 <= since or last + 1 >= end_ms or len(page) < limit:
            break
        since = last + 1
    return out


def _ms(value) -> int:
    return int(pd.Timestamp(value).timestamp() * 1000)


def fetch_metrics(client: ExchangeClient, markets: dict[str, SwapMarket], start, end, *, snapshot: bool,
                  history: bool, history_limit: int = 100, max_pages: int = 50,
                  history_kinds: tuple[str, ...] = HISTORY_KINDS,
                  history_start: dict[str, pd.Timestamp] | None = None) -> DerivativesResult:
    """Everything one exchange gives for these markets: current funding and open interest when
    `snapshot`, settled funding rates and hourly open interest (`history_kinds`) in [start, end)
    when `history`; with `history_start` (symbol -> start), a symbol's history window starts there
    instead, and a symbol not in it gets no history. A call that fails costs that (symbol, kind)
    only; the message is kept. A block (403 from a refused region) or an exchange-wide error stops
    the exchange for the run: the rest is not asked (`stopped`, reported as the exchange's error)."""
    result = DerivativesResult(markets={s: m.market for s, m in markets.items()})
    start_ms, end_ms = _ms(start), _ms(end)
    has = client.ccxt.has
    calls = []
    if snapshot:
        calls += [("funding_snapshot", has.get("fetchFundingRate")), ("open_interest", has.get("fetchOpenInterest"))]
    if history:
        calls += [(kind, has.get(method)) for kind, method in (("funding_history", "fetchFundingRateHistory"),
                                                               ("open_interest_history", "fetchOpenInterestHistory"))
                  if kind in history_kinds]
    for symbol, market in sorted(markets.items()):
        since_ms = start_ms
        if history_start is not None:
            since_ms = _ms(history_start[symbol]) if symbol in history_start else None
        for kind, supported in calls:
            if kind in HISTORY_KINDS and since_ms is None:
                continue  # no history asked for this symbol
            if not supported:
                result.failures[f"{symbol}:{kind}"] = f"{client.name}: not offered by ccxt for this exchange"
                continue
            if result.stopped:  # blocked or rate-limited: the rest is not asked, and keeps what is stored
                result.failures[f"{symbol}:{kind}"] = f"{client.name}: not asked: {result.stopped}"
                continue
            result.attempted += 1
            try:
                since = since_ms if kind in HISTORY_KINDS else start_ms
                result.rows += _fetch(client, market, kind, since, end_ms, history_limit, max_pages)
            except Exception as exc:  # noqa: BLE001 - ccxt and SourceError alike: this (symbol, kind) is out
                result.failures[f"{symbol}:{kind}"] = redact_then_cut(f"{type(exc).__name__}: {exc}", None, 300)
                if stops_the_exchange(exc):
                    result.stopped = f"stopped after {symbol}:{kind}: {result.failures[f'{symbol}:{kind}']}"
    result.requests = client.client.requests_made
    return result


def _fetch(client: ExchangeClient, market: SwapMarket, kind: str, start_ms: int, end_ms: int, limit: int,
           max_pages: int) -> list[dict]:
    ex = client.ccxt
    if kind == "funding_snapshot":
        row = funding_snapshot_row(market, ex.fetch_funding_rate(market.market), client.client.last_response_at)
        return [row] if row else []
    if kind == "open_interest":
        row = open_interest_row(market, ex.fetch_open_interest(market.market))
        return [row] if row else []
    if kind == "funding_history":
        raw = _paged(lambda since, lim: ex.fetch_funding_rate_history(market.market, since, lim), start_ms, end_ms,
                     limit, max_pages)
        return [r for r in (funding_history_row(market, p) for p in raw) if r]
    raw = _paged(lambda since, lim: ex.fetch_open_interest_history(market.market, "1h", since, lim), start_ms, end_ms,
                 limit, max_pages)
    return [r for r in (open_interest_row(market, p, "open_interest_history") for p in raw) if r]


def archive_history(archive, exchange: str, symbols: list[str], settle: str, start, end, now,
                    kinds: tuple[str, ...] = ARCHIVE_KINDS) -> DerivativesResult:
    """Funding settlements and daily open interest of `symbols` from Binance's public data archive
    (`archive`: a binance_archive.ArchiveClient), for the `settle` perpetual (BTC -> BTCUSDT).
    A file the archive does not have is a gap (`archive.stats.gaps`), not a failure; an
    unreadable or checksum-mismatched file fails that (symbol, kind) only. Funding comes from
    monthly files only: where the part of the window they cannot cover begins (the current month,
    and the previous one while its file is not published) is in `rest_funding`, per symbol whose
    archive funding did not fail."""
    result = DerivativesResult()
    for symbol in sorted(symbols):
        pair = f"{symbol.upper()}{settle.upper()}"
        market = SwapMarket(exchange, symbol, f"{symbol.upper()}/{settle.upper()}:{settle.upper()}", settle.upper(), 1.0)
        result.markets[symbol] = market.market
        for kind in kinds:
            result.attempted += 1
            try:
                rows, rest_from = _archive_rows(archive, market, pair, kind, start, end, now)
            except Exception as exc:  # noqa: BLE001 - SourceError (checksum, unreadable file): this key is out
                result.failures[f"{symbol}:{kind}"] = redact_then_cut(f"{type(exc).__name__}: {exc}", None, 300)
                continue
            result.rows += rows
            if rest_from is not None:
                result.rest_funding[symbol] = rest_from
    result.requests = archive.client.requests_made
    return result


def _archive_rows(archive, market: SwapMarket, pair: str, kind: str, start, end,
                  now) -> tuple[list[dict], pd.Timestamp | None]:
    """The rows of one (symbol, kind), and (funding) where the part the archive cannot cover begins."""
    if kind == "funding_history":
        frame, rest_from = archive.funding_part(pair, start, end, now)
        if frame is None:
            return [], rest_from
        # Known at its settlement (calc_time is the settlement plus a few ms of processing).
        return [_row(market, "funding_history", t, funding_rate=float(r), funding_time=t)
                for t, r in zip(frame.settled_at, frame.funding_rate) if np.isfinite(r)], rest_from
    if kind == "open_interest_daily":
        # Whole days: a day's file is read in full; its last figure is known once the day closed.
        day0 = pd.Timestamp(start).tz_convert("UTC").normalize()
        frame = archive.metrics(pair, day0, end, now)
        if frame is None:
            return [], None
        frame = frame.dropna(subset=["sum_open_interest"])
        rows = []
        for day, part in frame.groupby(frame.create_time.dt.normalize(), sort=True):
            last = part.iloc[-1]
            rows.append(_row(market, "open_interest_daily", last.create_time, day + pd.Timedelta(days=1),
                             open_interest=float(last.sum_open_interest),
                             open_interest_value=float(last.sum_open_interest_value),
                             value_currency=market.settle))
        return rows, None
    raise ValueError(f"unknown archive kind {kind!r}")


def frame_of(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        frame = pd.DataFrame({c: pd.Series(dtype="object") for c in DERIVATIVE_COLUMNS})
    else:
        frame = pd.DataFrame(rows, columns=DERIVATIVE_COLUMNS)
    for col in ("observed_at", "available_at", "funding_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    for col in ("funding_rate", "open_interest", "open_interest_value", "mark_price", "index_price", "basis"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["ARCHIVE_KINDS", "DERIVATIVE_COLUMNS", "HISTORY_KINDS", "KINDS", "archive_history", "NO_HISTORY_RECORDING",
           "DerivativesCatalog", "DerivativesResult",
           "SwapMarket", "basis", "fetch_metrics", "frame_of", "funding_history_row", "funding_snapshot_row",
           "load_derivatives_catalog", "map_swaps", "open_derivatives", "open_interest_row"]
