"""`make demo`: materialize the whole graph offline (replay mode) into the embedded SQLite
warehouse and print what was built.

Replay serves recorded real payloads, so the demo covers the hours the recordings cover
(BTC on 14-15 May 2021); sources without a recording for that window honestly yield no rows.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

# The recorded CoinGecko minute-level day: 24 hourly partitions, one ranged run.
DEMO_HOURS = ("2021-05-14-15:00", "2021-05-15-14:00")
DEMO_DAYS = ("2021-05-01", "2021-05-15")


# Keep the console to warnings; every event is still in the instance (see `make dev`).
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_demo() -> int:
    os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ["CRYPTO_SOURCE_MODE"] = "replay"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: fall back to VADER at once
    warnings.filterwarnings("ignore")

    import dagster as dg

    from crypto_assets.assets import all_assets
    from crypto_assets.assets.common import range_tags
    from crypto_assets.automation.policies import apply_policies
    from crypto_assets.checks.data_checks import all_data_checks
    from crypto_assets.checks.freshness import latest_partition_checks
    from crypto_assets.resources import build_resources
    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.resource import get_warehouse

    assets = apply_policies(all_assets())
    checks = [*all_data_checks(assets), *latest_partition_checks(assets)]
    by_key = {key.to_user_string(): a for a in assets for key in a.keys}
    resources = build_resources(mode="replay")
    hourly = [k for k, a in by_key.items() if a.partitions_def is not None and "Hourly" in type(a.partitions_def).__name__]
    daily = [k for k, a in by_key.items() if a.partitions_def is not None and k not in hourly]
    unpartitioned = [k for k, a in by_key.items() if a.partitions_def is None]
    features = [k for k in hourly if k == "ml_features"]
    hourly = [k for k in hourly if k not in features]

    steps = [
        ("reference", unpartitioned, {}),
        ("daily", daily, range_tags(*DEMO_DAYS)),
        ("hourly", hourly, range_tags(*DEMO_HOURS)),
        ("features", features, range_tags(*DEMO_HOURS)),
    ]
    instance = dg.DagsterInstance.get()
    started = time.time()
    for label, selection, tags in steps:
        if not selection:
            continue
        t0 = time.time()
        result = dg.materialize([*assets, *checks], selection=dg.AssetSelection.assets(*selection),
                                instance=instance, resources=resources,
                                tags=tags, raise_on_error=False, run_config=_QUIET)
        status = "ok" if result.success else "FAILED"
        print(f"[demo] {label:<9} {', '.join(selection)}: {status} in {time.time() - t0:.1f}s", flush=True)
        if not result.success:
            for event in result.all_events:
                if event.is_step_failure:
                    print(f"        {event.step_key}: {event.step_failure_data.error.message.strip()[:400]}")

    warehouse = get_warehouse(None)
    print(f"\nWarehouse: {warehouse.engine.url.render_as_string(hide_password=True)}")
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']}  (open it with `make dev`)\n")
    print(f"{'asset':<22} {'partitions':>10} {'rows':>8}  note")
    print("-" * 72)
    tables = all_tables()
    failed = 0
    for key, asset in sorted(by_key.items()):
        if asset.partitions_def is not None:
            parts = len(instance.get_materialized_partitions(dg.AssetKey(key)))
        else:
            parts = "-" if instance.get_latest_materialization_event(dg.AssetKey(key)) else 0
        rows = warehouse.count(tables[key]) if key in tables else 0
        note = "" if rows else "no rows (no recording for the demo window)"
        print(f"{key:<22} {parts!s:>10} {rows:>8}  {note}")
    quarantined = warehouse.count(tables["quarantine"])
    print(f"{'quarantine':<22} {'':>10} {quarantined:>8}  rejected input records, with reasons")
    print(f"\nDone in {time.time() - started:.0f}s.")
    return 1 if failed else 0
