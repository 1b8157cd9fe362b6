"""The tick list says what the alert and freshness sensors did (issue 20, items 4-5), on the real daemon.

`dagster-daemon run` with the project's code location (workspace.yaml), replay mode, a temporary
DAGSTER_HOME with the repository's dagster.yaml, except that no run is launched
(`max_concurrent_runs: 0`: the automation sensor's requests stay queued, so only the sensors
work). The ticks are read back through the instance, as the UI reads them: the tick's skip reason
(the tooltip of its "0 runs requested" tag and its details), its cursor (the list's Cursor column)
and its log ("View logs"). Bounded in time; every process started is stopped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.instigation_logger import get_instigation_log_records
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets_tests.graph_helpers import ProjectGraph
from crypto_assets_tests.live_stack import _RESET_SIGNALS, BIN, REPO, stop
from crypto_assets_tests.waiting import wait_until

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

warnings.filterwarnings("ignore", category=dg.BetaWarning)

TIMEOUT_S = 240
SEED = ("2021-05-15-00:00", "2021-05-15-08:00")


@contextmanager
def daemon(home: Path, env: dict[str, str]):
    """`dagster-daemon run -w workspace.yaml` from `home`; stopped (with its children) on exit."""
    log = home / "daemon.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _RESET_SIGNALS, str(BIN / "dagster-daemon"), "run",
             "-w", str(REPO / "workspace.yaml")],
            cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process, log
    finally:
        stop(process)


def sensor_ticks(instance, name: str) -> list:
    """The sensor's finished ticks, newest first (none while the daemon has not ticked it)."""
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == name:
            return [t for t in instance.get_ticks(state.instigator_origin_id, state.selector_id)
                    if t.status != TickStatus.STARTED]
    return []


def wait_for_ticks(instance, counts: dict[str, int], process, log: Path, deadline: float) -> dict[str, list]:
    def enough():
        ticks = {name: sensor_ticks(instance, name) for name in counts}
        return ticks if all(len(ticks[name]) >= n for name, n in counts.items()) else None

    def daemon_stopped():
        return None if process.poll() is None else f"the daemon exited:\n{log.read_text(errors='replace')[-3000:]}"

    return wait_until(enough, max(deadline - time.time(), 0), f"ticks {counts}", alive=daemon_stopped, every_s=0.5)


def log_lines(instance, tick) -> list[str]:
    """The tick's log messages ("View logs"), without the `<repository> - <sensor> - ` prefix."""
    records = get_instigation_log_records(instance, tick.log_key) if tick.log_key else []
    return [re.sub(r"^\S+ - \S+ - ", "", r.get("msg", "")) for r in records]


def test_alert_and_freshness_ticks_say_what_they_did(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = (REPO / "dagster.yaml").read_text()
    assert "max_concurrent_runs: 4" in config
    (home / "dagster.yaml").write_text(config.replace("max_concurrent_runs: 4", "max_concurrent_runs: 0"))
    url = f"delta://{tmp_path / 'warehouse'}"
    env = {"DAGSTER_HOME": str(home), "CRYPTO_SOURCE_MODE": "replay", "CRYPTO_WAREHOUSE_URL": url,
           "HF_HUB_OFFLINE": "1", "DAGSTER_DISABLE_TELEMETRY": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_warehouse.cache_clear()
    graph = ProjectGraph(url)
    deadline = time.time() + TIMEOUT_S
    with dg.DagsterInstance.get() as instance:
        # Before the daemon starts: prices of 2021 (stale now), written by a backfill whose
        # symbol_coverage check fails (replay records one coin of the universe).
        graph.materialize(instance, ["coin_universe"])
        tags = {"dagster/backfill": "seed", "dagster/asset_partition_range_start": SEED[0],
                "dagster/asset_partition_range_end": SEED[1]}
        dg.materialize([*graph.assets, *graph.checks], selection=dg.AssetSelection.assets("price_observations"),
                       instance=instance, resources=graph.resources, tags=tags)

        with daemon(home, {**os.environ, **env}) as (process, log):
            first = wait_for_ticks(instance, {"asset_state_alert_sensor": 1, "data_freshness_sensor": 1},
                                   process, log, deadline)
            # A second dataset turns up stale (bars of 2021) before the next ticks, 60 s later.
            graph.materialize(instance, ["ohlcv_bars"], range_=SEED)
            second = wait_for_ticks(instance, {"asset_state_alert_sensor": 2, "data_freshness_sensor": 2},
                                    process, log, deadline)

        # The alert sensor: its reason and its cursor (what the tick list shows) say how many alerts
        # went out and name them; each alert is a line of the tick's log.
        (tick,) = first["asset_state_alert_sensor"]
        headline = ("2 alerts: price_observations (critical), price_observations:symbol_coverage [backfill seed] "
                    "(critical)")
        assert tick.status == TickStatus.SKIPPED and tick.skip_reason.startswith(headline + ". Open now: "), \
            tick.skip_reason
        assert tick.cursor.startswith(headline + "\n{"), tick.cursor[:300]
        lines = log_lines(instance, tick)
        assert any(line.startswith("ALERT critical: price_observations is stale") for line in lines), lines
        assert any(line.startswith("ALERT critical: check price_observations:symbol_coverage failed (ERROR) in "
                                   f"backfill seed, range {SEED[0]}...{SEED[1]} (9 partitions)")
                   for line in lines), lines
        tick = second["asset_state_alert_sensor"][0]
        assert tick.skip_reason.startswith(
            f"3 alerts: ohlcv_bars (critical), ohlcv_bars:symbol_coverage [range {SEED[0]}...{SEED[1]}] (critical), "
            "ohlcv_bars:no_gaps [range "), tick.skip_reason
        assert tick.cursor.startswith("3 alerts: ohlcv_bars (critical), ")
        assert len([line for line in log_lines(instance, tick) if line.startswith("ALERT ")]) == 3

        # The freshness sensor: a short reason, and a log with every dataset's state when one changed.
        with_policy = sorted(d.key.to_user_string() for d in graph.defs.resolve_asset_graph().asset_nodes
                             if d.freshness_policy_or_from_metadata is not None and d.group_name != "health")
        (tick,) = first["data_freshness_sensor"]
        reason = tick.skip_reason
        assert reason.endswith("every dataset's state is in this tick's log.") and len(reason) < 320, reason
        assert re.match(r"\d+ changes: price_observations none -> FAIL, ", tick.skip_reason), tick.skip_reason
        assert "Now 1 FAIL, " in tick.skip_reason and "1 PASS" in tick.skip_reason
        lines = log_lines(instance, tick)
        assert sorted(line.split(":", 1)[0] for line in lines) == with_policy, lines
        assert any(line.startswith("price_observations: FAIL, newest data 2021-05-15 08:") and "(was none)" in line
                   for line in lines), lines
        tick = second["data_freshness_sensor"][0]
        assert tick.skip_reason.startswith("1 change: ohlcv_bars UNKNOWN -> FAIL. Now 2 FAIL, "), tick.skip_reason
        assert tick.cursor.startswith("1 change; 2 FAIL, ")  # the tick list's Cursor column
        lines = log_lines(instance, tick)
        assert len(lines) == len(with_policy)
        assert any(line.startswith("ohlcv_bars: FAIL, newest data 2021-05-15 ") and "(was UNKNOWN)" in line
                   for line in lines), lines
