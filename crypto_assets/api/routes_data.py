"""The data endpoints under /api/v1. Each handler validates, then answers from the cache or
from a `queries` function run in a worker thread."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from crypto_assets.api import models, queries
from crypto_assets.api.auth import LimitedRoute, require
from crypto_assets.api.state import NOW, SYMBOLS_HINT
from crypto_assets.intelligence.params import MARKET as MARKET_SYMBOL

# LimitedRoute: a key's rate-limit hit is counted with the cache lookup, in one Redis round trip (auth.py).
router = APIRouter(prefix="/api/v1", route_class=LimitedRoute)

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$"
MAX_PAGE = 5000
MAX_BULK_SYMBOLS = 50
MAX_SENTIMENT_WINDOW = pd.Timedelta("7D")

Symbol = Annotated[str, Path(pattern=SYMBOL_PATTERN, description="Ticker, e.g. BTC (case-insensitive).")]
Start = Annotated[datetime | None, Query(description="Inclusive start, ISO 8601 (naive = UTC). Default: end - 24 h.")]
End = Annotated[datetime | None, Query(description="Exclusive end, ISO 8601 (naive = UTC). Default: now.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page.")]
PageToken = Annotated[str | None, Query(max_length=1000, description="next_page_token of the previous page.")]
BarInterval = Annotated[str, Query(pattern=r"^\d{1,3}(min|h|D)$", description="Bar length, e.g. 5min, 1h, 4h, 4D.")]

readonly = Depends(require("readonly", deferred=True))
trading = Depends(require("trading", deferred=True))

# pandas frequency of each resampling choice of /prices/historical
PRICE_INTERVALS = {"5min": "5min", "15min": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}


def _api(request: Request):
    return request.app.state.api


@router.get("/prices/current/{symbol}", response_model=models.CurrentPrice, dependencies=[readonly],
            summary="Latest price observation of a symbol")
async def current_price(request: Request, symbol: Symbol):
    api = _api(request)
    symbol = await api.check_symbol(symbol)
    return await api.respond(request, "prices_current", "price_observations", {"symbol": symbol},
                             queries.current_price, api.warehouse_url, symbol, NOW)


@router.get("/prices/historical/{symbol}", response_model=models.PricePage, dependencies=[readonly],
            summary="Price observations in a range, raw or the last one per interval (paged)")
async def historical_prices(request: Request, symbol: Symbol, start: Start = None, end: End = None,
                            interval: Literal["raw", "5min", "15min", "1h", "4h", "1d"] = "raw",
                            limit: Limit = 1000, page_token: PageToken = None):
    api = _api(request)
    symbol = await api.check_symbol(symbol)
    freq = "raw" if interval == "raw" else PRICE_INTERVALS[interval]
    params = {"symbol": symbol, "start": start, "end": end, "interval": interval, "limit": limit, "page": page_token}
    return await api.respond(request, "prices_historical", "price_observations", params, queries.price_history,
                             api.warehouse_url, symbol, start, end, freq, limit, page_token, NOW,
                             api.token_secret)


@router.get("/ohlcv/{symbol}", response_model=models.OhlcvPage, dependencies=[readonly],
            summary="OHLC(V) bars of one interval in a range (paged)")
async def ohlcv(request: Request, symbol: Symbol, interval: BarInterval = "1h", start: Start = None,
                end: End = None, limit: Limit = 1000, page_token: PageToken = None):
    api = _api(request)
    symbol = await api.check_symbol(symbol)
    params = {"symbol": symbol, "start": start, "end": end, "interval": interval, "limit": limit, "page": page_token}
    return await api.respond(request, "ohlcv", "ohlcv_bars", params, queries.ohlcv,
                             api.warehouse_url, symbol, interval, start, end, limit, page_token, NOW,
                             api.token_secret)


DerivativeKind = Literal["funding_snapshot", "open_interest", "funding_history", "open_interest_history"]


@router.get("/derivatives/{symbol}", response_model=models.DerivativesPage, dependencies=[readonly],
            summary="Perpetual-swap funding rates, open interest, mark/index price and basis (paged)")
async def derivatives(request: Request, symbol: Symbol, start: Start = None, end: End = None,
                      kind: DerivativeKind | None = None,
                      exchange: Annotated[str | None, Query(pattern=r"^[a-z0-9]{2,20}$",
                                                            description="binance, bybit or okx.")] = None,
                      limit: Limit = 1000, page_token: PageToken = None):
    api = _api(request)
    symbol = await api.check_symbol(symbol)
    queries.declared(queries.DERIVATIVES)
    params = {"symbol": symbol, "start": start, "end": end, "kind": kind, "exchange": exchange, "limit": limit,
              "page": page_token}
    return await api.respond(request, "derivatives", queries.DERIVATIVES, params, queries.derivatives,
                             api.warehouse_url, symbol, kind, exchange, start, end, limit, page_token, NOW,
                             api.token_secret)


@router.get("/sentiment/{symbol}", response_model=models.Sentiment, dependencies=[readonly],
            summary="Sentiment of news and posts mentioning a symbol over a trailing window")
async def sentiment(request: Request, symbol: Symbol,
                    window: Annotated[str, Query(pattern=r"^\d{1,3}[hd]$", description="1h .. 7d, e.g. 24h")] = "24h"):
    return await _sentiment(request, symbol, window, None)


SentimentWindow = Annotated[str, Query(pattern=r"^\d{1,3}[hd]$", description="1h .. 7d, e.g. 24h")]


async def _sentiment(request: Request, symbol: str, window: str, market_type: str | None):
    api = _api(request)
    symbol = await api.check_symbol(symbol)
    span = pd.Timedelta(hours=int(window[:-1])) if window.endswith("h") else pd.Timedelta(days=int(window[:-1]))
    if not pd.Timedelta("1h") <= span <= MAX_SENTIMENT_WINDOW:
        raise HTTPException(422, "window must lie between 1h and 7d")
    endpoint = f"sentiment_{market_type}" if market_type else "sentiment"
    return await api.respond(request, endpoint, "sentiment_scores", {"symbol": symbol, "window": window},
                             queries.sentiment, api.warehouse_url, symbol, span, window, NOW, market_type)


@router.get("/sentiment/stock/{symbol}", response_model=models.Sentiment, dependencies=[readonly],
            summary="Sentiment of stock-market/macro news mentioning a symbol (finance model, e.g. FinBERT)")
async def sentiment_stock(request: Request, symbol: Symbol, window: SentimentWindow = "24h"):
    return await _sentiment(request, symbol, window, "stock")


@router.get("/sentiment/crypto/{symbol}", response_model=models.Sentiment, dependencies=[readonly],
            summary="Sentiment of crypto news and posts mentioning a symbol (crypto model, e.g. CryptoBERT)")
async def sentiment_crypto(request: Request, symbol: Symbol, window: SentimentWindow = "24h"):
    return await _sentiment(request, symbol, window, "crypto")


@router.get("/narratives/latest", response_model=models.Narratives, dependencies=[readonly],
            summary="Latest hourly LLM news narratives (optional asset news_narratives)")
async def latest_narratives(request: Request,
                            status: Literal["ok", "failed", "any"] = "any",
                            limit: Annotated[int, Query(ge=1, le=168, description="Hours, newest first.")] = 24):
    api = _api(request)
    return await api.respond(request, "narratives", "news_narratives", {"status": status, "limit": limit},
                             queries.latest_narratives, api.warehouse_url, None if status == "any" else status, limit)


@router.get("/regime/{symbol}", response_model=models.Regime, dependencies=[readonly],
            summary="Hourly market regime of a symbol (MARKET: market-wide), newest first, with regime changes")
async def regime(request: Request, symbol: Symbol,
                 limit: Annotated[int, Query(ge=1, le=720, description="Hours, newest first.")] = 24):
    api = _api(request)
    symbol = MARKET_SYMBOL if symbol.upper() == "MARKET" else await api.check_symbol(symbol)
    return await api.respond(request, "regime", "market_regimes", {"symbol": symbol, "limit": limit},
                             queries.regime, api.warehouse_url, symbol, limit)


@router.get("/fear-greed", response_model=models.FearGreed, dependencies=[readonly],
            summary="Alternative.me Crypto Fear & Greed index, daily, newest first")
async def fear_greed(request: Request,
                     limit: Annotated[int, Query(ge=1, le=365, description="Days, newest first.")] = 30):
    api = _api(request)
    return await api.respond(request, "fear_greed", "fear_greed_index", {"limit": limit},
                             queries.fear_greed, api.warehouse_url, limit)


@router.get("/news/latest", response_model=models.News, dependencies=[readonly],
            summary="Latest news articles, optionally only those mentioning a symbol")
async def latest_news(request: Request,
                      symbol: Annotated[str | None, Query(pattern=SYMBOL_PATTERN)] = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = 20):
    api = _api(request)
    if symbol is not None:
        symbol = await api.check_symbol(symbol)
    return await api.respond(request, "news", "news_articles", {"symbol": symbol, "limit": limit},
                             queries.latest_news, api.warehouse_url, symbol, limit)


@router.get("/technical/{symbol}", response_model=models.Technical, dependencies=[readonly],
            summary="Latest technical indicators of a symbol")
async def technical(request: Request, symbol: Symbol, interval: Literal["5min", "30min", "1h"] = "1h",
                    limit: Annotated[int, Query(ge=1, le=500, description="Most recent bars.")] = 1):
    api = _api(request)
    symbol = await api.check_symbol(symbol)
    return await api.respond(request, "technical", "technical_indicators",
                             {"symbol": symbol, "interval": interval, "limit": limit},
                             queries.technical, api.warehouse_url, symbol, interval, limit)


@router.get("/ml-features/bulk", response_model=models.FeaturesPage, dependencies=[trading],
            summary="ML feature rows of several symbols in a range (paged)")
async def ml_features_bulk(
    request: Request,
    symbols: Annotated[str, Query(min_length=1, max_length=1100, description="Comma-separated tickers (<= 50).")],
    start: Start = None, end: End = None, limit: Limit = 1000, page_token: PageToken = None,
    columns: Annotated[str | None, Query(max_length=8000, description="Comma-separated feature columns "
                                                                       "(default: all).")] = None,
):
    api = _api(request)
    wanted = list(dict.fromkeys(s.strip().upper() for s in symbols.split(",") if s.strip()))
    if not wanted or len(wanted) > MAX_BULK_SYMBOLS:
        raise HTTPException(422, f"symbols must list 1 to {MAX_BULK_SYMBOLS} tickers")
    known = await api.known_symbols()
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise HTTPException(404, f"unknown symbols {unknown[:10]}: {SYMBOLS_HINT}")
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    queries.declared(queries.ML_FEATURES)  # 503 before touching the cache when the table is absent
    params = {"symbols": ",".join(sorted(wanted)), "start": start, "end": end, "limit": limit, "page": page_token,
              "columns": columns}
    return await api.respond(request, "ml_bulk", queries.ML_FEATURES, params, queries.ml_bulk,
                             api.warehouse_url, wanted, start, end, limit, page_token, cols, NOW,
                             api.token_secret)


@router.get("/ml-features/{symbol}/current", response_model=models.Features, dependencies=[trading],
            summary="Latest ML feature row of a symbol")
async def ml_features_current(request: Request, symbol: Symbol):
    api = _api(request)
    symbol = await api.check_symbol(symbol)
    queries.declared(queries.ML_FEATURES)
    return await api.respond(request, "ml_current", queries.ML_FEATURES, {"symbol": symbol},
                             queries.ml_current, api.warehouse_url, symbol, NOW)
