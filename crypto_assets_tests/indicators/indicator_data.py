"""Bars for the indicator tests and benchmark: real series from data/ohlcv, plus a labelled
synthetic random walk (for sizes no real fixture has). See data/ohlcv/ATTRIBUTION.md."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from crypto_assets_tests.paths import DATA

DATA = DATA / "ohlcv"
BAR_COLUMNS = ["symbol", "bar_start", "interval", "open", "high", "low", "close", "volume"]


def bitstamp_daily(symbols=("BTC", "ETH", "LTC")) -> pd.DataFrame:
    """Real Bitstamp daily OHLCV (2014-2020) as long bars, interval 1D."""
    return _wide_daily("bitstamp_BTC-ETH-LTC_USD_d.csv", symbols)


def bitfinex_daily(symbols=("BTC", "ETH")) -> pd.DataFrame:
    """Real Bitfinex daily OHLCV (2014-2020): flat early windows and exactly repeated typical prices."""
    return _wide_daily("bitfinex_BTC-ETH_USD_d.csv", symbols)


def _wide_daily(name: str, symbols) -> pd.DataFrame:
    wide = pd.read_csv(DATA / name, index_col=0)
    frames = []
    for symbol in symbols:
        one = pd.DataFrame({c: wide[f"{symbol}:{c}"] for c in ("open", "high", "low", "close", "volume")})
        one = one.dropna(subset=["close"])  # blank before the coin was listed
        one["bar_start"] = pd.to_datetime(one.index, utc=True)
        frames.append(one.assign(symbol=symbol, interval="1D"))
    return pd.concat(frames, ignore_index=True)[BAR_COLUMNS]


def bitstamp_restamped(interval: str = "1h", end: str = "2021-06-30 00:00", symbols=("BTC", "ETH", "LTC")):
    """The real daily bars re-stamped onto consecutive `interval` slots ending at `end`.

    Prices, volumes and their order are real; only the spacing changes, so that 1,865 real
    BTC bars span 78 days of hourly partitions. Every symbol ends at `end`, so ETH and LTC
    (listed later) start later, like coins that enter the universe later.
    """
    frames = []
    for symbol, one in bitstamp_daily(symbols).groupby("symbol", sort=False):
        n = len(one)
        starts = pd.date_range(end=pd.Timestamp(end, tz="UTC"), periods=n, freq=interval)
        frames.append(one.assign(bar_start=starts, interval=interval))
    return pd.concat(frames, ignore_index=True)


def coingecko_4h() -> pd.DataFrame:
    """Real CoinGecko /coins/bitcoin/ohlc?days=7 candles: bar_start = close time - 4h, no volume."""
    rows = json.loads((DATA / "coingecko_bitcoin_ohlc_days7.json").read_text())
    frame = pd.DataFrame(rows, columns=["close_ms", "open", "high", "low", "close"])
    bar_start = pd.to_datetime(frame.close_ms, unit="ms", utc=True) - pd.Timedelta("4h")
    return frame.assign(symbol="BTC", bar_start=bar_start, interval="4h", volume=np.nan)[BAR_COLUMNS]


def kraken_1min() -> pd.DataFrame:
    """Real Kraken /0/public/OHLC XXBTZUSD 1-minute bars (720, 2017-08-10/11) with volume.

    Prices have three decimals, so different bars can have typical prices (H+L+C)/3 that are
    equal in decimal but differ by float rounding (~1e-13): the tie case of MFI.
    """
    rows = json.loads((DATA / "kraken-OHLC-XXBTZUSD-1m-2017-08-10.json").read_text())["result"]["XXBTZUSD"]
    frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "vwap", "volume", "count"])
    numbers = frame[["open", "high", "low", "close", "volume"]].astype("float64")
    bar_start = pd.to_datetime(frame.time, unit="s", utc=True)
    return numbers.assign(symbol="BTC", bar_start=bar_start, interval="1min")[BAR_COLUMNS]


def coingecko_5min() -> pd.DataFrame:
    """Real CoinGecko 5-minute spot prices (1 day) resampled to 5-minute bars, no volume."""
    prices = json.loads((DATA / "coingecko_bitcoin_market_chart_days1.json").read_text())["prices"]
    obs = pd.DataFrame(prices, columns=["ms", "price"])
    obs["bar_start"] = pd.to_datetime(obs.ms, unit="ms", utc=True).dt.floor("5min")
    bars = obs.groupby("bar_start").price.agg(open="first", high="max", low="min", close="last").reset_index()
    return bars.assign(symbol="BTC", interval="5min", volume=np.nan)[BAR_COLUMNS]


def random_walk_bars(n_symbols: int, n_bars: int, interval: str = "5min", start: str = "2024-01-01",
                     seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC geometric random-walk OHLCV (for benchmarks and properties, never real data)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.002, size=(n_symbols, n_bars))
    close = rng.uniform(0.01, 50_000, size=(n_symbols, 1)) * np.exp(np.cumsum(steps, axis=1))
    open_ = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    wiggle = np.abs(rng.normal(0.0, 0.001, size=(2, n_symbols, n_bars)))
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    volume = rng.lognormal(10.0, 1.0, size=(n_symbols, n_bars))
    times = pd.date_range(start, periods=n_bars, freq=interval, tz="UTC")
    return pd.DataFrame({
        "symbol": np.repeat([f"SYN{i:03d}" for i in range(n_symbols)], n_bars),
        "bar_start": np.tile(times, n_symbols),
        "interval": interval,
        "open": open_.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
        "volume": volume.ravel(),
    })
