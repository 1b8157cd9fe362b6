"""Wrong-shaped provider bodies fail with an error naming the source, the coin or series and
the URL (key removed), for every JSON source, through one mechanism (sources/parsing.py).

The bodies below are CONSTRUCTED: the shapes a provider sends when something is off (an error
object where a list is expected, a list where an object is expected, rows of the wrong type),
served through an httpx.MockTransport to the real resources and parsers.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import httpx
import pytest

from crypto_assets.assets.ingest.prices import price_observations
from crypto_assets.assets.reference import coin_universe
from crypto_assets.loading import load
from crypto_assets.sources.coingecko import CoinGecko, parse_market_chart, parse_markets, parse_ohlc
from crypto_assets.sources.fred import Fred, parse_observations
from crypto_assets.sources.onchain import BlockchainCom, DefiLlama, parse_blockchain_chart, parse_chain_tvl
from crypto_assets.sources.parsing import SourceParseError
from crypto_assets.sources.series_catalog import macro_series_catalog
from crypto_assets.sources.yahoo import YahooFinance, parse_chart
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource

KEY = "k3y-SECRET-0123456789"
START, END = datetime(2021, 5, 14, tzinfo=timezone.utc), datetime(2021, 5, 15, tzinfo=timezone.utc)
GOLD = next(s for s in macro_series_catalog() if s.id == "GOLD")


def serving(resource_cls, body, **config):
    resource = resource_cls(mode="live", **config)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    resource._client = resource.make_client(transport=transport, sleep=lambda s: None)
    return resource


CASES = {
    # name: (resource, config, body, fetch-and-parse, source, subject, url part)
    "coingecko chart: a list, not an object": (
        CoinGecko, {"api_key": KEY}, [[1, 2]],
        lambda r: parse_market_chart(r.market_chart_range("bitcoin", START, END)),
        "coingecko", "coin bitcoin", "/coins/bitcoin/market_chart/range?"),
    "coingecko chart: points of the wrong shape": (
        CoinGecko, {"api_key": KEY}, {"prices": 5},
        lambda r: parse_market_chart(r.market_chart_range("bitcoin", START, END)),
        "coingecko", "coin bitcoin", "/coins/bitcoin/market_chart/range?"),
    "coingecko ohlc: an error object, not a list": (
        CoinGecko, {"api_key": KEY}, {"error": "coin not found"},
        lambda r: parse_ohlc(r.ohlc("bitcoin", 7)),
        "coingecko", "coin bitcoin", "/coins/bitcoin/ohlc?"),
    "coingecko ohlc: candles at no known spacing": (
        CoinGecko, {"api_key": KEY}, [[0, 1, 1, 1, 1], [60_000, 1, 1, 1, 1], [120_000, 1, 1, 1, 1]],
        lambda r: parse_ohlc(r.ohlc("bitcoin", 7)),
        "coingecko", "coin bitcoin", "/coins/bitcoin/ohlc?"),
    "coingecko markets: rows that are not objects": (
        CoinGecko, {"api_key": KEY}, ["bitcoin", "ethereum"],
        lambda r: parse_markets(r.markets(["bitcoin", "ethereum"])),
        "coingecko", "coins/markets page 1", "/coins/markets?"),
    "yahoo: a list, not an object": (
        YahooFinance, {}, [{"chart": None}],
        lambda r: parse_chart(r.daily_chart("GC=F", START, END), GOLD),
        "yahoo", "series GC=F", "/v8/finance/chart/GC=F?"),
    "yahoo: result of the wrong shape": (
        YahooFinance, {}, {"chart": {"result": "oops"}},
        lambda r: parse_chart(r.daily_chart("GC=F", START, END), GOLD),
        "yahoo", "series GC=F", "/v8/finance/chart/GC=F?"),
    "fred: a list, not an object": (
        Fred, {"api_key": KEY}, [],
        lambda r: parse_observations(r.observations("DGS10", START, END)),
        "fred", "series DGS10", "series_id=DGS10"),
    "fred: observations that are not objects": (
        Fred, {"api_key": KEY}, {"observations": ["2021-05-14"]},
        lambda r: parse_observations(r.observations("DGS10", START, END)),
        "fred", "series DGS10", "series_id=DGS10"),
    "blockchain.com: a list, not an object": (
        BlockchainCom, {}, [1, 2, 3],
        lambda r: parse_blockchain_chart(r.chart("hash-rate", START, END), "TH/s"),
        "blockchain_com", "chart hash-rate", "/charts/hash-rate?"),
    "defillama: an object, not a list": (
        DefiLlama, {}, {"message": "chain not found"},
        lambda r: parse_chain_tvl(r.chain_tvl("Ethereum")),
        "defillama", "chain Ethereum", "/v2/historicalChainTvl/Ethereum"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_wrong_shaped_body_names_source_subject_and_url(case):
    resource_cls, config, body, fetch_and_parse, source, subject, url_part = CASES[case]
    resource = serving(resource_cls, body, **config)
    with pytest.raises(SourceParseError) as failure:
        fetch_and_parse(resource)
    message = str(failure.value)
    assert message.startswith(f"{source}: {subject}: ")
    assert url_part in failure.value.url and failure.value.url in message
    assert KEY not in message and KEY not in failure.value.url
    assert failure.value.status is None and failure.value.source == source


def test_a_parser_on_a_plain_payload_keeps_its_own_error():
    with pytest.raises(AttributeError):
        parse_market_chart([[1, 2]])  # a test or notebook feeding a payload directly


@pytest.mark.slow
def test_one_coin_with_a_wrong_shaped_body_is_missing_and_the_run_goes_on(tmp_path):
    """Through the asset: BTC's body is a list (CONSTRUCTED), ETH's the real recording shape."""
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    real_points = {"prices": [[1621000800000, 3900.5]], "market_caps": [], "total_volumes": []}

    def handler(request: httpx.Request) -> httpx.Response:
        if "/coins/bitcoin/" in request.url.path:
            return httpx.Response(200, json=[["not", "an", "object"]])
        return httpx.Response(200, json=real_points)

    class Scripted(CoinGecko):
        def live_transport(self):
            return httpx.MockTransport(handler)

        def make_client(self, log=None, **kwargs):
            return super().make_client(log=log, sleep=lambda s: None, **kwargs)  # no live rate spacing

    resources = {"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                 "coingecko": Scripted(mode="live", api_key=KEY)}
    universe = dg.materialize([coin_universe], resources={**resources, "coingecko": CoinGecko(mode="replay")})
    assert universe.success
    result = dg.materialize([coin_universe, price_observations], selection=["price_observations"],
                            resources=resources, partition_key="2021-05-14-14:00",
                            run_config={"ops": {"price_observations": {"config": {"mode": "history"}}}})
    assert result.success
    meta = result.asset_materializations_for_node("price_observations")[0].metadata
    reason = meta["symbols_missing"].value["BTC"]
    assert reason.startswith("coingecko: coin bitcoin: expected a JSON object, got a JSON array")
    assert "/coins/bitcoin/market_chart/range?" in reason and KEY not in reason
    assert "ETH" in set(load("price_observations", warehouse_url=url).symbol)
