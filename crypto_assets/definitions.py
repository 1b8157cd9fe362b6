"""The code location: assembles assets, checks, schedules, sensors and resources. No logic here."""

import dagster as dg

from crypto_assets.alerts import SENSORS as ALERT_SENSORS
from crypto_assets.assets import all_assets, all_schedules
from crypto_assets.automation.policies import apply_policies
from crypto_assets.automation.sensors import automation_sensors
from crypto_assets.checks.data_checks import all_data_checks
from crypto_assets.checks.freshness import CHECKS_JOB, CHECKS_SCHEDULE, latest_partition_checks
from crypto_assets.health import ASSETS as HEALTH_ASSETS
from crypto_assets.health import SCHEDULES as HEALTH_SCHEDULES
from crypto_assets.resources import build_resources

_datasets = apply_policies(all_assets())

defs = dg.Definitions(
    assets=[*_datasets, *HEALTH_ASSETS],
    asset_checks=[*all_data_checks(_datasets), *latest_partition_checks(_datasets)],
    jobs=[CHECKS_JOB],
    schedules=[*all_schedules(), CHECKS_SCHEDULE, *HEALTH_SCHEDULES],
    sensors=[*automation_sensors(), *ALERT_SENSORS],
    resources=build_resources(),
)
