"""What a backfill chunk's check ops spend finding what their run wrote (results key "check_scope").

One ranged run of 11 hourly assets over 7 days (168 partitions each: 1,848 ASSET_MATERIALIZATION
events, a whole-graph backfill chunk), each asset with one check op as the project builds them
(a multi-asset check on the project's hourly partitions), the assets writing nothing but
their materializations' metadata. Run twice:
- `events`: each check op reads the partitions written back from the run's events
  (`materialized_in_run`, what every check op did before);
- `plan_and_tags`: `partitions_written` (the run's plan and partition tags; no event read).
For each: the seconds the derivation took in all check ops, and the check ops' step durations.

Also Dagster's own share, which the project does not avoid: in a ranged or checks-only run, each
unpartitioned check op of a partitioned asset lists every partition key of the asset once (turning
its first AssetCheckResult into an evaluation: the input data version of an all-partitions
dependency, discarded beyond 100 keys), i.e. `get_partition_keys()` of the hourly definition from
2021-04 to now. Its time is measured here on its own.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import measured  # noqa: E402
from crypto_assets.assets.common import range_tags  # noqa: E402
from crypto_assets.checks.data_checks import materialized_in_run, partitions_written  # noqa: E402
from crypto_assets.partitions import HOURLY  # noqa: E402

warnings.filterwarnings("ignore", category=dg.BetaWarning)

ASSETS = 11
CHUNK = ("2021-05-10-00:00", "2021-05-16-23:00")  # 7 days, 168 hourly partitions
CHUNKS_PER_YEAR = 365 / 7


# What a project materialization carries (about 5 kB serialized: the project's range from 5 to
# 16 kB), so reading an event back costs what it costs in a real backfill.
METADATA = {
    **{name: 12 for name in ("rows", "rows_written", "rows_quarantined", "symbols_covered", "symbols_expected",
                             "requests_made", "retries_made", "run_partitions", "run_rows_written")},
    "table": "price_observations", "warehouse": "sqlite:////var/lib/crypto-assets/warehouse.sqlite",
    "run_range": f"{CHUNK[0]}...{CHUNK[1]}", "mode": "history",
    "quarantine_by_reason": dg.MetadataValue.json({"negative_price": 1, "duplicate_timestamp": 2}),
    "keys_failed": dg.MetadataValue.json({f"COIN{i:02d}": "coingecko: HTTP 404 Not Found: https://api.coingecko.com/"
                                          f"api/v3/coins/coin-{i:02d}/market_chart/range (replay: no recording)"
                                          for i in range(19)}),
}


class _NoStore(dg.IOManager):
    def handle_output(self, context, obj):
        context.add_output_metadata(METADATA)

    def load_input(self, context):
        return None


def _check_op(asset: dg.AssetsDefinition, derive, seconds: list[float], written: list[int]):
    key = asset.key

    @dg.multi_asset_check(name=f"{key.to_python_identifier()}_data_checks", can_subset=True,
                          specs=[dg.AssetCheckSpec("has_rows", asset=key)])
    def checks(context):
        start = time.perf_counter()
        keys = derive(context, key)
        seconds.append(time.perf_counter() - start)
        written.append(len(keys))
        yield dg.AssetCheckResult(asset_key=key, check_name="has_rows", passed=True)

    return checks


def _graph(derive, seconds: list[float], written: list[int]) -> list:
    assets: list[dg.AssetsDefinition] = []
    for i in range(ASSETS):
        @dg.asset(name=f"asset_{i:02d}", partitions_def=HOURLY, deps=assets[-1:])
        def asset():
            return None

        assets.append(asset)
    return [*assets, *(_check_op(a, derive, seconds, written) for a in assets)]


def _run(derive) -> dict:
    seconds: list[float] = []
    written: list[int] = []
    with dg.instance_for_test() as instance:
        start = time.perf_counter()
        result = dg.materialize(_graph(derive, seconds, written), instance=instance,
                                resources={"io_manager": _NoStore()}, tags=range_tags(*CHUNK))
        wall = time.perf_counter() - start
    events = len(result.get_asset_materialization_events())
    steps = [e.event_specific_data.duration_ms / 1000 for e in result.all_events
             if e.is_step_success and e.step_key.endswith("_data_checks")]
    assert len(set(written)) == 1, written  # every check op found the same 168 partitions
    return {"materializations_in_run": events, "partitions_written_per_op": written[0], "check_ops": len(seconds),
            "derivation_s_all_ops": round(sum(seconds), 3), "derivation_s_per_op": round(statistics.mean(seconds), 4),
            "check_op_step_s_mean": round(statistics.mean(steps), 3), "check_op_steps_s_all": round(sum(steps), 2),
            "run_wall_s": round(wall, 1)}


def main() -> None:
    with measured("check_scope") as numbers:
        before = _run(lambda context, key: materialized_in_run(context, key))
        after = _run(lambda context, key: partitions_written(context, key, HOURLY))
        listing = []
        for _ in range(3):
            start = time.perf_counter()
            count = len(HOURLY.get_partition_keys())
            listing.append(time.perf_counter() - start)
        numbers.update({
            "chunk": f"{CHUNK[0]}...{CHUNK[1]}, {ASSETS} hourly assets, one check op each",
            "events": before, "plan_and_tags": after,
            "derivation_saved_s_per_chunk": round(before["derivation_s_all_ops"] - after["derivation_s_all_ops"], 2),
            "derivation_saved_min_per_year_of_backfill": round(
                (before["derivation_s_all_ops"] - after["derivation_s_all_ops"]) * CHUNKS_PER_YEAR / 60, 1),
            "dagster_lists_hourly_keys": count,
            "dagster_listing_s_per_check_op": round(statistics.median(listing), 3),
            "dagster_listing_min_per_year_of_backfill": round(
                statistics.median(listing) * ASSETS * CHUNKS_PER_YEAR / 60, 1),
        })
    print(numbers)


if __name__ == "__main__":
    main()
