"""Response shapes, for the OpenAPI docs. Handlers return pre-rendered JSON (cached bytes), so
these document the contract rather than validate each response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Row = dict[str, Any]


class Page(BaseModel):
    start: str = Field(description="Inclusive start of the range (UTC, ISO 8601).")
    end: str = Field(description="Exclusive end of the range (UTC, ISO 8601).")
    count: int
    next_page_token: str | None = Field(description="Pass as page_token (same other parameters) for the next page; "
                                                    "null on the last page.")
    data: list[Row]


class PricePage(Page):
    symbol: str
    interval: str = Field(description="raw: every observation; otherwise the last observation of each interval "
                                      "(with interval_start): real observations, never synthesized candles.")


class OhlcvPage(Page):
    """Bars with `method` (exchange, coingecko_ohlc, resampled_observations); exchange bars carry their
    traded `volume` (base currency), `quote_volume`, `trade_count`, `exchange` and `quote` (null where the
    source gives none: CoinGecko bars have no volume)."""

    symbol: str
    interval: str


class DerivativesPage(Page):
    """derivatives_metrics rows: funding_snapshot, open_interest, funding_history, open_interest_history.
    Figures an exchange does not give are null, never estimated; `available_at` says when each became known."""

    symbol: str
    kind: str | None = Field(description="The kind filter, if any.")
    exchange: str | None = Field(description="The exchange filter, if any.")


class FeaturesPage(Page):
    symbols: list[str]


class CurrentPrice(BaseModel):
    symbol: str
    age_seconds: float = Field(description="Age of the observation when the response was computed.")
    observation: Row


class Symbols(BaseModel):
    count: int
    symbols: list[Row]


class Sentiment(BaseModel):
    symbol: str
    window: str
    start: str
    end: str
    items: int = Field(description="Distinct news articles and social posts mentioning the symbol.")
    scores: int = Field(description="Scores (one per item and model).")
    mean_score: float | None = Field(description="Mean over items of the item's mean score, in [-1, 1].")
    labels: dict[str, int]
    by_item_type: list[Row]
    by_model: list[Row]
    latest_published_at: str | None
    market_type: str | None = Field(default=None, description="stock or crypto on /sentiment/stock|crypto/{symbol}: "
                                    "only scores of that market's items; absent on /sentiment/{symbol} (all).")


class Narratives(BaseModel):
    count: int
    note: str | None = Field(default=None, description="Why there are none, when there are none.")
    data: list[Row] = Field(description="Newest hour first: hour_start, status (ok/failed), summary, themes "
                            "(theme, strength, coins, evidence), strengths per theme, top_theme, coins, model, ...")


class Regime(BaseModel):
    symbol: str = Field(description="The ticker, or _MARKET for the market-wide regime (ask for MARKET).")
    count: int
    latest: Row = Field(description="The newest hour: regime (e.g. bull_high_vol), trend_regime, volatility_regime, "
                                    "trend_score, vol_percentile, asof_time (the hour's close), ...")
    changes: list[Row] = Field(description="The hours among `data` whose regime differs from the hour before.")
    data: list[Row] = Field(description="Newest hour first (bar_start = the hour).")


class FearGreed(BaseModel):
    count: int
    note: str | None = Field(default=None, description="Why there are none, when there are none.")
    latest: Row | None
    data: list[Row] = Field(description="Newest day first: date, value (0-100), classification, available_at.")


class News(BaseModel):
    symbol: str | None
    count: int
    data: list[Row]


class Technical(BaseModel):
    symbol: str
    interval: str
    count: int
    data: list[Row] = Field(description="Newest bar first.")


class Features(BaseModel):
    symbol: str
    age_seconds: float
    features: Row


class DatasetHealth(BaseModel):
    dataset: str
    latest_partition: str | None
    latest_time: str | None
    age_seconds: float | None
    state: str = Field(description="ok, warn, stale, empty, not_declared or damaged (its table cannot be read: see `crypto-assets warehouse check`).")
    detail: str


class Health(BaseModel):
    generated_at: str
    overall: str
    datasets: list[DatasetHealth]


class Ready(BaseModel):
    status: str = Field(description="ready, degraded (serving without Redis) or unavailable (no warehouse).")
    warehouse: Row
    redis: Row
    feed: Row


class Invalidated(BaseModel):
    invalidated: list[str]
    generations: dict[str, int | None]
