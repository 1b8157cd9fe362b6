"""What the ingest assets of "latest items" sources share (RSS feeds, Reddit /new).

Such a source lists only its newest items, so re-running an hour later sees fewer of that
hour's items than the first run did. Two things follow:

- `merge_with_stored`: a run's rows for its window are what the source lists now, merged with
  what the window already holds. Re-running never loses an item that scrolled out of the
  source, and running twice with the same answers gives the same rows (idempotent).
- `trailing_window_schedule`: the live run covers the last N hours as ONE ranged run, so an
  item that shows up after its hour was first materialized (a late article, or a post created
  at 10:59 and fetched at 11:05) still lands in the partition of its own published hour.
"""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import ranged_schedule
from crypto_assets.partitions import HOURLY
from crypto_assets.quality.quarantine import Rejects
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.warehouse.schema import TableSpec
from crypto_assets.warehouse.store import Warehouse

_ID_CHUNK = 500  # ids per IN (...) lookup


def json_metadata(value) -> dg.MetadataValue:
    """JSON run metadata from plain values (numpy ints, timestamps made JSON-safe)."""
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


def merge_with_stored(
    warehouse: Warehouse, spec: TableSpec, fresh: pd.DataFrame, start, end
) -> tuple[pd.DataFrame, dict]:
    """`fresh` rows (all inside [start, end)) merged with the rows the window already holds.

    - an item in both: the fresh row wins (latest title, score, ...), but keeps the stored
      `ingested_at` (when the pipeline first had it);
    - an item only stored (scrolled out of the source): kept as stored;
    - an item stored in ANOTHER partition (its source changed its date): kept there, the fresh
      row is dropped, so the table key stays unique.
    """
    key = spec.primary_key[0]
    stored = warehouse.read(spec, start, end)
    stored_ids = set(stored[key])
    new_ids = [i for i in fresh[key] if i not in stored_ids]
    elsewhere: set = set()
    for i in range(0, len(new_ids), _ID_CHUNK):
        found = warehouse.read(spec, columns=[key], filters={key: new_ids[i : i + _ID_CHUNK]})
        elsewhere |= set(found[key])
    fresh = fresh[~fresh[key].isin(elsewhere)].copy()
    first_seen = dict(zip(stored[key], stored["ingested_at"]))
    fresh["ingested_at"] = [first_seen.get(i, t) for i, t in zip(fresh[key], fresh["ingested_at"])]
    kept = stored[~stored[key].isin(set(fresh[key]))]
    frames = [f for f in (kept, fresh) if len(f)]
    merged = pd.concat(frames, ignore_index=True) if frames else fresh.iloc[0:0]
    merged = merged.sort_values([spec.time_column, key]).reset_index(drop=True)
    stats = {
        "new": int((~fresh[key].isin(stored_ids)).sum()),
        "refreshed": int(fresh[key].isin(stored_ids).sum()),
        "kept_from_earlier_runs": len(kept),
        "already_stored_in_another_partition": len(elsewhere),
    }
    return merged[spec.column_names], stats


def write_rejects(warehouse: Warehouse, asset: str, rejects: list[Rejects], start, end) -> int:
    """Replace the asset's quarantine rows for the window with the rejects of all its sources."""
    frames = [r.frame(start, end) for r in rejects]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=QUARANTINE.column_names)
    return warehouse.replace_window(QUARANTINE, frame, start, end, where={"asset": asset})


def trailing_range(now, hours: int, partitions_def=HOURLY) -> tuple[str, str]:
    """First and last partition keys of the `hours` hourly partitions ending with the open hour."""
    # HOURLY has end_offset=1: the hour containing `now` is a partition (the open hour).
    now = pd.Timestamp(now)
    earliest = partitions_def.time_window_for_partition_key(partitions_def.get_first_partition_key()).start
    last = partitions_def.get_partition_key_for_timestamp(now.timestamp())
    first_time = max(now - timedelta(hours=hours - 1), pd.Timestamp(earliest))
    return partitions_def.get_partition_key_for_timestamp(first_time.timestamp()), last


def trailing_window_schedule(
    asset_key: str,
    *,
    name: str,
    cron: str,
    hours: int,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    """A schedule that materializes the last `hours` hourly partitions of an asset in one run."""
    if hours < 1:
        raise ValueError("hours must be >= 1")

    return ranged_schedule(
        asset_key, name=name, cron=cron, default_status=default_status,
        keys_for=lambda now: trailing_range(now, hours),
        description=f"Every run re-materializes the last {hours} hourly partitions of {asset_key} as one "
        "ranged run, so items that appear late land in their own published hour.",
    )
