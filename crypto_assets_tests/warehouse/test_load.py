"""Notebook access: `load(...)` and `defs.load_asset_value(...)`, on SQLite and MySQL."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from crypto_assets import load
from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets_tests.graph_helpers import ProjectGraph


@pytest.fixture
def filled(warehouse_url):
    """Prices and bars for 2021-05-15 10:00-13:00 UTC (replay), in the given warehouse."""
    get_warehouse.cache_clear()
    graph = ProjectGraph(warehouse_url)
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations", "ohlcv_bars"], range_=("2021-05-15-10:00", "2021-05-15-12:00"))
        yield graph, instance, warehouse_url


@pytest.mark.slow
def test_load_range_symbols_columns(filled):
    _, _, url = filled
    df = load("price_observations", start="2021-05-15 11:00", end="2021-05-15 12:00", symbols=["btc"],
              columns=["price_usd"], warehouse_url=url)
    assert list(df.columns) == ["symbol", "observed_at", "price_usd"]  # keys always come along
    assert len(df) > 0 and set(df.symbol) == {"BTC"}
    assert str(df.observed_at.dt.tz) == "UTC"
    assert df.observed_at.min() >= pd.Timestamp("2021-05-15 11:00", tz="UTC")
    assert df.observed_at.max() < pd.Timestamp("2021-05-15 12:00", tz="UTC")
    everything = load("price_observations", warehouse_url=url)
    assert len(everything) > len(df)
    assert load("price_observations", symbols=["ETH"], warehouse_url=url).empty
    with pytest.raises(KeyError, match="no columns"):
        load("price_observations", columns=["close"], warehouse_url=url)


@pytest.mark.slow
def test_load_asset_value_single_partition_and_range(filled):
    graph, instance, url = filled
    one = graph.defs.load_asset_value("ohlcv_bars", partition_key="2021-05-15-11:00", instance=instance)
    assert len(one) > 0
    assert one.bar_start.min() >= pd.Timestamp("2021-05-15 11:00", tz="UTC")
    assert one.bar_start.max() < pd.Timestamp("2021-05-15 12:00", tz="UTC")
    same = load("ohlcv_bars", "2021-05-15 11:00", "2021-05-15 12:00", warehouse_url=url)
    pd.testing.assert_frame_equal(one.reset_index(drop=True), same.reset_index(drop=True))
    whole = [graph.defs.load_asset_value("ohlcv_bars", partition_key=k, instance=instance)
             for k in ("2021-05-15-10:00", "2021-05-15-11:00", "2021-05-15-12:00")]
    assert sum(len(w) for w in whole) == len(load("ohlcv_bars", warehouse_url=url))
    universe = graph.defs.load_asset_value("coin_universe", instance=instance)
    assert "BTC" in set(universe.symbol)


def test_load_stays_the_function_after_the_api_layer_is_imported():
    """Importing the modules that use the loading layer must not shadow `crypto_assets.load`."""
    import crypto_assets
    import crypto_assets.api.queries  # noqa: F401  (imports crypto_assets.loading)

    assert callable(crypto_assets.load)
    from crypto_assets import load as again

    assert callable(again)
