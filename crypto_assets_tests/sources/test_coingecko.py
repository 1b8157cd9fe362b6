"""CoinGecko parsers and endpoints against the real recorded payloads."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from crypto_assets.sources.client import SourceError
from crypto_assets.sources.coingecko import (
    CoinGecko,
    ohlc_days_covering,
    parse_market_chart,
    parse_markets,
    parse_ohlc,
)
from crypto_assets_tests.paths import DATA

DATA = DATA / "coingecko"


def payload(name: str):
    return json.loads((DATA / name).read_text())


def test_markets_usd():
    frame = parse_markets(payload("market_data_for_a_coin__1_http200.json"))
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.coingecko_id, row.provider_symbol, row.price_usd) == ("bitcoin", "BTC", 49053)
    assert row.market_cap_usd == 917825524991 and row.volume_24h_usd == 61679663434
    # observed_at is the provider's last_updated, not the time we asked.
    assert row.observed_at == pd.Timestamp("2021-05-15T15:59:43.867Z")


def test_markets_multiple_coins():
    frame = parse_markets(payload("market_data_for_multiple_coins_in_eth__1_http200.json"))
    assert list(frame.coingecko_id) == ["bitcoin", "ethereum"]
    assert frame.observed_at.notna().all()


@pytest.mark.parametrize(
    "name, points, spacing",
    [
        ("minutely_historical_prices_for_one_coin__1_http200.json", 288, pd.Timedelta("5min")),
        ("hourly_historical_prices_for_one_coin__1_http200.json", 722, pd.Timedelta("1h")),
        ("daily_historical_prices_for_one_coin__1_http200.json", 91, pd.Timedelta("1D")),
    ],
)
def test_market_chart_granularities(name, points, spacing):
    raw = payload(name)
    frame = parse_market_chart(raw)
    assert len(frame) == points
    assert str(frame.observed_at.dt.tz) == "UTC"
    median = frame.observed_at.diff().median()
    assert abs(median - spacing) < spacing * 0.1
    first = raw["prices"][0]
    assert frame.observed_at.iloc[0] == pd.Timestamp(first[0], unit="ms", tz="UTC")
    assert frame.price_usd.iloc[0] == first[1]
    assert frame.market_cap_usd.iloc[0] == raw["market_caps"][0][1]
    assert frame.volume_24h_usd.iloc[0] == raw["total_volumes"][0][1]


def test_ohlc_timestamps_are_close_times():
    raw = payload("ohlc_data_for_one_coin_in_the_last_7_days__1_http200.json")
    frame = parse_ohlc(raw)
    assert len(frame) == len(raw) and set(frame.interval) == {"4h"}
    first = raw[0]
    assert frame.bar_end.iloc[0] == pd.Timestamp(first[0], unit="ms", tz="UTC")
    assert frame.bar_start.iloc[0] == frame.bar_end.iloc[0] - pd.Timedelta("4h")
    assert list(frame.iloc[0][["open", "high", "low", "close"]]) == first[1:]


def test_ohlc_days_covering():
    now = pd.Timestamp("2021-05-15 16:00", tz="UTC")
    assert ohlc_days_covering(now - pd.Timedelta("3h"), now) == 1
    assert ohlc_days_covering(now - pd.Timedelta("5D"), now) == 7
    assert ohlc_days_covering(now - pd.Timedelta("40D"), now) == 90


def _replaying(status: int, name: str) -> CoinGecko:
    body = (DATA / name).read_bytes()
    cg = CoinGecko(mode="live")
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    cg._client = cg.make_client(transport=transport, sleep=lambda s: None)
    return cg


def test_real_422_body_surfaces_without_retry():
    cg = _replaying(422, "market_data_for_a_coin__2_http422.json")
    with pytest.raises(SourceError, match="Missing parameter vs_currency") as err:
        cg.markets(["bitcoin"])
    assert err.value.status == 422 and cg.client.requests_made == 1


def test_real_500_body_is_retried_then_names_the_source():
    cg = _replaying(500, "ohlc_data_for_one_coin_in_the_last_7_days__2_http500.json")
    with pytest.raises(SourceError, match=r"^coingecko: failed after 5 attempts.*Internal Server Error"):
        cg.ohlc("bitcoin", 7)
    assert cg.client.requests_made == 5


@pytest.mark.slow
def test_markets_pages_at_most_250():
    pages = []

    def handler(request):
        pages.append(dict(request.url.params))
        n = 250 if request.url.params["page"] == "1" else 70
        return httpx.Response(200, json=[{"id": f"c{i}", "current_price": 1.0} for i in range(n)])

    cg = CoinGecko(mode="live")
    cg._client = cg.make_client(transport=httpx.MockTransport(handler))
    rows = cg.markets([f"c{i}" for i in range(320)])
    assert len(rows) == 320 and [p["page"] for p in pages] == ["1", "2"]
    assert all(p["per_page"] == "250" for p in pages)
    with pytest.raises(ValueError):
        cg.markets(per_page=251)
