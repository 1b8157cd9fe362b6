"""Indicator values: equal to TA-Lib called directly, both paths agree, the math the old system
got wrong (MACD signal, %D, Wilder RSI) is right, warm-up rows are NaN, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas_ta_classic as ta
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_assets.indicators import INDICATOR_NAMES, compute_indicators
from crypto_assets_tests.indicators.indicator_data import (
    bitfinex_daily,
    bitstamp_daily,
    bitstamp_restamped,
    coingecko_4h,
    coingecko_5min,
    kraken_1min,
    random_walk_bars,
)
from crypto_assets_tests.paths import REPO

TOLERANCE = 1e-9
DATASETS = {
    "bitstamp_daily": bitstamp_daily,
    "bitstamp_4h_restamped": lambda: bitstamp_restamped("4h", symbols=("BTC",)),
    "coingecko_ohlc_4h": coingecko_4h,
    "coingecko_5min": coingecko_5min,
    # Real bars with volume where typical prices tie: Kraken 1-minute (a tie up to float noise)
    # and Bitfinex daily (exact ties and the flat, zero-volume first weeks of 2015).
    "kraken_1min": kraken_1min,
    "bitfinex_daily": bitfinex_daily,
}


def max_relative_error(actual, expected, floor: float | None = None) -> float:
    """max |a - e| / max(|e|, floor); NaN positions must match exactly.

    The floor (unless given) is 1e-4 of the column's median magnitude, so values at or crossing zero (MACD,
    returns, CCI, a %K at the low) are judged against the column's scale, not against ~0.
    """
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert (nan_a == nan_e).all(), f"NaN positions differ at rows {np.flatnonzero(nan_a != nan_e)[:10]}"
    if nan_e.all():
        return 0.0
    floor = floor or 1e-4 * np.median(np.abs(e[~nan_e])) or 1e-300
    return float(np.max(np.abs(a[~nan_e] - e[~nan_e]) / np.maximum(np.abs(e[~nan_e]), floor)))


def _finite(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan)


def talib_reference(one: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every column computed here, independently, with TA-Lib on one series (oldest first)."""
    o, h, l, c, v = (one[k].to_numpy(float) for k in ("open", "high", "low", "close", "volume"))  # noqa: E741
    ref = {}
    for n in (1, 4, 24):
        ref[f"return_{n}"] = talib.ROCP(c, n)
        ref[f"log_return_{n}"] = np.log(talib.ROCR(c, n))
    ref["volatility_24"] = pd.Series(np.log(talib.ROCR(c, 1))).rolling(24).std(ddof=1).to_numpy()
    ref["rsi_14"] = talib.RSI(c, 14)
    ref["macd"], ref["macd_signal"], ref["macd_hist"] = talib.MACD(c, 12, 26, 9)
    up, mid, low = talib.BBANDS(c, 20, 2, 2, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent_b = (c - low) / (up - low)
    # Documented: %B is NaN where the bands coincide (a flat window), and so is a z-score over a
    # constant window; a real flat run (Bitfinex BTC at 340.0, Jan 2015) exercises both.
    ref.update(bb_upper=up, bb_middle=mid, bb_lower=low, bb_width=(up - low) / mid, bb_percent_b=_finite(percent_b))
    for n in (20, 50, 200):
        ref[f"sma_{n}"] = talib.SMA(c, n)
    for n in (12, 26, 50):
        ref[f"ema_{n}"] = talib.EMA(c, n)
    ref["atr_14"] = talib.ATR(h, l, c, 14)
    ref["stoch_k"], ref["stoch_d"] = talib.STOCH(h, l, c, 14, 3, 0, 3, 0)
    ref["adx_14"] = talib.ADX(h, l, c, 14)
    ref["cci_20"] = talib.CCI(h, l, c, 20)
    if np.isfinite(v).all():
        ref["mfi_14"] = talib.MFI(h, l, c, v, 14)
        with np.errstate(divide="ignore", invalid="ignore"):
            ref["volume_zscore_20"] = _finite((v - talib.SMA(v, 20)) / talib.STDDEV(v, 20))
        day = one["bar_start"].dt.floor("D").to_numpy()
        ref["obv_session"] = np.concatenate([talib.OBV(c[day == d], v[day == d]) for d in pd.unique(day)])
    else:
        for col in ("mfi_14", "volume_zscore_20", "obv_session", "vwap_session"):
            ref[col] = np.full(len(c), np.nan)
    return ref


@pytest.fixture(scope="module", params=sorted(DATASETS))
def dataset(request):
    bars = DATASETS[request.param]()
    return request.param, bars, compute_indicators(bars, engine="talib")


@pytest.mark.slow
def test_every_column_equals_talib_called_directly(dataset):
    name, bars, out = dataset
    checked = set()
    for symbol, one in bars.sort_values(["symbol", "bar_start"]).groupby("symbol"):
        got = out[out.symbol == symbol].sort_values("bar_start")
        assert got.bar_start.tolist() == one.bar_start.tolist()
        for col, expected in talib_reference(one).items():
            err = max_relative_error(got[col], expected)
            assert err <= TOLERANCE, f"{name} {symbol} {col}: relative error {err:.2e}"
            checked.add(col)
    # VWAP has no TA-Lib function: checked against pandas-ta below. Everything else was compared.
    assert set(INDICATOR_NAMES) - checked <= {"vwap_session"}


def test_pandas_ta_fallback_matches_talib_path(dataset):
    name, bars, out = dataset
    fallback = compute_indicators(bars, engine="pandas-ta")
    assert list(fallback.columns) == list(out.columns)
    for col in INDICATOR_NAMES:
        # %B is a position inside the band (unit scale): one float step in a band price moves a
        # %B near 0 by ~1e-13 when the band is narrow (1-minute bars), so it is judged against
        # its unit scale rather than against itself.
        floor = 1.0 if col == "bb_percent_b" else None
        err = max_relative_error(fallback[col], out[col], floor=floor)
        assert err <= TOLERANCE, f"{name} {col}: pandas-ta path off by {err:.2e}"


def test_mfi_treats_typical_prices_equal_up_to_float_noise_as_unchanged():
    """Kraken 1-minute bars 2017-08-11 02:39/02:40: H, L, C are different three-decimal prices whose
    sums are equal in decimal; in binary the two typical prices differ by one rounding step.
    TA-Lib counts no money flow for that bar (a change within 1e-14 of the prices); so must the
    fallback, else MFI differs in every window holding that bar."""
    bars = kraken_1min()
    tp = ((bars.high + bars.low + bars.close) / 3).to_numpy()
    change, scale = np.diff(tp), np.abs(tp[1:]) + np.abs(tp[:-1])
    noise = np.flatnonzero((change != 0) & (np.abs(change) <= 1e-14 * scale)) + 1
    assert len(noise) == 1  # the real case this test is about
    i = noise[0]
    window = slice(i, i + 14)  # the MFI values whose 14-bar window holds that bar

    talib_path = compute_indicators(bars, engine="talib").mfi_14.to_numpy()
    fallback = compute_indicators(bars, engine="pandas-ta").mfi_14.to_numpy()
    assert max_relative_error(fallback, talib_path) <= TOLERANCE
    # What treating the noise as a rise would give: a different MFI in those windows.
    as_rise = ta.mfi(*(bars[c] for c in ("high", "low", "close", "volume")), 14, talib=False).to_numpy()
    assert np.max(np.abs(as_rise[window] - talib_path[window])) > 1e-3


def test_vwap_session_equals_pandas_ta_daily_anchored_vwap():
    bars = bitstamp_restamped("4h", symbols=("BTC",))  # six real bars per UTC day, real volume
    out = compute_indicators(bars)
    indexed = bars.set_index(pd.DatetimeIndex(bars.bar_start.dt.tz_convert(None)))
    expected = ta.vwap(indexed.high, indexed.low, indexed.close, indexed.volume, anchor="D").to_numpy(copy=True)
    expected[~np.isfinite(expected)] = np.nan  # days whose volume so far is 0
    assert max_relative_error(out.vwap_session, expected) <= TOLERANCE
    # OBV restarts each UTC day and equals TA-Lib's OBV run on each day, bit for bit.
    first_of_day = (out.bar_start.dt.hour == 0).to_numpy()
    assert (out.obv_session[first_of_day].to_numpy() == bars.volume[first_of_day].to_numpy()).all()
    day = bars.bar_start.dt.floor("D").to_numpy()
    close, volume = bars.close.to_numpy(), bars.volume.to_numpy()
    per_day = np.concatenate([talib.OBV(close[day == d], volume[day == d]) for d in pd.unique(day)])
    assert np.array_equal(out.obv_session.to_numpy(), per_day)


def hand_ema(values: np.ndarray, n: int) -> np.ndarray:
    """EMA seeded with the mean of the first n values, written out as a loop."""
    out = np.full(len(values), np.nan)
    out[n - 1] = values[:n].mean()
    for i in range(n, len(values)):
        out[i] = out[i - 1] + 2 / (n + 1) * (values[i] - out[i - 1])
    return out


def test_macd_signal_is_a_real_signal_line():
    closes = bitstamp_daily(("BTC",)).close.to_numpy()
    out = compute_indicators(bitstamp_daily(("BTC",)))
    line, signal, hist = out.macd.to_numpy(), out.macd_signal.to_numpy(), out.macd_hist.to_numpy()
    valid = ~np.isnan(signal)
    assert valid.sum() > 1000
    assert (line[valid] != signal[valid]).mean() > 0.99

    # By hand: both EMAs start on bar 25 (TA-Lib seeds the fast one on bars 14..25), the
    # signal is the EMA(9) of the line, and the histogram is their difference.
    hand_line = np.full(len(closes), np.nan)
    hand_line[14:] = hand_ema(closes[14:], 12) - hand_ema(closes, 26)[14:]
    hand_signal = np.full(len(closes), np.nan)
    hand_signal[25:] = hand_ema(hand_line[25:], 9)
    assert np.flatnonzero(valid)[0] == 33
    assert max_relative_error(signal[valid], hand_signal[valid]) <= TOLERANCE
    assert max_relative_error(line[valid], hand_line[valid]) <= TOLERANCE
    assert max_relative_error(hist[valid], hand_line[valid] - hand_signal[valid]) <= TOLERANCE


def test_stochastic_d_is_sma3_of_k_and_k_is_smoothed():
    bars = bitstamp_daily(("BTC",))
    out = compute_indicators(bars)
    k, d = out.stoch_k, out.stoch_d
    valid = d.notna()
    assert (k[valid] != d[valid]).mean() > 0.95
    lowest, highest = bars.low.rolling(14).min(), bars.high.rolling(14).max()
    slow_k = (100 * (bars.close - lowest) / (highest - lowest)).rolling(3).mean()  # %K: SMA(3) of fast %K
    assert max_relative_error(k[valid], slow_k[valid]) <= TOLERANCE
    assert max_relative_error(d[valid], slow_k.rolling(3).mean()[valid]) <= TOLERANCE  # %D: SMA(3) of %K


def test_rsi_uses_wilder_smoothing():
    closes = bitstamp_daily(("BTC",)).close.to_numpy()[:40]
    bars = pd.DataFrame({"symbol": "BTC", "interval": "1D", "open": closes, "high": closes, "low": closes,
                         "close": closes, "volume": 1.0,
                         "bar_start": pd.date_range("2020-01-01", periods=40, freq="D", tz="UTC")})
    rsi = compute_indicators(bars).rsi_14.to_numpy()

    change = np.diff(closes)
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    avg_gain, avg_loss = gains[:14].mean(), losses[:14].mean()
    wilder = [100 * avg_gain / (avg_gain + avg_loss)]
    for g, loss in zip(gains[14:], losses[14:]):
        avg_gain = (avg_gain * 13 + g) / 14
        avg_loss = (avg_loss * 13 + loss) / 14
        wilder.append(100 * avg_gain / (avg_gain + avg_loss))
    assert np.isnan(rsi[:14]).all()
    assert max_relative_error(rsi[14:], wilder) <= TOLERANCE

    # A plain 14-bar average of gains and losses (Cutler's RSI) differs: the test can tell them apart.
    cutler = [100 * gains[i - 14:i].mean() / (gains[i - 14:i].mean() + losses[i - 14:i].mean())
              for i in range(14, len(change) + 1)]
    assert np.max(np.abs(rsi[14:] - cutler)) > 1.0


WARMUP_BARS = {  # index of the first non-NaN value in a series with complete data
    "return_1": 1, "return_4": 4, "return_24": 24, "log_return_1": 1, "log_return_4": 4, "log_return_24": 24,
    "volatility_24": 24, "rsi_14": 14, "macd": 33, "macd_signal": 33, "macd_hist": 33,
    "bb_upper": 19, "bb_middle": 19, "bb_lower": 19, "bb_width": 19, "bb_percent_b": 19,
    "sma_20": 19, "sma_50": 49, "sma_200": 199, "ema_12": 11, "ema_26": 25, "ema_50": 49,
    "atr_14": 14, "stoch_k": 17, "stoch_d": 17, "adx_14": 27, "cci_20": 19, "mfi_14": 14,
    "obv_session": 0, "vwap_session": 0, "volume_zscore_20": 19,
}


@pytest.mark.parametrize("engine", ["talib", "pandas-ta"])
def test_warmup_rows_are_nan_and_nothing_after(engine):
    bars = random_walk_bars(2, 300, interval="1h", seed=3)
    out = compute_indicators(bars, engine=engine)
    assert set(WARMUP_BARS) == set(INDICATOR_NAMES)
    for _, one in out.groupby("symbol"):
        for col, first in WARMUP_BARS.items():
            values = one[col].to_numpy()
            assert np.isnan(values[:first]).all(), f"{col} has a value before bar {first}"
            assert not np.isnan(values[first:]).any(), f"{col} is NaN after its warm-up"


def test_missing_volume_blanks_only_volume_indicators_and_only_where_missing():
    bars = random_walk_bars(1, 200, interval="1h", seed=5)
    bars.loc[100, "volume"] = np.nan  # one bar without volume
    out = compute_indicators(bars)
    assert out.rsi_14.iloc[100:].notna().all() and out.sma_50.iloc[100:].notna().all()
    # MFI and the z-score restart after the gap, exactly like TA-Lib on the bars after it.
    after = bars.iloc[101:]
    expected_mfi = talib.MFI(*(after[c].to_numpy() for c in ("high", "low", "close", "volume")), 14)
    assert max_relative_error(out.mfi_14.iloc[101:], expected_mfi) <= TOLERANCE
    assert out.mfi_14.iloc[100:115].isna().all() and out.volume_zscore_20.iloc[100:120].isna().all()
    # Session-anchored columns are unknown for the rest of that UTC day, back the next day.
    day = out.bar_start.dt.floor("D")
    same_day = (day == day.iloc[100]) & (out.index >= 100)
    assert out.obv_session[same_day].isna().all() and out.vwap_session[same_day].isna().all()
    assert out.obv_session[day > day.iloc[100]].notna().all()

    no_volume = compute_indicators(coingecko_4h())
    for col in ("mfi_14", "obv_session", "vwap_session", "volume_zscore_20"):
        assert no_volume[col].isna().all()
    assert no_volume.rsi_14.notna().sum() == len(no_volume) - 14


def test_bars_without_usable_prices_get_nan_and_act_as_a_gap():
    bars = random_walk_bars(1, 120, interval="1h", seed=7)
    broken = bars.copy()
    broken.loc[60, "close"] = np.nan
    broken.loc[61, "low"] = -1.0
    out = compute_indicators(broken)
    assert out.loc[60:61, list(INDICATOR_NAMES)].isna().all().all()
    expected = compute_indicators(bars.drop(index=[60, 61]))
    kept = out.drop(index=[60, 61]).reset_index(drop=True)
    for col in INDICATOR_NAMES:
        assert max_relative_error(kept[col], expected[col]) == 0.0, col


def test_tiny_series_and_duplicate_keys():
    out = compute_indicators(random_walk_bars(3, 1, seed=1))
    assert len(out) == 3 and out[list(INDICATOR_NAMES)].drop(columns=["obv_session", "vwap_session"]).isna().all().all()
    assert len(compute_indicators(random_walk_bars(1, 2, seed=1))) == 2
    assert compute_indicators(random_walk_bars(0, 5)).empty
    bars = random_walk_bars(1, 10, seed=1)
    with pytest.raises(ValueError, match="repeat"):
        compute_indicators(pd.concat([bars, bars.tail(1)]))


def _compare_prefix(engine: str, seed: int, n_bars: int, cut: int, factor: float, truncate: bool) -> None:
    bars = random_walk_bars(2, n_bars, interval="30min", seed=seed)  # several UTC days: sessions too
    t = bars.bar_start.iloc[cut]
    later = bars.bar_start > t
    changed = bars.copy()
    if truncate:
        changed = changed[~later]
    else:
        for col in ("open", "high", "low", "close", "volume"):
            changed.loc[later, col] = changed.loc[later, col] * factor
        changed.loc[later, "high"] *= 1.01
    base = compute_indicators(bars, engine=engine)
    other = compute_indicators(changed, engine=engine)
    upto = lambda f: f[f.bar_start <= t].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(upto(base), upto(other), check_exact=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_bars=st.integers(2, 260), cut_share=st.floats(0, 1),
       factor=st.floats(0.2, 5.0), truncate=st.booleans())
def test_no_look_ahead_talib(seed, n_bars, cut_share, factor, truncate):
    """Changing (or removing) any bar after t changes no value at or before t, bit for bit."""
    _compare_prefix("talib", seed, n_bars, int(cut_share * (n_bars - 1)), factor, truncate)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_bars=st.integers(2, 120), cut_share=st.floats(0, 1),
       factor=st.floats(0.2, 5.0))
def test_no_look_ahead_pandas_ta(seed, n_bars, cut_share, factor):
    _compare_prefix("pandas-ta", seed, n_bars, int(cut_share * (n_bars - 1)), factor, False)


def test_without_talib_the_pandas_ta_path_is_used():
    """In a fresh interpreter where `import talib` fails, the default engine is pandas-ta."""
    import subprocess
    import sys
    
    code = (
        "import sys; sys.modules['talib'] = None\n"  # makes `import talib` raise ImportError
        "from crypto_assets.indicators import TALIB_AVAILABLE, compute_indicators, default_engine\n"
        "from crypto_assets_tests.indicators.indicator_data import random_walk_bars\n"
        "out = compute_indicators(random_walk_bars(1, 60, interval='1h'))\n"
        "loaded = sys.modules.get('talib') is not None\n"
        "print(TALIB_AVAILABLE, default_engine(), int(out.rsi_14.notna().sum()), loaded)\n"
    )
    root = REPO
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "pandas-ta", "46", "False"]
