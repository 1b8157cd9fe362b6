"""A year of `ml_features` loaded into a notebook: `load()` against reading the same files as plain
Parquet, and the feature build rate. Results go to benchmarks/results.json["load"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_load.py [--days 365] [--chunk-days 7] [--repeats 2]
        [--warehouse DIR] [--skip-build]

Data: SYNTHETIC values in the declared `ml_features` schema (crypto_assets/tables/features.py: every
column, every dtype), 320 symbols x 24 hourly rows x `--days`, written through the warehouse's own
window write (`replace_window`, one Delta commit per chunk of `--chunk-days` days, each chunk's
rows in primary-key order like the asset's). The table is partitioned by day, so any chunk of
whole days leaves the same files as daily writes would (one file per day): a week per commit
only saves time. `--warehouse DIR` keeps the warehouse there and reuses it when it already holds
the rows (for profiling); by default it goes to a temporary folder, removed at the end.

Timings, each in this process after the previous result was freed (the first `load()` also
imports deltalake and reads the log: reported apart as `cold_s`):
- `load_all`: `load("ml_features")`, every column, as pandas (the goal: <= 10 s);
- `load_subset`: `load("ml_features", columns=SUBSET)` (keys + 5 columns; goal <= 2 s);
- `load_arrow`, `load_arrow_subset`: the same with `as_="arrow"` (a pyarrow.Table);
- `load_polars`: `as_="polars"`, when polars is installed;
- `raw_parquet`: the table's current data files read by `pyarrow.parquet.read_table(files)` +
  `to_pandas()`, in the order they were listed (no key order): the storage bar is load_all within
  2x of it.
`feature_build`: `ml_features`' own work (warehouse reads, `build_features`, the window write) on
SYNTHETIC inputs, by benchmarks/bench_features.py's `pipeline_once` (320 symbols x one day of
5-minute bars, 92,160 rows); goal >= 100k rows/s end to end.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import framed, measured  # noqa: E402
from benchmarks.bench_storage import START, SYMBOLS, features_frame  # noqa: E402
from crypto_assets.loading import load  # noqa: E402
from crypto_assets.tables.features import ML_FEATURES  # noqa: E402
from crypto_assets.warehouse.factory import open_warehouse  # noqa: E402

SUBSET = ["close", "volume", "return_1", "rsi_14", "sent_sym_24h_mean"]
GOALS = {"load_all_s": 10, "load_subset_s": 2, "vs_raw_parquet": 2, "feature_rows_per_s": 100_000}


def write_year(url: str, days: int, chunk_days: int) -> dict:
    """`days` of SYNTHETIC rows, one `replace_window` commit per `chunk_days`."""
    wh = open_warehouse(url)
    t0, commits, day = time.perf_counter(), 0, 0
    while day < days:
        n = min(chunk_days, days - day)
        start = START + pd.Timedelta(days=day)
        frame = features_frame(24 * n, start, seed=day)  # rows in (symbol, bar_start) order
        wh.replace_window(ML_FEATURES, frame, start, start + pd.Timedelta(days=n))
        day, commits = day + n, commits + 1
    return {"write_s": round(time.perf_counter() - t0, 1), "commits": commits, "chunk_days": chunk_days}


def timed(fn, repeats: int) -> dict:
    """Seconds of each call (the result freed before the next), and the shape of the result."""
    seconds, shape = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        seconds.append(round(time.perf_counter() - t0, 2))
        shape = [result.shape[0], result.shape[1]] if hasattr(result, "shape") else [result.num_rows,
                                                                                      result.num_columns]
        del result
    return {"s": seconds, "best_s": min(seconds), "shape": shape}


def raw_parquet(url: str):
    """The table's current data files as plain Parquet: read_table + to_pandas, nothing else."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    files = DeltaTable(f"{url.removeprefix('delta://')}/{ML_FEATURES.name}").file_uris()
    return pq.read_table(files, partitioning=None).to_pandas()


def feature_build(repeats: int) -> dict:
    from benchmarks.bench_features import pipeline_once, seed_warehouse, write_floor

    with tempfile.TemporaryDirectory() as tmp:
        wh = seed_warehouse(f"delta://{tmp}/warehouse")
        runs = [pipeline_once(wh) for _ in range(repeats)]
        floor = write_floor(wh)
    rows = runs[0]["rows"]
    return {"runs": runs, "write_floor": floor, "median_total_s": statistics.median(r["total_s"] for r in runs),
            "median_rows_per_s": round(rows / statistics.median(r["total_s"] for r in runs)),
            "median_build_only_rows_per_s": round(rows / statistics.median(r["build_s"] for r in runs)),
            "input": "SYNTHETIC (benchmarks/bench_features.py): 320 symbols x 288 5-minute bars, one day"}


def measure(args, results: dict) -> None:
    results.update({
        "input": f"SYNTHETIC values in the declared ml_features schema ({len(ML_FEATURES.columns)} columns), "
                 f"{SYMBOLS} symbols x {args.days} days of hourly rows",
        "goals": GOALS,
    })
    root = Path(args.warehouse) if args.warehouse else Path(tempfile.mkdtemp(prefix="bench_load_"))
    url = f"delta://{root / 'warehouse'}"
    try:
        rows = SYMBOLS * 24 * args.days
        if open_warehouse(url).count(ML_FEATURES) != rows:
            shutil.rmtree(root / "warehouse", ignore_errors=True)
            print(f"[load] writing {rows} rows", flush=True)
            results["write"] = write_year(url, args.days, args.chunk_days)
        t0 = time.perf_counter()
        first = load("ml_features", warehouse_url=url)
        results["cold_s"] = round(time.perf_counter() - t0, 2)
        del first
        runs = {
            "raw_parquet": lambda: raw_parquet(url),
            "load_all": lambda: load("ml_features", warehouse_url=url),
            "load_subset": lambda: load("ml_features", columns=SUBSET, warehouse_url=url),
            "load_arrow": lambda: load("ml_features", warehouse_url=url, as_="arrow"),
            "load_arrow_subset": lambda: load("ml_features", columns=SUBSET, warehouse_url=url, as_="arrow"),
        }
        try:
            import polars  # noqa: F401

            runs["load_polars"] = lambda: load("ml_features", warehouse_url=url, as_="polars")
        except ImportError:
            results["load_polars"] = "polars not installed"
        for name, fn in runs.items():
            print(f"[load] {name}", flush=True)
            results[name] = timed(fn, args.repeats)
            print(f"[load] {name}: {results[name]}", flush=True)
    finally:
        if not args.warehouse:
            shutil.rmtree(root, ignore_errors=True)
    if not args.skip_build:
        print("[load] feature build", flush=True)
        results["feature_build"] = feature_build(3)
    results["vs_raw_parquet"] = round(results["load_all"]["best_s"] / results["raw_parquet"]["best_s"], 2)
    results["meets"] = {
        "load_all_s": results["load_all"]["best_s"] <= GOALS["load_all_s"],
        "load_subset_s": results["load_subset"]["best_s"] <= GOALS["load_subset_s"],
        "vs_raw_parquet": results["vs_raw_parquet"] <= GOALS["vs_raw_parquet"],
        **({"feature_rows_per_s": results["feature_build"]["median_rows_per_s"] >= GOALS["feature_rows_per_s"]}
           if "feature_build" in results else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--chunk-days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warehouse", help="keep the warehouse in this folder (reused if it holds the rows)")
    parser.add_argument("--skip-build", action="store_true", help="do not measure the feature build")
    parser.add_argument("--no-record", action="store_true", help="print only (profiling runs)")
    args = parser.parse_args()
    with (framed() if args.no_record else measured("load")) as results:
        measure(args, results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
