"""One automation-condition sensor per asset group, running by default.

(Dagster's implicit `default_automation_condition_sensor` starts STOPPED; ours start RUNNING.)
"""

from __future__ import annotations

import dagster as dg

AUTOMATED_GROUPS = ("ingest", "enrich", "features")


def automation_sensors(groups=AUTOMATED_GROUPS) -> list[dg.AutomationConditionSensorDefinition]:
    return [
        dg.AutomationConditionSensorDefinition(
            f"automation_{group}",
            target=dg.AssetSelection.groups(group),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=60,
            description=f"Evaluates the automation conditions of the {group} group.",
        )
        for group in groups
    ]
