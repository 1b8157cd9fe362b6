"""The run launcher of a laptop instance: Dagster's default one, plus a run-worker health check.

Dagster's DefaultRunLauncher cannot tell whether a run's process is alive, so its run monitoring
only watches runs that never start: a run whose process was killed (`kill -9`, an OOM kill, a
closed laptop lid during a write) stays STARTED forever and keeps its pool's concurrency slot,
so every later run of that pool waits. This launcher answers the monitoring daemon's health
check from the run worker's process id, which the run records in its first engine event
("Started process for run (pid: N)"). A dead worker makes the daemon fail the run, and the
daemon then frees its slots (`run_monitoring.free_slots_after_run_end_seconds` in dagster.yaml).
On Kubernetes the K8sRunLauncher does the same from the run's pod.
"""

from __future__ import annotations

import psutil
from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher

from crypto_assets.dagster_internals import CheckRunHealthResult, WorkerStatus

# Grace for clock granularity between the run's start time and its process's create time.
_CREATE_TIME_SLACK_S = 5.0


def run_worker_pid(instance, run_id: str) -> int | None:
    """The pid the run worker reported when it started, or None before it did."""
    records = instance.get_records_for_run(run_id=run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50).records
    for record in records:
        data = record.event_log_entry.dagster_event.event_specific_data
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value)
    return None


def worker_health(pid: int | None, started_at: float | None) -> CheckRunHealthResult:
    if pid is None:
        # Not reported yet (the run is starting): run monitoring's start timeout covers this.
        return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker pid not reported yet")
    try:
        process = psutil.Process(pid)
        status, created = process.status(), process.create_time()
    except psutil.NoSuchProcess:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} no longer exists")
    if status == psutil.STATUS_ZOMBIE:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} exited without finishing the run")
    if started_at is not None and created > started_at + _CREATE_TIME_SLACK_S:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (pid reused)")
    return CheckRunHealthResult(WorkerStatus.RUNNING)


class LocalRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers the monitoring daemon can health-check."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        record = self._instance.get_run_record_by_id(run.run_id)
        started_at = record.start_time if record else None
        return worker_health(run_worker_pid(self._instance, run.run_id), started_at)
