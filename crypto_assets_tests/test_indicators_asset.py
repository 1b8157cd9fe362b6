"""The `technical_indicators` asset end to end: Dagster loads `ohlcv_bars` with the lookback
mapping through the warehouse IO manager, and the written partition equals the full-history
computation; a ranged run and a repeated run behave."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from crypto_assets.assets.enrich.indicators import ASSETS, LOOKBACK, lookback_start, technical_indicators
from crypto_assets.indicators import INDICATOR_NAMES, compute_indicators
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.indicators import TECHNICAL_INDICATORS
from crypto_assets.tables.prices import OHLCV_BARS
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.store import Warehouse
from crypto_assets_tests.indicator_data import bitstamp_restamped, coingecko_4h
from crypto_assets_tests.test_indicators_values import TOLERANCE, max_relative_error

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
    )[OHLCV_BARS.column_names]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('wh') / 'warehouse.sqlite'}"
    wh = Warehouse(url)
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
    # The lookback reached back 600 hours, not just the partition.
    assert meta["bars_read_with_lookback"].value == 3 * 601


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
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    assert asset.partitions_def == HOURLY
    assert asset.descriptions_by_key[asset.key]
    # The input is the identity partition (so automation waits only for it); the lookback is
    # the LOOKBACK mapping's window, read from the warehouse.
    assert isinstance(LOOKBACK, dg.TimeWindowPartitionMapping) and LOOKBACK.start_offset == -600 and LOOKBACK.end_offset == 0
    assert lookback_start(pd.Timestamp("2021-06-01 05:00", tz="UTC")) == pd.Timestamp("2021-06-01 05:00", tz="UTC") - pd.Timedelta(hours=600)
    described = {c.name: c.description for c in TECHNICAL_INDICATORS.columns}
    assert all(described[name] for name in INDICATOR_NAMES)
    assert np.isin(INDICATOR_NAMES, TECHNICAL_INDICATORS.column_names).all()
