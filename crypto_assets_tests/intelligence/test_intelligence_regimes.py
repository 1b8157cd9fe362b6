"""`market_regimes`: the method on known series, no look-ahead (a property), partition-local =
global, and the asset end to end (warehouse lookback, ranged runs, idempotence).

All inputs are SYNTHETIC series (crypto_assets_tests/intelligence/intelligence_data.py), labelled so."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto_assets.assets.enrich.intelligence import market_regimes
from crypto_assets.intelligence import params as ip
from crypto_assets.intelligence.hourly import hourly_series
from crypto_assets.intelligence.regimes import compute_regimes
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.intelligence import MARKET_REGIMES
from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.intelligence.intelligence_data import as_ohlcv, from_log_returns, walk

HOUR = pd.Timedelta(hours=1)
KEYS = ["symbol", "bar_start"]
NUMERIC = ["close", "sma_fast", "sma_slow", "trend_score", "trend_band", "realized_vol_24h", "vol_percentile",
           "breadth_bull", "breadth_bear"]
LABELS = ["trend_regime", "volatility_regime", "regime", "previous_regime", "regime_changed", "history_hours",
          "symbols"]


def _noise(n, sd, seed):
    return np.random.default_rng(seed).normal(0.0, sd, n)


def test_rising_falling_and_flat_series_are_bull_bear_and_sideways():
    n = 400
    bars = pd.concat([
        from_log_returns("UP", 0.003 + _noise(n, 0.002, 1)),
        from_log_returns("DOWN", -0.003 + _noise(n, 0.002, 2)),
        # a level that wobbles around 100 (iid log-price noise, not a random walk)
        from_log_returns("FLAT", np.diff(np.concatenate([[0.0], _noise(n, 0.004, 3)]))),
    ], ignore_index=True)
    frame = compute_regimes(bars)
    last = frame[frame.bar_start == frame.bar_start.max()].set_index("symbol")
    assert last.loc["UP", "trend_regime"] == "bull" and last.loc["DOWN", "trend_regime"] == "bear"
    assert last.loc["FLAT", "trend_regime"] == "sideways"
    # the market row summarises the three: median trend score is FLAT's, breadth counts one each
    assert last.loc[ip.MARKET, "symbols"] == 3
    assert last.loc[ip.MARKET, "breadth_bull"] == pytest.approx(1 / 3)
    assert last.loc[ip.MARKET, "breadth_bear"] == pytest.approx(1 / 3)
    assert last.loc[ip.MARKET, "trend_score"] == pytest.approx(last.loc["FLAT", "trend_score"])
    # known values: the SMAs are the plain means of the last 24 / 168 closes
    closes = hourly_series(bars[bars.symbol == "UP"]).close.to_numpy()
    assert last.loc["UP", "sma_fast"] == pytest.approx(closes[-24:].mean(), rel=1e-12)
    assert last.loc["UP", "sma_slow"] == pytest.approx(closes[-168:].mean(), rel=1e-12)
    returns = np.diff(np.log(closes))[-24:]
    assert last.loc["UP", "realized_vol_24h"] == pytest.approx(returns.std(ddof=1) * np.sqrt(24), rel=1e-9)


def test_volatility_is_ranked_against_its_own_trailing_week():
    calm, storm = _noise(300, 0.002, 4), _noise(24, 0.03, 5)
    bars = from_log_returns("X", np.concatenate([calm, storm, _noise(300, 0.002, 6)]))
    frame = compute_regimes(bars).query("symbol == 'X'").set_index("bar_start")
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    end_of_storm = frame.loc[t0 + 323 * HOUR]
    assert end_of_storm.volatility_regime == "high" and end_of_storm.vol_percentile > 0.9
    # two days later the same calm volatility as before the storm ranks low: the storm's values
    # are still in the trailing week it is ranked against
    two_days_after = frame.loc[t0 + 380 * HOUR]
    assert two_days_after.volatility_regime == "low" and two_days_after.vol_percentile < 0.5
    assert two_days_after.realized_vol_24h < 0.2 * end_of_storm.realized_vol_24h
    # regime changes are recorded where the volatility regime flips
    flips = frame[frame.regime_changed]
    assert len(flips) and (flips.previous_regime != flips.regime).all()
    assert flips.previous_regime.notna().all()


def test_warm_up_and_gaps_give_unknown_regimes_not_guesses():
    frame = compute_regimes(walk(1, 130))  # less than 80 % of the 168h trend window
    sym = frame[frame.scope == "symbol"]
    assert sym.regime.isna().all() and sym.sma_slow.isna().all()
    assert (frame.scope == "market").sum() == 0  # no symbol known: no market row
    assert not sym.regime_changed.any()
    # a symbol missing 30 % of its hours in the window has no sma_slow (80 % coverage rule)
    bars = walk(1, 400)
    hours = bars.bar_start.dt.hour
    holey = bars[~((bars.bar_start >= bars.bar_start.max() - 100 * HOUR) & (hours % 3 != 0))]
    last = compute_regimes(holey).iloc[-2]  # the symbol row of the last hour
    assert last.scope == "symbol" and np.isnan(last.sma_slow) and pd.isna(last.regime)


def test_hourly_close_is_the_last_bar_of_the_finest_interval_and_volume_needs_a_full_hour():
    five = walk(1, 3, interval="5min", seed=7)
    hourly = walk(1, 3, seed=8)
    series = hourly_series(pd.concat([five, hourly], ignore_index=True))
    assert list(series.interval) == ["5min"] * 3
    first_hour = five[five.bar_start < five.bar_start.min() + HOUR]
    assert series.close.iloc[0] == first_hour.close.iloc[-1]
    assert series.volume.iloc[0] == pytest.approx(first_hour.volume.sum())
    partial = hourly_series(five.drop(index=five.index[3]))
    assert np.isnan(partial.volume.iloc[0]) and partial.volume.iloc[1:].notna().all()


# -- no look-ahead and partition-local = global ----------------------------------------------

T0 = pd.Timestamp("2024-03-01", tz="UTC")
SPAN = 420  # hours: past the warm-up (192 h) so most rows have a regime


def _changed_after(bars: pd.DataFrame, cut: pd.Timestamp, rng) -> pd.DataFrame:
    """Every bar whose close is known after `cut` rescaled, and new bars appended after it."""
    out = bars.copy()
    late = (out.bar_end > cut).to_numpy()
    factor = rng.uniform(0.3, 3.0, late.sum())
    for col in ("open", "high", "low", "close", "volume"):
        out.loc[late, col] = out.loc[late, col].to_numpy() * factor
    extra = walk(2, 30, start=str(bars.bar_start.max() + HOUR), seed=99)
    return pd.concat([out, extra], ignore_index=True)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut_hours=st.integers(150, SPAN), interval=st.sampled_from(["1h", "30min"]),
       drop=st.integers(0, 40))
def test_bars_known_after_t_never_change_regimes_at_or_before_t(seed, cut_hours, interval, drop):
    bars = walk(3, SPAN, start=str(T0), seed=seed, interval=interval)
    bars = bars.drop(index=np.random.default_rng(seed).choice(bars.index, drop, replace=False))  # gaps
    cut = T0 + cut_hours * HOUR
    before = compute_regimes(bars)
    after = compute_regimes(_changed_after(bars, cut, np.random.default_rng(seed)))
    early_before = before[before.asof_time <= cut].reset_index(drop=True)
    early_after = after[after.asof_time <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(early_before, early_after, check_exact=True)
    late = after[after.asof_time > cut]
    assert len(late) and late.bar_start.max() > before.bar_start.max()  # the future really changed


def _partition_by_partition(bars: pd.DataFrame, starts) -> pd.DataFrame:
    frames = []
    for start in starts:
        lo = start - ip.REGIME_LOOKBACK_HOURS * HOUR
        window = bars[(bars.bar_start >= lo) & (bars.bar_start < start + HOUR)]
        frames.append(compute_regimes(window, start, start + HOUR))
    return pd.concat(frames, ignore_index=True)


def test_each_partition_with_its_lookback_equals_the_full_history():
    bars = walk(4, 600, start=str(T0), seed=11)
    bars = bars.drop(index=bars.index[::37])  # some gaps
    starts = [T0 + h * HOUR for h in (200, 230, 420, 599)]
    full = compute_regimes(bars)
    full = full[full.bar_start.isin(starts)].reset_index(drop=True)
    local = _partition_by_partition(bars, starts)
    assert len(local) == len(full) > 0 and full.regime.notna().sum() > 10
    pd.testing.assert_frame_equal(local, full, check_exact=True)


def test_the_lookback_is_needed():
    """Reading only the 168h trend window before the partition (not the volatility rank's reach)
    changes the volatility rank: the lookback is what makes partitions equal the full history."""
    bars = walk(2, 500, start=str(T0), seed=12)
    start = T0 + 450 * HOUR
    full = compute_regimes(bars, start, start + HOUR)
    short = bars[bars.bar_start >= start - ip.TREND_SLOW_HOURS * HOUR]
    cut = compute_regimes(short, start, start + HOUR)
    np.testing.assert_array_equal(full.sma_slow.to_numpy(), cut.sma_slow.to_numpy())  # enough for the SMA ...
    # ... not for the rank, which then sees fewer of its 168 earlier volatility values
    assert full.vol_percentile.notna().all()
    assert not np.allclose(full.vol_percentile.to_numpy(), cut.vol_percentile.to_numpy())


# -- the asset ---------------------------------------------------------------------------------

OHLCV_SPEC = dg.AssetSpec("ohlcv_bars", partitions_def=HOURLY)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('wh') / 'warehouse.sqlite'}"
    wh = open_warehouse(url)
    bars = walk(3, 24 * 12, start="2021-05-01", seed=21)
    wh.replace_window(OHLCV_BARS, bars, "2021-05-01", "2021-05-13")
    return url, wh, bars


def _materialize(url, **kwargs):
    return dg.materialize(
        [market_regimes, OHLCV_SPEC], selection=[market_regimes],
        resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url)},
        instance=dg.DagsterInstance.ephemeral(), **kwargs)


def test_asset_writes_the_full_history_values_and_reruns_idempotently(warehouse):
    url, wh, bars = warehouse
    tags = {"dagster/asset_partition_range_start": "2021-05-10-00:00",
            "dagster/asset_partition_range_end": "2021-05-10-05:00"}
    result = _materialize(url, tags=tags)
    assert result.success
    start, end = pd.Timestamp("2021-05-10", tz="UTC"), pd.Timestamp("2021-05-10 06:00", tz="UTC")
    written = wh.read(MARKET_REGIMES, start, end).sort_values(KEYS).reset_index(drop=True)
    expected = compute_regimes(bars, start, end).sort_values(KEYS).reset_index(drop=True)
    assert len(written) == 6 * 4 and written.regime.notna().all()
    assert list(written.regime) == list(expected.regime)
    np.testing.assert_allclose(written.trend_score.astype(float), expected.trend_score.astype(float), rtol=1e-12)
    assert (written.asof_time == written.bar_start + HOUR).all() and (written.source == "computed").all()
    meta = result.asset_materializations_for_node("market_regimes")[0].metadata
    assert meta["lookback_hours"].value == ip.REGIME_LOOKBACK_HOURS
    assert meta["bars_read_with_lookback"].value == 3 * (ip.REGIME_LOOKBACK_HOURS + 6)

    assert _materialize(url, tags=tags).success
    again = wh.read(MARKET_REGIMES, start, end).sort_values(KEYS).reset_index(drop=True)
    pd.testing.assert_frame_equal(written.drop(columns="ingested_at"), again.drop(columns="ingested_at"))


def test_asset_definition():
    assert market_regimes.group_names_by_key[market_regimes.key] == "enrich"
    assert market_regimes.partitions_def == HOURLY and market_regimes.descriptions_by_key[market_regimes.key]
    (dep,) = market_regimes.specs_by_key[market_regimes.key].deps
    assert dep.partition_mapping is None  # identity: the lookback is read, never a required parent
    assert all(c.description for c in MARKET_REGIMES.columns)
