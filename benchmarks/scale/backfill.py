"""One backfill size of the scale benchmark, run and timed in a process of its own.

`run_size` (in bench_scale's process) writes the size's synthetic inputs (benchmarks/scale/data.py)
and starts `python -m benchmarks.scale.backfill` with a fresh DAGSTER_HOME (the instance storage
benchmarks/scale/instance.py writes: SQLite by default) and a fresh warehouse, so its peak RSS (psutil, sampled every 0.1 s) is its
own. That process (`child_main`) runs the whole graph in replay mode through Dagster the way the
demo does (crypto_assets/demo.py): coin_universe, then per backfill chunk (the chunks the backfill
daemon splits the range into, CRYPTO_BACKFILL_HOURS_PER_RUN hours) the daily assets
(macro_series, onchain_metrics) as one ranged run, the hourly assets (price_observations,
ohlcv_bars, news_articles, social_posts, sentiment_scores, technical_indicators, ...) as one and
ml_features as one, each with the asset checks that target its assets.

Where the time goes is measured inside that process: the run's event log (STEP_START ..
STEP_SUCCESS) gives step times; wall-clock timers wrapped around Warehouse.read/replace_*
(warehouse I/O), the sources' HTTP client and praw's replay adapter (source I/O: replay files
through httpx.MockTransport here, the network in live mode), DagsterInstance.handle_new_event
(Dagster event-log writes), TimeWindowPartitionsDefinition.get_partition_keys (Dagster listing
every hourly key since 2021, which its asset-check evaluation does once per check result) and
split each step; the rest of an asset step is compute. Run wall time minus the step times is
Dagster's per-run overhead outside steps (job build, planning, ASSET_MATERIALIZATION_PLANNED
events, resource init, run bookkeeping). `summarize` and `scaling` reduce a size's numbers to
what is worth reading first. After every run the child writes progress.json (runs and days done,
seconds per day), so a size stopped by --size-timeout still reports how far it got.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.scale.data import ROOT, chunk_windows, serve_chunk, write_synthetic_resources
from benchmarks.scale.instance import DESCRIBE, instance_storage

CHILD_TIMING_METHOD = ("step times from the run's event log (STEP_START..STEP_SUCCESS); inside steps, "
                       "wall-clock timers around Warehouse.read/replace_window/replace_all "
                       "(warehouse_io), SourceClient.get + praw's replay adapter (source_io_replay: "
                       "local payload files through httpx.MockTransport, network in live mode) and "
                       "DagsterInstance.handle_new_event (dagster event writes); compute = step time "
                       "minus those; dagster_overhead = run wall minus step times (job build, planning, "
                       "resource init, run bookkeeping) plus event writes inside steps. Parsing, "
                       "validation, tagging, scoring, indicators, features and pandas->SQL row "
                       "conversion outside Warehouse calls count as compute")


class Timers:
    """Intervals [t0, t1] (time.time()) per category, for outermost calls only."""

    def __init__(self):
        self.intervals: dict[str, list[tuple[float, float, int]]] = {}
        self._local = threading.local()
        self._lock = threading.Lock()

    def wrap(self, owner, name: str, category: str, rows_of=None):
        original = getattr(owner, name)
        timers = self

        def wrapper(*args, **kwargs):
            depth = getattr(timers._local, category, 0)
            setattr(timers._local, category, depth + 1)
            t0 = time.time()
            try:
                out = original(*args, **kwargs)
            finally:
                setattr(timers._local, category, depth)
            if depth == 0:
                rows = rows_of(out) if rows_of else 0
                with timers._lock:
                    timers.intervals.setdefault(category, []).append((t0, time.time(), rows))
            return out

        setattr(owner, name, wrapper)

    def within(self, category: str | tuple, lo: float, hi: float) -> tuple[float, int]:
        """Seconds covered by the category's (or categories') intervals inside [lo, hi] (union:
        threads overlap), and their rows."""
        cats = category if isinstance(category, tuple) else (category,)
        spans = sorted((max(a, lo), min(b, hi), r) for c in cats for a, b, r in self.intervals.get(c, [])
                       if b > lo and a < hi)
        total, cur_a, cur_b, rows = 0.0, None, None, 0
        for a, b, r in spans:
            rows += r
            if cur_b is None or a > cur_b:
                if cur_b is not None:
                    total += cur_b - cur_a
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        if cur_b is not None:
            total += cur_b - cur_a
        return total, rows


class RssSampler(threading.Thread):
    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.samples: list[tuple[float, int]] = []
        self.interval = interval
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(recursive=True))
            except Exception:  # noqa: BLE001 - a child that just exited
                rss = self.proc.memory_info().rss
            self.samples.append((time.time(), rss))
            self.stop.wait(self.interval)

    def peak(self, lo: float = 0, hi: float = float("inf")) -> int:
        return max((r for t, r in self.samples if lo <= t <= hi), default=0)


CATEGORIES = ("warehouse_read", "warehouse_write", "source_fetch", "dagster_event_write",
              "dagster_all_partition_keys")


def _sum(rows: list[dict], key: str) -> float:
    return round(sum(r[key] for r in rows), 2)


PROGRESS_FILE = "progress.json"


def write_progress(path: Path, runs: list[dict], runs_total: int, t_ready: float, sampler, failures: list[str],
                   chunk_hours: int, chunks_done: int) -> None:
    """After every run: how far the size got, so a size stopped by its timeout still reports its rate."""
    elapsed = time.time() - t_ready
    hours = chunks_done * chunk_hours
    path.write_text(json.dumps({
        "runs_done": len(runs), "runs_total": runs_total, "chunks_done": chunks_done,
        "days_done": round(hours / 24, 2), "elapsed_s": round(elapsed, 1),
        "seconds_per_day": round(elapsed / (hours / 24), 2) if hours else None,
        "failed_runs": sum(not r["success"] for r in runs), "failures": failures[:5],
        "peak_rss_mb": round(sampler.peak() / 2**20),
        "chunk_wall_s": [round(sum(r["wall_s"] for r in runs[i:i + 3]), 1) for i in range(1, len(runs), 3)],
    }))


def child_main(args) -> None:
    """Runs in a fresh process: env first (catalog paths are read at import), then the graph."""
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    os.environ["CRYPTO_RESOURCES_DIR"] = args.resources
    os.environ["DAGSTER_HOME"] = args.home
    os.environ["CRYPTO_SOURCE_MODE"] = "replay"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["CRYPTO_WAREHOUSE_URL"] = args.warehouse
    import warnings

    warnings.filterwarnings("ignore")
    sampler = RssSampler()
    sampler.start()
    t_proc = time.time()

    import dagster as dg

    from crypto_assets.assets import all_assets
    from crypto_assets.automation.policies import apply_policies
    from crypto_assets.checks.data_checks import all_data_checks
    from crypto_assets.partitions import HOURLY
    from crypto_assets.resources import build_resources
    from crypto_assets.social import reddit as reddit_mod
    from crypto_assets.sources.client import SourceClient
    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.factory import open_warehouse
    from crypto_assets.warehouse.resource import get_warehouse

    timers = Timers()
    impl = type(open_warehouse(args.warehouse))  # the backend class in use (DeltaWarehouse or SqlWarehouse)
    timers.wrap(impl, "read", "warehouse_read", rows_of=len)
    timers.wrap(impl, "replace_window", "warehouse_write", rows_of=lambda n: n)
    timers.wrap(impl, "replace_all", "warehouse_write", rows_of=lambda n: n)
    timers.wrap(SourceClient, "get", "source_fetch")
    timers.wrap(reddit_mod._ReplayAdapter, "send", "source_fetch")
    timers.wrap(dg.DagsterInstance, "handle_new_event", "dagster_event_write")
    # Dagster enumerating EVERY key of a time-partitioned definition (~40k hourly keys since 2021):
    # in these runs only its asset-check evaluation does that (data_version_cache ->
    # AllPartitionsSubset.get_partition_keys), once per check result.
    timers.wrap(dg.TimeWindowPartitionsDefinition, "get_partition_keys", "dagster_all_partition_keys")
    t_imported = time.time()

    assets = apply_policies(all_assets())
    checks = all_data_checks(assets)
    by_key = {key.to_user_string(): a for a in assets for key in a.keys}
    resources = build_resources(mode="replay")
    hourly = [k for k, a in by_key.items() if a.partitions_def == HOURLY and k != "ml_features"]
    daily = [k for k, a in by_key.items() if a.partitions_def is not None and a.partitions_def != HOURLY]
    reference = [k for k, a in by_key.items() if a.partitions_def is None]
    # The range in the chunks the backfill daemon splits it into (the assets' BackfillPolicy.multi_run,
    # CRYPTO_BACKFILL_HOURS_PER_RUN hours), each chunk one daily, one hourly and one features run.
    steps = [("reference", reference, {}, 0)]
    for c, (lo, hi) in enumerate(chunk_windows(start, end, args.chunk_hours)):
        h_tags = {"dagster/asset_partition_range_start": HOURLY.get_partition_key_for_timestamp(lo.timestamp()),
                  "dagster/asset_partition_range_end": HOURLY.get_partition_key_for_timestamp(
                      (hi - timedelta(hours=1)).timestamp())}
        d_tags = {"dagster/asset_partition_range_start": lo.strftime("%Y-%m-%d"),
                  "dagster/asset_partition_range_end": (hi - timedelta(days=1)).strftime("%Y-%m-%d")}
        steps += [("daily", daily, d_tags, c), ("hourly", hourly, h_tags, c),
                  ("features", ["ml_features"], h_tags, c)]
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    instance = dg.DagsterInstance.get()
    t_ready = time.time()

    runs, per_asset, failures = [], {}, []
    import ctypes
    import gc

    libc = ctypes.CDLL("libc.so.6")
    served = 0
    for label, selection, tags, chunk in steps:
        if chunk != served:  # what RSS feeds and Reddit list when this chunk's hours were recent
            serve_chunk(Path(args.resources), chunk)
            served = chunk
        # The daemon starts every run in a fresh process; here the runs share one, so hand the
        # memory of the previous run back to the OS before the next (else each run's peak would
        # include what the allocator kept from the ones before).
        gc.collect()
        libc.malloc_trim(0)
        t0 = time.time()
        result = dg.materialize([*assets, *checks], selection=dg.AssetSelection.assets(*selection),
                                instance=instance, resources=resources, tags=tags, raise_on_error=False,
                                run_config=quiet)
        t1 = time.time()
        records = instance.all_logs(result.run_id)
        step_start, step_end, mats, check_results = {}, {}, {}, {}
        for rec in records:
            ev = rec.dagster_event
            if ev is None:
                continue
            kind = ev.event_type_value
            if kind == "STEP_START":
                step_start[ev.step_key] = rec.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                step_end[ev.step_key] = rec.timestamp
                if kind == "STEP_FAILURE":
                    failures.append(f"{label}/{ev.step_key}: {ev.step_failure_data.error.message.strip()[:300]}")
            elif kind == "ASSET_MATERIALIZATION":
                m = ev.event_specific_data.materialization
                mats[m.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
            elif kind == "ASSET_CHECK_EVALUATION":
                e = ev.event_specific_data
                check_results[f"{e.asset_key.to_user_string()}:{e.check_name}"] = (
                    "passed" if e.passed else f"failed ({e.severity.value})")
        run_steps = []
        for key in step_start:
            lo, hi = step_start[key], step_end.get(key, t1)
            parts = {c: round(timers.within(c, lo, hi)[0], 3) for c in CATEGORIES}
            covered = timers.within(CATEGORIES, lo, hi)[0]  # = sum(parts) unless timed calls nest
            dur = hi - lo
            row = {"step": key, "kind": "asset" if key in by_key else "check", "seconds": round(dur, 3),
                   **{f"{c}_s": v for c, v in parts.items()}, "rest_s": round(dur - covered, 3),
                   "nested_s": round(sum(parts.values()) - covered, 3),
                   "peak_rss_mb": round(sampler.peak(lo, hi) / 2**20)}
            run_steps.append(row)
            if key in by_key:
                meta = mats.get(key, {})
                # A ranged run's last materialization carries the run total (run_rows_written) next
                # to its own partition's count.
                rows = meta.get("run_rows_written", meta.get("dagster/row_count", meta.get("rows_written")))
                extra = {k: meta[k] for k in ("compute_seconds", "texts_per_second", "scored_now", "engine",
                                              "symbols_covered", "symbols", "sources_usable", "requests_made",
                                              "rows_quarantined")
                         if k in meta and not isinstance(meta[k], (dict, list))}
                if isinstance(meta.get("by_item_type"), dict):
                    extra["scoring_s"] = round(sum(v.get("scoring_seconds", 0) for v in meta["by_item_type"].values()), 3)
                    extra["model"] = sorted({v.get("model") for v in meta["by_item_type"].values()})
                read_rows = timers.within("warehouse_read", lo, hi)[1]
                breakdown = {"warehouse_read": parts["warehouse_read"], "warehouse_write": parts["warehouse_write"],
                             "source_io_replay": parts["source_fetch"],
                             "dagster_event_write": parts["dagster_event_write"], "compute": row["rest_s"]}
                before = per_asset.get(key)
                if before:  # an earlier chunk of the same asset: add this one to it
                    rows = (rows or 0) + (before["rows_written"] or 0)
                    dur += before["step_s"]
                    read_rows += before["warehouse_rows_read"]
                    breakdown = {k: round(v + before["step_breakdown_s"][k], 3) for k, v in breakdown.items()}
                per_asset[key] = {
                    "run": label, "rows_written": rows, "warehouse_rows_read": read_rows,
                    "step_s": round(dur, 3), "rows_per_s": round(rows / dur) if rows and dur > 0 else None,
                    "step_breakdown_s": breakdown, "metadata": extra}
        asset_steps = [r for r in run_steps if r["kind"] == "asset"]
        check_steps = [r for r in run_steps if r["kind"] == "check"]
        in_steps = sum(r["seconds"] for r in run_steps)
        runs.append({
            "run": label, "assets": selection, "success": result.success, "wall_s": round(t1 - t0, 3),
            "asset_steps_s": _sum(asset_steps, "seconds"), "check_steps": len(check_steps),
            "check_steps_s": _sum(check_steps, "seconds"),
            "dagster_outside_steps_s": round(t1 - t0 - in_steps, 3),
            "dagster_outside_steps_event_write_s": round(
                timers.within("dagster_event_write", t0, t1)[0] - sum(r["dagster_event_write_s"] for r in run_steps), 3),
            "events": len(records), "peak_rss_mb": round(sampler.peak(t0, t1) / 2**20),
            "check_results": check_results, "steps": run_steps,
        })
        write_progress(Path(args.home) / PROGRESS_FILE, runs, len(steps), t_ready, sampler, failures,
                       chunk_hours=args.chunk_hours, chunks_done=chunk + 1 if label == "features" else chunk)
    t_done = time.time()

    wh = get_warehouse(None)
    tables = all_tables()
    table_rows = {k: wh.count(tables[k]) for k in sorted(by_key) if k in tables}
    sampler.stop.set()
    sampler.join()
    import resource as _resource

    wall = t_done - t_ready
    steps_all = [r for run in runs for r in run["steps"]]
    a_steps = [r for r in steps_all if r["kind"] == "asset"]
    c_steps = [r for r in steps_all if r["kind"] == "check"]
    outside = round(sum(r["dagster_outside_steps_s"] for r in runs), 2)
    outside_events = round(sum(r["dagster_outside_steps_event_write_s"] for r in runs), 2)
    assets_part = {"total": _sum(a_steps, "seconds"), "warehouse_read": _sum(a_steps, "warehouse_read_s"),
                   "warehouse_write": _sum(a_steps, "warehouse_write_s"),
                   "source_io_replay": _sum(a_steps, "source_fetch_s"),
                   "dagster_event_write": _sum(a_steps, "dagster_event_write_s"),
                   "dagster_all_partition_keys": _sum(a_steps, "dagster_all_partition_keys_s"),
                   "compute": _sum(a_steps, "rest_s")}
    checks_part = {"total": _sum(c_steps, "seconds"), "count": len(c_steps),
                   "dagster_all_partition_keys": _sum(c_steps, "dagster_all_partition_keys_s"),
                   "warehouse_read": _sum(c_steps, "warehouse_read_s"),
                   "dagster_event_write": _sum(c_steps, "dagster_event_write_s"),
                   "rest": _sum(c_steps, "rest_s")}
    dagster = (outside + assets_part["dagster_event_write"] + assets_part["dagster_all_partition_keys"]
               + checks_part["dagster_event_write"] + checks_part["dagster_all_partition_keys"])
    wh_io = (assets_part["warehouse_read"] + assets_part["warehouse_write"] + checks_part["warehouse_read"]
             + _sum(c_steps, "warehouse_write_s"))
    out = {
        "days": args.days, "backend": args.backend, "success": all(r["success"] for r in runs) and not failures,
        "failures": failures[:10],
        "window": [start.isoformat(), end.isoformat()],
        "wall_s": round(wall, 2),
        "process_import_s": round(t_imported - t_proc, 2), "graph_build_s": round(t_ready - t_imported, 2),
        "peak_rss_mb": round(sampler.peak() / 2**20),
        "peak_rss_mb_of_one_run": max((r["peak_rss_mb"] for r in runs), default=None),
        "ru_maxrss_mb": round(_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024),
        "table_rows": table_rows,
        "events_written": sum(r["events"] for r in runs),
        "where_time_goes_s": {"dagster_outside_steps": outside,
                              "dagster_outside_steps_of_which_event_writes": outside_events,
                              "asset_steps": assets_part,
                              "check_steps": checks_part},
        "where_time_goes_share": {
            "dagster_overhead": round(dagster / wall, 3),
            "warehouse_io": round(wh_io / wall, 3),
            "source_io_replay": round(assets_part["source_io_replay"] / wall, 3),
            "asset_compute": round(assets_part["compute"] / wall, 3),
            "check_code": round(checks_part["rest"] / wall, 3),
        },
        "runs": runs, "assets": per_asset,
    }
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))


def run_size(days: int, backend: str, args, workdir: Path, end: datetime, mysql_url: str | None = None,
             instance: str = "sqlite") -> dict:
    """One size in a fresh process (`child_main`) on its own inputs, Dagster instance (`instance`:
    a kind of benchmarks/scale/instance.py) and warehouse. `args`: bench_scale's options (symbols,
    news/social per hour, size timeout)."""
    home = workdir / (f"{backend}_{days}d" if instance == "sqlite" else f"{backend}_{days}d_{instance}")
    home.mkdir(parents=True)
    with instance_storage(instance, home) as instance_env:
        res = _run_size_in(home, days, backend, args, end, mysql_url, instance_env)
    res["instance_storage"] = DESCRIBE[instance]
    return res


def _run_size_in(home: Path, days: int, backend: str, args, end: datetime, mysql_url: str | None,
                 instance_env: dict[str, str]) -> dict:
    from crypto_assets.assets.common import backfill_hours_per_run

    start = end - timedelta(days=days)
    chunk_hours = backfill_hours_per_run() or days * 24
    gen = write_synthetic_resources(home / "resources", start, end, chunk_hours, args.symbols, args.news_per_hour,
                                    args.social_per_hour, seed=days)
    warehouse = (mysql_url if backend == "mysql" else f"delta://{home / 'warehouse'}" if backend == "delta"
                 else f"sqlite:///{home / 'warehouse.sqlite'}")
    out = home / "result.json"
    cmd = [sys.executable, "-W", "ignore", "-m", "benchmarks.scale.backfill", "--days", str(days),
           "--start", start.isoformat(), "--end", end.isoformat(), "--chunk-hours", str(chunk_hours),
           "--backend", backend, "--home", str(home), "--resources", str(home / "resources"),
           "--warehouse", warehouse, "--out", str(out)]
    env = {**os.environ, **instance_env,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    print(f"[scale] {backend} {days}d: {gen['price_points']} price points, "
          f"{gen['news_rss_items'] + gen['news_guardian_items']} news, {gen['social_posts']} posts, "
          f"{gen['chunks']} chunks of {chunk_hours} h (generated in {gen['generate_s']}s)", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=args.size_timeout)
    except subprocess.TimeoutExpired:
        progress_file = home / PROGRESS_FILE
        progress = json.loads(progress_file.read_text()) if progress_file.exists() else {}
        print(f"[scale] {backend} {days}d: stopped after {args.size_timeout}s: {progress}", flush=True)
        return {"days": days, "backend": backend, "success": False, "timed_out_after_s": args.size_timeout,
                "progress_when_stopped": progress, "synthetic_input": gen}
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
        return {"days": days, "backend": backend, "success": False, "error": proc.stderr[-2000:],
                "process_s": round(elapsed, 1)}
    res = json.loads(out.read_text())
    res["process_s"] = round(elapsed, 2)
    res["synthetic_input"] = gen
    compact(res)
    print(f"[scale] {backend} {days}d: wall {res['wall_s']}s, peak RSS {res['peak_rss_mb']} MB, "
          f"success={res['success']}", flush=True)
    return res


def compact(size: dict) -> dict:
    """Drop the per-step rows (they stay in the child's result.json with --keep); keep per-run
    totals and check outcomes as counts."""
    for run in size.get("runs", []):
        run.pop("steps", None)
        results = run.pop("check_results", None)
        if isinstance(results, dict):
            run["checks_passed"] = sum(v == "passed" for v in results.values())
            run["checks_not_passed"] = {k: v for k, v in results.items() if v != "passed"}
    return size


def summarize(size: dict) -> dict:
    """The per-size numbers worth reading first."""
    if not size.get("success") and "wall_s" not in size:
        return size
    return {
        "wall_s": size["wall_s"], "success": size["success"], "peak_rss_mb": size["peak_rss_mb"],
        "peak_rss_mb_of_one_run": size.get("peak_rss_mb_of_one_run"),
        "runs": len(size["runs"]),
        "runs_wall_s": {label: round(sum(r["wall_s"] for r in size["runs"] if r["run"] == label), 3)
                        for label in dict.fromkeys(r["run"] for r in size["runs"])},
        "rows_written_total": sum(v["rows_written"] or 0 for v in size["assets"].values()),
        "rows_per_asset": {k: v["rows_written"] for k, v in size["assets"].items()},
        "rows_per_s_per_asset": {k: v["rows_per_s"] for k, v in size["assets"].items()},
        "where_time_goes_s": size["where_time_goes_s"], "where_time_goes_share": size["where_time_goes_share"],
    }


def scaling(sizes: dict[int, dict]) -> dict:
    ok = {d: s for d, s in sizes.items() if "wall_s" in s}
    if not ok:
        return {}
    base_d = min(ok)
    base = ok[base_d]["wall_s"]
    out = {"wall_s_by_days": {d: ok[d]["wall_s"] for d in sorted(ok)},
           "seconds_per_day": {d: round(ok[d]["wall_s"] / d, 2) for d in sorted(ok)},
           "peak_rss_mb_by_days": {d: ok[d]["peak_rss_mb"] for d in sorted(ok)}}
    out[f"ratio_wall_over_linear_from_{base_d}d"] = {
        d: round(ok[d]["wall_s"] / (base * d / base_d), 3) for d in sorted(ok) if d != base_d}
    if len(ok) >= 2:  # fixed cost + per-day cost by least squares
        xs, ys = np.array(sorted(ok), float), np.array([ok[d]["wall_s"] for d in sorted(ok)])
        slope, intercept = np.polyfit(xs, ys, 1)
        out["linear_fit"] = {"fixed_s": round(float(intercept), 2), "per_day_s": round(float(slope), 2)}
        if len(ok) >= 2:
            d_hi = max(ok)
            d_lo = sorted(ok)[-2]
            out[f"marginal_s_per_day_{d_lo}_to_{d_hi}d"] = round((ok[d_hi]["wall_s"] - ok[d_lo]["wall_s"]) / (d_hi - d_lo), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="one backfill size (started by benchmarks/bench_scale.py)")
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--start", required=True, help="window start, ISO (UTC)")
    parser.add_argument("--end", required=True, help="window end (exclusive), ISO (UTC)")
    parser.add_argument("--chunk-hours", type=int, required=True, help="hours per backfill run")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--home", required=True, help="DAGSTER_HOME")
    parser.add_argument("--resources", required=True, help="the size's synthetic resources folder")
    parser.add_argument("--warehouse", required=True, help="warehouse URL")
    parser.add_argument("--out", required=True, help="where the numbers go (JSON)")
    child_main(parser.parse_args())


if __name__ == "__main__":
    main()
