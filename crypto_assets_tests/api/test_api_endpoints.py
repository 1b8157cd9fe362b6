"""Each endpoint answers what the warehouse holds (SQLite always, MySQL when configured)."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from crypto_assets.api import create_app
from crypto_assets.loading import load
from crypto_assets_tests.api.api_support import REDIS_URL, headers, redis_prefix, seed, settings

RO = headers("readonly")
TR = headers("trading")


def _seeded_client(url):
    now = pd.Timestamp.now(tz="UTC")
    frames = seed(url, now)
    with redis_prefix() as prefix, TestClient(create_app(settings(url, REDIS_URL, prefix))) as client:
        yield client, frames, url, now


@pytest.fixture
def seeded(warehouse_url):
    yield from _seeded_client(warehouse_url)


@pytest.fixture
def seeded_sqlite(sqlite_url):
    """For input validation, which does not depend on the database."""
    yield from _seeded_client(sqlite_url)


def _times(values) -> list[pd.Timestamp]:
    return [pd.Timestamp(v) for v in values]


def test_current_price_is_the_latest_observation(seeded):
    client, frames, _, _ = seeded
    btc = frames["price_observations"].query("symbol == 'BTC'").sort_values("observed_at").iloc[-1]
    body = client.get("/api/v1/prices/current/btc", headers=RO).json()
    assert body["symbol"] == "BTC"
    assert pd.Timestamp(body["observation"]["observed_at"]) == btc.observed_at
    assert body["observation"]["price_usd"] == btc.price_usd  # exact, including the 1e-9 part
    assert body["observation"]["source"] == "test"


def test_historical_prices_page_through_the_whole_range(seeded):
    client, frames, url, now = seeded
    start, end = now - pd.Timedelta("2h"), now
    expected = load("price_observations", start, end, symbols=["BTC"], warehouse_url=url)
    assert len(expected) > 15
    params = {"start": start.isoformat(), "end": end.isoformat(), "limit": 7}
    rows, pages, token = [], 0, None
    while True:
        page = client.get("/api/v1/prices/historical/BTC", params={**params, "page_token": token} if token else params,
                          headers=RO)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["data"]) <= 7
        rows += body["data"]
        pages += 1
        token = body["next_page_token"]
        if token is None:
            break
    assert pages == -(-len(expected) // 7)
    assert _times(r["observed_at"] for r in rows) == expected.observed_at.tolist()
    assert [r["price_usd"] for r in rows] == expected.price_usd.tolist()


def test_historical_prices_per_interval_are_real_last_observations(seeded):
    client, _, url, now = seeded
    start, end = (now - pd.Timedelta("3h")).floor("h"), now
    body = client.get("/api/v1/prices/historical/ETH", params={"start": start.isoformat(), "end": end.isoformat(),
                                                                "interval": "1h"}, headers=RO).json()
    raw = load("price_observations", start, end, symbols=["ETH"], warehouse_url=url)
    expected = raw.groupby(raw.observed_at.dt.floor("1h")).tail(1)
    assert _times(r["observed_at"] for r in body["data"]) == expected.observed_at.tolist()
    assert [r["price_usd"] for r in body["data"]] == expected.price_usd.tolist()
    assert _times(r["interval_start"] for r in body["data"]) == expected.observed_at.dt.floor("1h").tolist()


def test_ohlcv_returns_the_requested_interval_only(seeded):
    client, frames, _, _ = seeded
    bars = frames["ohlcv_bars"].query("interval == '1h'")
    body = client.get("/api/v1/ohlcv/BTC", params={"interval": "1h", "start": bars.bar_start.min().isoformat()},
                      headers=RO).json()
    assert [r["interval"] for r in body["data"]] == ["1h"] * len(bars)
    assert _times(r["bar_start"] for r in body["data"]) == bars.bar_start.tolist()
    assert [r["close"] for r in body["data"]] == bars.close.tolist()
    empty = client.get("/api/v1/ohlcv/ETH", headers=RO).json()
    assert empty["count"] == 0 and empty["data"] == []


def test_sentiment_aggregates_items_mentioning_the_ticker(seeded):
    client, _, _, _ = seeded
    day = client.get("/api/v1/sentiment/BTC", params={"window": "24h"}, headers=RO).json()
    # a0 (finbert 0.5, vader 0.1) and a3 (0.9); a1 mentions WBTC only; p1 is 30 h old.
    assert day["items"] == 2 and day["scores"] == 3
    assert day["mean_score"] == pytest.approx(((0.5 + 0.1) / 2 + 0.9) / 2)
    assert day["labels"] == {"positive": 2, "neutral": 1, "negative": 0}
    assert {m["model"]: m["scores"] for m in day["by_model"]} == {"finbert": 2, "vader": 1}
    two_days = client.get("/api/v1/sentiment/BTC", params={"window": "2d"}, headers=RO).json()
    assert two_days["items"] == 3
    assert {t["item_type"] for t in two_days["by_item_type"]} == {"news", "social"}


def test_latest_news_newest_first_and_whole_ticker_matches(seeded):
    client, frames, _, _ = seeded
    news = frames["news_articles"].set_index("article_id")
    btc = client.get("/api/v1/news/latest", params={"symbol": "BTC"}, headers=RO).json()
    assert [a["article_id"] for a in btc["data"]] == ["a3", "a0"]  # not a1 (WBTC)
    assert btc["data"][0]["title"] == news.loc["a3", "title"]
    latest = client.get("/api/v1/news/latest", params={"limit": 2}, headers=RO).json()
    assert [a["article_id"] for a in latest["data"]] == ["a4", "a3"]
    assert pd.Timestamp(latest["data"][0]["published_at"]) == news.loc["a4", "published_at"]


def test_technical_latest_rows(seeded):
    client, frames, _, _ = seeded
    ind = frames["technical_indicators"].sort_values("bar_start", ascending=False)
    body = client.get("/api/v1/technical/BTC", params={"limit": 3}, headers=RO).json()
    assert _times(r["bar_start"] for r in body["data"]) == ind.bar_start.tolist()[:3]
    value_col = [c for c in ind.columns if c not in ("symbol", "bar_start", "bar_end", "interval", "source",
                                                     "ingested_at")][0]
    assert body["data"][0][value_col] == ind[value_col].iloc[0]
    assert client.get("/api/v1/technical/ETH", headers=RO).status_code == 404


def test_ml_features_current_and_bulk_pages(seeded):
    client, frames, _, _ = seeded
    feats = frames["ml_features"].sort_values(["symbol", "bar_start"], kind="stable").reset_index(drop=True)
    current = client.get("/api/v1/ml-features/ETH/current", headers=TR).json()["features"]
    last_eth = feats[feats.symbol == "ETH"].iloc[-1]
    assert pd.Timestamp(current["bar_start"]) == last_eth.bar_start
    float_cols = [c for c in feats.columns if feats[c].dtype.kind == "f"]
    assert [current[c] for c in float_cols] == [last_eth[c] for c in float_cols]

    params = {"symbols": "eth,BTC,btc", "start": feats.bar_start.min().isoformat(), "limit": 3}
    rows, token = [], None
    for _ in range(20):
        body = client.get("/api/v1/ml-features/bulk", params={**params, **({"page_token": token} if token else {})},
                          headers=TR).json()
        rows += body["data"]
        token = body["next_page_token"]
        if token is None:
            break
    assert body["symbols"] == ["BTC", "ETH"]
    assert [(r["symbol"], pd.Timestamp(r["bar_start"])) for r in rows] == list(zip(feats.symbol, feats.bar_start))
    assert [r[float_cols[-1]] for r in rows] == feats[float_cols[-1]].tolist()
    some = client.get("/api/v1/ml-features/bulk", params={"symbols": "BTC", "columns": float_cols[0]}, headers=TR)
    assert set(some.json()["data"][0]) == {"symbol", "bar_start", float_cols[0]}


def test_health_and_ready_report_latest_partitions(seeded):
    client, frames, _, now = seeded
    health = client.get("/api/v1/health", headers=RO).json()
    by_name = {d["dataset"]: d for d in health["datasets"]}
    last_price = frames["price_observations"].observed_at.max()
    assert by_name["price_observations"]["latest_partition"] == last_price.floor("h").strftime("%Y-%m-%d-%H:%M")
    assert by_name["price_observations"]["state"] == "ok"
    assert 0 <= by_name["price_observations"]["age_seconds"] < 600
    assert by_name["macro_series"]["state"] == "empty"
    ready = client.get("/ready", headers=RO).json()  # details need a key
    assert ready["status"] == "ready" and ready["redis"]["state"] == "ok"
    assert ready["warehouse"]["datasets"]["news_articles"]["state"] == "ok"


def test_unknown_symbol_is_404_with_a_way_to_find_valid_ones(seeded):
    client, _, _, _ = seeded
    for path in ("/api/v1/prices/current/DOGE", "/api/v1/ohlcv/DOGE", "/api/v1/sentiment/DOGE",
                 "/api/v1/news/latest?symbol=DOGE"):
        r = client.get(path, headers=RO)
        assert r.status_code == 404 and "/api/v1/symbols" in r.json()["detail"], path
    r = client.get("/api/v1/ml-features/bulk", params={"symbols": "BTC,DOGE"}, headers=TR)
    assert r.status_code == 404 and "DOGE" in r.json()["detail"]
    listed = client.get("/api/v1/symbols", headers=RO).json()
    assert [s["symbol"] for s in listed["symbols"]] == ["BTC", "ETH", "WBTC"]


@pytest.mark.parametrize("path", [
    "/api/v1/prices/historical/BTC?start=2025-01-02&end=2025-01-01",
    "/api/v1/prices/historical/BTC?start=yesterday",
    "/api/v1/prices/historical/BTC?end=9999-01-01T00:00:00",
    "/api/v1/prices/historical/BTC?limit=0",
    "/api/v1/prices/historical/BTC?limit=1000000",
    "/api/v1/prices/historical/BTC?interval=7min",
    "/api/v1/prices/historical/BTC?page_token=not-a-token",
    "/api/v1/ohlcv/BTC?interval=1;DROP",
    "/api/v1/sentiment/BTC?window=30d",
    "/api/v1/news/latest?limit=101",
    "/api/v1/prices/current/B%20TC",
])
def test_bad_input_is_422(seeded_sqlite, path):
    client, _, _, _ = seeded_sqlite
    assert client.get(path, headers=RO).status_code == 422


def test_page_token_of_another_query_is_refused(seeded_sqlite):
    client, _, _, _ = seeded_sqlite
    first = client.get("/api/v1/prices/historical/BTC", params={"limit": 2}, headers=RO).json()
    reused = client.get("/api/v1/prices/historical/ETH", params={"limit": 2, "page_token": first["next_page_token"]},
                        headers=RO)
    assert reused.status_code == 422 and "another query" in reused.json()["detail"]
    too_many = ",".join(f"S{i}" for i in range(51))
    assert client.get("/api/v1/ml-features/bulk", params={"symbols": too_many}, headers=TR).status_code == 422
