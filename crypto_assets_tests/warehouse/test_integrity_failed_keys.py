"""Invariant 12: a re-run replaces a window only for the keys whose fetch succeeded.

Attack: history is stored, then the window is re-materialized while the provider fails for some
keys (a coin answers 404, an exchange answers 403). What was stored for those keys must be exactly
what it was; the keys that did answer are replaced; the run names the failed keys; a run in which
nothing could be fetched fails and changes nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from crypto_assets.assets.ingest.prices import ohlcv_bars, price_observations
from crypto_assets.assets.reference import coin_universe
from crypto_assets.loading import load
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.coingecko import CoinGecko
from crypto_assets.tables.prices import EXCHANGE_CANDLES, PRICE_OBSERVATIONS
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource, get_warehouse
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.paths import DATA

DATA = DATA
HOURLY_RECORDING = DATA / "replay_hourly" / "coingecko" / "bitcoin_market_chart_days30.json"
RANGE = ("2021-05-14-10:00", "2021-05-14-13:00")  # four hours of the real hourly recording
NOT_FOUND = {"error": "coin not found"}  # CoinGecko's 404 body


def _coingecko_replay(tmp_path: Path, name: str, answers: dict[str, int]) -> str:
    """A CoinGecko replay folder: per coin id, the real hourly BTC recording with status 200 (for
    `ethereum` the same recording is served: CONSTRUCTED, it only has to be a second coin that
    lands), or an error status with CoinGecko's 404 body."""
    folder = tmp_path / name / "coingecko"
    folder.mkdir(parents=True)
    shutil.copy(HOURLY_RECORDING, folder / "chart.json")
    (folder / "not_found.json").write_text(json.dumps(NOT_FOUND))
    routes = [{"path": f"/coins/{coin}/market_chart/range", "params": {"vs_currency": "usd"},
               "file": "chart.json" if status == 200 else "not_found.json", "status": status,
               "headers": {"Date": "Sat, 15 May 2021 14:42:23 GMT"}}
              for coin, status in answers.items()]
    (folder / "catalog.yaml").write_text(yaml.safe_dump({"routes": routes}))
    return str(folder.parent)


def _run(url: str, replay_dir: str, selection: list[str], raise_on_error: bool = True):
    resources = {"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                 "coingecko": CoinGecko(mode="replay", replay_dir=replay_dir)}
    tags = {"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[1]}
    return dg.materialize([coin_universe, price_observations, ohlcv_bars], selection=selection, resources=resources,
                          tags=tags, raise_on_error=raise_on_error)


def _prices(url: str, symbol: str) -> pd.DataFrame:
    frame = load("price_observations", "2021-05-14 10:00", "2021-05-14 14:00", symbols=[symbol], warehouse_url=url)
    return frame.sort_values("observed_at").reset_index(drop=True)


@pytest.mark.slow
def test_a_coin_that_fails_in_a_rerun_keeps_its_stored_history(warehouse_url, tmp_path):
    get_warehouse.cache_clear()
    both = _coingecko_replay(tmp_path, "both", {"bitcoin": 200, "ethereum": 200})
    assert dg.materialize([coin_universe], resources={"io_manager": WarehouseIOManager(url=warehouse_url),
                                                      "coingecko": CoinGecko(mode="replay")}).success
    assert _run(warehouse_url, both, ["price_observations", "ohlcv_bars"]).success
    btc_before, eth_before = _prices(warehouse_url, "BTC"), _prices(warehouse_url, "ETH")
    bars_before = load("ohlcv_bars", symbols=["BTC"], warehouse_url=warehouse_url)
    assert len(btc_before) == 4 and len(eth_before) == 4 and len(bars_before) == 4

    # The re-run: CoinGecko answers 404 for bitcoin, ethereum still lands.
    btc_404 = _coingecko_replay(tmp_path, "btc_404", {"bitcoin": 404, "ethereum": 200})
    result = _run(warehouse_url, btc_404, ["price_observations", "ohlcv_bars"])
    assert result.success
    pd.testing.assert_frame_equal(_prices(warehouse_url, "BTC"), btc_before)  # not one stored row lost
    after_eth = _prices(warehouse_url, "ETH")
    assert len(after_eth) == 4 and (after_eth.ingested_at > eth_before.ingested_at.max()).all()  # ETH replaced
    assert len(load("ohlcv_bars", symbols=["BTC"], warehouse_url=warehouse_url)) == 4  # bars rebuilt from kept rows
    meta = result.asset_materializations_for_node("price_observations")[0].metadata
    failed = meta["keys_failed"].value
    assert "404" in failed["BTC"] and "ETH" not in failed  # (the coins without a recording are listed too)
    assert meta["stored_rows_kept_for_failed_keys"].value == 4


def test_a_run_that_fetches_nothing_fails_and_changes_nothing(sqlite_url, tmp_path):
    get_warehouse.cache_clear()
    assert dg.materialize([coin_universe], resources={"io_manager": WarehouseIOManager(url=sqlite_url),
                                                      "coingecko": CoinGecko(mode="replay")}).success
    assert _run(sqlite_url, _coingecko_replay(tmp_path, "ok", {"bitcoin": 200}), ["price_observations"]).success
    before = load("price_observations", warehouse_url=sqlite_url)
    assert len(before) == 4
    # Every coin the universe has fails for real (404 from the provider, not a missing recording).
    universe = load("coin_universe", warehouse_url=sqlite_url)
    down = _coingecko_replay(tmp_path, "down", {coin: 404 for coin in universe.coingecko_id.dropna()})
    result = _run(sqlite_url, down, ["price_observations"], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "every one of the" in failure.event_specific_data.error.message
    pd.testing.assert_frame_equal(load("price_observations", warehouse_url=sqlite_url), before)


# -- the warehouse contract behind it: replace_window(keep=...) on every backend ----------------

def _observations(symbols: list[str], hour: str, price: float, source: str) -> pd.DataFrame:
    t = pd.Timestamp(hour, tz="UTC")
    return pd.DataFrame({"symbol": symbols, "coingecko_id": [s.lower() for s in symbols],
                         "observed_at": [t + pd.Timedelta(minutes=5)] * len(symbols), "price_usd": price,
                         "market_cap_usd": None, "volume_24h_usd": None, "endpoint": "market_chart/range",
                         "source": source, "ingested_at": pd.Timestamp("2026-01-01", tz="UTC")})


def test_replace_window_keeps_the_rows_of_failed_keys_on_every_backend(warehouse_url):
    wh = open_warehouse(warehouse_url)
    start, end = pd.Timestamp("2021-05-14 10:00", tz="UTC"), pd.Timestamp("2021-05-14 11:00", tz="UTC")
    wh.replace_window(PRICE_OBSERVATIONS, _observations(["BTC", "ETH", "SOL"], "2021-05-14 10:00", 1.0, "first"),
                      start, end)
    wh.replace_window(PRICE_OBSERVATIONS, _observations(["ETH"], "2021-05-14 10:00", 2.0, "second"), start, end,
                      keep=[{"symbol": "BTC"}])
    got = wh.read(PRICE_OBSERVATIONS, start, end).set_index("symbol")
    assert got.source.to_dict() == {"BTC": "first", "ETH": "second"}  # SOL answered nothing: replaced by nothing

    # A row of a kept key in the frame, or a key by a non-key column, is refused; nothing changes.
    with pytest.raises(ValueError, match="kept"):
        wh.replace_window(PRICE_OBSERVATIONS, _observations(["BTC"], "2021-05-14 10:00", 3.0, "third"), start, end,
                          keep=[{"symbol": "BTC"}])
    with pytest.raises(ValueError, match="primary-key"):
        wh.replace_window(PRICE_OBSERVATIONS, _observations(["ETH"], "2021-05-14 10:00", 3.0, "third"), start, end,
                          keep=[{"source": "first"}])
    assert wh.read(PRICE_OBSERVATIONS, start, end).set_index("symbol").source.to_dict() == {"BTC": "first",
                                                                                            "ETH": "second"}


def _candles(rows: list[tuple[str, str, str]], close: float) -> pd.DataFrame:
    t = pd.Timestamp("2024-01-30 16:00", tz="UTC")
    return pd.DataFrame([{"exchange": e, "market": f"{s}/USDT", "symbol": s, "quote": "USDT", "interval": i,
                          "bar_start": t, "bar_end": t + pd.Timedelta(i), "open": close, "high": close, "low": close,
                          "close": close, "volume": 1.0, "quote_volume": None, "trade_count": None,
                          "source": "test", "ingested_at": t} for e, s, i in rows])[EXCHANGE_CANDLES.column_names]


def test_multi_column_keys_keep_exactly_their_rows(warehouse_url):
    wh = open_warehouse(warehouse_url)
    start, end = pd.Timestamp("2024-01-30 16:00", tz="UTC"), pd.Timestamp("2024-01-30 17:00", tz="UTC")
    everything = [(e, s, i) for e in ("binance", "okx") for s in ("BTC", "ETH") for i in ("1h", "5min")]
    wh.replace_window(EXCHANGE_CANDLES, _candles(everything, 1.0), start, end)
    kept = [{"exchange": "binance", "symbol": "BTC", "interval": "1h"}, {"exchange": "okx"}]
    fresh = [(e, s, i) for e, s, i in everything
             if e != "okx" and not (e == "binance" and s == "BTC" and i == "1h")]
    wh.replace_window(EXCHANGE_CANDLES, _candles(fresh, 2.0), start, end, keep=kept)
    got = wh.read(EXCHANGE_CANDLES, start, end)
    closes = {(r.exchange, r.symbol, r.interval): r.close for r in got.itertuples()}
    assert closes == {(e, s, i): 1.0 if (e == "okx" or (s, i) == ("BTC", "1h")) else 2.0 for e, s, i in everything}


# -- exchange candles through Dagster: an exchange that fails keeps its stored candles ------------

def _exchange_replay(tmp_path: Path, refuse: str, status: int) -> str:
    """The project's exchange recordings, with every request to `refuse` answered `status`."""
    folder = tmp_path / "exchanges"
    shutil.copytree(RESOURCES_DIR / "replay", folder)
    (folder / refuse / "refused.json").write_text(json.dumps({"code": 0, "msg": "Service unavailable from a "
                                                                               "restricted location"}))
    (folder / refuse / "catalog.yaml").write_text(yaml.safe_dump(
        {"routes": [{"path": "*", "file": "refused.json", "status": status}]}))
    return str(folder)


@pytest.mark.slow
def test_an_exchange_that_fails_in_a_rerun_keeps_its_stored_candles(sqlite_url, tmp_path):
    from crypto_assets.sources.exchanges import Exchanges
    from crypto_assets_tests.graph_helpers import ProjectGraph

    get_warehouse.cache_clear()
    hours = ("2024-01-30-16:00", "2024-01-30-19:00")
    graph = ProjectGraph(sqlite_url)
    with dg.instance_for_test() as instance:
        assert graph.materialize(instance, ["coin_universe"]).success
        assert graph.materialize(instance, ["exchange_candles"], range_=hours).success
        before = load("exchange_candles", warehouse_url=sqlite_url)
        assert set(before.exchange) == {"binance", "kraken", "okx"}
        graph.resources["exchanges"] = Exchanges(mode="replay", replay_dir=_exchange_replay(tmp_path, "binance", 403))
        result = graph.materialize(instance, ["exchange_candles"], range_=hours)
        assert result.success
    after = load("exchange_candles", warehouse_url=sqlite_url)
    key = ["exchange", "symbol", "interval", "bar_start"]
    binance_before = before[before.exchange == "binance"].sort_values(key).reset_index(drop=True)
    binance_after = after[after.exchange == "binance"].sort_values(key).reset_index(drop=True)
    assert len(binance_before) == 3
    pd.testing.assert_frame_equal(binance_after, binance_before)  # kept exactly, ingested_at included
    others = after[after.exchange != "binance"]
    assert len(others) == len(before[before.exchange != "binance"])
    assert (others.ingested_at > before.ingested_at.max()).all()  # the others were replaced
    meta = next(e.materialization.metadata for e in result.get_asset_materialization_events()
                if e.materialization.asset_key.to_user_string() == "exchange_candles")
    assert any(label.startswith("binance") for label in meta["keys_failed"].value)
