"""The code location: assembles assets, checks, schedules, sensors and resources. No logic here."""

import dagster as dg

from crypto_assets.alerts import SENSORS as ALERT_SENSORS
from crypto_assets.assets import all_assets, all_schedules
from crypto_assets.automation.policies import apply_policies
from crypto_assets.automation.runtime import EXECUTOR, quiet_dagster_stability_warnings
from crypto_assets.automation.sensors import automation_sensors
from crypto_assets.checks.data_checks import CHECKS_JOB, all_data_checks
from crypto_assets.freshness.sensor import SENSORS as FRESHNESS_SENSORS
from crypto_assets.health import ASSETS as HEALTH_ASSETS
from crypto_assets.health import SCHEDULES as HEALTH_SCHEDULES
from crypto_assets.resources import build_resources

quiet_dagster_stability_warnings()
_datasets = apply_policies(all_assets())

defs = dg.Definitions(
    assets=[*_datasets, *HEALTH_ASSETS],
    asset_checks=all_data_checks(_datasets),
    jobs=[CHECKS_JOB],
    schedules=[*all_schedules(), *HEALTH_SCHEDULES],
    sensors=[*automation_sensors(), *FRESHNESS_SENSORS, *ALERT_SENSORS],
    resources=build_resources(),
    executor=EXECUTOR,
)
