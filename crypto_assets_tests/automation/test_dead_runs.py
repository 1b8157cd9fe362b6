"""A run whose process was killed is failed by run monitoring and gives its pool slot back.

Driven through Dagster's own monitoring daemon code (one iteration each of run monitoring and of
slot freeing), with the project's LocalRunLauncher and a real process killed with SIGKILL.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

import dagster as dg
from dagster._core.events import EngineEventData
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration
import pytest

from crypto_assets.deploy.local_launcher import LocalRunLauncher, worker_health
from crypto_assets_tests import ops_defs

OVERRIDES = {
    "run_launcher": {"module": "crypto_assets.deploy.local_launcher", "class": "LocalRunLauncher"},
    "run_monitoring": {"enabled": True, "poll_interval_seconds": 1, "free_slots_after_run_end_seconds": 1,
                       "max_resume_run_attempts": 0},
}
TARGET = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(
    LoadableTargetOrigin(python_file=ops_defs.__file__, attribute="defs"), location_name="ops_test"))


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def started_run(instance, pid: int):
    """A run in STARTED whose worker reported `pid`, holding the one slot of the coingecko pool."""
    job = ops_defs.defs.resolve_implicit_global_asset_job_def()
    run = instance.create_run_for_job(job_def=job, asset_selection=frozenset({dg.AssetKey("price_observations")}),
                                      status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    instance.event_log_storage.set_concurrency_slots("coingecko", 1)
    claim = instance.event_log_storage.claim_concurrency_slot("coingecko", run.run_id, "price_observations")
    assert claim.is_claimed
    return run


def test_the_launcher_tells_a_live_worker_from_a_dead_one():
    process = sleeper()
    try:
        assert worker_health(process.pid, started_at=time.time() - 1).status.value == "RUNNING"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert worker_health(process.pid, started_at=time.time() - 1).status.value == "FAILED"
    # Not reported yet: the start timeout of run monitoring is in charge, not this check.
    assert worker_health(None, started_at=None).status.value == "RUNNING"


@pytest.mark.slow
def test_a_killed_run_is_failed_and_frees_its_pool_slot(configured_warehouse):
    with dg.instance_for_test(overrides=OVERRIDES) as instance:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        alive, killed = sleeper(), sleeper()
        try:
            healthy_run = started_run(instance, alive.pid)
            killed.send_signal(signal.SIGKILL)  # kill -9 mid-write
            killed.wait()
            dead_run = instance.create_run_for_job(
                job_def=ops_defs.defs.resolve_implicit_global_asset_job_def(),
                asset_selection=frozenset({dg.AssetKey("news_articles")}), status=dg.DagsterRunStatus.STARTED)
            instance.report_engine_event(f"Started process for run (pid: {killed.pid}).", dead_run,
                                         EngineEventData.in_process(killed.pid))
            claim = instance.event_log_storage.claim_concurrency_slot("coingecko", dead_run.run_id, "news_articles")
            assert not claim.is_claimed  # the pool's one slot is held by the live run

            instance.event_log_storage.free_concurrency_slots_for_run(healthy_run.run_id)  # it finishes normally
            assert instance.event_log_storage.claim_concurrency_slot(
                "coingecko", dead_run.run_id, "news_articles").is_claimed  # the dead run now holds it

            with create_test_daemon_workspace_context(TARGET, instance) as workspace:
                list(execute_run_monitoring_iteration(workspace, logging.getLogger("run_monitoring_test")))
                assert instance.get_run_by_id(dead_run.run_id).status == dg.DagsterRunStatus.FAILURE
                assert instance.get_run_by_id(healthy_run.run_id).status == dg.DagsterRunStatus.STARTED
                time.sleep(1.5)  # free_slots_after_run_end_seconds
                list(execute_concurrency_slots_iteration(workspace, logging.getLogger("run_monitoring_test")))
            info = instance.event_log_storage.get_concurrency_info("coingecko")
            assert info.active_slot_count == 0  # the next run of the pool can start
            failure = instance.get_records_for_run(run_id=dead_run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            assert "no longer exists" in failure.records[0].event_log_entry.dagster_event.message
        finally:
            for process in (alive, killed):
                if process.poll() is None:
                    process.kill()
                    process.wait()
