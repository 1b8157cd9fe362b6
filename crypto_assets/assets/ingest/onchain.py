"""On-chain ingestion: `onchain_metrics` from blockchain.com charts and DefiLlama chain TVL.

Partitioned by UTC day. Only values the providers publish are stored; a day's value is
available once that day has closed (`available_at` = next midnight UTC). See docs/macro.md.
"""


import dagster as dg
import pandas as pd

from crypto_assets.assets.common import DAILY_BACKFILL, partition_label, window_of
from crypto_assets.assets.ingest.daily import in_window, not_final, per_series_failure, trailing_days_schedule
from crypto_assets.assets.ingest.rolling import json_metadata, write_rejects
from crypto_assets.partitions import DAILY
from crypto_assets.quality.quarantine import Rejects
from crypto_assets.sources.client import SourceError
from crypto_assets.sources.onchain import BlockchainCom, DefiLlama, parse_blockchain_chart, parse_chain_tvl
from crypto_assets.sources.series_catalog import OnchainMetric, onchain_metrics_catalog
from crypto_assets.tables.onchain import ONCHAIN_METRICS
from crypto_assets.warehouse.failed_keys import FailedFetch, mark_failed, raise_if_nothing_fetched
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

ASSET = "onchain_metrics"


def _fetch(metric: OnchainMetric, sources: dict, start, end) -> pd.DataFrame:
    if metric.provider == "blockchain_com":
        return parse_blockchain_chart(sources["blockchain_com"].chart(metric.path, start, end), metric.unit)
    if metric.provider == "defillama":
        return parse_chain_tvl(sources["defillama"].chain_tvl(metric.path), metric.unit)
    raise ValueError(f"{metric.chain}/{metric.metric}: unknown provider {metric.provider!r}")


@dg.asset(
    name=ASSET,
    partitions_def=DAILY,
    backfill_policy=DAILY_BACKFILL,
    group_name="ingest",
    pool="onchain",
    kinds={"python", "sql"},
    description=(
        "Daily on-chain metrics from public endpoints: Bitcoin transactions, hash rate and active "
        "addresses (blockchain.com charts API) and chain TVL (DefiLlama /v2/historicalChainTvl). Real "
        "published values only; a day a provider does not give is absent. `available_at` is the end of "
        "the UTC day; values of a day still open when the provider answered are not stored. "
        "Catalog: resources/onchain_metrics.yaml."
    ),
)
def onchain_metrics(
    context: dg.AssetExecutionContext,
    blockchain_com: BlockchainCom,
    defillama: DefiLlama,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    sources = {"blockchain_com": blockchain_com, "defillama": defillama}
    catalog = onchain_metrics_catalog()
    rejects = {name: Rejects(ASSET, src.provenance) for name, src in sources.items()}
    now = utcnow()
    frames, missing, not_final_count, failed = [], {}, 0, []
    for metric in catalog:
        source = sources[metric.provider]
        label = f"{metric.chain}/{metric.metric}"
        try:
            points = _fetch(metric, sources, start, end)
        except SourceError as exc:
            if not per_series_failure(exc):
                raise
            missing[label] = str(exc)
            failed.append(FailedFetch({"chain": metric.chain, "metric": metric.metric}, str(exc)))
            continue
        points = points[points.date.isna() | in_window(points.date, start, end)]
        for _, row in points[points.problem != ""].iterrows():
            at = pd.Timestamp(row["date"], tz="UTC") if pd.notna(row["date"]) else None
            rejects[metric.provider].add(
                row["problem"], {"chain": metric.chain, "metric": metric.metric, "path": metric.path,
                                 "date": row["date"], "raw_value": row["raw_value"], "unit": row["unit"]},
                key=f"{label}|{row['date']}", at=at)
        good = points[points.problem == ""]
        unfinished = not_final(good.available_at, source.client.last_response_at)
        not_final_count += int(unfinished.sum())
        good = good[~unfinished]
        if not len(good):
            missing[label] = "no published value in the window"
            continue
        frames.append(good.assign(chain=metric.chain, metric=metric.metric, provider=metric.provider,
                                  source=source.provenance, ingested_at=now))

    # Metrics whose fetch failed keep their stored days (invariant 12).
    raise_if_nothing_fetched(ASSET, len(catalog), failed)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ONCHAIN_METRICS.column_names)
    rows = rows.sort_values(["chain", "metric", "date"]).reset_index(drop=True)
    quarantined = write_rejects(warehouse.get(), ASSET, list(rejects.values()), start, end)
    by_reason: dict[str, int] = {}
    for rj in rejects.values():
        for reason, n in rj.by_reason().items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    per_metric = rows.groupby(["chain", "metric"]).size().astype(int)
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "rows": len(rows),
            "rows_per_metric": json_metadata({f"{c}/{m}": n for (c, m), n in per_metric.items()}),
            "metrics_covered": len(per_metric),
            "metrics_expected": len(catalog),
            "metrics_missing": json_metadata(missing),
            "rows_not_final_dropped": not_final_count,
            "rows_quarantined": quarantined,
            "quarantine_by_reason": json_metadata(by_reason),
            "requests_made": json_metadata({n: s.client.requests_made for n, s in sources.items()}),
        }
    )
    return mark_failed(rows[ONCHAIN_METRICS.column_names], failed)


ASSETS = [onchain_metrics]

# Daily at 01:30 UTC: the last 7 days in one run (a provider may publish a day late).
SCHEDULES = [trailing_days_schedule(ASSET, name="onchain_metrics_trailing_7d", cron="30 1 * * *", days=7)]
