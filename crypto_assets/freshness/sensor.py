"""`data_freshness_sensor`: publishes data-time freshness where Dagster shows freshness.

Every minute it evaluates each dataset's FreshnessPolicy windows against the newest data time in
the warehouse (`crypto_assets.freshness`) and, when a state changes, records a
`FreshnessStateChange` for the asset: the UI's freshness badge, GraphQL `freshnessStatusInfo`
and `instance.get_freshness_state_records` then show it. Dagster's own FreshnessDaemon (time
since the last materialization of any partition) is switched off in dagster.yaml
(`freshness: enabled: false`): the two would overwrite each other, and its rule reads a backfill
of 2021 as fresh.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

from crypto_assets.freshness import DataFreshness, evaluate_all
from crypto_assets.health.states import datasets_in, utcnow
from crypto_assets.warehouse.resource import WarehouseResource

POLL_SECONDS = 60


def publish_states(instance: dg.DagsterInstance, states: Mapping[dg.AssetKey, DataFreshness], now) -> list[str]:
    """Record a FreshnessStateChange for each asset whose published state differs; the changes made."""
    recorded = instance.get_freshness_state_records(list(states))
    changes = []
    for key, freshness in states.items():
        new = FreshnessState(freshness.state)
        previous = recorded[key].freshness_state if key in recorded else None
        if previous == new:
            continue
        instance.report_runless_asset_event(FreshnessStateChange(
            key=key, new_state=new, previous_state=previous or FreshnessState.UNKNOWN,
            state_change_timestamp=now.timestamp(),
        ))
        changes.append(f"{key.to_user_string()} {previous.value if previous else 'none'} -> {new.value}")
    return changes


@dg.sensor(
    name="data_freshness_sensor",
    minimum_interval_seconds=POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Sets each dataset's freshness state (the UI badge) from the age of its NEWEST DATA in the warehouse "
        "against its policy (hourly: warn 2 h, fail 4 h), not from when a run last ran: backfills of old hours "
        "and runs that bring no new rows do not make stale data look fresh."
    ),
)
def data_freshness_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    if context.repository_def is None:
        raise dg.DagsterInvariantViolationError("data_freshness_sensor needs its code location's definitions")
    now = utcnow()
    datasets = [d for d in datasets_in(context.repository_def.asset_graph) if d.freshness_policy is not None]
    by_name = evaluate_all(warehouse.get(), {d.name: d.freshness_policy for d in datasets}, now)
    states = {d.key: by_name[d.name] for d in datasets}
    changes = publish_states(context.instance, states, now)
    for change in changes:
        context.log.info(f"freshness {change}")
    summary = "; ".join(f.describe() for f in by_name.values())
    return dg.SkipReason(f"{len(changes)} state change(s){': ' + ', '.join(changes) if changes else ''}. {summary}")


SENSORS = [data_freshness_sensor]
