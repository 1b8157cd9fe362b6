"""The declarative catalogs of macro series and on-chain metrics (`resources/*.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd
import yaml

from crypto_assets.paths import RESOURCES_DIR


@dataclass(frozen=True)
class MacroSeries:
    id: str
    provider: str  # yahoo | fred
    symbol: str
    unit: str
    frequency: str
    description: str = ""
    timezone: str | None = None  # yahoo: exchange timezone
    close: str | None = None  # yahoo: "HH:MM" (or "24:00") in `timezone`

    def close_utc(self, trading_date: date) -> datetime:
        """When the value of `trading_date` is final: the close in the exchange timezone, as UTC."""
        if self.timezone is None or self.close is None:
            raise ValueError(f"{self.id}: no close time/timezone in resources/macro_series.yaml")
        hours, minutes = (int(p) for p in self.close.split(":"))
        local = pd.Timestamp(trading_date) + timedelta(hours=hours, minutes=minutes)
        return local.tz_localize(self.timezone).tz_convert("UTC").to_pydatetime()


@dataclass(frozen=True)
class OnchainMetric:
    chain: str  # our chain name: bitcoin, ethereum, ...
    metric: str  # our metric name: tx_count, hash_rate, ...
    provider: str  # blockchain_com | defillama
    path: str  # the provider's chart name / chain name
    unit: str  # expected unit; the payload's unit must contain it when it states one
    description: str = ""


def _load(name: str, key: str) -> list[dict]:
    raw = yaml.safe_load((RESOURCES_DIR / name).read_text()) or {}
    return raw.get(key) or []


def macro_series_catalog() -> list[MacroSeries]:
    series = [MacroSeries(**{k: str(v) for k, v in entry.items()}) for entry in _load("macro_series.yaml", "series")]
    ids = [s.id for s in series]
    if len(ids) != len(set(ids)):
        raise ValueError("resources/macro_series.yaml: duplicate series ids")
    for s in series:
        if s.provider not in ("yahoo", "fred"):
            raise ValueError(f"{s.id}: unknown provider {s.provider!r}")
        if s.provider == "yahoo":
            s.close_utc(date(2024, 1, 2))  # fails early on a bad timezone or close time
    return series


def onchain_metrics_catalog() -> list[OnchainMetric]:
    metrics = [OnchainMetric(**{k: str(v) for k, v in e.items()}) for e in _load("onchain_metrics.yaml", "metrics")]
    keys = [(m.chain, m.metric) for m in metrics]
    if len(keys) != len(set(keys)):
        raise ValueError("resources/onchain_metrics.yaml: duplicate (chain, metric)")
    return metrics
