"""GET /api/v1/derivatives/{symbol} and volume in /api/v1/ohlcv, on SQLite and MySQL.

Recorded rows: bybit's current funding snapshot and okx's current open interest parsed from ccxt's
static cases (data/exchanges/SOURCES.md), and binance's recorded BTC/USDT klines as exchange bars.
The paging test adds CONSTRUCTED rows (source "test"): no funding history was ever recorded.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from crypto_assets.api import create_app
from crypto_assets.tables import table
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.api.api_support import REDIS_URL, headers, redis_prefix, seed, settings
from crypto_assets_tests.features.test_features_derivatives import recorded_rows
from crypto_assets_tests.paths import DATA

RO = headers("readonly")
DATA = DATA / "exchanges"
UTC = "UTC"
T16 = pd.Timestamp("2024-01-30 16:00", tz=UTC)


def _binance_bars() -> pd.DataFrame:
    raw = json.loads((DATA / "binance__fetchOHLCV__0_spot_1h.json").read_text())["httpResponse"]
    start = pd.to_datetime([r[0] for r in raw], unit="ms", utc=True)
    return pd.DataFrame({
        "symbol": "BTC", "bar_start": start, "interval": "1h", "bar_end": start + pd.Timedelta("1h"),
        "open": [float(r[1]) for r in raw], "high": [float(r[2]) for r in raw], "low": [float(r[3]) for r in raw],
        "close": [float(r[4]) for r in raw], "volume": [float(r[5]) for r in raw], "n_observations": pd.NA,
        "method": "exchange", "exchange": "binance", "quote": "USDT", "quote_volume": [float(r[7]) for r in raw],
        "trade_count": [int(r[8]) for r in raw], "source": "replay:binance", "ingested_at": pd.Timestamp.now(tz=UTC),
    })


def _tie_rows() -> pd.DataFrame:
    """CONSTRUCTED: three exchanges' settled funding at the same three instants (test rows)."""
    rows = []
    for h in (0, 8, 16):
        t = pd.Timestamp("2024-11-05", tz=UTC) + pd.Timedelta(hours=h)
        for i, exchange in enumerate(("binance", "bybit", "okx")):
            rows.append({"exchange": exchange, "symbol": "BTC", "kind": "funding_history", "observed_at": t,
                         "available_at": t, "funding_time": t, "funding_rate": 0.0001 * (i + 1)})
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=table("derivatives_metrics").column_names).assign(
        source="test", ingested_at=pd.Timestamp.now(tz=UTC))


@pytest.fixture
def client(warehouse_url):
    now = pd.Timestamp.now(tz=UTC)
    seed(warehouse_url, now)
    wh = open_warehouse(warehouse_url)
    spec = table("derivatives_metrics")
    recorded = recorded_rows().assign(source=lambda f: "replay:" + f.exchange, ingested_at=now)
    derivatives = pd.concat([recorded, _tie_rows()], ignore_index=True)[spec.column_names]
    wh.replace_window(spec, derivatives, pd.Timestamp("2024-01-01", tz=UTC), pd.Timestamp("2025-01-01", tz=UTC))
    wh.replace_window(table("ohlcv_bars"), _binance_bars(), T16, T16 + pd.Timedelta("3h"))
    with redis_prefix() as prefix, TestClient(create_app(settings(warehouse_url, REDIS_URL, prefix))) as c:
        yield c


def test_derivatives_route_returns_the_recorded_figures_with_their_availability(client):
    body = client.get("/api/v1/derivatives/btc", params={"start": "2024-10-01", "end": "2024-11-05",
                                                         "kind": "funding_snapshot"}, headers=RO).json()
    assert body["symbol"] == "BTC" and body["count"] == 1 and body["kind"] == "funding_snapshot"
    row = body["data"][0]
    assert (row["exchange"], row["funding_rate"], row["mark_price"], row["index_price"]) == \
        ("bybit", 0.0001, 68591.46, 68599.9)
    assert pd.Timestamp(row["available_at"]) == pd.Timestamp("2024-11-04 14:21:20.834", tz=UTC)
    assert row["basis"] == pytest.approx(68591.46 / 68599.9 - 1)
    okx = client.get("/api/v1/derivatives/BTC", params={"start": "2024-10-01", "end": "2024-11-05",
                                                        "exchange": "okx"}, headers=RO).json()
    assert [r["kind"] for r in okx["data"]] == ["open_interest"]
    assert okx["data"][0]["funding_rate"] is None and okx["data"][0]["mark_price"] is None  # not given: null


def test_derivatives_paging_never_splits_rows_of_one_instant(client):
    params = {"start": "2024-11-05", "end": "2024-11-06", "kind": "funding_history", "limit": 4}
    seen, pages, token = [], [], None
    while True:
        page = client.get("/api/v1/derivatives/BTC", params={**params, "page_token": token} if token else params,
                          headers=RO)
        assert page.status_code == 200, page.text
        body = page.json()
        pages.append([(r["observed_at"], r["exchange"]) for r in body["data"]])
        seen += pages[-1]
        token = body["next_page_token"]
        if not token:
            break
    assert len(seen) == 9 and len(set(seen)) == 9  # every row once
    assert [len(p) for p in pages] == [3, 3, 3]  # limit 4 would split an instant of 3 exchanges
    single = client.get("/api/v1/derivatives/BTC", params={**params, "limit": 1}, headers=RO).json()
    assert single["count"] == 3  # a group larger than the limit comes whole


def test_derivatives_route_validates_and_authenticates(client):
    assert client.get("/api/v1/derivatives/BTC").status_code == 401
    assert client.get("/api/v1/derivatives/BTC", params={"kind": "liquidations"}, headers=RO).status_code == 422
    assert client.get("/api/v1/derivatives/BTC", params={"exchange": "Bin;ance"}, headers=RO).status_code == 422
    assert client.get("/api/v1/derivatives/DOGE", headers=RO).status_code == 404
    empty = client.get("/api/v1/derivatives/ETH", headers=RO).json()
    assert empty["count"] == 0 and empty["data"] == []


def test_ohlcv_returns_exchange_volume(client):
    body = client.get("/api/v1/ohlcv/BTC", params={"interval": "1h", "start": T16.isoformat(),
                                                   "end": (T16 + pd.Timedelta("3h")).isoformat()}, headers=RO).json()
    bars = _binance_bars()
    assert body["count"] == 3
    assert [r["volume"] for r in body["data"]] == bars.volume.tolist()
    assert [r["quote_volume"] for r in body["data"]] == bars.quote_volume.tolist()
    assert [r["trade_count"] for r in body["data"]] == bars.trade_count.tolist()
    assert {(r["method"], r["exchange"], r["quote"]) for r in body["data"]} == {("exchange", "binance", "USDT")}
