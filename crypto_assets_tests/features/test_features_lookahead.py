"""No look-ahead, as a property: for a random cut time t, changing (or adding) every input that
becomes available strictly after t changes no feature of any row whose as-of time is <= t.

"Available" per input: a bar and its indicators at bar_end; a sentiment item at published_at;
a macro value at available_at; an on-chain day once the day has closed (even when the provider
states an earlier available_at)."""

import pytest

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto_assets.features.build import FeatureInputs, build_features
from crypto_assets_tests.features.feature_data import indicator_rows, ohlcv_rows

T0 = pd.Timestamp("2024-03-01 18:00", tz="UTC")  # a Friday evening: the cut can cross the US close and midnight
SYMBOLS = ["BTC", "ETH", "SOL"]
MACRO = ["VIX", "SPY", "QQQ", "DGS10", "CPIAUCSL"]
ONCHAIN = [("bitcoin", "tx_count"), ("ethereum", "tvl_usd")]
HOURS = 8

items = st.lists(st.tuples(st.integers(-1600, HOURS * 60 + 60), st.floats(-1, 1), st.floats(0, 1),
                           st.sets(st.sampled_from(SYMBOLS))), max_size=25)
macro_obs = st.lists(st.tuples(st.sampled_from(MACRO), st.integers(-80, 1), st.integers(0, 24 * 60),
                               st.floats(1, 100)), max_size=20)
onchain_obs = st.lists(st.tuples(st.sampled_from(ONCHAIN), st.integers(-9, 1), st.integers(-30, 30),
                                 st.floats(1, 1e6)), max_size=12)


def _bars(kinds: list[str], seed: int) -> pd.DataFrame:
    frames = []
    for i, (symbol, kind) in enumerate(zip(SYMBOLS, kinds)):
        if kind == "none":
            continue
        for interval in {"5min": ["5min"], "1h": ["1h"], "both": ["5min", "1h"]}[kind]:
            n = HOURS * (12 if interval == "5min" else 1)
            frames.append(ohlcv_rows(1, n, interval=interval, start=str(T0), seed=seed + i, symbols=[symbol]))
    return pd.concat(frames, ignore_index=True)


def _sentiment(rows) -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": [f"i{k}" for k in range(len(rows))], "model": "finbert",
        "score": [r[1] for r in rows], "confidence": [r[2] for r in rows],
        "label": ["positive" if r[1] > 0.3 else "negative" if r[1] < -0.3 else "neutral" for r in rows],
        # to_datetime: an empty list would otherwise be an object column that cannot compare to a time
        "published_at": pd.to_datetime([T0 + pd.Timedelta(minutes=r[0]) for r in rows], utc=True),
        "symbols_mentioned": ["|".join(sorted(r[3])) for r in rows],
    }, columns=["item_id", "model", "score", "confidence", "label", "published_at", "symbols_mentioned"])


def _macro(rows) -> pd.DataFrame:
    day0 = T0.date()
    frame = pd.DataFrame({
        "series_id": [r[0] for r in rows],
        "observation_date": [day0 + timedelta(days=r[1]) for r in rows],
        # available some minutes after the start of the observation day (often days later)
        "available_at": pd.to_datetime([pd.Timestamp(day0 + timedelta(days=r[1]), tz="UTC")
                                        + pd.Timedelta(minutes=r[2] * 10) for r in rows], utc=True),
        "value": [r[3] for r in rows],
    }, columns=["series_id", "observation_date", "available_at", "value"])
    return frame.drop_duplicates(["series_id", "observation_date"])


def _onchain(rows) -> pd.DataFrame:
    day0 = T0.date()
    frame = pd.DataFrame({
        "chain": [r[0][0] for r in rows], "metric": [r[0][1] for r in rows],
        "date": [day0 + timedelta(days=r[1]) for r in rows],
        # stated availability around the end of the day, sometimes (wrongly) before it
        "available_at": pd.to_datetime([pd.Timestamp(day0 + timedelta(days=r[1] + 1), tz="UTC")
                                        + pd.Timedelta(hours=r[2]) for r in rows], utc=True),
        "value": [r[3] for r in rows],
    }, columns=["chain", "metric", "date", "available_at", "value"])
    return frame.drop_duplicates(["chain", "metric", "date"])


def _perturb(inputs: FeatureInputs, cut: pd.Timestamp, rng: np.random.Generator) -> FeatureInputs:
    """Change every value available after `cut`, and add new inputs that arrive after it."""
    bars = inputs.bars.copy()
    late = (bars.bar_end > cut).to_numpy()
    factor = rng.uniform(0.5, 1.5, late.sum())
    for col in ("open", "high", "low", "close", "volume"):
        bars.loc[late, col] = bars.loc[late, col].to_numpy() * factor
    indicators = indicator_rows(bars)  # recomputed from the changed bars ...
    late_ind = (indicators.bar_end > cut).to_numpy()
    indicators.loc[late_ind, "rsi_14"] = rng.uniform(0, 100, late_ind.sum())  # ... and then scribbled on

    sentiment = inputs.sentiment.copy()
    late_items = (sentiment.published_at > cut).to_numpy()
    sentiment.loc[late_items, "score"] = -sentiment.loc[late_items, "score"] + 0.5
    sentiment.loc[late_items, "label"] = "positive"
    new_items = _sentiment([(int((cut - T0) / pd.Timedelta(minutes=1)) + 1 + k, 0.9, 0.9, set(SYMBOLS))
                            for k in range(3)]).assign(item_id=lambda f: "new-" + f.item_id)
    sentiment = pd.concat([sentiment, new_items], ignore_index=True)

    macro = inputs.macro.copy()
    late_macro = (macro.available_at > cut).to_numpy()
    macro.loc[late_macro, "value"] = macro.loc[late_macro, "value"] * 3 + 1
    revision = pd.DataFrame({"series_id": MACRO, "observation_date": T0.date() + timedelta(days=3),
                             "available_at": cut + pd.Timedelta(seconds=1), "value": 999.0})
    macro = pd.concat([macro, revision], ignore_index=True)

    onchain = inputs.onchain.copy()
    day_end = pd.to_datetime(onchain.date).dt.tz_localize("UTC") + pd.Timedelta(days=1)
    stated = pd.to_datetime(onchain.available_at, utc=True)
    late_chain = ((stated > cut) | (day_end > cut)).to_numpy()  # usable = the later of the two
    onchain.loc[late_chain, "value"] = onchain.loc[late_chain, "value"] * 2 + 7
    today = pd.DataFrame({"chain": "bitcoin", "metric": "tx_count", "date": [cut.date() + timedelta(days=1)],
                          "available_at": [cut], "value": [123.0]})  # claims availability before its day even began
    onchain = pd.concat([onchain, today], ignore_index=True).drop_duplicates(["chain", "metric", "date"], keep="last")
    return FeatureInputs(bars=bars, indicators=indicators, sentiment=sentiment, macro=macro, onchain=onchain)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(["5min", "1h", "both", "none"]), min_size=3, max_size=3)
       .filter(lambda k: k != ["none"] * 3),
       seed=st.integers(0, 1000), cut_minutes=st.integers(0, HOURS * 60),
       item_rows=items, macro_rows=macro_obs, onchain_rows=onchain_obs)
def test_inputs_available_after_t_do_not_change_features_at_or_before_t(kinds, seed, cut_minutes, item_rows,
                                                                        macro_rows, onchain_rows):
    bars = _bars(kinds, seed)
    inputs = FeatureInputs(bars=bars, indicators=indicator_rows(bars), sentiment=_sentiment(item_rows),
                           macro=_macro(macro_rows), onchain=_onchain(onchain_rows))
    cut = T0 + pd.Timedelta(minutes=cut_minutes)
    end = T0 + pd.Timedelta(hours=HOURS)

    before = build_features(inputs, T0, end).frame
    after = build_features(_perturb(inputs, cut, np.random.default_rng(seed)), T0, end).frame

    early_before = before[before.asof_time <= cut].reset_index(drop=True)
    early_after = after[after.asof_time <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(early_before, early_after, check_exact=True)
    # the perturbation is real: something at or after the cut did change (when there are such rows)
    late = before.asof_time > cut
    if late.any() and kinds.count("none") < 3:
        changed = ~np.isclose(before.loc[late, "close"].to_numpy(), after.loc[late, "close"].to_numpy())
        assert changed.any()


def test_a_value_made_known_after_t_is_invisible_even_for_an_old_observation_date():
    """A late backfill of an OLD observation (e.g. a FRED revision published today) is not
    visible before its availability time, although its observation date is long past."""
    bars = ohlcv_rows(1, 12, interval="5min", start=str(T0), symbols=["BTC"])
    macro = pd.DataFrame({"series_id": "DGS10", "observation_date": [date(2024, 2, 28)],
                          "available_at": [T0 + pd.Timedelta(minutes=30)], "value": [4.2]})
    frame = build_features(FeatureInputs(bars=bars, macro=macro)).frame
    visible = frame.set_index("asof_time").macro_dgs10
    assert visible[visible.index < T0 + pd.Timedelta(minutes=30)].isna().all()
    assert (visible[visible.index >= T0 + pd.Timedelta(minutes=30)] == 4.2).all()
