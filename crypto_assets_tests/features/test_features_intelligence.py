"""Regime and Fear & Greed columns of `ml_features`: as of their availability, never blocking.

Inputs are SYNTHETIC bars (crypto_assets_tests/intelligence/intelligence_data.py) and regimes computed from them;
Fear & Greed rows are CONSTRUCTED here (made-up values, no recording exists)."""

import pytest

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto_assets.assets.features.ml_features import ml_features
from crypto_assets.automation.policies import AUTOMATION
from crypto_assets.features.build import FeatureInputs, build_features
from crypto_assets.features.dictionary import FEATURE_NAMES
from crypto_assets.features.intelligence import FEATURE_NAMES as INTELLIGENCE_FEATURES
from crypto_assets.intelligence.regimes import compute_regimes
from crypto_assets_tests.intelligence.intelligence_data import walk

HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2024-03-01", tz="UTC")
START = T0 + 200 * HOUR  # past the regimes' warm-up


def _fng(days: int, start: date = date(2024, 3, 1), seed: int = 0) -> pd.DataFrame:
    values = np.random.default_rng(seed).integers(5, 95, days)
    dates = [start + timedelta(days=k) for k in range(days)]
    return pd.DataFrame({"date": dates, "value": values,
                         "available_at": [pd.Timestamp(d, tz="UTC") for d in dates]})


def _rows(frame, symbol, bar_start):
    return frame[(frame.symbol == symbol) & (frame.bar_start == bar_start)].iloc[0]


def test_every_column_is_registered():
    assert set(INTELLIGENCE_FEATURES) <= set(FEATURE_NAMES)


def test_regime_is_the_one_known_when_the_bar_hour_began_and_fng_is_as_of():
    hourly = walk(2, 230, start=str(T0), seed=1)
    five = walk(2, 230, start=str(T0), seed=1, interval="5min")
    regimes = compute_regimes(hourly)
    fng = _fng(12)
    bars = pd.concat([hourly, five[five.symbol == "SYN000"]], ignore_index=True)
    end = START + 3 * HOUR
    frame = build_features(FeatureInputs(bars=bars, regimes=regimes, fear_greed=fng), START, end).frame
    by_key = regimes.set_index(["symbol", "bar_start"])
    # SYN001 has 1h bars: the 1h bar of hour h uses the regime of hour h - 1 (asof_time = h)
    row = _rows(frame, "SYN001", START + HOUR)
    known = by_key.loc[("SYN001", START)]
    assert row.regime == known.regime and row.regime_trend_score == known.trend_score
    assert row.regime_vol_percentile == known.vol_percentile and row.dq_regime_present
    market = by_key.loc[("_MARKET", START)]
    assert row.mkt_regime == market.regime and row.mkt_regime_breadth_bull == market.breadth_bull
    assert row.regime_trend == {"bull": 1, "sideways": 0, "bear": -1}[known.trend_regime]
    # SYN000's 5-minute bars of hour h (as of h:05 ... h+1:00) all use the same regime, of hour h - 1
    sub = frame[(frame.symbol == "SYN000") & (frame.bar_start >= START + HOUR) & (frame.bar_start < START + 2 * HOUR)]
    assert (sub.bar_interval == "5min").all() and len(sub) == 12
    assert (sub.regime_trend_score == by_key.loc[("SYN000", START)].trend_score).all()
    # Fear & Greed: the value of the row's day, published at 00:00 UTC, with its change from the day before
    day = (START + HOUR).date()
    today, yesterday = fng.set_index("date").value[day], fng.set_index("date").value[day - timedelta(days=1)]
    assert row.fng_value == today and row.fng_change_1d == today - yesterday
    assert row.dq_fng_age_hours == (row.asof_time - pd.Timestamp(day, tz="UTC")) / HOUR


def test_missing_or_stale_inputs_are_nan_with_flags_never_an_error():
    bars = walk(1, 230, start=str(T0), seed=2)
    regimes = compute_regimes(bars)
    none = build_features(FeatureInputs(bars=bars), START, START + 2 * HOUR).frame
    assert none.regime.isna().all() and none.fng_value.isna().all() and not none.dq_regime_present.any()
    assert none.dq_fng_age_hours.isna().all() and none.mkt_regime_trend.isna().all()
    stale = regimes[regimes.bar_start < START - 3 * HOUR]  # the newest regime is 3 h old at the hour's start
    old_fng = _fng(3, start=date(2024, 3, 1))  # the last value (3 Mar) is > 48 h old on 9 Mar
    frame = build_features(FeatureInputs(bars=bars, regimes=stale, fear_greed=old_fng), START, START + 2 * HOUR).frame
    assert frame.regime_trend_score.isna().all() and frame.fng_value.isna().all()


cut_hours = st.integers(0, 48 * 60)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), cut_minutes=cut_hours, interval=st.sampled_from(["5min", "1h"]))
def test_regimes_and_fng_known_after_t_never_change_features_at_or_before_t(seed, cut_minutes, interval):
    bars = walk(2, 250, start=str(T0), seed=seed, interval=interval)
    regimes = compute_regimes(walk(2, 250, start=str(T0), seed=seed))
    fng = _fng(14, seed=seed)
    cut = START + pd.Timedelta(minutes=cut_minutes)
    end = START + 48 * HOUR
    before = build_features(FeatureInputs(bars=bars, regimes=regimes, fear_greed=fng), START, end).frame
    rng = np.random.default_rng(seed)
    late_r = regimes.copy()
    late = (late_r.asof_time > cut).to_numpy()
    late_r.loc[late, "trend_score"] = rng.normal(size=late.sum())
    late_r.loc[late, "regime"] = "bull_high_vol"
    late_r.loc[late, "trend_regime"] = "bull"
    late_f = fng.copy()
    late_fng = (late_f.available_at > cut).to_numpy()
    late_f.loc[late_fng, "value"] = 99
    # a revision of an OLD day published after the cut is invisible before it
    late_f = pd.concat([late_f, pd.DataFrame({"date": [date(2024, 3, 2)], "value": [1],
                                              "available_at": [cut + pd.Timedelta(seconds=1)]})], ignore_index=True)
    after = build_features(FeatureInputs(bars=bars, regimes=late_r, fear_greed=late_f), START, end).frame
    cols = ["symbol", "bar_start", "asof_time", *INTELLIGENCE_FEATURES]
    a = before[before.asof_time <= cut][cols].reset_index(drop=True)
    b = after[after.asof_time <= cut][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_optional_inputs_never_block_ml_features():
    deps = {d.asset_key.to_user_string() for d in ml_features.specs_by_key[ml_features.key].deps}
    assert "fear_greed_index" in deps  # lineage (daily, like macro)
    assert "market_regimes" not in deps  # read from the warehouse: never a same-run parent that could skip it
    label = str(AUTOMATION["ml_features"])
    assert "fear_greed_index" not in label and "market_regimes" not in label
