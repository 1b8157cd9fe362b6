"""The `technical_indicators` asset end to end: Dagster loads the partition's `ohlcv_bars`
through the warehouse IO manager, the asset reads the lookback (counted in bars of each
interval) from the warehouse, and the written partition equals the full-history computation;
a ranged run and a repeated run behave."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from crypto_assets.assets.enrich.indicators import ASSETS, technical_indicators
from crypto_assets.indicators import INDICATOR_NAMES, LOOKBACK_BARS, compute_indicators
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.indicators import TECHNICAL_INDICATORS
from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import Warehouse
from crypto_assets_tests.indicators.indicator_data import bitstamp_restamped, coingecko_4h, random_walk_bars
from crypto_assets_tests.indicators.test_indicators_values import TOLERANCE, max_relative_error

KEYS = ["symbol", "interval", "bar_start"]
OHLCV_SPEC = dg.AssetSpec("ohlcv_bars", partitions_def=HOURLY)  # stands in for the ingest asset
PARTITION = "2021-05-15-12:00"


def _as_ohlcv_rows(bars: pd.DataFrame) -> pd.DataFrame:
    return bars.assign(
        bar_end=bars.bar_start + pd.to_timedelta(bars.interval),
        n_observations=pd.NA,
        method="coingecko_ohlc",
        source="test-fixture",
        ingested_at=pd.Timestamp("2021-07-01", tz="UTC"),
    ).reindex(columns=OHLCV_BARS.column_names)  # columns these bars do not have (e.g. exchange) stay empty


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('wh') / 'warehouse.sqlite'}"
    wh = open_warehouse(url)
    # Real hourly bars (re-stamped Bitstamp daily, see indicator_data) plus real 4h CoinGecko candles.
    hourly = bitstamp_restamped("1h", end="2021-05-16 00:00")
    hourly = hourly[hourly.bar_start >= pd.Timestamp("2021-04-01", tz="UTC")]  # HOURLY's first partition
    bars = pd.concat([hourly, coingecko_4h()], ignore_index=True)
    wh.replace_window(OHLCV_BARS, _as_ohlcv_rows(bars), "2021-04-01", "2021-05-17")
    return url, wh, bars


def _materialize(url: str, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [technical_indicators, OHLCV_SPEC],
        selection=[technical_indicators],
        resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url)},
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


def _written(wh: Warehouse, start, end) -> pd.DataFrame:
    return wh.read(TECHNICAL_INDICATORS, start, end).sort_values(KEYS).reset_index(drop=True)


def _expected(bars: pd.DataFrame, start, end) -> pd.DataFrame:
    hourly = bars[bars.interval == "1h"]
    full = compute_indicators(hourly)
    keep = (full.bar_start >= pd.Timestamp(start, tz="UTC")) & (full.bar_start < pd.Timestamp(end, tz="UTC"))
    return full[keep].sort_values(KEYS).reset_index(drop=True)


def test_one_partition_equals_full_history_and_reports_metadata(warehouse):
    url, wh, bars = warehouse
    result = _materialize(url, partition_key=PARTITION)
    assert result.success
    written = _written(wh, "2021-05-15 12:00", "2021-05-15 13:00")
    expected = _expected(bars, "2021-05-15 12:00", "2021-05-15 13:00")
    # BTC, ETH and LTC hourly bars; the real 4h candle in the same hour is skipped (see below).
    assert written[KEYS].astype(str).equals(expected[KEYS].astype(str)) and len(written) == 3
    for col in INDICATOR_NAMES:
        assert max_relative_error(written[col], expected[col]) <= TOLERANCE, col
    assert (written.source == "computed").all() and written.ingested_at.notna().all()
    assert (written.bar_end == written.bar_start + pd.Timedelta("1h")).all()

    meta = result.asset_materializations_for_node("technical_indicators")[0].metadata
    assert meta["rows"].value == 3 and meta["symbols"].value == 3
    assert meta["compute_rows_per_s"].value > 0 and meta["engine"].value == "talib"
    assert meta["skipped_bars_by_interval"].value == {"4h": 1}
    # The lookback reached back 600 hourly bars per symbol, not just the partition.
    assert meta["bars_read_with_lookback"].value == 3 * 601
    assert meta["lookback_bars_read_by_interval"].value == {"1h": 3 * 600}
    assert meta["lookback_hours_by_interval"].value == {"1h": 600.0}
    assert meta["series_topped_up"].value == meta["series_short_of_history"].value == 0


def test_ranged_backfill_run_and_rerun_are_idempotent(warehouse):
    url, wh, bars = warehouse
    tags = {"dagster/asset_partition_range_start": "2021-05-15-00:00",
            "dagster/asset_partition_range_end": "2021-05-15-05:00"}
    assert _materialize(url, tags=tags).success
    first = _written(wh, "2021-05-15 00:00", "2021-05-15 06:00")
    assert len(first) == 3 * 6
    expected = _expected(bars, "2021-05-15 00:00", "2021-05-15 06:00")
    for col in INDICATOR_NAMES:
        assert max_relative_error(first[col], expected[col]) <= TOLERANCE, col

    assert _materialize(url, tags=tags).success  # same range again: same rows, no duplicates
    again = _written(wh, "2021-05-15 00:00", "2021-05-15 06:00")
    pd.testing.assert_frame_equal(first.drop(columns="ingested_at"), again.drop(columns="ingested_at"))


def test_asset_definition():
    (asset,) = ASSETS
    assert asset.group_names_by_key[asset.key] == "enrich"
    assert asset.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=168)
    assert asset.partitions_def == HOURLY
    assert asset.descriptions_by_key[asset.key]
    # The input is the identity partition (so automation waits only for it, not for every
    # lookback hour); the lookback is read from the warehouse.
    (dep,) = asset.specs_by_key[asset.key].deps
    assert dep.partition_mapping is None
    described = {c.name: c.description for c in TECHNICAL_INDICATORS.columns}
    assert all(described[name] for name in INDICATOR_NAMES)
    assert np.isin(INDICATOR_NAMES, TECHNICAL_INDICATORS.column_names).all()


def test_a_5min_partition_reads_600_five_minute_bars_not_600_hours(tmp_path):
    """SYNTHETIC 5-minute bars (random walk), 8 days, stored in a warehouse; one symbol has a
    100-bar hole in the 50 hours before the partition. The partition reads 600 bars per series
    (50 hours; the gappy one topped up further back) and equals the full-history computation."""
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    wh = open_warehouse(url)
    bars = random_walk_bars(3, 8 * 288, interval="5min", start="2021-05-08", seed=9)
    start = pd.Timestamp("2021-05-15 12:00", tz="UTC")
    hole = (bars.symbol == "SYN002") & (bars.bar_start >= start - pd.Timedelta(hours=20)) & (
        bars.bar_start < start - pd.Timedelta(hours=20) + 100 * pd.Timedelta("5min"))
    bars = bars[~hole].reset_index(drop=True)
    wh.replace_window(OHLCV_BARS, _as_ohlcv_rows(bars), "2021-05-01", "2021-05-17")

    result = _materialize(url, partition_key=PARTITION)
    assert result.success
    written = _written(wh, start, start + pd.Timedelta("1h"))
    full = compute_indicators(bars)
    expected = full[(full.bar_start >= start) & (full.bar_start < start + pd.Timedelta("1h"))]
    expected = expected.sort_values(KEYS).reset_index(drop=True)
    assert len(written) == len(expected) == 3 * 12
    for col in INDICATOR_NAMES:
        assert max_relative_error(written[col], expected[col]) <= TOLERANCE, col

    meta = result.asset_materializations_for_node("technical_indicators")[0].metadata
    assert meta["lookback_hours_by_interval"].value == {"5min": 50.0}
    assert meta["series_topped_up"].value == 1 and meta["series_short_of_history"].value == 0
    read = meta["lookback_bars_read_by_interval"].value["5min"]
    # 600 bars for each full series; SYN002's 500 in the span plus its top-up (further back).
    span_rows = 2 * LOOKBACK_BARS + (LOOKBACK_BARS - 100)
    assert span_rows < read <= span_rows + 4 * LOOKBACK_BARS
    assert read < 3 * 600 * 12 / 4  # far fewer than 600 hours of 5-minute bars
