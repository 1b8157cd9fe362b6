"""/api/v1/sentiment/stock/{symbol} and /api/v1/sentiment/crypto/{symbol}: the scores of one market's items
(market_type), on the seeded test warehouse of the API tests (rows say source='test')."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from crypto_assets.api import create_app
from crypto_assets.tables import table
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.api.api_support import REDIS_URL, headers, redis_prefix, seed, settings

RO = headers("readonly")
# the seeded scores (api_support.seed): a0 finbert 0.5 + vader 0.1 (BTC|ETH), a1 -0.7 (WBTC), a3 0.9 (BTC),
# a4 -0.2 (ETH), p1 0.3 (BTC, social, 30 h old). Here a0 and a4 come from markets feeds.
MARKETS = {"a0": "stock", "a1": "crypto", "a3": "crypto", "a4": "stock", "p1": "crypto"}


@pytest.fixture
def client(warehouse_url):
    now = pd.Timestamp.now(tz="UTC")
    frames = seed(warehouse_url, now)
    scores = frames["sentiment_scores"].assign(market_type=lambda f: f.item_id.map(MARKETS))
    wh = open_warehouse(warehouse_url)
    start = now.floor("h") - pd.Timedelta("3h")
    wh.replace_window(table("sentiment_scores"), scores, start - pd.Timedelta("2D"), now.floor("h") + pd.Timedelta("1h"))
    wh.dispose()
    with redis_prefix() as prefix, TestClient(create_app(settings(warehouse_url, REDIS_URL, prefix))) as c:
        yield c


def test_stock_and_crypto_sentiment_keep_only_their_market(client):
    stock = client.get("/api/v1/sentiment/stock/BTC", params={"window": "24h"}, headers=RO).json()
    assert stock["market_type"] == "stock" and stock["items"] == 1 and stock["scores"] == 2
    assert stock["mean_score"] == pytest.approx((0.5 + 0.1) / 2)
    assert {m["model"] for m in stock["by_model"]} == {"finbert", "vader"}
    crypto = client.get("/api/v1/sentiment/crypto/BTC", params={"window": "24h"}, headers=RO).json()
    assert crypto["market_type"] == "crypto" and crypto["items"] == 1 and crypto["mean_score"] == pytest.approx(0.9)
    two_days = client.get("/api/v1/sentiment/crypto/BTC", params={"window": "2d"}, headers=RO).json()
    assert two_days["items"] == 2 and {t["item_type"] for t in two_days["by_item_type"]} == {"news", "social"}
    eth = client.get("/api/v1/sentiment/stock/ETH", headers=RO).json()
    assert eth["items"] == 2 and eth["mean_score"] == pytest.approx(((0.5 + 0.1) / 2 - 0.2) / 2)
    # the market-blind route still counts both markets and says no market
    both = client.get("/api/v1/sentiment/BTC", params={"window": "24h"}, headers=RO).json()
    assert both["items"] == 2 and both.get("market_type") is None


def test_market_routes_need_a_key_and_validate_like_the_others(client):
    assert client.get("/api/v1/sentiment/stock/BTC").status_code == 401
    r = client.get("/api/v1/sentiment/crypto/DOGE", headers=RO)
    assert r.status_code == 404 and "/api/v1/symbols" in r.json()["detail"]
    assert client.get("/api/v1/sentiment/stock/BTC", params={"window": "30d"}, headers=RO).status_code == 422
    assert client.get("/api/v1/sentiment/bonds/BTC", headers=RO).status_code == 404


def test_latest_narratives_newest_first_with_parsed_themes(client, warehouse_url):
    from crypto_assets.llm.narratives import strength_columns
    from crypto_assets_tests.api.api_support import frame_for

    # (another limit than below: the response cache only learns of new rows from a materialization)
    empty = client.get("/api/v1/narratives/latest", params={"limit": 5}, headers=RO).json()
    assert empty["count"] == 0 and empty["data"] == [] and "CRYPTO_LLM_URL" in empty["note"]

    hours = pd.date_range("2025-10-01 10:00", periods=3, freq="1h", tz="UTC")
    themes = '[{"coins": ["ETH"], "evidence": [1], "strength": 0.6, "theme": "regulation"}]'
    rows = frame_for(table("news_narratives"), 3, hour_start=hours, status=["ok", "failed", "ok"],
                     themes_json=[themes, None, themes], summary=["first", None, "third"],
                     **{c: [0.6 if c == "strength_regulation" else 0.0, float("nan"), 0.5]
                        for c in strength_columns()})
    wh = open_warehouse(warehouse_url)
    wh.replace_window(table("news_narratives"), rows, hours[0], hours[-1] + pd.Timedelta("1h"))
    wh.dispose()
    got = client.get("/api/v1/narratives/latest", headers=RO).json()
    assert got["count"] == 3 and got["note"] is None
    assert [r["summary"] for r in got["data"]] == ["third", None, "first"]
    assert got["data"][2]["themes"][0]["theme"] == "regulation" and got["data"][1]["themes"] is None
    assert got["data"][2]["strengths"]["regulation"] == 0.6 and got["data"][1]["strengths"]["macro"] is None
    ok = client.get("/api/v1/narratives/latest", params={"status": "ok", "limit": 1}, headers=RO).json()
    assert ok["count"] == 1 and ok["data"][0]["summary"] == "third"
    assert client.get("/api/v1/narratives/latest", params={"limit": 1000}, headers=RO).status_code == 422
    assert client.get("/api/v1/narratives/latest").status_code == 401
