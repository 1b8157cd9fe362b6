"""Exchange candles through ccxt, on recorded real exchange payloads.

The recordings (crypto_assets_tests/data/exchanges/, see SOURCES.md there) are ccxt's own static
test cases: the exchange's raw answer and ccxt's expected parsed result. ccxt does the parsing;
these tests check that it runs through the project's HTTP client and replay, and what the
project adds: open-candle dropping, paging, gaps, extras, preference, merge and divergence.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from crypto_assets.assets.ingest.exchange_bars import (
    close_divergence,
    collect_candles,
    live_5m_span,
    merge_exchange_bars,
)
from crypto_assets.sources.catalog import source_spec
from crypto_assets.sources.client import SourceClient, SourceError
from crypto_assets.sources.exchanges import (
    CANDLE_COLUMNS,
    CLIENTS_PER_EXCHANGE,
    Exchanges,
    Market,
    load_exchange_catalog,
    map_markets,
    missing_ranges,
    raw_extras,
    request_plan,
)
from crypto_assets_tests.paths import DATA, REPO

DATA = DATA / "exchanges"
UTC = "UTC"
T16 = pd.Timestamp("2024-01-30 16:00", tz=UTC)


def case(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def serve(body, status: int = 200, headers: dict | None = None, seen: list | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body, headers=headers or {})
    return httpx.MockTransport(handler)


OHLCV_CASES = [
    ("binance", "binance__fetchOHLCV__0_spot_1h"),
    ("kraken", "kraken__fetchOHLCV__0"),
    ("okx", "okx__fetchOHLCV__0_spot_1h"),
    ("bybit", "bybit__fetchOHLCV__0_swap_1h"),
]


@pytest.mark.parametrize(("exchange", "name"), OHLCV_CASES)
def test_ccxt_parses_each_recorded_answer_through_the_project_client(exchange, name):
    """ccxt's fetch_ohlcv with the case's own input, its HTTP answered by the recorded body through
    our SourceClient adapter, gives exactly ccxt's expected parsed result."""
    c = case(name)
    client = Exchanges(mode="replay").open(exchange, transport=serve(c["httpResponse"]))
    client.markets()  # the replay market list (resources/replay/<exchange>/markets.yaml)
    symbol, timeframe, since, limit = c["input"]
    assert client.ccxt.fetch_ohlcv(symbol, timeframe, since, limit) == c["parsedResponse"]
    assert client.client.requests_made == 1


@pytest.mark.parametrize(("exchange", "name"), OHLCV_CASES)
def test_closed_candles_on_replay_equal_ccxts_expectation(exchange, name):
    c = case(name)
    client = Exchanges(mode="replay").open(exchange)
    market = Market(exchange, "BTC", c["input"][0], "USDT")
    result = client.closed_candles(market, T16, T16 + pd.Timedelta(hours=3))
    got = result.candles[["open", "high", "low", "close", "volume"]].values.tolist()
    expected = [row[1:6] for row in c["parsedResponse"] if T16.value // 10**6 <= row[0] < (T16.value // 10**6) + 3 * 3_600_000]
    assert got == expected
    assert list(result.candles.bar_start) == [T16 + pd.Timedelta(hours=h) for h in range(3)]
    assert result.gaps == []


def test_kraken_open_candle_is_dropped_and_counted():
    # Kraken's last OHLC row is the uncommitted candle (2024-02-01 15:00 in the recording).
    client = Exchanges(mode="replay").open("kraken")
    result = client.closed_candles(Market("kraken", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(days=3),
                                   now=pd.Timestamp("2024-02-01 15:30", tz=UTC))
    assert result.open_dropped == 1
    assert pd.Timestamp("2024-02-01 15:00", tz=UTC) not in set(result.candles.bar_start)
    assert result.candles.bar_start.max() == pd.Timestamp("2024-01-30 19:00", tz=UTC)
    # Everything after 19:00 up to the last closed hour before `now` is a listed gap.
    assert result.gaps == [["2024-01-30T20:00:00+00:00", "2024-02-01T14:00:00+00:00"]]
    assert list(result.candles.trade_count) == [126, 127, 434, 137]  # Kraken's `count` field


def test_candle_not_closed_at_answer_time_is_dropped():
    client = Exchanges(mode="replay").open("binance")
    result = client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=3),
                                   now=pd.Timestamp("2024-01-30 17:30", tz=UTC))
    assert list(result.candles.bar_start) == [T16]
    assert result.open_dropped == 1


def test_okx_unconfirmed_candle_is_dropped():
    body = case("okx__fetchOHLCV__0_spot_1h")["httpResponse"]
    body = {**body, "data": [[*body["data"][0][:8], "0"], *body["data"][1:]]}  # newest row marked open
    client = Exchanges(mode="replay").open("okx", transport=serve(body))
    client.markets()
    result = client.closed_candles(Market("okx", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=3))
    assert list(result.candles.bar_start) == [T16, T16 + pd.Timedelta(hours=1)]
    assert result.open_dropped == 1


def test_binance_extras_are_the_raw_quote_volume_and_trade_count():
    raw = case("binance__fetchOHLCV__0_spot_1h")["httpResponse"]
    client = Exchanges(mode="replay").open("binance")
    result = client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=3))
    assert list(result.candles.quote_volume) == [float(r[7]) for r in raw]
    assert list(result.candles.trade_count) == [r[8] for r in raw]
    assert raw_extras("binance", {"unexpected": "shape"}) == {}


def test_paging_stays_within_the_limit_and_covers_the_window(tmp_path):
    """With a 1-candle limit, three requests page through the recorded klines by `startTime`."""
    rows = case("binance__fetchOHLCV__0_spot_1h")["httpResponse"]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        since, limit = int(request.url.params["startTime"]), int(request.url.params["limit"])
        return httpx.Response(200, json=[r for r in rows if r[0] >= since][:limit])

    catalog = REPO / "resources" / "exchanges.yaml"
    small = tmp_path / "exchanges.yaml"
    small.write_text(catalog.read_text().replace("max_candles_per_request: 1000     # GET /api/v3/klines",
                                                 "max_candles_per_request: 1     # GET /api/v3/klines"))
    client = Exchanges(mode="replay", catalog_path=str(small)).open("binance", transport=httpx.MockTransport(handler))
    client.markets()
    result = client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=3))
    assert len(result.candles) == 3 and result.requests == 3
    assert [int(r.url.params["limit"]) for r in seen] == [1, 1, 1]
    assert [int(r.url.params["startTime"]) for r in seen] == [rows[0][0], rows[1][0], rows[2][0]]


def test_gaps_are_listed_per_exchange_and_symbol():
    client = Exchanges(mode="replay").open("binance")
    result = client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=6))
    assert result.gaps == [["2024-01-30T19:00:00+00:00", "2024-01-30T21:00:00+00:00"]]


def test_429_is_retried_honouring_retry_after():
    body = case("binance__fetchOHLCV__0_spot_1h")["httpResponse"]
    answers = [httpx.Response(429, json={"code": -1003}, headers={"Retry-After": "3"}), httpx.Response(200, json=body)]
    waits: list[float] = []
    client = Exchanges(mode="replay").open("binance", transport=httpx.MockTransport(lambda r: answers.pop(0)),
                                           sleep=waits.append)
    client.markets()
    result = client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=3))
    assert len(result.candles) == 3
    assert client.client.retries_made == 1 and 3.0 in waits


def test_a_source_that_stays_down_fails_naming_the_exchange():
    client = Exchanges(mode="replay").open("binance", transport=serve({"msg": "down"}, status=503),
                                           sleep=lambda _s: None)
    client.markets()
    with pytest.raises(SourceError, match="binance: failed after 5 attempts"):
        client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=1))


def test_market_mapping_follows_the_quote_order_and_stores_the_quote():
    markets = [
        {"symbol": "BTC/USDC", "base": "BTC", "quote": "USDC", "spot": True},
        {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "spot": True},
        {"symbol": "ETH/USDT:USDT", "base": "ETH", "quote": "USDT", "spot": False},
        {"symbol": "SOL/USDT", "base": "SOL", "quote": "USDT", "spot": True, "active": False},
    ]
    mapping = map_markets(markets, "kraken", ["BTC", "ETH", "SOL"], ("USDT", "USD", "USDC"))
    assert mapping == {"BTC": Market("kraken", "BTC", "BTC/USD", "USD")}


def test_preference_per_symbol_is_configuration(tmp_path):
    path = tmp_path / "exchanges.yaml"
    text = (REPO / "resources" / "exchanges.yaml").read_text()
    path.write_text(text.replace("symbols: {}", "symbols: {BTC: [kraken, okx]}"))
    catalog = load_exchange_catalog(path)
    assert catalog.preference_for("BTC") == ("kraken", "okx")
    assert catalog.preference_for("ETH") == ("binance", "coinbase", "kraken", "okx", "bybit")
    path.write_text(text.replace("symbols: {}", "symbols: {BTC: [nowhere]}"))
    with pytest.raises(ValueError, match="nowhere"):
        load_exchange_catalog(path)


def _candles(exchange: str, closes: list[float]) -> pd.DataFrame:
    starts = [T16 + pd.Timedelta(hours=h) for h in range(len(closes))]
    return pd.DataFrame({"exchange": exchange, "market": "BTC/USDT", "symbol": "BTC", "quote": "USDT",
                         "interval": "1h", "bar_start": starts, "bar_end": [s + pd.Timedelta(hours=1) for s in starts],
                         "open": closes, "high": closes, "low": closes, "close": closes, "volume": 1.0,
                         "quote_volume": float("nan"), "trade_count": float("nan"), "source": f"replay:{exchange}",
                         "ingested_at": T16})


def test_merge_prefers_the_first_exchange_and_drops_the_coingecko_series_it_replaces():
    catalog = load_exchange_catalog()
    kraken = _candles("kraken", [43485.0, 43409.5, 43386.6, 43539.7])
    binance = _candles("binance", [43488.71, 43374.8, 43361.11])
    fallback = pd.DataFrame({"symbol": ["BTC", "BTC", "ETH"], "bar_start": [T16, T16, T16],
                             "interval": ["1h", "5min", "1h"], "bar_end": [T16 + pd.Timedelta("1h")] * 3,
                             "open": 1.0, "high": 1.0, "low": 1.0, "close": [43000.0, 43001.0, 2300.0],
                             "volume": float("nan"), "n_observations": 3, "method": "resampled_observations",
                             "source": "replay:coingecko", "ingested_at": T16})
    merged, meta = merge_exchange_bars(fallback, pd.concat([kraken, binance]), catalog)
    one_h = merged[(merged.symbol == "BTC") & (merged.interval == "1h")].sort_values("bar_start")
    assert list(one_h.exchange) == ["binance", "binance", "binance", "kraken"]  # binance first, kraken fills 19:00
    assert list(one_h.method) == ["exchange"] * 4
    assert not merged.duplicated(["symbol", "interval", "bar_start"]).any()
    # The BTC 5-minute bar and the ETH bar (no exchange lists ETH here) stay, labelled.
    rest = merged[merged.method != "exchange"]
    assert sorted(zip(rest.symbol, rest.interval)) == [("BTC", "5min"), ("ETH", "1h")]
    assert meta["fallback_bars_replaced"] == 1
    # Deterministic: the input order does not matter.
    again, _ = merge_exchange_bars(fallback, pd.concat([binance, kraken]).iloc[::-1], catalog)
    key = ["symbol", "interval", "bar_start"]
    assert again.sort_values(key).reset_index(drop=True)[["exchange", "close"]].equals(
        merged.sort_values(key).reset_index(drop=True)[["exchange", "close"]])


def test_divergence_check_flags_only_bars_beyond_the_bound():
    # The recorded closes of Binance and Kraken agree within 0.1 %.
    agree = pd.concat([_candles("binance", [43488.71, 43374.8]), _candles("kraken", [43485.0, 43409.5])])
    assert close_divergence(agree).empty
    off = pd.concat([_candles("binance", [43488.71, 43374.8]), _candles("kraken", [43485.0, 45000.0])])
    flagged = close_divergence(off)
    assert list(flagged.bar_start) == [T16 + pd.Timedelta(hours=1)]
    assert flagged.exchanges.iloc[0] == "binance,kraken"


@pytest.mark.slow
def test_import_crypto_assets_does_not_import_ccxt():
    code = ("import sys, crypto_assets, crypto_assets.definitions; "
            "assert 'ccxt' not in sys.modules and 'torch' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_kraken_full_720_row_answer_parses_and_its_last_row_is_dropped_as_open():
    """A complete real /0/public/OHLC answer (XChange recording, 720 one-minute rows of XXBTZUSD)."""
    raw = json.loads((DATA / "kraken-OHLC-XXBTZUSD-1m-2017-08-10.json").read_text())
    rows = raw["result"]["XXBTZUSD"]
    exchanges = Exchanges(mode="replay")
    client = exchanges.open("kraken", transport=serve(raw))
    client.ccxt.set_markets([{"id": "XXBTZUSD", "symbol": "BTC/USD", "base": "BTC", "quote": "USD", "baseId": "XXBT",
                              "quoteId": "ZUSD", "altname": "XBTUSD", "type": "spot", "spot": True, "active": True}])
    client._markets = list(client.ccxt.markets.values())
    start = pd.Timestamp(rows[0][0], unit="s", tz=UTC)
    result = client.closed_candles(Market("kraken", "BTC", "BTC/USD", "USD"), start, start + pd.Timedelta(hours=13),
                                   timeframe="1m")
    assert len(result.candles) == 719 and result.open_dropped == 1
    first = result.candles.iloc[0]
    assert [first.open, first.high, first.low, first.close, first.volume] == [float(v) for v in
                                                                             (rows[0][1:5] + [rows[0][6]])]
    assert list(result.candles.trade_count[:3]) == [r[7] for r in rows[:3]]


def test_coinbase_candles_low_high_order_is_parsed_by_ccxt():
    """Coinbase answers [time, LOW, HIGH, open, close, volume], newest first (XChange recording)."""
    raw = json.loads((DATA / "coinbasepro-candles-1m-2018-02-01.json").read_text())
    client = Exchanges(mode="replay").open("coinbase", transport=serve(raw))
    client.ccxt.set_markets([{"id": "BTC-USD", "symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot",
                              "spot": True, "active": True}])
    client._markets = list(client.ccxt.markets.values())
    start = pd.Timestamp(min(r[0] for r in raw), unit="s", tz=UTC)
    result = client.closed_candles(Market("coinbase", "BTC", "BTC/USD", "USD"), start, start + pd.Timedelta(minutes=10),
                                   timeframe="1m")
    by_time = {pd.Timestamp(r[0], unit="s", tz=UTC): r for r in raw}
    assert len(result.candles) == 10 and result.candles.bar_start.is_monotonic_increasing
    for row in result.candles.itertuples():
        t, low, high, open_, close, volume = by_time[row.bar_start]
        assert (row.open, row.high, row.low, row.close, row.volume) == (open_, high, low, close, volume)


@pytest.mark.slow
def test_replay_through_dagster_exchange_bars_win_with_volume(warehouse_url):
    """The real graph in replay mode: exchange_candles then ohlcv_bars over the recorded window,
    twice (idempotent), on SQLite and MySQL."""
    import dagster as dg

    from crypto_assets.loading import load
    from crypto_assets.warehouse.resource import get_warehouse
    from crypto_assets_tests.graph_helpers import ProjectGraph

    get_warehouse.cache_clear()
    graph = ProjectGraph(warehouse_url)
    hours = ("2024-01-30-16:00", "2024-01-30-19:00")
    with dg.instance_for_test() as instance:
        assert graph.materialize(instance, ["coin_universe"]).success
        for _ in range(2):
            result = graph.materialize(instance, ["exchange_candles", "ohlcv_bars"], range_=hours)
            assert result.success
        meta = {(e.materialization.asset_key.to_user_string(), e.materialization.partition): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
        first = meta[("exchange_candles", "2024-01-30-16:00")]
        # run-level figures (`run_`); each partition's own count is dagster/row_count
        assert first["dagster/row_count"].value == 3
        assert first["run_candles_by_exchange"].value == {"binance": 3, "kraken": 4, "okx": 3}
        assert first["run_open_candles_dropped"].value["kraken"] == 1
        assert first["run_gaps"].value["binance:BTC"] == [["2024-01-30T19:00:00+00:00", "2024-01-30T19:00:00+00:00"]]
        checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
        assert checks[("exchange_candles", "closes_agree_across_exchanges")] is True
        assert checks[("exchange_candles", "schema_matches_code")] is True
    candles = load("exchange_candles", warehouse_url=warehouse_url)
    assert len(candles) == 10  # binance 3, okx 3, kraken 4 (its open candle dropped); no duplicates after two runs
    bars = load("ohlcv_bars", warehouse_url=warehouse_url).sort_values("bar_start")
    assert list(bars.method) == ["exchange"] * 4
    assert list(bars.exchange) == ["binance", "binance", "binance", "kraken"]
    assert bars.volume.notna().all() and list(bars["quote"]) == ["USDT"] * 4
    assert list(bars.close[:3]) == [43488.71, 43374.8, 43361.11]
    assert list(bars.trade_count) == [3743, 4365, 4063, 137]


def _gaps_hour_by_hour(have: list, start, end) -> list[list[str]]:
    """The gap listing written the slow, obvious way (every expected hour in turn): the oracle."""
    out, run = [], []
    for t in pd.date_range(start, end, freq="1h", inclusive="left"):
        if t in set(have):
            if run:
                out.append([run[0].isoformat(), run[-1].isoformat()])
            run = []
        else:
            run.append(t)
    if run:
        out.append([run[0].isoformat(), run[-1].isoformat()])
    return out


def test_missing_ranges_at_the_edges_and_with_no_candles():
    hour = pd.Timedelta(hours=1)
    end = T16 + 6 * hour
    series = lambda hours: pd.Series([T16 + h * hour for h in hours], dtype="datetime64[ns, UTC]")  # noqa: E731
    iso = lambda h: (T16 + h * hour).isoformat()  # noqa: E731
    assert missing_ranges(series([]), T16, end, hour) == [[iso(0), iso(5)]]  # no candles at all
    assert missing_ranges(series(range(6)), T16, end, hour) == []
    assert missing_ranges(series([2, 3, 4, 5]), T16, end, hour) == [[iso(0), iso(1)]]  # gap at the start
    assert missing_ranges(series([0, 1, 2]), T16, end, hour) == [[iso(3), iso(5)]]  # gap at the end
    assert missing_ranges(series([1, 3, 4]), T16, end, hour) == [[iso(0), iso(0)], [iso(2), iso(2)], [iso(5), iso(5)]]
    assert missing_ranges(series([0, 7]), T16, end, hour) == [[iso(1), iso(5)]]  # a candle outside is no help
    assert missing_ranges(series([0]), T16, T16, hour) == []  # empty window
    rng = np.random.default_rng(3)
    for _ in range(50):
        hours = sorted(set(rng.integers(0, 48, rng.integers(0, 48)).tolist()))
        have = [T16 + h * hour for h in hours]
        assert missing_ranges(series(hours), T16, T16 + 48 * hour, hour) == _gaps_hour_by_hour(have, T16, T16 + 48 * hour)


def test_an_exchange_with_no_candles_lists_the_whole_window_as_one_gap():
    client = Exchanges(mode="replay").open("binance", transport=serve([]))
    client.markets()
    result = client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=3),
                                   now=T16 + pd.Timedelta(hours=2, minutes=30))
    assert result.candles.empty and list(result.candles.columns) == CANDLE_COLUMNS
    assert result.requests == 1 and result.open_dropped == 0
    assert result.gaps == [[T16.isoformat(), (T16 + pd.Timedelta(hours=1)).isoformat()]]  # 18:00 is not closed yet


def test_a_time_answered_twice_keeps_its_last_row_and_an_unparseable_extra_is_empty():
    """Recorded klines with the 17:00 row repeated (changed close and quote volume) and one quote
    volume that is not a number: the repeated time keeps its last row, as it did row by row."""
    rows = case("binance__fetchOHLCV__0_spot_1h")["httpResponse"]
    again = [*rows[1][:4], "43400.00", *rows[1][5:7], "999.5", *rows[1][8:]]
    odd = [*rows[2][:7], "not a number", *rows[2][8:]]
    client = Exchanges(mode="replay").open("binance", transport=serve([rows[0], rows[1], again, odd]))
    client.markets()
    result = client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), T16, T16 + pd.Timedelta(hours=3))
    assert list(result.candles.bar_start) == [T16 + pd.Timedelta(hours=h) for h in range(3)]
    assert result.candles.close.iloc[1] == 43400.0 and result.candles.quote_volume.iloc[1] == 999.5
    assert pd.isna(result.candles.quote_volume.iloc[2]) and result.candles.trade_count.iloc[2] == rows[2][8]
    assert raw_extras("binance", [odd])[rows[2][0]] == {"quote_volume": None, "trade_count": float(rows[2][8])}


def _exchanges_configured() -> list[str]:
    return sorted(load_exchange_catalog().exchanges)


@pytest.mark.parametrize("name", _exchanges_configured())
def test_configured_request_rate_never_exceeds_the_published_limit(name):
    """resources/sources.yaml documents each exchange's published limit next to its spacing; the
    rate the spacing allows is 80-100 % of it, and no window of the limit's length ever holds more
    requests than it allows. An edit that speeds an exchange past its limit fails here."""
    spec = source_spec(name)
    limit = spec.published_limit
    assert limit and limit["requests"] > 0 and limit["per_s"] > 0 and limit["source"], f"{name}: no published_limit"
    plan = request_plan(spec)
    assert plan["within_limit"], plan
    assert plan["planned_requests_per_minute"] <= limit["requests"] * 60 / limit["per_s"]
    assert plan["max_requests_in_a_published_window"] <= limit["requests"]
    assert 0.8 <= plan["share_of_limit"] <= 1.0, plan


def request_starts(spec, n: int, path: str) -> np.ndarray:
    """When a SourceClient of `spec` starts each of `n` requests, on a virtual clock (answers take
    no time): the spacing the client itself enforces."""
    now, starts = [0.0], []

    def handler(request: httpx.Request) -> httpx.Response:
        starts.append(now[0])
        return httpx.Response(200, json={})

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client = SourceClient(spec, transport=httpx.MockTransport(handler), sleep=sleep, clock=lambda: now[0])
    for _ in range(n):
        client.get(path)
    return np.array(starts)


def most_in_a_window(times: np.ndarray, window: float) -> np.ndarray:
    """Per request start t, how many starts fall in [t, t + window]."""
    return np.searchsorted(times, times + window, side="right") - np.arange(len(times))


@pytest.mark.slow
@pytest.mark.parametrize("name", _exchanges_configured())
def test_the_plan_is_the_spacing_the_client_enforces(name):
    """The SourceClient itself (answers without latency, a virtual clock): the request starts it
    makes never put more than the published count into any window of the published length, and
    its rate is the plan's."""
    spec = source_spec(name)
    window, allowed = float(spec.published_limit["per_s"]), int(spec.published_limit["requests"])
    n = max(3 * allowed, 50)
    times = request_starts(spec, n, "/candles")
    in_window = most_in_a_window(times, window)
    assert in_window.max() <= allowed
    assert in_window.max() <= request_plan(spec)["max_requests_in_a_published_window"]
    per_minute = (n - 1) / (times[-1] - times[0]) * 60
    assert per_minute == pytest.approx(request_plan(spec)["planned_requests_per_minute"], rel=1e-6)


def test_one_client_per_exchange_sends_at_a_time():
    """The plan counts CLIENTS_PER_EXCHANGE clients: the `exchanges` pool (candles and derivatives)
    must keep one slot in every instance configuration, or the rate multiplies."""
    import yaml

    from crypto_assets.assets.ingest.derivatives import derivatives_metrics
    from crypto_assets.assets.ingest.exchange_bars import exchange_candles

    root = REPO
    for path in (root / "dagster.yaml", root / "deploy" / "dagster.mysql.yaml"):
        pools = yaml.safe_load(path.read_text())["concurrency"]["pools"]
        assert pools["default_limit"] == CLIENTS_PER_EXCHANGE and "exchanges" not in pools, path
    assert "default_limit: 1" in (root / "k8s" / "dagster-instance.yaml").read_text()
    assert {exchange_candles.op.pool, derivatives_metrics.op.pool} == {"exchanges"}


def test_derivatives_requests_keep_their_own_spacing():
    """derivatives_metrics calls other endpoints with other limits: its spacing comes from
    resources/derivatives.yaml, not from the candle plan."""
    from crypto_assets.sources.derivatives import load_derivatives_catalog, open_derivatives

    catalog = load_derivatives_catalog()
    for name in catalog.exchanges:
        assert name in catalog.min_interval_s, f"{name}: no derivatives spacing"
        client = open_derivatives(Exchanges(mode="replay"), name, catalog, transport=serve({}))
        assert client.client.spec.min_interval_s == catalog.min_interval_s[name]
        assert client.client.spec.name == name  # errors and replay still name the exchange


# -- 5-minute live candles (`live_5m_symbols`) ------------------------------------------------------

REPLAY = REPO / "resources" / "replay"


def _constructed_binance_5m(first: pd.Timestamp, count: int, skip: tuple[int, ...] = ()) -> list[list]:
    """CONSTRUCTED in this test, NOT a recording: no 5-minute candle answer was recorded for any
    exchange (../shared/fixtures/09-exchanges holds binance 1h/1d/1m, kraken 1h/1m and coinbase 1m
    answers only). Rows have the documented 12-field shape of Binance's /api/v3/klines (as in the
    recorded 1h answer); prices, volumes and trade counts are made up."""
    rows = []
    for i in range(count):
        if i in skip:
            continue
        t = int(first.value // 10**6) + i * 300_000
        close = 43_000 + 10 * i
        rows.append([t, f"{close - 5:.2f}", f"{close + 20:.2f}", f"{close - 20:.2f}", f"{close:.2f}", "12.5",
                     t + 299_999, f"{12.5 * close:.2f}", 100 + i, "6.0", f"{6.0 * close:.2f}", "0"])
    return rows


def _replay_with_5m(tmp_path: Path, live_5m_symbols: list[str], rows_5m: list[list]) -> Exchanges:
    """Binance replay (the recorded 1h klines and markets) plus a constructed 5m answer, and a
    catalog with binance only and `live_5m_symbols`."""
    folder = tmp_path / "replay" / "binance"
    folder.mkdir(parents=True)
    for name in ("markets.yaml", "fetchOHLCV__0_spot_1h.json"):
        (folder / name).write_text((REPLAY / "binance" / name).read_text())
    (folder / "constructed_5m.json").write_text(json.dumps(rows_5m))
    (folder / "catalog.yaml").write_text(
        "routes:\n"
        "  - {path: /api/v3/klines, params: {symbol: BTCUSDT, interval: 1h}, file: fetchOHLCV__0_spot_1h.json}\n"
        "  - {path: /api/v3/klines, params: {symbol: BTCUSDT, interval: 5m}, file: constructed_5m.json}\n")
    text = (REPO / "resources" / "exchanges.yaml").read_text()
    assert "live_5m_symbols: []" in text and "preference: [binance, coinbase, kraken, okx, bybit]" in text
    catalog = tmp_path / "exchanges.yaml"
    catalog.write_text(text.replace("live_5m_symbols: []", f"live_5m_symbols: [{', '.join(live_5m_symbols)}]")
                       .replace("preference: [binance, coinbase, kraken, okx, bybit]", "preference: [binance]"))
    return Exchanges(mode="replay", replay_dir=str(tmp_path / "replay"), catalog_path=str(catalog))


T18 = pd.Timestamp("2024-01-30 18:00", tz=UTC)
LIVE_NOW = pd.Timestamp("2024-01-30 19:07:30", tz=UTC)  # the automation's run of 18:00 and 19:00, a bit late


def test_live_run_stores_closed_5m_candles_of_configured_coins_with_their_interval(tmp_path):
    rows = _constructed_binance_5m(T18, 14, skip=(5,))  # 18:00 .. 19:05, without 18:25; 19:05 still open
    exchanges = _replay_with_5m(tmp_path, ["btc"], rows)
    assert exchanges.catalog().live_5m_symbols == ("BTC",)
    candles, meta = collect_candles(exchanges, ["BTC"], T18, T18 + pd.Timedelta(hours=2), now=LIVE_NOW)
    five = candles[candles.interval == "5min"].sort_values("bar_start")
    assert list(five.bar_start) == [T18 + pd.Timedelta(minutes=5 * i) for i in range(13) if i != 5]
    assert (five.bar_end - five.bar_start == pd.Timedelta(minutes=5)).all()
    assert list(five.close) == [float(r[4]) for r in rows[:-1]]
    assert list(five.trade_count) == [float(r[8]) for r in rows[:-1]]  # binance's raw extras, as for 1h
    assert list(candles[candles.interval == "1h"].bar_start) == [T18]  # the recorded 1h candle
    binance = meta["results"]["binance"]
    assert binance["live_5m"] == {"candles": 12, "open_dropped": 1, "symbols": ["BTC"]}
    assert binance["open_dropped"] == 0  # the 1h count stays the 1h candles'
    assert binance["gaps"]["binance:BTC:5m"] == [[(T18 + pd.Timedelta(minutes=25)).isoformat()] * 2]
    assert meta["live_5m_span"] == (T18, T18 + pd.Timedelta(hours=2))
    # The same window as history (a backfill days later) asks for no 5-minute candle at all.
    later, later_meta = collect_candles(exchanges, ["BTC"], T18, T18 + pd.Timedelta(hours=2),
                                        now=pd.Timestamp("2024-02-05 12:00", tz=UTC))
    assert set(later.interval) == {"1h"} and later_meta["live_5m_span"] is None
    assert later_meta["results"]["binance"]["live_5m"]["symbols"] == []
    assert binance["requests"] - later_meta["results"]["binance"]["requests"] == 1  # the one 5m request


def test_5m_candles_only_for_the_configured_coins(tmp_path):
    exchanges = _replay_with_5m(tmp_path, ["ETH"], _constructed_binance_5m(T18, 14))
    candles, meta = collect_candles(exchanges, ["BTC"], T18, T18 + pd.Timedelta(hours=2), now=LIVE_NOW)
    assert set(candles.interval) == {"1h"}
    assert meta["results"]["binance"]["live_5m"]["symbols"] == []
    assert not meta["results"]["binance"]["failures"]


def test_live_5m_span_is_the_hour_that_just_closed_and_the_open_one():
    hour = pd.Timedelta(hours=1)
    now = pd.Timestamp("2024-01-30 19:02", tz=UTC)
    assert live_5m_span(T18, T18 + hour, now) == (T18, T18 + hour)  # the hour that just closed
    assert live_5m_span(T18 + hour, T18 + 2 * hour, now) == (T18 + hour, T18 + 2 * hour)  # the open one
    assert live_5m_span(T16, T18 + 2 * hour, now) == (T18, T18 + 2 * hour)  # a range reaching now: its live part
    assert live_5m_span(T16, T18, now) is None  # older hours: history
    assert live_5m_span(T16, T16 + hour, pd.Timestamp("2024-02-05", tz=UTC)) is None


def test_exchange_5m_candles_become_the_coins_5_minute_bars():
    catalog = load_exchange_catalog()
    starts = [T16 + pd.Timedelta(minutes=5 * i) for i in range(3)]
    five = pd.DataFrame({"exchange": "binance", "market": "BTC/USDT", "symbol": "BTC", "quote": "USDT",
                         "interval": "5min", "bar_start": starts, "bar_end": [s + pd.Timedelta(minutes=5) for s in starts],
                         "open": 1.0, "high": 2.0, "low": 0.5, "close": [1.5, 1.6, 1.7], "volume": 3.0,
                         "quote_volume": 4.5, "trade_count": 7.0, "source": "replay:binance", "ingested_at": T16})
    fallback = pd.DataFrame({"symbol": ["BTC"] * 4 + ["ETH"], "bar_start": [*starts, T16, T16],
                             "interval": ["5min"] * 3 + ["1h", "5min"],
                             "bar_end": [s + pd.Timedelta(minutes=5) for s in starts] + [T16 + pd.Timedelta("1h"),
                                                                                         T16 + pd.Timedelta("5min")],
                             "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": float("nan"),
                             "n_observations": 3, "method": "resampled_observations", "source": "replay:coingecko",
                             "ingested_at": T16})
    merged, meta = merge_exchange_bars(fallback, five, catalog)
    btc_5 = merged[(merged.symbol == "BTC") & (merged.interval == "5min")].sort_values("bar_start")
    assert list(btc_5.method) == ["exchange"] * 3 and list(btc_5.close) == [1.5, 1.6, 1.7]
    assert btc_5.volume.notna().all() and list(btc_5.trade_count) == [7.0] * 3
    rest = merged[merged.method != "exchange"]  # BTC's 1h bar (no 1h candle here) and ETH stay CoinGecko's
    assert sorted(zip(rest.symbol, rest.interval)) == [("BTC", "1h"), ("ETH", "5min")]
    assert meta["fallback_bars_replaced"] == 3


def test_live_5m_symbols_must_be_a_list_of_symbols(tmp_path):
    path = tmp_path / "exchanges.yaml"
    text = (REPO / "resources" / "exchanges.yaml").read_text()
    path.write_text(text.replace("live_5m_symbols: []", "live_5m_symbols: BTC"))
    with pytest.raises(ValueError, match="live_5m_symbols"):
        load_exchange_catalog(path)


@pytest.mark.slow
def test_a_history_run_keeps_the_stored_5m_candles_of_its_window(warehouse_url):
    """A backfill of hours that once were live fetches no 5-minute candles, and its window write
    must not delete the stored ones; ohlcv_bars takes them as the coin's 5-minute bars."""
    import dagster as dg

    from crypto_assets.loading import load
    from crypto_assets.tables.prices import EXCHANGE_CANDLES
    from crypto_assets.warehouse.resource import get_warehouse
    from crypto_assets_tests.graph_helpers import ProjectGraph

    get_warehouse.cache_clear()
    graph = ProjectGraph(warehouse_url)
    # One stored 5-minute candle, CONSTRUCTED here (no 5m recording exists), in the window below.
    stored = pd.DataFrame({"exchange": ["binance"], "symbol": ["BTC"], "bar_start": [T16 + pd.Timedelta(minutes=5)],
                           "interval": ["5min"], "bar_end": [T16 + pd.Timedelta(minutes=10)], "market": ["BTC/USDT"],
                           "quote": ["USDT"], "open": [43500.0], "high": [43510.0], "low": [43490.0],
                           "close": [43505.0], "volume": [12.5], "quote_volume": [543812.5], "trade_count": [321.0],
                           "source": ["replay:binance"], "ingested_at": [T16 + pd.Timedelta(minutes=11)]})
    get_warehouse(warehouse_url).replace_window(EXCHANGE_CANDLES, stored, T16, T16 + pd.Timedelta(hours=1))
    with dg.instance_for_test() as instance:
        assert graph.materialize(instance, ["coin_universe"]).success
        result = graph.materialize(instance, ["exchange_candles", "ohlcv_bars"],
                                   range_=("2024-01-30-16:00", "2024-01-30-18:00"))
        assert result.success
        meta = {e.materialization.partition: e.materialization.metadata for e in result.get_asset_materialization_events()
                if e.materialization.asset_key.to_user_string() == "exchange_candles"}
        live = meta["2024-01-30-16:00"]["run_live_5m"].value
        assert live["fetched"] is False and live["kept_stored"] == 1
    candles = load("exchange_candles", warehouse_url=warehouse_url)
    five = candles[candles.interval == "5min"]
    assert len(five) == 1 and five.close.iloc[0] == 43505.0 and five.trade_count.iloc[0] == 321
    assert len(candles[candles.interval == "1h"]) == 9  # binance 3, okx 3, kraken 3 (16:00-18:00)
    bars = load("ohlcv_bars", warehouse_url=warehouse_url)
    five_bars = bars[bars.interval == "5min"]
    assert list(five_bars.method) == ["exchange"] and five_bars.volume.iloc[0] == 12.5
