"""`fear_greed_index`: the Alternative.me Crypto Fear & Greed Index, one value per UTC day.

Daily partitions. Each run asks once for the points back to its first day (the API counts back
from today), keeps those inside its window and quarantines malformed points. `available_at` is the
point's own timestamp (see crypto_assets/sources/fear_greed.py). In replay mode there is no
recording (no licensed one exists): the request is answered 404, the asset writes no row and its
metadata says why. A daily schedule re-fetches the last 3 days.
"""


import dagster as dg
import pandas as pd

from crypto_assets.assets.common import DAILY_BACKFILL, partition_label, window_of
from crypto_assets.assets.ingest.daily import in_window, per_series_failure, trailing_days_schedule
from crypto_assets.assets.ingest.rolling import json_metadata, write_rejects
from crypto_assets.partitions import DAILY
from crypto_assets.quality.quarantine import Rejects
from crypto_assets.sources.client import SourceError
from crypto_assets.sources.fear_greed import AlternativeMe, limit_for, parse_fear_greed
from crypto_assets.tables.intelligence import FEAR_GREED_INDEX
from crypto_assets.warehouse.failed_keys import FailedFetch, mark_failed, raise_if_nothing_fetched
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

ASSET = "fear_greed_index"


@dg.asset(
    name=ASSET,
    partitions_def=DAILY,
    backfill_policy=DAILY_BACKFILL,
    group_name="ingest",
    pool="alternative_me",
    kinds={"python", "sql"},
    description=(
        "The Alternative.me Crypto Fear & Greed Index (0 = extreme fear, 100 = extreme greed) per UTC day, with "
        "Alternative.me's classification, from GET https://api.alternative.me/fng/ (history by `limit`). "
        "`available_at` = the point's timestamp, when Alternative.me publishes it. Malformed points go to "
        "quarantine. Replay has no recording: the asset is empty there and its metadata says why."
    ),
)
def fear_greed_index(context: dg.AssetExecutionContext, alternative_me: AlternativeMe,
                     warehouse: WarehouseResource) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    now = utcnow()
    rejects = Rejects(ASSET, alternative_me.provenance)
    empty_reason = None
    failed: list[FailedFetch] = []
    try:
        payload = alternative_me.fear_greed(limit_for(start, now))
        points = parse_fear_greed(payload, alternative_me.client.last_response_at)
    except SourceError as exc:
        if not per_series_failure(exc):
            raise
        points = pd.DataFrame(columns=["date", "value", "classification", "available_at", "problem"])
        empty_reason = str(exc)
        # The one source failed: the stored days of the window stay as they are (invariant 12).
        failed.append(FailedFetch({}, str(exc)))
        raise_if_nothing_fetched(ASSET, 1, failed)
        if alternative_me.mode == "replay":
            empty_reason = ("replay: no recording of the Alternative.me /fng/ API exists in resources/replay "
                            f"(no licensed recording was found), so nothing is written ({exc})")
    points = points[points["date"].isna() | in_window(points["date"], start, end)] if len(points) else points
    for _, row in points[points["problem"] != ""].iterrows():
        rejects.add(row["problem"], row.drop(labels=["problem"]).to_dict(),
                    key=f"fng|{row.get('raw_timestamp')}", at=row["available_at"] if pd.notna(row["available_at"])
                    else None)
    rows = points[points["problem"] == ""].assign(source=alternative_me.provenance, ingested_at=now)
    rows = rows.sort_values("date").reset_index(drop=True)
    quarantined = write_rejects(warehouse.get(), ASSET, [rejects], start, end)
    if not len(rows) and empty_reason is None:
        empty_reason = "the API answered no point for these days"
    context.add_output_metadata({
        "partition": partition_label(context),
        "rows": len(rows),
        "rows_quarantined": quarantined,
        "quarantine_by_reason": json_metadata(rejects.by_reason()),
        "latest": json_metadata(rows.iloc[-1][["date", "value", "classification"]].to_dict() if len(rows) else {}),
        "empty_reason": empty_reason or "",
        "requests_made": alternative_me.client.requests_made,
    })
    if empty_reason:
        context.log.warning(f"fear_greed_index {partition_label(context)}: no rows: {empty_reason}")
    return mark_failed(rows.reindex(columns=FEAR_GREED_INDEX.column_names), failed)


ASSETS = [fear_greed_index]

# Daily at 00:20 UTC: yesterday's and today's values (published at 00:00 UTC), plus a day of slack.
SCHEDULES = [trailing_days_schedule(ASSET, name="fear_greed_index_trailing_3d", cron="20 0 * * *", days=3)]
