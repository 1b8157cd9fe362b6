"""`build_features` on small hand-made inputs: rows and keys, interval precedence, sentiment
windows, macro and on-chain as-of rules, missing inputs."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crypto_assets.features.build import OUTPUT_COLUMNS, FeatureInputs, build_features, read_windows
from crypto_assets.features.dictionary import FEATURE_NAMES, KEY_COLUMNS
from crypto_assets_tests.features.feature_data import indicator_rows, ohlcv_rows

T0 = pd.Timestamp("2024-03-01", tz="UTC")  # a Friday



def _bars(symbols=("BTC", "ETH"), n=24, interval="5min", start=T0, seed=0) -> pd.DataFrame:
    return ohlcv_rows(len(symbols), n, interval=interval, start=str(start), seed=seed, symbols=list(symbols))


def _build(bars, start=None, end=None, **inputs):
    inputs.setdefault("indicators", indicator_rows(bars))
    return build_features(FeatureInputs(bars=bars, **inputs), start, end)


def _item(item_id, minutes, score, symbols="", label=None, confidence=1.0, model="finbert"):
    label = label or ("positive" if score > 0 else "negative" if score < 0 else "neutral")
    return {"item_id": item_id, "model": model, "score": score, "confidence": confidence, "label": label,
            "published_at": T0 + pd.Timedelta(minutes=minutes), "symbols_mentioned": symbols}


def _macro(rows):
    """rows: (series, observation date, available_at, value)."""
    return pd.DataFrame(rows, columns=["series_id", "observation_date", "available_at", "value"])


def _at(frame, symbol, minutes):
    hit = frame[(frame.symbol == symbol) & (frame.asof_time == T0 + pd.Timedelta(minutes=minutes))]
    assert len(hit) == 1, (symbol, minutes, len(hit))
    return hit.iloc[0]


def test_one_row_per_symbol_and_bar_with_registry_columns():
    bars = _bars(symbols=("BTC", "ETH", "SOL"), n=36)
    built = _build(bars, T0, T0 + pd.Timedelta(hours=3))
    frame = built.frame
    assert list(frame.columns) == OUTPUT_COLUMNS
    assert len(frame) == 3 * 36 and not frame.duplicated(["symbol", "bar_start"]).any()
    assert len(FEATURE_NAMES) >= 100 and len(OUTPUT_COLUMNS) == len(FEATURE_NAMES) + len(KEY_COLUMNS)
    assert (frame.asof_time == frame.bar_start + pd.Timedelta("5min")).all()
    assert (frame.bar_interval == "5min").all() and frame.dq_has_indicators.all()
    assert built.stats["rows"] == 108 and built.stats["symbols"] == 3
    # the window bounds select bars by bar_start
    assert len(_build(bars, T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=2)).frame) == 3 * 12
    # features are the bar's own values and its indicators
    row = _at(frame, "ETH", 175)
    bar = bars[(bars.symbol == "ETH") & (bars.bar_start == T0 + pd.Timedelta(minutes=170))].iloc[0]
    assert row.close == bar.close and row.bar_return == pytest.approx(bar.close / bar.open - 1)
    assert row.close_to_sma_20 == pytest.approx(bar.close / row.sma_20 - 1) and np.isfinite(row.sma_20)


def test_finest_interval_per_symbol_and_hour():
    five = _bars(symbols=("BTC",), n=12, interval="5min")  # 00:00-01:00
    hourly = _bars(symbols=("BTC", "ETH"), n=3, interval="1h", seed=1)  # 00:00, 01:00, 02:00
    bars = pd.concat([five, hourly], ignore_index=True)
    built = _build(bars, indicators=None)
    frame = built.frame
    btc = frame[frame.symbol == "BTC"]
    assert (btc[btc.bar_start < T0 + pd.Timedelta(hours=1)].bar_interval == "5min").all()
    assert len(btc) == 12 + 2 and set(btc.bar_interval) == {"5min", "1h"}
    assert (frame[frame.symbol == "ETH"].bar_interval == "1h").all() and len(frame) == 14 + 3
    assert built.stats["not_featured_by_interval"] == {"1h": 1}
    assert _at(frame, "BTC", 5).dq_bar_intervals_available == 2
    assert _at(frame, "ETH", 60).dq_bar_intervals_available == 1
    assert not frame.dq_has_indicators.any() and frame.rsi_14.isna().all()  # no indicators given


def test_bar_closing_after_the_window_keeps_its_as_of_time():
    bars = _bars(symbols=("BTC",), n=1, interval="4h")
    built = _build(bars, T0, T0 + pd.Timedelta(hours=1), indicators=None)
    assert built.frame.asof_time.iloc[0] == T0 + pd.Timedelta(hours=4)
    needs = read_windows(bars, T0, T0 + pd.Timedelta(hours=1))
    assert needs.last_as_of == T0 + pd.Timedelta(hours=4)
    assert needs.sentiment[0] == T0 - pd.Timedelta(hours=24) and needs.sentiment[1] > needs.last_as_of


def test_sentiment_windows_end_at_the_as_of_time():
    bars = _bars(symbols=("BTC", "ETH"), n=24)  # as-of 00:05 ... 02:00
    items = pd.DataFrame([
        _item("a", 60, 0.5, "BTC", confidence=0.5),  # exactly at the 01:00 as-of: counted
        _item("b", 0, -0.5, "BTC|ETH"),  # exactly one hour before 01:00: outside the 1h window
        _item("c", 61, 1.0, "ETH"),  # one minute after 01:00: not visible at 01:00
        _item("d", -600, 0.0, ""),  # market-wide only, 10 h earlier
        _item("e", 30, 0.8, "BTC", model="vader"),  # also scored by a transformer: that row wins
        _item("e", 30, -0.2, "BTC", confidence=0.8),
    ])
    frame = _build(bars, sentiment=items).frame
    at1 = _at(frame, "BTC", 60)
    assert at1.sent_sym_1h_count == 2  # a and e (b is exactly 1h old)
    assert at1.sent_sym_1h_mean == pytest.approx((0.5 - 0.2) / 2)
    assert at1.sent_sym_1h_wmean == pytest.approx((0.5 * 0.5 + 0.8 * -0.2) / (0.5 + 0.8))
    assert at1.sent_sym_1h_pos_share == 0.5 and at1.sent_sym_1h_neg_share == 0.5
    assert at1.sent_sym_4h_count == 3 and at1.sent_mkt_4h_count == 3 and at1.sent_mkt_24h_count == 4
    assert at1.dq_sentiment_fallback_share_24h == 0.0  # the vader duplicate was dropped
    eth = _at(frame, "ETH", 60)
    assert eth.sent_sym_1h_count == 0 and np.isnan(eth.sent_sym_1h_mean) and eth.sent_sym_4h_count == 1
    assert _at(frame, "ETH", 65).sent_sym_1h_count == 1  # c is visible from 01:05
    assert _at(frame, "BTC", 5).sent_sym_1h_count == 1  # only b (published 00:00)


def test_without_sentiment_the_columns_are_missing_not_zero():
    bars = _bars(n=3)
    for sentiment in (None, pd.DataFrame([_item("x", -2000, 0.3, "BTC")])):  # nothing / only >24h old
        frame = _build(bars, sentiment=sentiment).frame
        assert not frame.dq_sentiment_present.any()
        assert frame.sent_sym_24h_count.isna().all() and frame.sent_mkt_1h_mean.isna().all()


def test_weekend_carries_the_friday_close_as_of_without_restamping():
    thu, fri = date(2024, 2, 29), date(2024, 3, 1)
    close = lambda d: pd.Timestamp(d).tz_localize("America/New_York") + pd.Timedelta(hours=16, minutes=15)  # noqa: E731
    macro = _macro([("VIX", thu, close(thu).tz_convert("UTC"), 10.0), ("VIX", fri, close(fri).tz_convert("UTC"), 12.0)])
    # Friday 20:00 UTC (before the close at 21:15 UTC), Saturday and Sunday noon
    starts = [T0 + pd.Timedelta(hours=20), T0 + pd.Timedelta(days=1, hours=12), T0 + pd.Timedelta(days=2, hours=12)]
    bars = pd.concat([_bars(symbols=("BTC",), n=1, interval="1h", start=s) for s in starts], ignore_index=True)
    frame = _build(bars, macro=macro, indicators=None).frame.set_index("bar_start")
    before_close = frame.loc[starts[0]]
    assert before_close.macro_vix == 10.0 and np.isnan(before_close.macro_vix_chg)  # Thursday's, no earlier one
    for weekend in starts[1:]:
        assert frame.loc[weekend].macro_vix == 12.0
        assert frame.loc[weekend].macro_vix_chg == pytest.approx(0.2)  # Friday vs Thursday, not 0
    saturday_age = frame.loc[starts[1]].dq_macro_newest_age_hours
    assert frame.loc[starts[2]].dq_macro_newest_age_hours == pytest.approx(saturday_age + 24)


def test_a_release_after_the_as_of_time_is_not_visible():
    # January CPI (observation date 2024-01-01) released 2024-02-13 13:30 UTC; December before.
    release = pd.Timestamp("2024-02-13 13:30", tz="UTC")
    macro = _macro([("CPIAUCSL", date(2023, 12, 1), pd.Timestamp("2024-01-11 13:30", tz="UTC"), 308.7),
                    ("CPIAUCSL", date(2024, 1, 1), release, 309.7)])
    starts = [release - pd.Timedelta(hours=1), release - pd.Timedelta(minutes=30), release + pd.Timedelta(minutes=30)]
    bars = pd.concat([_bars(symbols=("BTC",), n=1, interval="30min", start=s) for s in starts], ignore_index=True)
    frame = _build(bars, macro=macro, indicators=None).frame.set_index("bar_start")
    assert frame.loc[starts[0]].macro_cpiaucsl == 308.7  # as-of 13:00: the release is 30 min later
    assert frame.loc[starts[1]].macro_cpiaucsl == 309.7  # as-of 13:30 = release time: visible
    assert frame.loc[starts[1]].macro_cpiaucsl_chg == pytest.approx(309.7 / 308.7 - 1)


def test_stale_macro_is_missing_and_rates_change_by_differences():
    macro = _macro([
        ("DGS10", date(2024, 2, 28), pd.Timestamp("2024-02-29 23:00", tz="UTC"), 4.25),
        ("DGS10", date(2024, 2, 29), pd.Timestamp("2024-03-01 00:00", tz="UTC"), 4.40),
        ("DGS2", date(2024, 2, 29), pd.Timestamp("2024-03-01 00:00", tz="UTC"), 4.60),
        ("VIX", date(2023, 12, 1), pd.Timestamp("2023-12-01 21:15", tz="UTC"), 13.0),  # 3 months old: stale
    ])
    row = _build(_bars(symbols=("BTC",), n=1), macro=macro, indicators=None).frame.iloc[0]
    assert row.macro_dgs10_chg == pytest.approx(0.15)  # percentage points, not a ratio
    assert row.xa_us_curve_10y_2y == pytest.approx(4.40 - 4.60)
    assert np.isnan(row.macro_vix) and row.dq_macro_series_present == 2


def test_onchain_day_is_used_only_after_it_closed():
    onchain = pd.DataFrame({
        "chain": "bitcoin", "metric": "tx_count", "date": [date(2024, 2, 29), date(2024, 3, 1)],
        "value": [100.0, 150.0],
        # the provider's stated availability is too early for 03-01: the end of the day wins
        "available_at": [pd.Timestamp("2024-03-01", tz="UTC"), pd.Timestamp("2024-03-01 12:00", tz="UTC")],
    })
    starts = [T0 + pd.Timedelta(hours=12), T0 + pd.Timedelta(hours=23, minutes=55), T0 + pd.Timedelta(days=1)]
    bars = pd.concat([_bars(symbols=("BTC",), n=1, start=s) for s in starts], ignore_index=True)
    frame = _build(bars, onchain=onchain, indicators=None).frame.set_index("bar_start")
    assert frame.loc[starts[0]].onchain_bitcoin_tx_count == 100.0  # 02-29 closed at 03-01 00:00
    assert frame.loc[starts[1]].onchain_bitcoin_tx_count == 150.0  # as-of 03-02 00:00: 03-01 has closed
    assert frame.loc[starts[1]].onchain_bitcoin_tx_count_chg == pytest.approx(0.5)
    assert frame.loc[starts[0]].dq_onchain_newest_age_hours == pytest.approx(12 + 5 / 60)


def test_missing_inputs_give_nan_features_and_flags_not_errors():
    bars = _bars(n=6)
    frame = build_features(FeatureInputs(bars=bars)).frame
    assert len(frame) == 12
    assert not frame.dq_has_indicators.any() and not frame.dq_sentiment_present.any()
    assert (frame.dq_macro_series_present == 0).all() and (frame.dq_onchain_metrics_present == 0).all()
    assert frame.macro_vix.isna().all() and frame.onchain_bitcoin_tx_count.isna().all()
    assert frame.close.notna().all()
    empty = build_features(FeatureInputs(bars=bars.iloc[:0])).frame
    assert list(empty.columns) == OUTPUT_COLUMNS and empty.empty


def test_cross_section_uses_symbols_at_the_same_bar():
    bars = _bars(symbols=("BTC", "ETH", "SOL"), n=30)
    frame = _build(bars).frame
    at = frame[frame.asof_time == T0 + pd.Timedelta(minutes=150)].set_index("symbol")
    assert (at.xs_symbols == 3).all()
    assert at.xs_return_1_mean.iloc[0] == pytest.approx(at.return_1.mean())
    assert at.loc["ETH", "return_1_vs_btc"] == pytest.approx(at.loc["ETH", "return_1"] - at.loc["BTC", "return_1"])
    assert sorted(at.xs_return_1_rank) == pytest.approx([1 / 3, 2 / 3, 1.0])
