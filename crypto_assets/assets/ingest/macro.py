"""Macro ingestion: `macro_series` from Yahoo Finance (daily closes) and FRED (first releases).

Partitioned by observation date (UTC days). Each row says when its value became known
(`available_at`); downstream joins use that, never the date. See docs/macro.md.
"""


import dagster as dg
import pandas as pd

from crypto_assets.assets.common import DAILY_BACKFILL, partition_label, window_of
from crypto_assets.assets.ingest.daily import in_window, not_final, per_series_failure, trailing_days_schedule
from crypto_assets.assets.ingest.rolling import json_metadata, write_rejects
from crypto_assets.partitions import DAILY
from crypto_assets.quality.quarantine import Rejects
from crypto_assets.sources.client import SourceError
from crypto_assets.sources.parsing import SourceParseError
from crypto_assets.sources.fred import Fred, first_releases, parse_observations
from crypto_assets.sources.series_catalog import MacroSeries, macro_series_catalog
from crypto_assets.sources.yahoo import YahooFinance, parse_chart, request_window
from crypto_assets.tables.macro import MACRO_SERIES
from crypto_assets.warehouse.failed_keys import FailedFetch, mark_failed, raise_if_nothing_fetched
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

ASSET = "macro_series"


class SeriesResult:
    """What one series contributed to a run: rows, rejects, or why it has nothing."""

    def __init__(self, series: MacroSeries):
        self.series = series
        self.rows = pd.DataFrame(columns=["observation_date", "value", "available_at"])
        self.not_final = 0
        self.missing_reason: str | None = None


def _reject(rejects: Rejects, series: MacroSeries, bad: pd.DataFrame) -> None:
    for _, row in bad.iterrows():
        day = row["observation_date"]
        at = pd.Timestamp(day, tz="UTC") if pd.notna(day) else None
        record = {"series_id": series.id, "symbol": series.symbol,
                  **{k: row[k] for k in row.index if k not in ("value", "problem")}}
        rejects.add(row["problem"], record, key=f"{series.id}|{day}", at=at)


def _keep(result: SeriesResult, good: pd.DataFrame, start, end, answered_at) -> None:
    good = good[in_window(good["observation_date"], start, end)]
    unfinished = not_final(good["available_at"], answered_at)
    result.not_final = int(unfinished.sum())
    result.rows = good.loc[~unfinished, ["observation_date", "value", "available_at"]]


def _series_failure(exc: SourceError) -> bool:
    """A 4xx for the series, or a body for it that cannot be parsed (the error names the series
    and the URL): that series is missing from the run, reported in `series_missing`."""
    return isinstance(exc, SourceParseError) or per_series_failure(exc)


def _yahoo_series(yahoo: YahooFinance, series: MacroSeries, start, end, rejects: Rejects) -> SeriesResult:
    result = SeriesResult(series)
    try:
        bars = parse_chart(yahoo.daily_chart(series.symbol, *request_window(start, end)), series)
    except SourceError as exc:
        if not _series_failure(exc):
            raise
        result.missing_reason = str(exc)
        return result
    bars = bars[bars.observation_date.isna() | in_window(bars.observation_date, start, end)]
    _reject(rejects, series, bars[bars.problem != ""])
    _keep(result, bars[bars.problem == ""], start, end, yahoo.client.last_response_at)
    return result


def _fred_series(fred: Fred, series: MacroSeries, start, end, rejects: Rejects) -> SeriesResult:
    result = SeriesResult(series)
    try:
        observations = parse_observations(fred.observations(series.symbol, start, end))
    except SourceError as exc:
        if not _series_failure(exc):
            raise
        result.missing_reason = str(exc)
        return result
    observations = observations[observations.observation_date.isna()
                                | in_window(observations.observation_date, start, end)]
    released, never = first_releases(observations)
    _reject(rejects, series, never)
    _keep(result, released, start, end, fred.client.last_response_at)
    return result


@dg.asset(
    name=ASSET,
    partitions_def=DAILY,
    backfill_policy=DAILY_BACKFILL,
    group_name="ingest",
    pool="macro",
    kinds={"python", "sql"},
    description=(
        "Macro and cross-asset series by observation date: Yahoo Finance daily closes (VIX, S&P 500, DXY, "
        "10Y yield, gold, oil, FX, QQQ/SPY/TLT/HYG/GLD/EEM; v8 chart endpoint, unadjusted close) and FRED "
        "series as first released (DGS10, DGS2, DFF, VIXCLS, CPI, unemployment, broad dollar, ...). "
        "`available_at` is when each value became known: market close (Yahoo) or the end of its first "
        "vintage day (FRED realtime_start). Only real observations: no weekend/holiday rows, no "
        "forward fill; FRED '.' and Yahoo nulls go to `quarantine`. Catalog: resources/macro_series.yaml."
    ),
)
def macro_series(
    context: dg.AssetExecutionContext,
    yahoo: YahooFinance,
    fred: Fred,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    catalog = macro_series_catalog()
    rejects = {"yahoo": Rejects(ASSET, yahoo.provenance), "fred": Rejects(ASSET, fred.provenance)}
    results: list[SeriesResult] = []
    for series in catalog:
        if series.provider == "yahoo":
            results.append(_yahoo_series(yahoo, series, start, end, rejects["yahoo"]))
        else:
            results.append(_fred_series(fred, series, start, end, rejects["fred"]))

    provenance = {"yahoo": yahoo.provenance, "fred": fred.provenance}
    now = utcnow()
    frames = [
        r.rows.assign(series_id=r.series.id, provider=r.series.provider,
                      source=provenance[r.series.provider], ingested_at=now)
        for r in results if len(r.rows)
    ]
    # Series whose fetch failed keep their stored observations (invariant 12).
    failed = [FailedFetch({"series_id": r.series.id}, r.missing_reason) for r in results if r.missing_reason]
    raise_if_nothing_fetched(ASSET, len(catalog), failed)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MACRO_SERIES.column_names)
    rows = rows.sort_values(["series_id", "observation_date"]).reset_index(drop=True)
    quarantined = write_rejects(warehouse.get(), ASSET, list(rejects.values()), start, end)

    covered = sorted({r.series.id for r in results if len(r.rows)})
    missing = {r.series.id: r.missing_reason or "no observation in the window" for r in results if not len(r.rows)}
    by_reason: dict[str, int] = {}
    for rj in rejects.values():
        for reason, n in rj.by_reason().items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "rows": len(rows),
            "rows_per_series": json_metadata(rows.groupby("series_id").size().astype(int).to_dict()),
            "series_covered": json_metadata(covered),
            "series_expected": len(catalog),
            "series_missing": json_metadata(missing),
            "rows_not_final_dropped": sum(r.not_final for r in results),
            "rows_quarantined": quarantined,
            "quarantine_by_reason": json_metadata(by_reason),
            "requests_made": json_metadata({"yahoo": yahoo.client.requests_made, "fred": fred.client.requests_made}),
            "retries_made": json_metadata({"yahoo": yahoo.client.retries_made, "fred": fred.client.retries_made}),
        }
    )
    return mark_failed(rows[MACRO_SERIES.column_names], failed)


ASSETS = [macro_series]

# Every 6 hours: the last 62 days in one run (one request per series), so monthly FRED series
# (released up to ~6 weeks after their observation date) and late daily values land.
SCHEDULES = [trailing_days_schedule(ASSET, name="macro_series_trailing_62d", cron="15 */6 * * *", days=62)]
