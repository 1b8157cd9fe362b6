"""A tiny code location for the alert and health tests: two assets with freshness policies
(one with a check whose outcome the run config decides), one without, the health asset and
the alert sensors."""

from datetime import timedelta

import dagster as dg

from crypto_assets.alerts import SENSORS
from crypto_assets.health import ASSETS as HEALTH_ASSETS
from crypto_assets.health import SCHEDULES as HEALTH_SCHEDULES

FRESH = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=4), warn_window=timedelta(hours=2))


class CheckOutcome(dg.Config):
    passed: bool = True
    severity: str = "ERROR"  # or WARN


@dg.asset(group_name="ingest", freshness_policy=FRESH,
          check_specs=[dg.AssetCheckSpec("non_empty", asset="prices")])
def prices(config: CheckOutcome):
    yield dg.MaterializeResult(metadata={"rows": 1})
    yield dg.AssetCheckResult(check_name="non_empty", passed=config.passed,
                              severity=dg.AssetCheckSeverity(config.severity),
                              description="rows > 0" if config.passed else "no rows in the partition")


@dg.asset(group_name="ingest", freshness_policy=FRESH)
def news() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 1})


@dg.asset(group_name="features")
def features() -> dg.MaterializeResult:
    return dg.MaterializeResult()


DATASET_ASSETS = [prices, news, features]
defs = dg.Definitions(assets=[*DATASET_ASSETS, *HEALTH_ASSETS], schedules=HEALTH_SCHEDULES, sensors=SENSORS)


def check_config(passed: bool, severity: str = "ERROR") -> dict:
    return {"ops": {"prices": {"config": {"passed": passed, "severity": severity}}}}
