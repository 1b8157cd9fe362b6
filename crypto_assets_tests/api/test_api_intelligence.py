"""GET /api/v1/regime/{symbol} and /api/v1/fear-greed, on SQLite and MySQL.

Regimes are computed from SYNTHETIC bars (crypto_assets_tests/intelligence/intelligence_data.py); Fear & Greed rows
are CONSTRUCTED (made-up values, source "test": no recording of the API exists)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from crypto_assets.api import create_app
from crypto_assets.intelligence.regimes import compute_regimes
from crypto_assets.tables.intelligence import FEAR_GREED_INDEX, MARKET_REGIMES
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.api.api_support import REDIS_URL, headers, redis_prefix, seed, settings
from crypto_assets_tests.intelligence.intelligence_data import walk

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

RO = headers("readonly")
T0 = pd.Timestamp("2024-03-01", tz="UTC")


def _regimes() -> pd.DataFrame:
    bars = walk(1, 260, start=str(T0), seed=3).assign(symbol="BTC")
    return compute_regimes(bars).assign(source="computed", ingested_at=pd.Timestamp.now(tz="UTC"))


@pytest.fixture
def api(warehouse_url):
    seed(warehouse_url)
    wh = open_warehouse(warehouse_url)
    regimes = _regimes()
    wh.replace_window(MARKET_REGIMES, regimes[MARKET_REGIMES.column_names], T0, T0 + pd.Timedelta(days=30))
    with redis_prefix() as prefix, TestClient(create_app(settings(warehouse_url, REDIS_URL, prefix))) as c:
        yield c, wh, regimes


def test_regime_of_a_symbol_newest_first_with_its_changes(api):
    client, _, regimes = api
    body = client.get("/api/v1/regime/btc", params={"limit": 48}, headers=RO).json()
    btc = regimes[regimes.symbol == "BTC"].sort_values("bar_start", ascending=False).head(48)
    assert body["symbol"] == "BTC" and body["count"] == 48
    assert [pd.Timestamp(r["bar_start"]) for r in body["data"]] == list(btc.bar_start)
    assert body["latest"]["regime"] == btc.regime.iloc[0]
    assert body["latest"]["trend_score"] == pytest.approx(btc.trend_score.iloc[0])
    assert pd.Timestamp(body["latest"]["asof_time"]) == btc.bar_start.iloc[0] + pd.Timedelta(hours=1)
    changed = btc[btc.regime_changed.astype(bool)]
    assert [pd.Timestamp(c["bar_start"]) for c in body["changes"]] == list(changed.bar_start)
    assert all(c["previous_regime"] != c["regime"] for c in body["changes"])


def test_market_wide_regime_and_errors(api):
    client, _, regimes = api
    market = client.get("/api/v1/regime/MARKET", params={"limit": 1}, headers=RO).json()
    assert market["symbol"] == "_MARKET" and market["latest"]["scope"] == "market"
    assert market["latest"]["symbols"] == 1 and market["latest"]["breadth_bull"] in (0.0, 1.0)
    assert client.get("/api/v1/regime/ETH", headers=RO).status_code == 404  # known coin, no regime yet
    assert client.get("/api/v1/regime/NOPE", headers=RO).status_code == 404  # not in the universe
    assert client.get("/api/v1/regime/BTC", params={"limit": 721}, headers=RO).status_code == 422
    assert client.get("/api/v1/regime/BTC").status_code == 401


def test_fear_greed_empty_with_a_note_then_newest_first(api):
    client, wh, _ = api
    empty = client.get("/api/v1/fear-greed", headers=RO).json()
    assert empty["count"] == 0 and empty["latest"] is None and "no recording" in empty["note"]
    days = [date(2024, 3, 1) + timedelta(days=k) for k in range(5)]
    rows = pd.DataFrame({"date": days, "value": [20, 35, 50, 61, 80],
                         "classification": ["Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed"],
                         "available_at": [pd.Timestamp(d, tz="UTC") for d in days], "source": "test",
                         "ingested_at": pd.Timestamp.now(tz="UTC")})
    wh.replace_window(FEAR_GREED_INDEX, rows, date(2024, 3, 1), date(2024, 3, 6))
    body = client.get("/api/v1/fear-greed", params={"limit": 3}, headers=RO).json()
    assert body["count"] == 3 and body["note"] is None
    assert [r["value"] for r in body["data"]] == [80, 61, 50]
    assert body["latest"]["classification"] == "Extreme Greed" and body["latest"]["date"] == "2024-03-05"
    assert client.get("/api/v1/fear-greed", params={"limit": 0}, headers=RO).status_code == 422
    assert client.get("/api/v1/fear-greed").status_code == 401
