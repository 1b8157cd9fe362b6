"""Soak at full scale (results key "soak"): the real `dg dev` stack in simulated mode (a synthetic
market answered for the current time, sources/simulated.py), default schedules and automation,
the default universe (320 coins plus resources/coins.csv), for `--minutes` (default 60).

Goals: steady state <= 15 % of one core, run processes included (CPU of the whole process tree,
sampled each second with psutil, counted from the end of the warm-up: the first hour whose
ml_features cover every coin); each price partition to that hour's ml_features <= 60 s; 0 failed
runs. `--fast-cron` shortens the live price cron to every minute and the automation tick to 10 s
(the bounded soak test's setting); without it the automation is the default one (*/5, 60 s).

    .venv/bin/python benchmarks/bench_soak.py --minutes 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._results import measured  # noqa: E402
from benchmarks.bench_live import ProcessSampler, cpu_by_kind, runs_summary  # noqa: E402
from crypto_assets_tests.automation.test_live_daemon import open_hours  # noqa: E402
from crypto_assets_tests.live_stack import live_stack  # noqa: E402
from crypto_assets_tests.soak import SOAK_ENV, covered_hour, features_coverage, warehouse_url  # noqa: E402

GOAL_SHARE = 0.15
GOAL_LATENCY_S = 60


def _cpu(sampler: ProcessSampler) -> float:
    """CPU seconds of every process of the tree seen so far (exited ones keep their last sample)."""
    return sum(cpu for cpu, _ in list(sampler.seen.values()))


def soak(minutes: float, fast_cron: bool) -> dict:
    import dagster as dg

    env = dict(SOAK_ENV) if fast_cron else {"CRYPTO_SOURCE_MODE": SOAK_ENV["CRYPTO_SOURCE_MODE"]}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp, live_stack(Path(tmp), env) as stack:
        url = warehouse_url(Path(tmp))
        sampler = ProcessSampler(stack.process.pid)
        sampler.start()
        loads, warm = [], None
        while time.time() - started < minutes * 60:
            time.sleep(5)
            loads.append(os.getloadavg()[0])
            if warm is None and covered_hour(url, open_hours()):
                warm = (time.time(), _cpu(sampler))
        end = (time.time(), _cpu(sampler))
        os.environ["DAGSTER_HOME"] = str(stack.home)
        with dg.DagsterInstance.get() as instance:
            runs, statuses, lat, run_of_pid, failures = runs_summary(instance)
        hours = sorted(open_hours())
        coverage = {h: features_coverage(url, h) for h in hours}
        sampler.stop.set()
        sampler.join()
    by_kind, by_run = cpu_by_kind(sampler, runs, run_of_pid)
    elapsed = end[0] - started
    steady = (end[1] - warm[1]) / (end[0] - warm[0]) if warm and end[0] > warm[0] else None
    return {
        "minutes": round(elapsed / 60, 1),
        "setup": "dg dev (repo dagster.yaml), CRYPTO_SOURCE_MODE=simulated, default universe, default schedules "
                 "and automation" + (" with the live price cron every minute and automation ticks of 10 s"
                                     if fast_cron else " (live price cron */5, automation ticks of 60 s)")
                 + ", fresh instance and warehouse",
        "warmup_s": round(warm[0] - started, 1) if warm else None,
        "steady_state_share_of_one_core": round(steady, 3) if steady is not None else None,
        "whole_run_share_of_one_core": round(end[1] / elapsed, 3),
        "goal_share_of_one_core": GOAL_SHARE,
        "meets_cpu_goal": steady is not None and steady <= GOAL_SHARE,
        "cpu_s_by_process_kind_sampled": {k: round(v, 1) for k, v in sorted(by_kind.items())},
        "cpu_s_by_run_kind_sampled": {k: {"runs": v["runs"], "cpu_s": round(v["cpu_s"], 1)}
                                      for k, v in sorted(by_run.items())},
        "runs_by_status": dict(statuses),
        "failed_runs": failures[:10],
        "ml_features_coverage_by_hour": {h: {"coins": c, "universe": u} for h, (c, u) in coverage.items()},
        "price_to_features_latency_s": {
            "count": len(lat), "median": round(statistics.median(lat), 1) if lat else None,
            "max": round(max(lat), 1) if lat else None, "goal_max": GOAL_LATENCY_S,
            "meets_goal": bool(lat) and max(lat) <= GOAL_LATENCY_S,
        },
        "load_average_1min_samples": {"mean": round(statistics.mean(loads), 2) if loads else None,
                                      "max": round(max(loads), 2) if loads else None},
        "note": "CPU is sampled each second per process (the last second of a short-lived process is missed)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--fast-cron", action="store_true")
    args = parser.parse_args()
    with measured("soak") as numbers:
        numbers.update(soak(args.minutes, args.fast_cron))
        print(numbers, flush=True)


if __name__ == "__main__":
    main()
