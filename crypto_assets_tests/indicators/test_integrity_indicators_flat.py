"""Issue 19, item 13: flat windows give the same values on both indicator engines, by the rules
of docs/indicators.md ("Flat windows"):

- where TA-Lib defines a value, both engines give it: RSI, ADX, CCI, MFI and the stochastic
  %K/%D are 0 where nothing moved (fast %K = 0 in a 14-bar window whose high equals its low);
- where the project's own formula divides by a zero width, the value is NaN on both:
  `bb_percent_b` in a window of 20 equal closes (the band has no width; its width is 0 and
  its three lines are the close), `volume_zscore_20` over 20 equal volumes.

The bars are synthetic and labelled so: a seeded random walk with flat stretches cut in (real
flat runs, Bitfinex BTC at 340.0 in January 2015, are in test_indicators_values.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from crypto_assets.indicators import INDICATOR_NAMES, compute_indicators

ENGINES = ("talib", "pandas-ta")
PRICE_COLUMNS = {"sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "ema_50", "bb_upper", "bb_middle", "bb_lower",
                 "atr_14", "macd", "macd_signal", "macd_hist", "vwap_session"}
OSCILLATORS = {"rsi_14", "stoch_k", "stoch_d", "adx_14", "cci_20", "mfi_14"}  # 0..100 (CCI: ~±100)


def synthetic_bars(close, high=None, low=None, volume=None) -> pd.DataFrame:
    """One synthetic hourly series (open = close); high/low default to the close."""
    close = np.asarray(close, dtype=float)
    n = len(close)
    return pd.DataFrame({
        "symbol": "SYNTH", "bar_start": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
        "interval": "1h", "open": close,
        "high": close if high is None else np.asarray(high, dtype=float),
        "low": close if low is None else np.asarray(low, dtype=float),
        "close": close, "volume": np.full(n, 10.0) if volume is None else np.asarray(volume, dtype=float),
    })


def _walk(n: int, seed: int = 1, start: float = 100.0) -> np.ndarray:
    return start * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))


def _scenarios() -> dict[str, pd.DataFrame]:
    walk = _walk(120)
    volume = np.random.default_rng(8).uniform(1, 10, 400)
    spread = np.random.default_rng(9).uniform(0.001, 0.01, 400)

    def with_range(close, vol):
        close = np.asarray(close, dtype=float)
        moving = np.r_[False, np.diff(close) != 0]  # bars where the price moved get a high-low range
        s = spread[: len(close)] * moving
        return synthetic_bars(close, close * (1 + s), close * (1 - s), vol)

    return {
        "flat_since_the_start": synthetic_bars(np.full(60, 123.45), volume=volume[:60]),
        "flat_then_walk": with_range(np.r_[np.full(40, walk[0]), walk], volume[:160]),
        "walk_flat_walk": with_range(np.r_[walk[:50], np.full(30, walk[49]), walk[50:]], volume[:150]),
        "flat_price_constant_volume": with_range(np.r_[walk[:60], np.full(40, walk[59])],
                                                 np.r_[volume[:60], np.full(40, 5.0)]),
        "tiny_price_walk_then_flat": with_range(np.r_[walk[:80] * 1e-6, np.full(45, walk[79] * 1e-6)], volume[:125]),
    }


SCENARIOS = _scenarios()


def _scale(col: str, bars: pd.DataFrame) -> float:
    if col in PRICE_COLUMNS:
        return float(bars.close.abs().max())
    if col == "obv_session":
        return float(bars.volume.abs().sum())
    return 100.0 if col in OSCILLATORS else 1.0


def assert_same(col: str, actual, expected, scale: float) -> None:
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    differ = np.flatnonzero(np.isnan(a) != np.isnan(e))
    assert not len(differ), (f"{col}: NaN on one engine only at rows {differ[:8]} "
                             f"(talib {e[differ[:3]]}, pandas-ta {a[differ[:3]]})")
    both = ~np.isnan(e)
    err = np.abs(a[both] - e[both]) / np.maximum(np.abs(e[both]), scale)
    assert err.size == 0 or err.max() <= 1e-9, f"{col}: off by {err.max():.2e} of {scale:g}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_both_engines_agree_on_every_column_in_flat_windows(name):
    bars = SCENARIOS[name]
    talib_path = compute_indicators(bars, engine="talib")
    fallback = compute_indicators(bars, engine="pandas-ta")
    for col in INDICATOR_NAMES:
        assert_same(col, fallback[col], talib_path[col], _scale(col, bars))


def test_percent_b_is_nan_where_the_band_has_no_width():
    walk = _walk(40)
    close = np.r_[walk, np.full(25, walk[-1]), walk[-1] * 1.01]
    flat = np.arange(len(close))[len(walk) + 19 - 1: len(walk) + 25]  # rows closing a window of 20 equal closes
    for engine in ENGINES:
        out = compute_indicators(synthetic_bars(close), engine=engine)
        assert out.bb_percent_b.iloc[flat].isna().all(), (engine, out.bb_percent_b.iloc[flat].tolist()[:3])
        assert (out.bb_width.iloc[flat] == 0).all(), engine
        for band in ("bb_upper", "bb_middle", "bb_lower"):
            assert (out[band].iloc[flat] == walk[-1]).all(), (engine, band)
        # a row earlier the window still held a move; the first move after the flat run has a band again
        assert np.isfinite(out.bb_percent_b.iloc[flat[0] - 1]) and np.isfinite(out.bb_percent_b.iloc[-1]), engine
        assert 0 < out.bb_width.iloc[-1] and out.bb_percent_b.iloc[-1] > 1, engine  # broke out above the band


def test_nothing_moved_gives_talibs_zero_for_rsi_adx_cci_mfi_and_stochastic():
    first_valid = {"rsi_14": 14, "adx_14": 27, "cci_20": 19, "mfi_14": 14, "stoch_k": 17, "stoch_d": 17}
    for engine in ENGINES:
        out = compute_indicators(SCENARIOS["flat_since_the_start"], engine=engine)
        for col, first in first_valid.items():
            assert out[col].iloc[:first].isna().all(), (engine, col)
            assert (out[col].iloc[first:] == 0).all(), (engine, col, out[col].iloc[first:first + 3].tolist())
        assert out.volume_zscore_20.iloc[19:].notna().all(), engine  # the volumes vary: a z-score exists
        const = compute_indicators(SCENARIOS["flat_price_constant_volume"], engine=engine)
        assert const.volume_zscore_20.iloc[-21:].isna().all(), engine  # 20 equal volumes: std 0, no z-score
        assert np.isfinite(const.volume_zscore_20.iloc[59]), engine


def test_stochastic_in_a_window_without_range_follows_talib():
    """A 14-bar window whose high equals its low: fast %K = 0 (TA-Lib), also for a bar whose
    close lies outside its own high-low (inconsistent but usable data), where pandas-ta alone
    divides by float epsilon (~1e16)."""
    n = 40
    close = np.full(n, 100.0)
    close[30] = 101.0  # outside its bar's [low, high] = [100, 100]
    bars = synthetic_bars(close, high=np.full(n, 100.0), low=np.full(n, 100.0))
    expected_k, expected_d = talib.STOCH(bars.high.to_numpy(), bars.low.to_numpy(), close, 14, 3, 0, 3, 0)
    for engine in ENGINES:
        out = compute_indicators(bars, engine=engine)
        assert_same(f"{engine} stoch_k", out.stoch_k, expected_k, 100.0)
        assert_same(f"{engine} stoch_d", out.stoch_d, expected_d, 100.0)
        assert (out.stoch_k.dropna() == 0).all() and (out.stoch_d.dropna() == 0).all(), engine


def test_adx_after_a_flat_start_equals_talib_called_directly():
    """TA-Lib counts an undefined DX (no range) as 0 in the first ADX and then keeps ADX
    unchanged; pandas-ta's ADX stayed ~76 % off for the rest of such a series."""
    bars = SCENARIOS["flat_then_walk"]
    h, l, c = (bars[k].to_numpy() for k in ("high", "low", "close"))  # noqa: E741
    fallback = compute_indicators(bars, engine="pandas-ta")
    assert_same("adx_14", fallback.adx_14, talib.ADX(h, l, c, 14), 100.0)
    assert_same("rsi_14", fallback.rsi_14, talib.RSI(c, 14), 100.0)
