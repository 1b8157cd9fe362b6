"""`platform_health`: the health score and per-dataset table, as an asset in the UI (group "health").

It reads the Dagster instance, not the warehouse, so it has no upstream assets. A schedule
materializes it every 15 minutes; its `score` metadata plots over time in the asset's UI page.

It scores the datasets of the code location its run belongs to, taken from the run's context, never
from `crypto_assets.definitions` (which assembles this module into the code location). A run outside
a code location (`dg.materialize`) names the definitions to score in its config:
`run_config=health_run_config("crypto_assets.definitions:defs")`.
"""

import dagster as dg

from crypto_assets.dagster_internals import CheckError
from crypto_assets.health.cli import load_definitions
from crypto_assets.health.score import health_report
from crypto_assets.health.states import datasets_in

SCHEDULE_CRON = "*/15 * * * *"


class HealthConfig(dg.Config):
    definitions: str | None = None
    """module:attribute of the Definitions to score, e.g. `crypto_assets.definitions:defs`. Empty in a
    code location (its schedule, the UI): the run's own location is scored."""


@dg.asset(
    group_name="health",
    kinds={"python"},
    description=(
        "Platform health 0-100 from the freshness and asset-check states of every dataset "
        "(>=95 ok, <95 info, <80 warning, <60 critical). Failed or never-built datasets count, "
        "never dropped from the average. Metadata `table` lists each dataset. See docs/operations.md."
    ),
)
def platform_health(context: dg.AssetExecutionContext, config: HealthConfig) -> dg.MaterializeResult:
    report = health_report(context.instance, datasets_in(_asset_graph_to_score(context, config)))
    if report.band != "ok":
        context.log.warning(f"platform health {report.score:.1f} ({report.band})")
    return dg.MaterializeResult(metadata={
        "score": dg.MetadataValue.float(report.score),
        "band": report.band,
        "datasets": len(report.datasets),
        "datasets_not_ok": len(report.failing()),
        "table": dg.MetadataValue.md(report.to_markdown()),
    })


def _asset_graph_to_score(context: dg.AssetExecutionContext, config: HealthConfig):
    """The asset graph of the definitions `config` names, else of the run's code location.

    Runs launched by the webserver or the daemons know their repository. In-process runs
    (`dg.materialize`, `execute_in_process`) do not (their job holds only the selected assets), so
    they must name the definitions: scoring nothing would report a meaningless score.
    """
    if config.definitions:
        return load_definitions(config.definitions).resolve_asset_graph()
    try:
        return context.repository_def.asset_graph
    except CheckError:
        raise dg.Failure(
            "platform_health runs outside a code location, so it does not know which datasets to score: "
            "name their definitions in the run config, e.g. "
            f"run_config={health_run_config('crypto_assets.definitions:defs')}"
        ) from None


def health_run_config(definitions: str) -> dict:
    """Run config for an in-process run of `platform_health` that scores `definitions`
    ("module:attribute", as `crypto-assets health --definitions` takes it)."""
    return {"ops": {"platform_health": {"config": {"definitions": definitions}}}}


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
