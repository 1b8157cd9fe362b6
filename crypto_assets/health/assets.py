"""`platform_health`: the health score and per-dataset table, as an asset in the UI (group "health").

It reads the Dagster instance, not the warehouse, so it has no upstream assets. A schedule
materializes it every 15 minutes; its `score` metadata plots over time in the asset's UI page.
"""

import dagster as dg
from dagster._check import CheckError

from crypto_assets.health.score import health_report
from crypto_assets.health.states import datasets_in

SCHEDULE_CRON = "*/15 * * * *"


@dg.asset(
    group_name="health",
    kinds={"python"},
    description=(
        "Platform health 0-100 from the freshness and asset-check states of every dataset "
        "(>=95 ok, <95 info, <80 warning, <60 critical). Failed or never-built datasets count, "
        "never dropped from the average. Metadata `table` lists each dataset. See docs/operations.md."
    ),
)
def platform_health(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    report = health_report(context.instance, datasets_in(_code_location_asset_graph(context)))
    if report.band != "ok":
        context.log.warning(f"platform health {report.score:.1f} ({report.band})")
    return dg.MaterializeResult(metadata={
        "score": dg.MetadataValue.float(report.score),
        "band": report.band,
        "datasets": len(report.datasets),
        "datasets_not_ok": len(report.failing()),
        "table": dg.MetadataValue.md(report.to_markdown()),
    })


def _code_location_asset_graph(context: dg.AssetExecutionContext):
    """The asset graph of the code location this run belongs to.

    Runs launched by the webserver or the daemons know their repository. In-process runs
    (`dg.materialize`, `make demo`) do not: score this project's definitions then.
    """
    try:
        return context.repository_def.asset_graph
    except CheckError:
        from crypto_assets.definitions import defs  # imported late: definitions imports this module

        return defs.resolve_asset_graph()


platform_health_job = dg.define_asset_job("platform_health_job", selection=[platform_health])

platform_health_schedule = dg.ScheduleDefinition(
    name="platform_health_schedule",
    job=platform_health_job,
    cron_schedule=SCHEDULE_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

ASSETS = [platform_health]
JOBS = [platform_health_job]
SCHEDULES = [platform_health_schedule]
