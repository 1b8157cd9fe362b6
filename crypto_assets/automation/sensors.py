"""One automation-condition sensor for the whole data graph, running by default.

One sensor, not one per group: conditions evaluated in the same tick see each other's requests
(`will_be_requested`), so prices -> bars -> indicators -> features of the same hour are requested
together and run in one run, in order. With a sensor per group, `ml_features` was evaluated before
`technical_indicators` of the same hour had been requested and ran without it.
(Dagster's implicit `default_automation_condition_sensor` starts STOPPED; ours starts RUNNING.)
"""

from __future__ import annotations

import os

import dagster as dg

AUTOMATED_GROUPS = ("reference", "ingest", "enrich", "features")
# Tags on every run and backfill the sensor starts. When one tick requests several partitions of an
# asset (the news re-fetch of the last 3 h makes sentiment re-run those hours), Dagster starts a
# backfill, not runs: the tag says in the Runs list what it is.
AUTOMATION_RUN_TAGS = {"crypto/started_by": "automation: open hour or late/re-fetched partitions of the last 48 h"}
# CRYPTO_AUTOMATION_INTERVAL_SECONDS overrides it (the end-to-end daemon test ticks faster).
INTERVAL_SECONDS = int(os.environ.get("CRYPTO_AUTOMATION_INTERVAL_SECONDS", "60"))


def automation_sensors(groups=AUTOMATED_GROUPS) -> list[dg.AutomationConditionSensorDefinition]:
    return [
        dg.AutomationConditionSensorDefinition(
            "automation",
            target=dg.AssetSelection.groups(*groups),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=INTERVAL_SECONDS,
            run_tags=AUTOMATION_RUN_TAGS,
            description=f"Evaluates the automation conditions of the {', '.join(groups)} groups in one tick.",
        )
    ]
