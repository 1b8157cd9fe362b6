"""`data_freshness_sensor`: publishes data-time freshness where Dagster shows freshness.

Every minute it evaluates each dataset's FreshnessPolicy windows against the newest data time in
the warehouse (`crypto_assets.freshness`) and, when a state changes, records a
`FreshnessStateChange` for the asset: the UI's freshness badge, GraphQL `freshnessStatusInfo`
and `instance.get_freshness_state_records` then show it. Dagster's own FreshnessDaemon (time
since the last materialization of any partition) is switched off in dagster.yaml
(`freshness: enabled: false`): the two would overwrite each other, and its rule reads a backfill
of 2021 as fresh.

What a tick shows in the UI: its reason (hover its "0 runs requested" tag, or open the tick) is
short: the changes, if any (at most three named, the worst first), and how many datasets are in
each state; its cursor (the tick list's Cursor column) says the same in a few words
(`1 change; 2 FAIL, 13 UNKNOWN, 1 PASS`, `no change; ...`). A tick that changed a state, and the
sensor's first tick (no cursor yet), log one line per dataset ("View logs"): its state, what it
was before when it changed, its newest data time and age. Ticks without a change log nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from crypto_assets.dagster_internals import FreshnessState, FreshnessStateChange
from crypto_assets.freshness import DataFreshness, evaluate_all, format_age
from crypto_assets.health.states import datasets_in, utcnow
from crypto_assets.warehouse.resource import WarehouseResource

POLL_SECONDS = 60


def publish_states(instance: dg.DagsterInstance, states: Mapping[dg.AssetKey, DataFreshness], now) -> list[str]:
    """Record a FreshnessStateChange for each asset whose published state differs; the changes made."""
    return [f"{key.to_user_string()} {before or 'none'} -> {states[key].state}"
            for key, before in _publish(instance, states, now).items()]


def _publish(instance: dg.DagsterInstance, states: Mapping[dg.AssetKey, DataFreshness], now
             ) -> dict[dg.AssetKey, str | None]:
    """Record the states that changed; {asset key: the state recorded before (None: none)} for those."""
    recorded = instance.get_freshness_state_records(list(states))
    changed = {}
    for key, freshness in states.items():
        new = FreshnessState(freshness.state)
        previous = recorded[key].freshness_state if key in recorded else None
        if previous == new:
            continue
        instance.report_runless_asset_event(FreshnessStateChange(
            key=key, new_state=new, previous_state=previous or FreshnessState.UNKNOWN,
            state_change_timestamp=now.timestamp(),
        ))
        changed[key] = previous.value if previous else None
    return changed


_ORDER = ("FAIL", "WARN", "UNKNOWN", "PASS", "NOT_APPLICABLE")


def state_counts(states) -> str:
    """`2 FAIL, 1 WARN, 12 PASS` (worst first) over DataFreshness values."""
    counts = {}
    for freshness in states:
        counts[freshness.state] = counts.get(freshness.state, 0) + 1
    return ", ".join(f"{counts[s]} {s}" for s in sorted(counts, key=lambda s: _ORDER.index(s) if s in _ORDER else 9))


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
    changed = _publish(context.instance, states, now)
    counts = state_counts(states.values()) or "no dataset with a policy"
    first = context.cursor is None
    if changed or first:  # every dataset's state, one log line each ("View logs" on the tick)
        for key, freshness in sorted(states.items(), key=lambda item: item[0].to_user_string()):
            was = f" (was {changed[key] or 'none'})" if key in changed else ""
            log = context.log.warning if key in changed and freshness.state != "PASS" else context.log.info
            log(f"{freshness.describe()}{was}; policy: warn after {format_age(freshness.warn_after)}, fail after "
                f"{format_age(freshness.fail_after)}")
    context.update_cursor((f"{len(changed)} change{'' if len(changed) == 1 else 's'}" if changed else "no change")
                          + f"; {counts}")
    if changed:
        worst_first = sorted(changed, key=lambda k: (_ORDER.index(states[k].state) if states[k].state in _ORDER else 9,
                                                     k.to_user_string()))
        named = [f"{k.to_user_string()} {changed[k] or 'none'} -> {states[k].state}" for k in worst_first]
        more = f", and {len(named) - 3} more" if len(named) > 3 else ""
        return dg.SkipReason(f"{len(changed)} change{'s' if len(changed) > 1 else ''}: {', '.join(named[:3])}{more}. "
                             f"Now {counts}; every dataset's state is in this tick's log.")
    if first:
        return dg.SkipReason(f"No change. Now {counts}; every dataset's state is in this tick's log.")
    return dg.SkipReason(f"No change. Now {counts}{_last_change(context.instance, list(states))}.")


def _last_change(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> str:
    """`; last change 2026-03-02 17:00 UTC (that tick's log lists every state)`, or nothing."""
    records = instance.get_freshness_state_records(keys) if keys else {}
    if not records:
        return ""
    last = max(r.updated_at for r in records.values())
    return f"; last change {last:%Y-%m-%d %H:%M} UTC (that tick's log lists every state)"


SENSORS = [data_freshness_sensor]
