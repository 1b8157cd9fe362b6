"""Issue 19, items 4 and 5: no staircase of prices lands, one bad price does not lock real prices
out, candles pass the same plausibility rule, and numbers are JSON numbers only.

Prices are CONSTRUCTED from the real hourly BTC recording (crypto_assets_tests/data/replay_hourly,
CoinGecko /market_chart) and the real /coins/markets bitcoin row (data/replay_bad_prices): each
test says which points it changes. Candles are the recorded exchange answers (ccxt's static test
cases, data/exchanges) with the changes each test states. Everything runs through the real assets
in replay mode.
"""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.ingest.exchange_bars import exchange_candles
from crypto_assets.assets.ingest.prices import ohlcv_bars, price_observations
from crypto_assets.assets.reference import coin_universe
from crypto_assets.loading import load
from crypto_assets.quality.plausibility import ABOVE_CAP, JUMP, LEVEL, implausible_prices
from crypto_assets.quality.quarantine import numeric_problem
from crypto_assets.sources.coingecko import CoinGecko
from crypto_assets.sources.exchanges import Exchanges
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource, get_warehouse
from crypto_assets_tests.paths import DATA, REPO

DATA = DATA
ROOT = REPO
CHART = "bitcoin_market_chart_days30.json"
UTC = "UTC"


def _materialize(url, selection, *, coingecko_dir=None, exchanges=None, partition=None, range_=None,
                 run_config=None):
    tags = ({"dagster/asset_partition_range_start": range_[0], "dagster/asset_partition_range_end": range_[1]}
            if range_ else {})
    resources = {"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                 "coingecko": CoinGecko(mode="replay", replay_dir=coingecko_dir),
                 "exchanges": exchanges or Exchanges(mode="replay")}
    return dg.materialize([coin_universe, price_observations, ohlcv_bars, exchange_candles], selection=selection,
                          resources=resources, partition_key=partition, tags=tags, run_config=run_config)


def _chart_replay(tmp_path, change) -> str:
    """The real hourly BTC recording with `change(payload, times)` applied (CONSTRUCTED points)."""
    folder = tmp_path / "replay"
    shutil.copytree(DATA / "replay_hourly", folder)
    path = folder / "coingecko" / CHART
    payload = json.loads(path.read_text())
    change(payload, pd.to_datetime([p[0] for p in payload["prices"]], unit="ms", utc=True))
    path.write_text(json.dumps(payload))
    return str(folder)


def _in(times, start, end) -> list[int]:
    return [i for i, t in enumerate(times) if pd.Timestamp(start, tz=UTC) <= t < pd.Timestamp(end, tz=UTC)]


def _scale(indexes_and_factors):
    def change(payload, times):
        for index, factor in indexes_and_factors(times):
            payload["prices"][index][1] *= factor
    return change


def _real(start, end) -> pd.Series:
    payload = json.loads((DATA / "replay_hourly" / "coingecko" / CHART).read_text())
    times = pd.to_datetime([p[0] for p in payload["prices"]], unit="ms", utc=True)
    return pd.Series([payload["prices"][i][1] for i in _in(times, start, end)],
                     index=[times[i] for i in _in(times, start, end)])


# -- item 4: the staircase and the lock-out, through price_observations -------------------------------


@pytest.mark.slow
def test_a_staircase_of_steps_under_10x_does_not_land_and_real_prices_after_it_do(sqlite_url, tmp_path):
    """Four successive BTC points at x9, x81, x729, x6561 of the real price (each step under 10x),
    then the real prices of the next eight hours. Before: the first three (all four here) landed,
    the last becoming the reference, and every real price after it was quarantined."""
    stair = {0: 9.0, 1: 81.0, 2: 729.0, 3: 6561.0}
    replay = _chart_replay(tmp_path, _scale(lambda times: [(i, stair[n]) for n, i in
                                                           enumerate(_in(times, "2021-05-14 00:00", "2021-05-14 04:00"))]))
    assert _materialize(sqlite_url, ["coin_universe"]).success
    # The day before lands first, clean: the stored history the staircase is judged against.
    assert _materialize(sqlite_url, ["price_observations"], coingecko_dir=replay,
                        range_=("2021-05-13-00:00", "2021-05-13-23:00")).success
    assert _materialize(sqlite_url, ["price_observations", "ohlcv_bars"], coingecko_dir=replay,
                        range_=("2021-05-14-00:00", "2021-05-14-11:00")).success

    stored = load("price_observations", "2021-05-14", "2021-05-14 12:00", warehouse_url=sqlite_url)
    real = _real("2021-05-14 04:00", "2021-05-14 12:00")
    assert len(real) == 8
    assert stored.set_index("observed_at").price_usd.to_dict() == real.to_dict()  # the real ones, nothing else
    bars = load("ohlcv_bars", "2021-05-14", "2021-05-14 12:00", warehouse_url=sqlite_url)
    assert len(bars) == 8 and bars.high.max() < 1e5
    quarantine = load("quarantine", warehouse_url=sqlite_url)
    quarantine = quarantine[quarantine.asset == "price_observations"]
    records = [json.loads(r) for r in quarantine.record]
    assert len(records) == 4
    # each judged against the real level (the stored day's median), never against the step before it
    assert all(40_000 < r["reference_price_usd"] < 60_000 for r in records)
    assert sorted(quarantine.reason) == [JUMP, JUMP, JUMP, LEVEL]  # x9: level bound; x81..: also the step bound


def test_one_bad_price_does_not_lock_out_the_real_prices_after_it(sqlite_url, tmp_path):
    """One point at x9 (under the 10x step bound), then five real points 15 % lower (a constructed
    dip). Before: the x9 landed and became the reference, and the dip (10.6x below it) was
    quarantined hour after hour."""
    def changes(times):
        points = _in(times, "2021-05-14 00:00", "2021-05-14 06:00")
        return [(points[0], 9.0)] + [(i, 0.85) for i in points[1:]]

    replay = _chart_replay(tmp_path, _scale(changes))
    assert _materialize(sqlite_url, ["coin_universe"]).success
    assert _materialize(sqlite_url, ["price_observations"], coingecko_dir=replay,
                        range_=("2021-05-13-00:00", "2021-05-13-23:00")).success
    assert _materialize(sqlite_url, ["price_observations"], coingecko_dir=replay,
                        range_=("2021-05-14-00:00", "2021-05-14-05:00")).success
    stored = load("price_observations", "2021-05-14", "2021-05-14 06:00", warehouse_url=sqlite_url)
    dip = _real("2021-05-14 01:00", "2021-05-14 06:00") * 0.85
    assert len(stored) == 5
    assert stored.set_index("observed_at").price_usd.to_dict() == pytest.approx(dip.to_dict())
    (reason,) = load("quarantine", warehouse_url=sqlite_url).reason
    assert reason == LEVEL


@pytest.mark.parametrize("direction", [1, -1])
def test_the_rule_on_staircases_up_and_down_after_stored_history(direction):
    """The same on the rule itself, both ways: after a day at 100, steps of 9x (x9, x81, x729,
    x6561, or their inverses), then 100 again. At most the first step of the falling staircase
    lands (9x down is inside the 20x fall bound), and it never becomes the reference: 100 lands."""
    day = pd.date_range("2021-05-13 00:00", periods=24, freq="h", tz=UTC)
    history = pd.DataFrame({"symbol": "BTC", "observed_at": day, "price_usd": 100.0})
    prices = [100.0 * 9.0 ** (direction * k) for k in (1, 2, 3, 4)] + [100.0, 101.0, 99.0]
    new = pd.DataFrame({"symbol": "BTC", "price_usd": prices,
                        "observed_at": pd.date_range("2021-05-14 00:00", periods=len(prices), freq="h", tz=UTC)})
    judged = implausible_prices(new, history)
    landed = [p for p, reason in zip(prices, judged.reason) if reason == ""]
    assert landed == ([100.0, 101.0, 99.0] if direction == 1 else [100.0 / 9, 100.0, 101.0, 99.0])
    if direction == 1:  # x9 is beyond the level bound; x81 on are also beyond the step bound
        assert judged.reason.tolist() == [LEVEL, JUMP, JUMP, JUMP, "", "", ""]
        assert (judged.reference_usd[:4] == 100.0).all()
    else:  # 1/81 is 9x below the last accepted (1/9) but 81x below the day's median
        assert judged.reason.tolist() == ["", LEVEL, JUMP, JUMP, "", "", ""]
        assert judged.reference_usd[1] == 100.0 and judged.reference_usd[2] == pytest.approx(100.0 / 9)


# -- item 5: candles go through the same rule --------------------------------------------------------


def _exchange_replay(tmp_path, change_binance) -> Exchanges:
    """The recorded replay of every exchange, Binance's klines changed by `change_binance(rows)`."""
    folder = tmp_path / "exchange_replay"
    shutil.copytree(ROOT / "resources" / "replay", folder)
    path = folder / "binance" / "fetchOHLCV__0_spot_1h.json"
    rows = json.loads(path.read_text())
    change_binance(rows)
    path.write_text(json.dumps(rows))
    return Exchanges(mode="replay", replay_dir=str(folder))


def _times(rows, factor, index, columns=(1, 2, 3, 4)):
    for c in columns:
        rows[index][c] = f"{float(rows[index][c]) * factor:.8f}"


@pytest.mark.parametrize("change", ["x100", "1e300"])
def test_implausible_exchange_candles_are_quarantined_and_never_become_bars(sqlite_url, tmp_path, change):
    """Binance's recorded 17:00 kline at 100x (open/high/low/close), or with close and high at
    1e300. Before: stored in exchange_candles, and (binance first in the preference) the 17:00
    ohlcv_bars row, method=exchange."""
    def edit(rows):
        if change == "x100":
            _times(rows, 100.0, 1)
        else:
            rows[1][2] = rows[1][4] = "1e300"

    exchanges = _exchange_replay(tmp_path, edit)
    assert _materialize(sqlite_url, ["coin_universe"]).success
    assert _materialize(sqlite_url, ["exchange_candles", "ohlcv_bars"], exchanges=exchanges,
                        range_=("2024-01-30-16:00", "2024-01-30-18:00")).success
    candles = load("exchange_candles", warehouse_url=sqlite_url)
    binance = candles[candles.exchange == "binance"].sort_values("bar_start")
    t16 = pd.Timestamp("2024-01-30 16:00", tz=UTC)
    assert list(binance.bar_start) == [t16, t16 + pd.Timedelta(hours=2)]
    assert candles.high.max() < 1e5
    bars = load("ohlcv_bars", warehouse_url=sqlite_url).set_index("bar_start")
    assert bars.close.max() < 1e5 and bars.loc[t16 + pd.Timedelta(hours=1), "exchange"] == "kraken"
    quarantine = load("quarantine", warehouse_url=sqlite_url)
    (reason,) = quarantine[quarantine.asset == "exchange_candles"].reason
    assert reason == (JUMP if change == "x100" else ABOVE_CAP)


def test_one_exchange_alone_is_its_own_reference(tmp_path):
    """Binance as the only exchange: its three recorded candles, the middle one at 100x. The batch's
    own median (3 candles) judges it."""
    from crypto_assets.assets.ingest.exchange_bars import _validate, collect_candles
    from crypto_assets.quality.quarantine import Rejects

    exchanges = _exchange_replay(tmp_path, lambda rows: _times(rows, 100.0, 1))
    catalog = tmp_path / "exchanges.yaml"
    catalog.write_text((ROOT / "resources" / "exchanges.yaml").read_text().replace(
        "preference: [binance, coinbase, kraken, okx, bybit]", "preference: [binance]"))
    exchanges = exchanges.model_copy(update={"catalog_path": str(catalog)})
    t16 = pd.Timestamp("2024-01-30 16:00", tz=UTC)
    candles, _ = collect_candles(exchanges, ["BTC"], t16, t16 + pd.Timedelta(hours=3))
    assert len(candles) == 3
    rejects = Rejects("exchange_candles", "replay:exchanges")
    kept = _validate(candles, rejects)
    assert list(kept.bar_start) == [t16, t16 + pd.Timedelta(hours=2)]
    assert rejects.by_reason() == {JUMP: 1}


# -- item 5: JSON numbers only; negative volumes and market caps -------------------------------------


def test_numbers_are_json_numbers_only():
    values = pd.Series([49053, 0.9, "48400", " 1.5 ", True, False, "abc", "NaN", None, float("nan"), -1.0, 0,
                        float("inf")], dtype=object)
    assert numeric_problem(values).tolist() == [
        "", "", "price sent as a string, not a JSON number", "price sent as a string, not a JSON number",
        "boolean price, not a number", "boolean price, not a number", "non-numeric price", "non-numeric price",
        "missing or NaN price", "missing or NaN price", "negative price", "zero price", "non-finite price"]
    optional = numeric_problem(pd.Series([None, 0, -5, "1e9", 12.0], dtype=object), "24h volume", missing_ok=True,
                               zero_ok=True)
    assert optional.tolist() == ["", "", "negative 24h volume", "24h volume sent as a string, not a JSON number", ""]
    assert numeric_problem(pd.Series([True, False])).tolist() == ["boolean price, not a number"] * 2


def test_snapshot_rows_with_strings_booleans_or_negative_volumes_are_quarantined(sqlite_url, tmp_path):
    """/coins/markets rows: the real bitcoin row, and copies of it (CONSTRUCTED) for other coins
    with one field changed each. Before: all of them landed (the string parsed, `true` as 1.0,
    the volume of -5 and the market cap of -1 stored)."""
    real = json.loads((DATA / "replay_bad_prices" / "coingecko" / "markets_with_bad_records.json").read_text())[0]
    rows = [real,
            {**real, "id": "ethereum", "current_price": "48400"},
            {**real, "id": "solana", "current_price": True},
            {**real, "id": "cardano", "total_volume": -5},
            {**real, "id": "dogecoin", "market_cap": -1},
            {**real, "id": "ripple", "market_cap": str(real["market_cap"])},
            {**real, "id": "litecoin", "market_cap": 0, "total_volume": None}]  # both fine: unknown supply, no volume
    folder = tmp_path / "replay" / "coingecko"
    folder.mkdir(parents=True)
    (folder / "markets.json").write_text(json.dumps(rows))
    (folder / "catalog.yaml").write_text(
        "routes:\n  - path: /coins/markets\n    params: {vs_currency: usd}\n    file: markets.json\n"
        '    headers: {Date: "Sat, 15 May 2021 16:01:04 GMT"}\n')
    assert _materialize(sqlite_url, ["coin_universe"]).success
    assert _materialize(sqlite_url, ["price_observations"], coingecko_dir=str(tmp_path / "replay"),
                        partition="2021-05-15-15:00",
                        run_config={"ops": {"price_observations": {"config": {"mode": "snapshot"}}}}).success
    stored = load("price_observations", warehouse_url=sqlite_url).set_index("symbol")
    assert sorted(stored.index) == ["BTC", "LTC"]
    assert stored.loc["LTC", "market_cap_usd"] == 0 and pd.isna(stored.loc["LTC", "volume_24h_usd"])
    quarantine = load("quarantine", warehouse_url=sqlite_url)
    assert dict(zip(quarantine.record_key.str.split("|").str[0], quarantine.reason)) == {
        "ETH": "price sent as a string, not a JSON number",
        "SOL": "boolean price, not a number",
        "ADA": "negative 24h volume",
        "DOGE": "negative market cap",
        "XRP": "market cap sent as a string, not a JSON number",
    }


def test_history_points_with_strings_or_booleans_are_quarantined_with_their_reason(sqlite_url, tmp_path):
    """/market_chart/range points (the real recording) with one price sent as the string of its own
    value, one as `true`, and one volume of -5 (CONSTRUCTED). Before: the string landed, `true`
    was read as 1.0 (quarantined only as implausible) and the -5 volume was stored."""
    def change(payload, times):
        a, b, c = _in(times, "2021-05-14 03:00", "2021-05-14 06:00")
        payload["prices"][a][1] = str(payload["prices"][a][1])
        payload["prices"][b][1] = True
        payload["total_volumes"][c][1] = -5

    replay = _chart_replay(tmp_path, change)
    assert _materialize(sqlite_url, ["coin_universe"]).success
    assert _materialize(sqlite_url, ["price_observations"], coingecko_dir=replay,
                        range_=("2021-05-14-00:00", "2021-05-14-11:00")).success
    assert len(load("price_observations", warehouse_url=sqlite_url)) == 9
    quarantine = load("quarantine", warehouse_url=sqlite_url)
    assert sorted(quarantine.reason) == ["boolean price, not a number", "negative 24h volume",
                                         "price sent as a string, not a JSON number"]


@pytest.fixture(autouse=True)
def _fresh_warehouse_cache():
    get_warehouse.cache_clear()
    yield
    get_warehouse.cache_clear()
