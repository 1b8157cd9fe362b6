"""The as-of helper never uses a value that became known after the bar time."""

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_assets.features.asof import asof_join, asof_wide
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.fred import first_releases, parse_observations

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _observations(rows) -> pd.DataFrame:
    """rows: (series, day offset of observation, hour offset of availability, value)."""
    return pd.DataFrame({
        "series_id": [r[0] for r in rows],
        "observation_date": [date(2024, 1, 1) + timedelta(days=r[1]) for r in rows],
        "available_at": [T0 + pd.Timedelta(hours=r[2]) for r in rows],
        "value": [float(r[3]) for r in rows],
    }).drop_duplicates(["series_id", "observation_date"])


observation_rows = st.lists(
    st.tuples(st.sampled_from(["A", "B"]), st.integers(0, 20), st.integers(0, 24 * 25),
              st.integers(-1000, 1000)),
    min_size=1, max_size=40,
)
bar_hours = st.lists(st.integers(0, 24 * 26), min_size=1, max_size=15)


def _bars(hours) -> pd.DataFrame:
    return pd.DataFrame({"symbol": ["BTC"] * len(hours), "bar_start": [T0 + pd.Timedelta(hours=h) for h in hours]})


def _reference(bars: pd.DataFrame, obs: pd.DataFrame, series: str) -> list[tuple]:
    """Brute force: for each bar, the newest and second-newest observation known by then."""
    out = []
    for t in bars.bar_start:
        known = obs[(obs.series_id == series) & (obs.available_at <= t)].sort_values("observation_date")
        value = known.value.iloc[-1] if len(known) else np.nan
        prev = known.value.iloc[-2] if len(known) > 1 else np.nan
        out.append((value, prev))
    return out


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(rows=observation_rows, hours=bar_hours, cut=st.integers(0, 24 * 26), noise=st.integers(1, 10_000))
def test_values_known_after_t_change_nothing_at_t(rows, hours, cut, noise):
    obs = _observations(rows)
    bars = _bars(hours)
    t = T0 + pd.Timedelta(hours=cut)
    before = asof_wide(bars, obs)

    # perturb everything not yet known at t: change its values, and add a new observation
    # (newer date) that is only known after t
    later = obs.available_at > t
    perturbed = obs.copy()
    perturbed.loc[later, "value"] = perturbed.loc[later, "value"] + noise
    extra = _observations([("A", 30, cut + 1, noise)])
    after = asof_wide(bars, pd.concat([perturbed, extra], ignore_index=True))

    visible = bars.bar_start <= t
    for col in [c for c in before.columns if c.startswith(("A", "B"))]:
        pd.testing.assert_series_equal(before.loc[visible, col], after.loc[visible, col], check_names=False)


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(rows=observation_rows, hours=bar_hours)
def test_matches_brute_force(rows, hours):
    obs = _observations(rows)
    bars = _bars(hours)
    wide = asof_wide(bars, obs)
    for series in obs.series_id.unique():
        expected = _reference(bars, obs, series)
        got = list(zip(wide[series], wide[f"{series}_prev"]))
        np.testing.assert_array_equal(np.array(got, dtype=float), np.array(expected, dtype=float))


def test_release_after_t_is_not_visible_at_t():
    """Real core CPI recording: September 2024 CPI was published on 10 Oct 2024."""
    payload = json.loads((RESOURCES_DIR / "replay" / "fred" / "CPILFESL_observations.json").read_text())
    released, _ = first_releases(parse_observations(payload))
    macro = released.assign(series_id="CPILFESL")[["series_id", "observation_date", "value", "available_at"]]
    bars = pd.DataFrame({"bar_start": pd.to_datetime(
        ["2024-10-10 13:00", "2024-10-11 04:00", "2024-10-11 05:00", "2024-10-12 00:00"], utc=True)})
    wide = asof_wide(bars, macro)
    # joined by calendar date, the 10 Oct bars would see September's 320.767: they must not
    assert wide.CPILFESL.isna().tolist() == [True, True, False, False]
    assert wide.CPILFESL.iloc[2] == 320.767 and wide.CPILFESL_prev.iloc[2] == 319.768


def test_late_older_observation_only_becomes_the_previous_value():
    obs = _observations([("A", 2, 10, 3.0), ("A", 1, 20, 2.0), ("A", 0, 5, 1.0)])
    bars = _bars([6, 11, 21])
    long = asof_join(bars, obs)
    assert long.value.tolist() == [1.0, 3.0, 3.0]
    assert long.prev_value.fillna(-1).tolist() == [-1, 1.0, 2.0]
    assert long.observation_date.tolist() == [date(2024, 1, 1), date(2024, 1, 3), date(2024, 1, 3)]


def test_keeps_bar_order_index_and_rejects_naive_times():
    obs = _observations([("A", 0, 0, 1.0)])
    bars = pd.DataFrame({"bar_start": [T0 + pd.Timedelta(hours=5), T0 - pd.Timedelta(hours=5)]}, index=[9, 9])
    wide = asof_wide(bars, obs)
    assert wide.index.tolist() == [9, 9] and wide.A.fillna(-1).tolist() == [1.0, -1]
    with pytest.raises(ValueError, match="timezone-aware"):
        asof_wide(pd.DataFrame({"bar_start": [pd.Timestamp("2024-01-02")]}), obs)
