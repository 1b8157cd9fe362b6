"""Derivatives (funding, open interest, basis) and exchange-volume features of `ml_features`.

Recorded inputs: bybit's CURRENT funding-rate answer and okx's current open interest (ccxt static
cases, data/exchanges/SOURCES.md) through the real parsing, and binance's recorded klines for the
volume features. No funding-rate or open-interest HISTORY was recorded for any exchange, so the
change features (8h/24h funding change, open-interest change) and the no-look-ahead property are
tested on CONSTRUCTED observations, generated here as test inputs and never written as data.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto_assets.features.build import FeatureInputs, build_features
from crypto_assets.features.derivatives import NAMES, derivative_features, volume_features
from crypto_assets.features.dictionary import FEATURE_NAMES
from crypto_assets.sources.derivatives import (
    SwapMarket,
    frame_of,
    funding_snapshot_row,
    open_derivatives,
    open_interest_row,
)
from crypto_assets.sources.exchanges import Exchanges
from crypto_assets_tests.features.feature_data import indicator_rows, ohlcv_rows
from crypto_assets_tests.paths import DATA

DATA = DATA / "exchanges"
UTC = "UTC"
H = pd.Timedelta(hours=1)


def case(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def _parsed(exchange: str, name: str, method: str) -> dict:
    body = case(name)["httpResponse"]
    client = open_derivatives(Exchanges(mode="replay"), exchange,
                              transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    client.markets()
    return getattr(client.ccxt, method)("BTC/USDT:USDT")


def recorded_rows() -> pd.DataFrame:
    bybit = funding_snapshot_row(SwapMarket("bybit", "BTC", "BTC/USDT:USDT", "USDT", 1.0),
                                 _parsed("bybit", "bybit__fetchFundingRate__0", "fetch_funding_rate"))
    okx = open_interest_row(SwapMarket("okx", "BTC", "BTC/USDT:USDT", "USDT", 0.01),
                            _parsed("okx", "okx__fetchOpenInterest__0_linear", "fetch_open_interest"))
    return frame_of([bybit, okx])


def test_registry_has_the_new_columns():
    assert set(NAMES) <= set(FEATURE_NAMES)


def test_recorded_funding_snapshot_is_used_only_from_its_availability_and_while_fresh():
    rows = recorded_rows()
    known = pd.Timestamp("2024-11-04 14:21:20.834", tz=UTC)
    times = [pd.Timestamp("2024-11-04 14:00", tz=UTC), pd.Timestamp("2024-11-04 15:00", tz=UTC),
             known + pd.Timedelta(hours=9), known + pd.Timedelta(hours=9, seconds=1)]
    got = derivative_features(["BTC"] * 4, times, rows)
    assert np.isnan(got["deriv_funding_rate"][0])  # the bar closing at 14:00 cannot know 14:21's rate
    assert got["deriv_funding_rate"][1] == 0.0001
    assert got["deriv_basis"][1] == 68591.46 / 68599.9 - 1
    assert got["deriv_funding_rate"][2] == 0.0001 and np.isnan(got["deriv_funding_rate"][3])  # 9 h staleness
    assert list(got["dq_derivatives_exchanges"]) == [0, 1, 1, 0]
    assert got["dq_derivatives_newest_age_hours"][1] == pytest.approx((times[1] - known) / H)
    # one recorded figure per exchange: no change can be computed from it (never estimated)
    assert np.isnan(got["deriv_funding_rate_chg_8h"]).all() and np.isnan(got["deriv_oi_chg_24h"]).all()
    # another symbol has nothing
    other = derivative_features(["ETH"], times[1:2], rows)
    assert np.isnan(other["deriv_funding_rate"][0]) and other["dq_derivatives_exchanges"][0] == 0


def test_changes_are_per_exchange_then_averaged():
    """CONSTRUCTED observations (no history was recorded): two exchanges, rates and OI over a day."""
    t = pd.Timestamp("2024-11-05 12:00", tz=UTC)
    obs = pd.DataFrame({
        "exchange": ["a", "a", "b", "b", "a", "a", "b"],
        "symbol": "BTC",
        "kind": ["funding_history"] * 4 + ["open_interest_history"] * 3,
        "available_at": [t - 8 * H, t, t - 8 * H, t - H, t - 24 * H, t, t],
        "funding_rate": [0.0001, 0.0003, 0.0002, 0.0001, np.nan, np.nan, np.nan],
        "open_interest": [np.nan] * 4 + [100.0, 110.0, 50.0],
        "basis": np.nan,
    })
    obs["observed_at"] = obs["available_at"]
    got = derivative_features(["BTC"], [t], obs)
    assert np.isclose(got["deriv_funding_rate"][0], (0.0003 + 0.0001) / 2)
    assert np.isclose(got["deriv_funding_rate_chg_8h"][0], ((0.0003 - 0.0001) + (0.0001 - 0.0002)) / 2)
    assert np.isclose(got["deriv_oi_chg_24h"][0], 110 / 100 - 1)  # b has no OI 24 h before: not in the mean
    assert np.isnan(got["deriv_oi_chg_1h"][0])  # a's OI of t - 1h is t - 24h's, older than 3 h
    assert got["dq_derivatives_exchanges"][0] == 2


def test_volume_features_from_recorded_binance_candles():
    raw = case("binance__fetchOHLCV__0_spot_1h")["httpResponse"]
    bars = pd.DataFrame({
        "symbol": "BTC", "interval": "1h", "method": "exchange",
        "bar_start": pd.to_datetime([r[0] for r in raw], unit="ms", utc=True),
        "volume": [float(r[5]) for r in raw], "quote_volume": [float(r[7]) for r in raw],
        "trade_count": [float(r[8]) for r in raw],
    })
    got = volume_features(bars.iloc[::-1].reset_index(drop=True), bars)  # joined by key, not by position
    assert list(got["trade_count"]) == [float(r[8]) for r in raw[::-1]]
    assert list(got["quote_volume"]) == [float(r[7]) for r in raw[::-1]]
    assert np.allclose(got["avg_trade_size"], [float(r[5]) / r[8] for r in raw[::-1]])
    assert got["dq_volume_from_exchange"].all()
    resampled = bars.assign(method="resampled_observations", volume=np.nan, quote_volume=np.nan, trade_count=np.nan)
    none = volume_features(resampled, resampled)
    assert np.isnan(none["avg_trade_size"]).all() and not none["dq_volume_from_exchange"].any()


def test_missing_derivatives_input_gives_nan_features_and_flags_not_a_failure():
    bars = ohlcv_rows(2, 30, interval="1h", start="2024-11-04", symbols=["BTC", "ETH"])
    built = build_features(FeatureInputs(bars=bars, indicators=indicator_rows(bars), derivatives=None))
    frame = built.frame
    assert len(frame) == 60
    assert frame["deriv_funding_rate"].isna().all() and (frame["dq_derivatives_exchanges"] == 0).all()
    assert built.stats["input_presence"]["derivatives_metrics"] == 0.0


def test_build_features_joins_the_recorded_snapshot_as_of():
    bars = ohlcv_rows(1, 30, interval="1h", start="2024-11-04", symbols=["BTC"])
    frame = build_features(FeatureInputs(bars=bars, indicators=indicator_rows(bars), derivatives=recorded_rows())).frame
    by_asof = frame.set_index("asof_time")
    assert np.isnan(by_asof.loc[pd.Timestamp("2024-11-04 14:00", tz=UTC), "deriv_funding_rate"])
    assert by_asof.loc[pd.Timestamp("2024-11-04 15:00", tz=UTC), "deriv_funding_rate"] == 0.0001
    assert np.isnan(by_asof.loc[pd.Timestamp("2024-11-05 00:00", tz=UTC), "deriv_funding_rate"])  # > 9 h old


# -- no look-ahead, as a property -------------------------------------------------------------

T0 = pd.Timestamp("2024-11-04 00:00", tz=UTC)
observations = st.lists(st.tuples(st.sampled_from(["binance", "bybit", "okx"]), st.sampled_from(["BTC", "ETH"]),
                                  st.sampled_from(["funding_snapshot", "funding_history", "open_interest"]),
                                  st.integers(0, 48 * 60), st.floats(-0.01, 0.01), st.floats(1, 1e5)),
                        max_size=40)


def _obs(rows) -> pd.DataFrame:
    frame = pd.DataFrame({
        "exchange": [r[0] for r in rows], "symbol": [r[1] for r in rows], "kind": [r[2] for r in rows],
        "available_at": pd.to_datetime([T0 + pd.Timedelta(minutes=r[3]) for r in rows], utc=True),
        "funding_rate": [r[4] if r[2] != "open_interest" else np.nan for r in rows],
        "open_interest": [r[5] if r[2] == "open_interest" else np.nan for r in rows],
        "basis": [r[4] / 10 if r[2] == "funding_snapshot" else np.nan for r in rows],
    }, columns=["exchange", "symbol", "kind", "available_at", "funding_rate", "open_interest", "basis"])
    frame["observed_at"] = frame["available_at"]
    return frame.drop_duplicates(["exchange", "symbol", "kind", "observed_at"])


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations, observations, st.integers(1, 47 * 60), st.integers(0, 2**31 - 1))
def test_no_lookahead_changing_later_figures_changes_no_earlier_feature(rows, extra, cut_minutes, seed):
    """CONSTRUCTED observations: for a random cut t, changing every figure available after t and
    adding new ones after t changes no feature of a row whose as-of time is <= t."""
    cut = T0 + pd.Timedelta(minutes=cut_minutes)
    base = _obs(rows)
    rng = np.random.default_rng(seed)
    later = base["available_at"] > cut
    changed = base.copy()
    changed.loc[later, "funding_rate"] = rng.normal(size=int(later.sum()))
    changed.loc[later, "open_interest"] = rng.uniform(1, 1e6, size=int(later.sum()))
    changed.loc[later, "basis"] = rng.normal(size=int(later.sum()))
    added = _obs(extra)
    added = added.assign(available_at=cut + pd.Timedelta(seconds=1) + (added["available_at"] - T0))
    added["observed_at"] = added["available_at"]
    changed = pd.concat([changed, added], ignore_index=True)

    times = pd.date_range(T0, T0 + pd.Timedelta(hours=48), freq="h")
    times = times[times <= cut]
    symbols = np.repeat(["BTC", "ETH"], len(times))
    as_of = list(times) * 2
    before = derivative_features(symbols, as_of, base)
    after = derivative_features(symbols, as_of, changed)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


@pytest.mark.slow
def test_ml_features_reads_derivatives_and_exchange_volume_through_dagster(sqlite_url):
    """The real graph in replay on the recorded exchange-candle window (BTC, 2024-01-30 16:00-18:00),
    plus CONSTRUCTED derivatives rows written to the warehouse with source "test" (no derivatives
    recording overlaps that window). ml_features picks both up; nothing blocks on derivatives."""
    import dagster as dg

    from crypto_assets.loading import load
    from crypto_assets.tables import table
    from crypto_assets.warehouse.resource import get_warehouse
    from crypto_assets.warehouse.factory import open_warehouse
    from crypto_assets_tests.graph_helpers import ProjectGraph

    get_warehouse.cache_clear()
    t16 = pd.Timestamp("2024-01-30 16:00", tz=UTC)
    spec = table("derivatives_metrics")
    constructed = pd.DataFrame({
        "exchange": ["bybit", "bybit"], "symbol": "BTC", "kind": "funding_snapshot",
        "observed_at": [t16 + pd.Timedelta(minutes=30), t16 + pd.Timedelta(hours=1, minutes=30)],
        "funding_rate": [0.0001, 0.0002], "mark_price": 43400.0, "index_price": 43410.0,
    }).assign(available_at=lambda f: f.observed_at, basis=43400.0 / 43410.0 - 1).reindex(
        columns=spec.column_names).assign(source="test", ingested_at=pd.Timestamp.now(tz=UTC))
    open_warehouse(sqlite_url).replace_window(spec, constructed, t16, t16 + pd.Timedelta(hours=3))
    graph = ProjectGraph(sqlite_url)
    hours = ("2024-01-30-16:00", "2024-01-30-18:00")
    with dg.instance_for_test() as instance:
        assert graph.materialize(instance, ["coin_universe"]).success
        assert graph.materialize(instance, ["exchange_candles", "ohlcv_bars", "technical_indicators",
                                            "ml_features"], range_=hours).success
    features = load("ml_features", warehouse_url=sqlite_url).sort_values("bar_start")
    btc = features[features.symbol == "BTC"]
    assert list(btc.bar_method) == ["exchange"] * 3
    assert btc.dq_volume_from_exchange.all()
    assert list(btc.trade_count) == [3743, 4365, 4063]  # binance's recorded trade counts
    # as of 17:00 the 16:30 figure, as of 18:00 the 17:30 one, as of 19:00 still 17:30's (within 9 h)
    assert list(btc.deriv_funding_rate) == [0.0001, 0.0002, 0.0002]
    assert list(btc.dq_derivatives_exchanges) == [1, 1, 1]
