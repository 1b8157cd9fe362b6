"""`derivatives_metrics`: perpetual-swap funding, open interest, mark/index and basis, on recorded
real exchange answers (ccxt's static test cases, crypto_assets_tests/data/exchanges/SOURCES.md).

What is recorded: bybit's CURRENT funding rate (its /v5/market/tickers answer, 2024-11-04 14:21 UTC),
bybit's current linear open interest (2025-02-16 17:00 UTC) and okx's current BTC-USDT-SWAP open
interest (2024-10-12 10:18 UTC). What is NOT: any funding-rate or open-interest HISTORY, for binance,
bybit or okx, and any binance derivatives answer. These tests therefore check the current figures
through the real ccxt parsing and our SourceClient path; the history code path has no recording to
be tested on, and nothing here stands in for one.
"""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from crypto_assets.assets.ingest.derivatives import collect
from crypto_assets.sources.derivatives import (
    NO_HISTORY_RECORDING,
    SwapMarket,
    fetch_metrics,
    funding_snapshot_row,
    map_swaps,
    open_derivatives,
    open_interest_row,
)
from crypto_assets.sources.exchanges import Exchanges
from crypto_assets_tests.paths import DATA

DATA = DATA / "exchanges"
UTC = "UTC"
BYBIT = SwapMarket("bybit", "BTC", "BTC/USDT:USDT", "USDT", 1.0)
OKX = SwapMarket("okx", "BTC", "BTC/USDT:USDT", "USDT", 0.01)


def case(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def serve(body, seen: list | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(200, json=body)
    return httpx.MockTransport(handler)


def _client(exchange: str, body, seen=None):
    client = open_derivatives(Exchanges(mode="replay"), exchange, transport=serve(body, seen))
    client.markets()  # replay markets (resources/replay/<exchange>/markets.yaml): the recorded perpetual
    return client


def _without(d: dict, *keys) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


@pytest.mark.parametrize(("exchange", "name", "method"), [
    ("bybit", "bybit__fetchFundingRate__0", "fetch_funding_rate"),
    ("bybit", "bybit__fetchOpenInterest__0_linear", "fetch_open_interest"),
    ("okx", "okx__fetchOpenInterest__0_linear", "fetch_open_interest"),
])
def test_ccxt_parses_the_recorded_answers_through_the_project_client(exchange, name, method):
    """ccxt, its HTTP answered by the recorded body through our SourceClient adapter, gives ccxt's
    expected result. (`interval` of the funding case comes from bybit's instrument info, which was
    not recorded: the replay market list is minimal, so it is left out of the comparison.)"""
    c = case(name)
    seen: list[httpx.Request] = []
    client = _client(exchange, c["httpResponse"], seen)
    got = getattr(client.ccxt, method)(c["input"][0])
    assert _without(got, "interval") == _without(c["parsedResponse"], "interval")
    assert len(seen) == 1 and client.client.requests_made == 1


def test_bybit_funding_snapshot_row_has_only_the_answers_figures():
    c = case("bybit__fetchFundingRate__0")
    client = _client("bybit", c["httpResponse"])
    row = funding_snapshot_row(BYBIT, client.ccxt.fetch_funding_rate("BTC/USDT:USDT"))
    info = c["httpResponse"]["result"]["list"][0]
    assert row["observed_at"] == row["available_at"] == pd.Timestamp("2024-11-04 14:21:20.834", tz=UTC)
    assert row["funding_rate"] == 0.0001
    assert row["funding_time"] == pd.Timestamp("2024-11-04 16:00", tz=UTC)  # settlement it applies to
    assert (row["mark_price"], row["index_price"]) == (68591.46, 68599.9)
    assert row["basis"] == pytest.approx(68591.46 / 68599.9 - 1)
    assert row["basis"] < 0  # the perpetual traded below the spot index
    assert row["open_interest"] == float(info["openInterest"]) == 69604.924
    assert row["open_interest_value"] == 4774303360.35 and row["value_currency"] == "USDT"


def test_okx_open_interest_in_base_currency_and_usd_value():
    c = case("okx__fetchOpenInterest__0_linear")
    client = _client("okx", c["httpResponse"])
    row = open_interest_row(OKX, client.ccxt.fetch_open_interest("BTC/USDT:USDT"))
    raw = c["httpResponse"]["data"][0]
    assert row["open_interest"] == pytest.approx(float(raw["oiCcy"]))  # BTC, not the contract count
    assert row["open_interest"] == pytest.approx(float(raw["oi"]) * 0.01)  # contracts x contract size agrees
    assert row["open_interest_value"] == pytest.approx(float(raw["oiUsd"])) and row["value_currency"] == "USD"
    assert row["observed_at"] == pd.Timestamp(int(raw["ts"]), unit="ms", tz=UTC)
    # OKX's open-interest answer has no funding, mark or index: absent, never estimated
    assert row["funding_rate"] is None and row["mark_price"] is None and row["basis"] is None


def test_bybit_open_interest_uses_contract_size_and_leaves_the_value_absent():
    c = case("bybit__fetchOpenInterest__0_linear")
    client = _client("bybit", c["httpResponse"])
    row = open_interest_row(BYBIT, client.ccxt.fetch_open_interest("BTC/USDT:USDT", {"limit": 1}))
    assert row["open_interest"] == 62129.455
    assert row["open_interest_value"] is None and row["value_currency"] is None  # not in this answer
    assert row["observed_at"] == pd.Timestamp("2025-02-16 17:00", tz=UTC)


def test_swap_mapping_takes_linear_perpetuals_only():
    markets = [
        {"symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "spot": True, "active": True},
        {"symbol": "BTC/USD:BTC", "base": "BTC", "settle": "BTC", "swap": True, "linear": False, "inverse": True},
        {"symbol": "BTC/USDC:USDC", "base": "BTC", "settle": "USDC", "swap": True, "linear": True, "contractSize": 1},
        {"symbol": "BTC/USDT:USDT", "base": "BTC", "settle": "USDT", "swap": True, "linear": True,
         "contractSize": 0.001},
        {"symbol": "ETH/USDT:USDT", "base": "ETH", "settle": "USDT", "swap": True, "linear": True, "active": False},
    ]
    got = map_swaps(markets, "x", ["BTC", "ETH"], ("USDT", "USDC"))
    assert list(got) == ["BTC"] and got["BTC"].market == "BTC/USDT:USDT" and got["BTC"].contract_size == 0.001
    assert map_swaps(markets, "x", ["BTC"], ("USDC",))["BTC"].market == "BTC/USDC:USDC"


def test_a_failing_call_costs_that_symbol_and_kind_only():
    """A 404 (no such answer) on the funding call leaves the open-interest figure of the same run."""
    oi = case("okx__fetchOpenInterest__0_linear")["httpResponse"]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/open-interest"):
            return httpx.Response(200, json=oi)
        return httpx.Response(404, json={"code": "51001", "msg": "Instrument ID does not exist"})

    client = open_derivatives(Exchanges(mode="replay"), "okx", transport=httpx.MockTransport(handler))
    client.markets()
    t = pd.Timestamp("2024-10-12 10:00", tz=UTC)
    result = fetch_metrics(client, {"BTC": OKX}, t, t + pd.Timedelta(hours=1), snapshot=True, history=False)
    assert [r["kind"] for r in result.rows] == ["open_interest"]
    assert list(result.failures) == ["BTC:funding_snapshot"]


def test_collect_in_replay_keeps_the_recorded_snapshots_of_their_window_only():
    exchanges = Exchanges(mode="replay")
    hour = pd.Timestamp("2024-11-04 14:00", tz=UTC)
    frame, meta = collect(exchanges, ["BTC", "ETH"], hour, hour + pd.Timedelta(hours=1))
    assert list(zip(frame.exchange, frame.kind)) == [("bybit", "funding_snapshot")]
    assert frame.iloc[0].funding_rate == 0.0001 and frame.iloc[0].open_interest == 69604.924
    assert meta["history"] == NO_HISTORY_RECORDING
    assert meta["run_not_listed"]["binance"] == ["BTC", "ETH"]  # no binance derivatives recording
    assert "bybit:BTC:open_interest@2025-02-16T17:00:00+00:00" in meta["run_outside_window"]
    assert "empty_reason" not in meta

    other = pd.Timestamp("2024-01-30 16:00", tz=UTC)
    empty, meta = collect(exchanges, ["BTC"], other, other + pd.Timedelta(hours=1))
    assert empty.empty
    assert "no recording of funding-rate or open-interest history" in meta["empty_reason"]
    assert "outside this window" in meta["empty_reason"]


def test_history_calls_only_history_endpoints_and_a_missing_answer_is_a_listed_failure():
    """An old window in live mode asks for history only (a current snapshot would describe now, not the
    window). There is no recording of a history answer, so the endpoints answer 404 here: the run
    lists the failure per (symbol, kind) and invents nothing."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(404, json={"code": "51001", "msg": "no recording"})

    client = open_derivatives(Exchanges(mode="live"), "okx", transport=httpx.MockTransport(handler),
                              sleep=lambda _s: None)
    client.ccxt.set_markets([{"id": "BTC-USDT-SWAP", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT",
                              "settle": "USDT", "type": "swap", "spot": False, "swap": True, "contract": True,
                              "linear": True, "contractSize": 0.01, "active": True}])
    client._markets = list(client.ccxt.markets.values())
    t = pd.Timestamp("2024-10-12 10:00", tz=UTC)
    result = fetch_metrics(client, {"BTC": OKX}, t, t + pd.Timedelta(hours=1), snapshot=False, history=True)
    assert result.rows == []
    assert sorted(result.failures) == ["BTC:funding_history", "BTC:open_interest_history"]
    assert paths and not any(p.endswith("/public/open-interest") or p.endswith("/public/funding-rate") for p in paths)


@pytest.mark.slow
def test_replay_through_dagster_on_sqlite_and_mysql(warehouse_url):
    """The real graph in replay: the recorded window has bybit's funding snapshot (twice: idempotent),
    a window without recordings lands empty with its reason in the metadata."""
    import dagster as dg

    from crypto_assets.loading import load
    from crypto_assets.warehouse.resource import get_warehouse
    from crypto_assets_tests.graph_helpers import ProjectGraph

    get_warehouse.cache_clear()
    graph = ProjectGraph(warehouse_url)
    with dg.instance_for_test() as instance:
        assert graph.materialize(instance, ["coin_universe"]).success
        for _ in range(2):
            result = graph.materialize(instance, ["derivatives_metrics"], partition="2024-11-04-14:00")
            assert result.success
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        assert meta["dagster/row_count"].value == 1
        assert meta["run_rows_by_exchange_kind"].value == {"bybit:funding_snapshot": 1}
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks.get("schema_matches_code") is True
        empty = graph.materialize(instance, ["derivatives_metrics"], partition="2024-01-30-16:00")
        meta = empty.get_asset_materialization_events()[0].materialization.metadata
        assert meta["dagster/row_count"].value == 0
        assert "no recording of funding-rate or open-interest history" in meta["empty_reason"].value
    rows = load("derivatives_metrics", warehouse_url=warehouse_url)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row.exchange, row.kind, row.funding_rate, row.mark_price) == ("bybit", "funding_snapshot", 0.0001, 68591.46)
    assert pd.Timestamp(row.available_at) == pd.Timestamp("2024-11-04 14:21:20.834", tz=UTC)
    assert row.source == "replay:bybit"
