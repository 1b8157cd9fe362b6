"""Live operation: what orchestration costs, measured as a user runs it (results key "live").

1. One partition of each hourly asset, with its checks, from the command line (`dg launch`, a
   fresh process as a user starts it), against the time to import the code location measured in
   the same run. Goal: wall <= 3x the import.
2. Steady state: the real `dg dev` stack (webserver, daemon, code server; default schedules and
   sensors, 20 coins, replay mode, no optional credentials) for BENCH_LIVE_MINUTES (default 20)
   of real time. CPU-seconds of every process it starts (sampled each second with psutil; the
   total also from getrusage of the stack's reaped process tree), per process kind and per run
   kind, scaled to one hour. Goal: <= 15 % of one core on average (540 CPU-s per hour).
3. Latency from a price partition landing to that hour's ml_features row, from the event log of
   the same steady-state run. Goal: <= 5 minutes.

Replay has no recording of today: live runs land empty partitions (the orchestration work is the
same; source I/O is small either way). The machine's load is recorded with the numbers.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._results import FRAME_KEYS, RESULTS, framed, measured  # noqa: E402
from crypto_assets.deploy.local_launcher import run_worker_pid  # noqa: E402
from crypto_assets_tests.live_stack import live_stack  # noqa: E402

BIN = Path(sys.executable).parent
HOURLY_ASSETS = ("price_observations", "ohlcv_bars", "news_articles", "sentiment_scores", "technical_indicators",
                 "ml_features")
PARTITION = "2021-05-15-10:00"  # inside the recorded BTC day


def _env(home: Path) -> dict:
    return {**os.environ, "DAGSTER_HOME": str(home), "CRYPTO_SOURCE_MODE": "replay",
            "CRYPTO_WAREHOUSE_URL": f"sqlite:///{home / 'warehouse.sqlite'}", "HF_HUB_OFFLINE": "1",
            "DAGSTER_DISABLE_TELEMETRY": "1"}


def _timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def one_partition() -> dict:
    """Each materialization is paired with an import measured right before it, so a change of the
    machine's load between the two skews the ratio as little as possible; CPU seconds are reported too
    (they hardly depend on the load)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        env = _env(home)
        launch = [str(BIN / "dg"), "launch", "-m", "crypto_assets.definitions"]
        importing = [sys.executable, "-c", "import crypto_assets.definitions"]
        # Upstream data first (not timed): the universe.
        subprocess.run([*launch, "--assets", "coin_universe"], env=env, cwd=home, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        per_asset = {}
        for name in HOURLY_ASSETS:  # in dependency order: each partition's parents exist
            import_wall, import_cpu = _timed(importing, env, home)
            wall, cpu = _timed([*launch, "--assets", name, "--partition", PARTITION], env, home)
            per_asset[name] = {"wall_s": round(wall, 2), "import_wall_s": round(import_wall, 2),
                               "ratio_to_import": round(wall / import_wall, 2),
                               "cpu_s": round(cpu, 2), "import_cpu_s": round(import_cpu, 2),
                               "cpu_ratio_to_import": round(cpu / import_cpu, 2)}
        worst = max(v["ratio_to_import"] for v in per_asset.values())
        return {
            "command": "dg launch -m crypto_assets.definitions --assets NAME --partition " + PARTITION,
            "import_command": "python -c 'import crypto_assets.definitions'",
            "per_asset": per_asset, "worst_ratio": worst,
            "worst_cpu_ratio": max(v["cpu_ratio_to_import"] for v in per_asset.values()),
            "goal_ratio": 3.0, "meets_goal": worst <= 3.0,
        }


class ProcessSampler(threading.Thread):
    """Each second: cumulative CPU (user+sys) of every process under `root`, by pid, with its kind."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.stop, self.seen = root, threading.Event(), {}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [psutil.Process(self.root), *psutil.Process(self.root).children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    with proc.oneshot():
                        cpu = proc.cpu_times()
                        cmd = " ".join(proc.cmdline())
                    self.seen[proc.pid] = (cpu.user + cpu.system, cmd)
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    continue
            self.stop.wait(1.0)


def kind_of(cmd: str) -> str:
    if "execute_run" in cmd or "execute_step" in cmd or "api execute" in cmd or "multiprocessing" in cmd:
        return "run (not matched to a run)"
    if "dagster_webserver" in cmd or "dagster-webserver" in cmd:
        return "webserver"
    if "_daemon" in cmd or "dagster-daemon" in cmd:
        return "daemon"
    if "grpc" in cmd or "api grpc" in cmd:
        return "code server"
    if " dev " in f" {cmd} " or cmd.endswith(" dev") or "dg dev" in cmd:
        return "dg dev"
    return "other"


def run_label(run) -> str:
    if run is None:
        return "unknown"
    if run.asset_selection:
        return "+".join(sorted(k.to_user_string() for k in run.asset_selection))
    return run.job_name


def failure_of(instance, run) -> dict:
    """What a failed run was and its first error line."""
    import dagster as dg

    message = ""
    for kind in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
        records = instance.get_records_for_run(run_id=run.run_id, of_type=kind, limit=1).records
        if records:
            event = records[0].event_log_entry.dagster_event
            error = getattr(event.event_specific_data, "error", None)
            message = (error.message if error else event.message or "").strip().splitlines()[0][:300]
            break
    return {"run": run_label(run), "partition": run.tags.get("dagster/partition"), "error": message}


def latencies(instance) -> list[float]:
    """Seconds from each price_observations materialization to the next ml_features one of its hour."""
    import dagster as dg

    def events(name):
        records = instance.fetch_materializations(dg.AssetKey(name), limit=10_000).records
        return [(r.partition_key, r.timestamp) for r in records]

    features = defaultdict(list)
    for partition, at in events("ml_features"):
        features[partition].append(at)
    out = []
    for partition, at in events("price_observations"):
        later = [f for f in features.get(partition, []) if f >= at]
        if later:
            out.append(min(later) - at)
    return out


def runs_summary(instance, limit: int = 100_000):
    """What the stack's runs did: runs by id, counts by status, price -> features latencies, the run
    of each worker pid (to attribute CPU), and each failed run's error."""
    runs = {r.run_id: r for r in instance.get_runs(limit=limit)}
    statuses = defaultdict(int)
    for r in runs.values():
        statuses[r.status.value] += 1
    run_of_pid = {pid: run_id for run_id in runs if (pid := run_worker_pid(instance, run_id))}
    failures = [failure_of(instance, r) for r in runs.values() if r.status.value == "FAILURE"]
    return runs, statuses, latencies(instance), run_of_pid, failures


def cpu_by_kind(sampler: ProcessSampler, runs: dict, run_of_pid: dict) -> tuple[dict, dict]:
    """Sampled CPU seconds by process kind (webserver, daemon, code server, run, ...), and of the run
    processes by what the run did."""
    by_kind, by_run = defaultdict(float), defaultdict(lambda: {"runs": 0, "cpu_s": 0.0})
    for pid, (cpu, cmd) in sampler.seen.items():
        kind = "run" if pid in run_of_pid else kind_of(cmd)
        by_kind[kind] += cpu
        if kind == "run":
            label = run_label(runs.get(run_of_pid.get(pid, "")))
            by_run[label]["runs"] += 1
            by_run[label]["cpu_s"] += cpu
    return by_kind, by_run


def steady_state(minutes: float) -> dict:
    import dagster as dg

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp, live_stack(Path(tmp)) as stack:
        sampler = ProcessSampler(stack.process.pid)
        sampler.start()
        loads = []
        while time.time() - started < minutes * 60:
            time.sleep(15)
            loads.append(os.getloadavg()[0])
        os.environ["DAGSTER_HOME"] = str(stack.home)
        with dg.DagsterInstance.get() as instance:
            runs, statuses, lat, run_of_pid, failures = runs_summary(instance)
        sampler.stop.set()
        sampler.join()
    elapsed = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    by_kind, by_run = cpu_by_kind(sampler, runs, run_of_pid)
    per_hour = 3600 / elapsed
    share = total_cpu / elapsed
    return {
        "minutes": round(elapsed / 60, 1),
        "setup": "dg dev (repo dagster.yaml: in-process executor, data_freshness_sensor, automation sensor 60 s, "
                 "live price cron */5, news every 10 min, health every 15 min), replay mode, 20 coins, no "
                 "Reddit credentials, fresh instance and warehouse",
        "cpu_s_total_getrusage": round(total_cpu, 1),
        "cpu_s_per_hour": round(total_cpu * per_hour),
        "share_of_one_core": round(share, 3),
        "goal_share_of_one_core": 0.15, "meets_goal": share <= 0.15,
        "cpu_s_per_hour_by_process_kind_sampled": {k: round(v * per_hour, 1) for k, v in sorted(by_kind.items())},
        "cpu_s_per_hour_by_run_kind_sampled": {k: {"runs_per_hour": round(v["runs"] * per_hour, 1),
                                                   "cpu_s_per_hour": round(v["cpu_s"] * per_hour, 1)}
                                               for k, v in sorted(by_run.items())},
        "runs_by_status": dict(statuses),
        "failed_runs": failures[:10],
        "price_to_features_latency_s": {
            "count": len(lat), "median": round(statistics.median(lat), 1) if lat else None,
            "max": round(max(lat), 1) if lat else None, "goal_max": 300,
            "meets_goal": bool(lat) and max(lat) <= 300,
        },
        "load_average_1min_samples": {"mean": round(statistics.mean(loads), 2) if loads else None,
                                      "max": round(max(loads), 2) if loads else None},
        "note": "the sampled per-kind split misses the last second of short-lived processes; the total is exact",
    }


def main() -> None:
    """BENCH_LIVE_MINUTES (default 20) sets the steady-state length; BENCH_LIVE_PARTS=one_partition or
    steady_state runs one part and keeps the other's last numbers (each part carries its own frame:
    machine, time, load)."""
    minutes = float(os.environ.get("BENCH_LIVE_MINUTES", "20"))
    parts = os.environ.get("BENCH_LIVE_PARTS", "one_partition,steady_state").split(",")
    previous = json.loads(RESULTS.read_text()).get("live", {}) if RESULTS.exists() else {}
    with measured("live") as results:
        results.update({k: v for k, v in previous.items() if k not in FRAME_KEYS})
        for part, run in (("one_partition", one_partition), ("steady_state", lambda: steady_state(minutes))):
            if part in parts:
                with framed() as numbers:
                    numbers.update(run())
                results[part] = numbers
                print(part, results[part], flush=True)


if __name__ == "__main__":
    main()
