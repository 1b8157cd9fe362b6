"""A tiny code location for the alert and health tests.

Two datasets with freshness policies that write real rows into the project's warehouse tables
(`price_observations`, `news_articles`) at a data time the run config chooses, so freshness is
judged exactly as in production: on the newest data in the warehouse. `prices` has a check whose
outcome the run config decides; `features` has no policy. Plus the health asset, the freshness
sensor and the alert sensors.
"""

from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster._time import get_current_datetime

from crypto_assets.alerts import SENSORS
from crypto_assets.freshness.sensor import SENSORS as FRESHNESS_SENSORS
from crypto_assets.health import ASSETS as HEALTH_ASSETS
from crypto_assets.health import SCHEDULES as HEALTH_SCHEDULES
from crypto_assets.tables import table
from crypto_assets.warehouse.resource import WarehouseResource

FRESH = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=4), warn_window=timedelta(hours=2))


class Outcome(dg.Config):
    passed: bool = True
    severity: str = "ERROR"  # or WARN
    data_hours_old: float = 0.0  # how old the newest row written is, at run time


def write_row(warehouse: WarehouseResource, name: str, values: dict) -> pd.Timestamp:
    spec = table(name)
    row = pd.DataFrame([values]).reindex(columns=spec.column_names)
    at = pd.Timestamp(values[spec.time_column])
    hour = at.floor("h")
    warehouse.get().replace_window(spec, row, hour, hour + pd.Timedelta(hours=1))
    return at


def data_time(config: Outcome) -> pd.Timestamp:
    return pd.Timestamp(get_current_datetime()) - pd.Timedelta(hours=config.data_hours_old)


@dg.asset(name="price_observations", group_name="ingest", freshness_policy=FRESH,
          check_specs=[dg.AssetCheckSpec("non_empty", asset="price_observations")])
def prices(config: Outcome, warehouse: WarehouseResource):
    at = write_row(warehouse, "price_observations", {"symbol": "BTC", "observed_at": data_time(config),
                                                     "price_usd": 50_000.0, "source": "test"})
    yield dg.MaterializeResult(metadata={"rows": 1, "data_time": at.isoformat()})
    yield dg.AssetCheckResult(check_name="non_empty", passed=config.passed,
                              severity=dg.AssetCheckSeverity(config.severity),
                              description="rows > 0" if config.passed else "no rows in the partition")


@dg.asset(name="news_articles", group_name="ingest", freshness_policy=FRESH)
def news(config: Outcome, warehouse: WarehouseResource) -> dg.MaterializeResult:
    published = data_time(config)
    at = write_row(warehouse, "news_articles", {"article_id": f"article-{published.isoformat()}", "published_at": published,
                                                "title": "t", "source": "test"})
    return dg.MaterializeResult(metadata={"rows": 1, "data_time": at.isoformat()})


@dg.asset(group_name="features")
def features() -> dg.MaterializeResult:
    return dg.MaterializeResult()


DATASET_ASSETS = [prices, news, features]
defs = dg.Definitions(assets=[*DATASET_ASSETS, *HEALTH_ASSETS], schedules=HEALTH_SCHEDULES,
                      sensors=[*FRESHNESS_SENSORS, *SENSORS], resources={"warehouse": WarehouseResource()})


def run_config(passed: bool = True, severity: str = "ERROR", data_hours_old: float = 0.0,
               assets=("price_observations", "news_articles")) -> dict:
    outcome = {"passed": passed, "severity": severity, "data_hours_old": data_hours_old}
    return {"ops": {name: {"config": outcome} for name in assets}}
