"""Dagster resources over the warehouse: a resource for assets that read/write directly,
and the IO manager that stores asset outputs partition-window by partition-window."""

from __future__ import annotations

import json
from functools import lru_cache

import dagster as dg
import pandas as pd
from pydantic import Field

from crypto_assets.tables import table_for_asset
from crypto_assets.warehouse.failed_keys import failed_fetches
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import Warehouse, default_warehouse_url, rows_of_keys


def get_warehouse(url: str | None = None) -> Warehouse:
    """One engine per URL per process (engines own connection pools). The default URL is resolved
    on every call, so a process whose environment changes gets the warehouse it now names."""
    return _warehouse_for(url or default_warehouse_url())


@lru_cache(maxsize=8)
def _warehouse_for(url: str) -> Warehouse:
    return open_warehouse(url)


get_warehouse.cache_clear = _warehouse_for.cache_clear  # type: ignore[attr-defined]


_URL_FIELD = Field(
    default=None,
    description="Warehouse URL (delta:///path, delta+s3://bucket/prefix, mysql+pymysql://...); "
    "default CRYPTO_WAREHOUSE_URL, else Delta Lake under DAGSTER_HOME.",
)


class WarehouseResource(dg.ConfigurableResource):
    url: str | None = _URL_FIELD

    def get(self) -> Warehouse:
        return get_warehouse(self.url)


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores each asset in the table of the same name.

    A partitioned output (one partition or a ranged backfill) replaces exactly its time
    window in one transaction; an unpartitioned output replaces the table. Inputs load the
    upstream window after partition mapping (so a lookback mapping loads the lookback).
    """

    url: str | None = _URL_FIELD

    @property
    def warehouse(self) -> Warehouse:
        return get_warehouse(self.url)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:  # the asset wrote its table itself
            return
        spec = table_for_asset(context.asset_key)
        meta: dict = {"table": spec.name,
                      "warehouse": self.warehouse.display_url}
        failed = failed_fetches(obj)
        keep = [f.key for f in failed]
        if failed:
            meta |= {"keys_failed": dg.MetadataValue.json({f.label: f.shown for f in failed})}
        if failed and not all(keep):
            # The asset's one source failed: nothing it fetched may replace what is stored. The
            # table is still created (as an empty write would), so its schema check can judge it.
            self.warehouse.verify_schema(spec)
            context.add_output_metadata(meta | {"dagster/row_count": 0, "rows_written": 0,
                                                "stored_rows_kept": "all (the source's fetch failed)"})
            return
        if context.has_asset_partitions:
            window = context.asset_partitions_time_window
            if keep:
                meta["stored_rows_kept_for_failed_keys"] = kept_row_count(
                    self.warehouse, spec, keep, window.start, window.end)
            written = self.warehouse.replace_window(spec, obj, window.start, window.end, keep=keep)
            keys = list(context.asset_partition_keys)
            if len(keys) > 1:
                # A ranged run: every partition's materialization carries ITS OWN row count; the
                # run's total is labelled as such.
                per_partition = partition_row_counts(obj[spec.time_column], context.asset_partitions_def, keys)
                for key, rows in per_partition.items():
                    context.step_context.add_asset_metadata(
                        {"dagster/row_count": rows, "rows_written": rows, "rows": rows, "partition": key},
                        asset_key=context.asset_key, partition_key=key)
                meta |= {"run_partitions": len(keys), "run_rows_written": written,
                         "run_range": f"{keys[0]}...{keys[-1]}"}
            else:
                meta |= {"dagster/row_count": written, "rows_written": written}
        else:
            if keep:
                raise ValueError(f"{spec.name} is not partitioned: failed keys cannot keep their stored rows")
            written = self.warehouse.replace_all(spec, obj)
            meta |= {"dagster/row_count": written, "rows_written": written}
        context.add_output_metadata(meta)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        spec = table_for_asset(context.asset_key)
        # An input may read some columns only: dg.AssetIn(metadata={"columns": [...]}).
        columns = (context.definition_metadata or {}).get("columns")
        if context.has_asset_partitions and spec.time_column is not None:
            window = context.asset_partitions_time_window
            return self.warehouse.read(spec, window.start, window.end, columns=columns)
        return self.warehouse.read(spec, columns=columns)


def kept_row_count(warehouse: Warehouse, spec, keep: list[dict], start, end) -> int:
    """Stored rows in [start, end) of the keys in `keep` (what a window write leaves as it was)."""
    columns = sorted({c for key in keep for c in key})
    stored = warehouse.read(spec, start, end, columns=columns,
                            filters={c: sorted({key[c] for key in keep if c in key}) for c in columns})
    return int(rows_of_keys(stored, keep).sum())


def partition_row_counts(times: pd.Series, partitions_def, partition_keys) -> dict[str, int]:
    """Rows per partition key, for the metadata of ranged (multi-partition) writes."""
    keys = list(partition_keys)
    if not keys:
        return {}
    ts = pd.DatetimeIndex(pd.to_datetime(pd.Series(times), utc=True)).sort_values()
    counts = {}
    for key in keys:
        w = partitions_def.time_window_for_partition_key(key)
        lo, hi = ts.searchsorted(pd.Timestamp(w.start)), ts.searchsorted(pd.Timestamp(w.end))
        counts[key] = int(hi - lo)
    return counts
