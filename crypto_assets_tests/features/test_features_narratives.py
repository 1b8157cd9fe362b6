"""Narrative theme features (crypto_assets/features/narratives.py): values on known narratives, the
as-of rule, and no look-ahead. Narratives here are test input written in the test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from crypto_assets.features.narratives import FEATURE_NAMES, narrative_features
from crypto_assets.llm.narratives import THEMES

T0 = pd.Timestamp("2025-10-01 00:00", tz="UTC")


def narrative(hour: int, minute: int, themes: list[dict], status: str = "ok") -> dict:
    row = {"hour_start": T0 + pd.Timedelta(hours=hour), "status": status,
           "available_at": T0 + pd.Timedelta(hours=hour, minutes=minute),
           "themes_json": json.dumps(themes) if status == "ok" else None}
    by = {t["theme"]: t["strength"] for t in themes}
    row.update({f"strength_{t}": (by.get(t, 0.0) if status == "ok" else np.nan) for t in THEMES})
    return row


NARRATIVES = pd.DataFrame([
    narrative(0, 50, [{"theme": "regulation", "strength": 0.8, "coins": ["ETH"], "evidence": [1]}]),
    narrative(1, 40, [{"theme": "security", "strength": 0.5, "coins": ["BTC", "ETH"], "evidence": [1]},
                      {"theme": "macro", "strength": 0.2, "coins": [], "evidence": [2]}]),
    narrative(2, 30, [], status="failed"),
])


def features_at(symbols, times, narratives=NARRATIVES):
    return narrative_features(np.array(symbols, dtype=object), pd.Series(pd.to_datetime(times, utc=True)), narratives)


def test_values_as_of_each_row():
    t = [T0 + pd.Timedelta(minutes=30), T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=2),
         T0 + pd.Timedelta(hours=6)]
    f = features_at(["ETH", "ETH", "ETH", "BTC"], t)
    assert set(f) == set(FEATURE_NAMES)
    # 00:30: nothing known yet (the first narrative became available at 00:50)
    assert np.isnan(f["narr_regulation"][0]) and f["dq_narratives_24h"][0] == 0
    assert np.isnan(f["narr_symbol_strength_24h"][0])
    # 01:00: the 00:50 narrative only
    assert f["narr_regulation"][1] == 0.8 and f["narr_security"][1] == 0.0 and f["dq_narratives_24h"][1] == 1
    assert f["narr_symbol_strength_24h"][1] == 0.8
    # 02:00: the newest is 01:40 (security 0.5, macro 0.2); 24h means over both; the failed hour never counts
    assert f["narr_security"][2] == 0.5 and f["narr_regulation"][2] == 0.0
    assert f["narr_regulation_24h"][2] == 0.4 and f["narr_macro_24h"][2] == 0.1 and f["dq_narratives_24h"][2] == 2
    assert f["narr_symbol_strength_24h"][2] == (0.8 + 0.5) / 2
    # 06:00: the newest is 4h20 old -> latest NaN; the 24h means remain; BTC touched once (0.5) of 2
    assert np.isnan(f["narr_security"][3]) and f["narr_security_24h"][3] == 0.25
    assert f["narr_symbol_strength_24h"][3] == 0.25


def test_a_symbol_no_theme_touched_is_zero_not_nan_and_no_input_is_nan():
    f = features_at(["SOL"], [T0 + pd.Timedelta(hours=3)])
    assert f["narr_symbol_strength_24h"][0] == 0.0
    for narratives in (None, NARRATIVES.iloc[0:0], NARRATIVES[NARRATIVES.status == "failed"]):
        f = features_at(["BTC"], [T0 + pd.Timedelta(hours=3)], narratives)
        assert all(np.isnan(f[c][0]) for c in FEATURE_NAMES if c != "dq_narratives_24h")
        assert f["dq_narratives_24h"][0] == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 47), st.integers(0, 59), st.floats(0, 1), st.booleans()),
                min_size=1, max_size=12),
       st.integers(0, 60 * 50))
def test_no_look_ahead(rows, minute):
    """A row's features equal those computed from only the narratives available by its as-of time."""
    narratives = pd.DataFrame([
        narrative(h, m, [{"theme": "adoption", "strength": s, "coins": ["BTC"] if touch else [], "evidence": [1]}])
        for h, m, s, touch in rows
    ]).drop_duplicates("hour_start")
    t = T0 + pd.Timedelta(minutes=minute)
    known = narratives[narratives.available_at <= t]
    full, cut = features_at(["BTC"], [t], narratives), features_at(["BTC"], [t], known)
    for name in FEATURE_NAMES:
        np.testing.assert_array_equal(full[name], cut[name], err_msg=name)


@pytest.mark.slow
def test_ml_features_reads_narratives_from_the_warehouse_as_of(sqlite_url):
    """Through the graph: narratives written to the warehouse (test rows) reach ml_features by available_at."""
    import dagster as dg

    from crypto_assets import load
    from crypto_assets.tables.narratives import NEWS_NARRATIVES
    from crypto_assets.warehouse.resource import get_warehouse
    from crypto_assets.warehouse.factory import open_warehouse
    from crypto_assets_tests.graph_helpers import ProjectGraph

    hours = ("2021-05-15-10:00", "2021-05-15-12:00")  # inside the recorded replay window
    start, end = pd.Timestamp("2021-05-15 10:00", tz="UTC"), pd.Timestamp("2021-05-15 13:00", tz="UTC")
    get_warehouse.cache_clear()
    graph = ProjectGraph(sqlite_url)
    row = narrative(0, 0, [{"theme": "adoption", "strength": 0.7, "coins": ["BTC"], "evidence": [1]}])
    row.update(hour_start=pd.Timestamp("2021-05-15 10:00", tz="UTC"),
               available_at=pd.Timestamp("2021-05-15 10:40", tz="UTC"), model="test", source="test")
    wh = open_warehouse(sqlite_url)
    frame = pd.DataFrame([row]).reindex(columns=NEWS_NARRATIVES.column_names)
    wh.replace_window(NEWS_NARRATIVES, frame, start, end)
    wh.dispose()
    with dg.instance_for_test() as instance:
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators"], range_=hours)
        result = graph.materialize(instance, ["ml_features"], range_=hours)
    features = load("ml_features", start, end, symbols=["BTC"], warehouse_url=sqlite_url)
    before = features[features.asof_time < pd.Timestamp("2021-05-15 10:40", tz="UTC")]
    after = features[features.asof_time >= pd.Timestamp("2021-05-15 10:40", tz="UTC")]
    assert len(before) and len(after)
    assert before.narr_adoption.isna().all() and (before.dq_narratives_24h == 0).all()
    assert (after.narr_adoption_24h == 0.7).all() and (after.narr_symbol_strength_24h == 0.7).all()
    assert (after.dq_narratives_24h == 1).all()
    fresh = after[after.asof_time <= pd.Timestamp("2021-05-15 13:40", tz="UTC")]
    assert (fresh.narr_adoption == 0.7).all()
    metadata = result.asset_materializations_for_node("ml_features")[0].metadata
    assert metadata["inputs_read"].value["news_narratives"] == 1
