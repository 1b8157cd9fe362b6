"""`ml_features` through Dagster on a real warehouse (SQLite and MySQL): one row per featured
(symbol, bar), no duplicate keys, idempotent re-materialization, and a data dictionary that
matches the code."""

from __future__ import annotations

import pytest


import dagster as dg
import pandas as pd

from crypto_assets import load
from crypto_assets.features.dictionary import ALL_COLUMNS, DOC_PATH, FEATURE_NAMES, render_data_dictionary
from crypto_assets.tables import table
from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets_tests.graph_helpers import ProjectGraph, row_counts_by_partition
from crypto_assets_tests.paths import REPO

HOURS = ("2021-05-15-10:00", "2021-05-15-12:00")  # inside the recorded replay window
START, END = pd.Timestamp("2021-05-15 10:00", tz="UTC"), pd.Timestamp("2021-05-15 13:00", tz="UTC")


def _expected_rows(bars: pd.DataFrame) -> int:
    """Bars of the finest interval per (symbol, UTC hour): the rows ml_features must have."""
    bars = bars.assign(hour=bars.bar_start.dt.floor("h"), length=bars["interval"].map(pd.Timedelta))
    finest = bars.groupby(["symbol", "hour"]).length.transform("min")
    return int((bars.length == finest).sum())


@pytest.mark.slow
def test_rows_are_symbols_times_bars_without_duplicates_and_rerun_is_idempotent(warehouse_url):
    get_warehouse.cache_clear()
    graph = ProjectGraph(warehouse_url)
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators"], range_=HOURS)
        first = graph.materialize(instance, ["ml_features"], range_=HOURS)
        features = load("ml_features", START, END, warehouse_url=warehouse_url)
        bars = load("ohlcv_bars", START, END, warehouse_url=warehouse_url)

        assert len(bars) > 0
        assert len(features) == _expected_rows(bars)
        assert not features.duplicated(["symbol", "bar_start"]).any()
        assert set(features.symbol) == set(bars.symbol)
        assert (features.asof_time >= features.bar_start).all()
        metadata = first.asset_materializations_for_node("ml_features")[0].metadata
        assert metadata["run_rows_written"].value == len(features)
        assert sum(row_counts_by_partition(first, "ml_features").values()) == len(features)

        graph.materialize(instance, ["ml_features"], range_=HOURS)  # the same range again
        again = load("ml_features", START, END, warehouse_url=warehouse_url)
    pd.testing.assert_frame_equal(features.drop(columns="ingested_at"), again.drop(columns="ingested_at"))


def test_the_table_has_every_registered_feature_and_at_least_100():
    columns = table("ml_features").column_names
    assert len(FEATURE_NAMES) >= 100
    assert [c for c in columns if c not in ("source", "ingested_at")] == [f.name for f in ALL_COLUMNS]


def test_data_dictionary_document_matches_the_code():
    assert DOC_PATH.read_text() == render_data_dictionary(), (
        "docs/data_dictionary.md is stale: run `python -m crypto_assets.features.dictionary`")


def test_every_feature_column_is_described_in_the_ui_schema():
    from crypto_assets.definitions import defs

    spec = next(s for s in defs.resolve_all_asset_specs() if s.key.to_user_string() == "ml_features")
    schema = {c.name: c for c in spec.metadata["dagster/column_schema"].columns}
    missing = [name for name in FEATURE_NAMES if name not in schema or "Inputs:" not in schema[name].description]
    assert not missing


def test_every_stated_feature_count_is_the_codes():
    """The README, docs/features.md and the asset's UI description state how many features the
    table has; each number is the code's (a stale '166 features' once sat beside 207 in the UI)."""
    import re

    from crypto_assets.assets.features.ml_features import ml_features
    from crypto_assets.features.dictionary import FEATURE_NAMES
    from crypto_assets.tables.features import ML_FEATURES

    root = REPO
    readme = (root / "README.md").read_text()
    features_doc = (root / "docs" / "features.md").read_text()
    stated = {
        "README": re.search(r"`ml_features` is one row per `\(symbol, bar_start\)` with (\d+) features \((\d+) columns",
                            readme),
        "docs/features.md": re.search(r"(\d+) feature columns \((\d+)\s+columns in all", features_doc),
    }
    for where, match in stated.items():
        assert match, f"{where} no longer states the feature count in the tested form"
        assert (int(match[1]), int(match[2])) == (len(FEATURE_NAMES), len(ML_FEATURES.column_names)), where
    description = ml_features.specs_by_key[dg.AssetKey("ml_features")].description
    assert f"{len(FEATURE_NAMES)} features" in description
