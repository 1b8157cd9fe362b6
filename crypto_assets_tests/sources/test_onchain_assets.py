"""`onchain_metrics` materialized in replay mode through Dagster and the warehouse IO manager."""

from datetime import date

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.ingest.onchain import onchain_metrics
from crypto_assets.sources.onchain import BlockchainCom, DefiLlama
from crypto_assets.tables.onchain import ONCHAIN_METRICS
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource, get_warehouse

RANGE = {"dagster/asset_partition_range_start": "2022-12-26", "dagster/asset_partition_range_end": "2022-12-31"}


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"


def run(url, **kwargs):
    result = dg.materialize(
        [onchain_metrics],
        resources={
            "io_manager": WarehouseIOManager(url=url),
            "warehouse": WarehouseResource(url=url),
            "blockchain_com": BlockchainCom(mode="replay"),
            "defillama": DefiLlama(mode="replay"),
        },
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )
    assert result.success
    return result.asset_materializations_for_node("onchain_metrics")[0].metadata


def test_replay_stores_only_published_days_idempotently(url):
    meta = run(url, tags=RANGE)
    first = get_warehouse(url).read(ONCHAIN_METRICS)
    # the recording has a sampled point every third day: 26 and 29 Dec only; no other day filled
    assert first[["chain", "metric", "date", "value"]].values.tolist() == [
        ["bitcoin", "tx_count", date(2022, 12, 26), 223504.0],
        ["bitcoin", "tx_count", date(2022, 12, 29), 265955.0],
    ]
    assert first.available_at.tolist() == [pd.Timestamp("2022-12-27", tz="UTC"), pd.Timestamp("2022-12-30", tz="UTC")]
    assert set(first.source) == {"replay:blockchain_com"} and set(first.unit) == {"Transactions"}
    missing = meta["metrics_missing"].value
    assert set(missing) == {"bitcoin/hash_rate", "bitcoin/active_addresses", "ethereum/tvl_usd", "solana/tvl_usd"}
    assert all("404" in reason for reason in missing.values())  # no recording -> no rows, reported

    run(url, tags=RANGE)
    second = get_warehouse(url).read(ONCHAIN_METRICS)
    cols = [c for c in ONCHAIN_METRICS.column_names if c != "ingested_at"]
    pd.testing.assert_frame_equal(first[cols], second[cols])


def test_day_without_a_published_value_has_no_row(url):
    meta = run(url, partition_key="2022-12-27")
    assert get_warehouse(url).read(ONCHAIN_METRICS).empty
    assert meta["metrics_missing"].value["bitcoin/tx_count"] == "no published value in the window"
