"""The embedded warehouse candidates side by side (docs/storage.md): the wide `ml_features` table
written and read through each, plus how each behaves under this system's concurrency.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_storage.py [--hours 168] [--load-days 365] [--skip-load]

Frame: the DECLARED `ml_features` schema (173 columns) with SYNTHETIC values, 320 symbols x
`--hours` hourly rows (default one week: 53,760 rows). Candidates:
- `sqlite`: the project's SQL warehouse on SQLite (delete window + executemany, one transaction);
- `delta`: the project's Delta Lake warehouse (one overwrite-with-predicate commit);
- `duckdb_file`: one DuckDB database file (DELETE window + INSERT from Arrow in a transaction);
- `parquet_duckdb`: one Parquet file per window (written to a temp name, renamed into place), read
  back with DuckDB's `read_parquet` over the folder.
Every candidate writes the same window three times (replacing it) and reads it back; the numbers
are rows per second of the median write and of the read.

Concurrency probes (the constraints: runs, steps and backfills write at once; the API and notebooks
read while runs write): for each candidate, two extra processes write two different windows at once
while a third process reads; the probe records whether every write and read succeeded and whether
the final row count is right.

`--load-days`: `load("ml_features")` of 320 symbols x that many days (default a year: 2.8 M rows x
173 columns, SYNTHETIC) from the Delta warehouse, timed (goal <= 10 s); skipped with --skip-load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import measured  # noqa: E402
from crypto_assets.tables.features import ML_FEATURES  # noqa: E402
from crypto_assets.warehouse.factory import open_warehouse  # noqa: E402

SYMBOLS = 320
START = pd.Timestamp("2025-01-01", tz="UTC")


def features_frame(hours: int, start: pd.Timestamp = START, seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC rows of the declared ml_features schema."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, periods=hours, freq="h")
    n = SYMBOLS * hours
    data = {}
    for col in ML_FEATURES.columns:
        if col.kind == "float":
            data[col.name] = rng.normal(size=n)
        elif col.kind == "datetime":
            data[col.name] = np.tile(times, SYMBOLS) if col.name == ML_FEATURES.time_column else pd.Timestamp.now(tz="UTC")
        elif col.kind == "int":
            data[col.name] = pd.array(rng.integers(0, 1000, size=n), dtype="Int64")
        elif col.kind == "bool":
            data[col.name] = pd.array(rng.integers(0, 2, size=n).astype(bool), dtype="boolean")
        elif col.name == "symbol":
            data[col.name] = np.repeat([f"S{i:03d}" for i in range(SYMBOLS)], hours)
        else:
            data[col.name] = "synthetic"
    return pd.DataFrame(data)


# -- the candidates -----------------------------------------------------------------------------

class ProjectWarehouse:
    def __init__(self, url: str):
        self.url, self.wh = url, open_warehouse(url)

    def write(self, frame, start, end):
        self.wh.replace_window(ML_FEATURES, frame, start, end)

    def read(self, start, end):
        return self.wh.read(ML_FEATURES, start, end)


class DuckDBFile:
    def __init__(self, path: Path):
        import duckdb

        self.path, self.con = path, duckdb.connect(str(path))

    def write(self, frame, start, end):
        t = ML_FEATURES.time_column
        self.con.execute("BEGIN")
        try:
            self.con.execute("CREATE TABLE IF NOT EXISTS ml_features AS SELECT * FROM frame LIMIT 0")
            self.con.execute(f'DELETE FROM ml_features WHERE "{t}" >= ? AND "{t}" < ?', [start, end])
            self.con.execute("INSERT INTO ml_features SELECT * FROM frame")
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def read(self, start, end):
        t = ML_FEATURES.time_column
        return self.con.execute(f'SELECT * FROM ml_features WHERE "{t}" >= ? AND "{t}" < ? ORDER BY symbol, "{t}"',
                                [start, end]).df()


class ParquetFolder:
    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def write(self, frame, start, end):
        name = f"{pd.Timestamp(start):%Y%m%dT%H}_{pd.Timestamp(end):%Y%m%dT%H}.parquet"
        tmp = self.path / f".{name}.{os.getpid()}.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, self.path / name)  # atomic for ONE file; a window spanning files is not

    def read(self, start, end):
        import duckdb

        t = ML_FEATURES.time_column
        return duckdb.sql(f"SELECT * FROM read_parquet('{self.path}/*.parquet') WHERE \"{t}\" >= '{start}' "
                          f"AND \"{t}\" < '{end}' ORDER BY symbol, \"{t}\"").df()


def open_candidate(name: str, root: Path):
    if name == "sqlite":
        return ProjectWarehouse(f"sqlite:///{root / 'warehouse.sqlite'}")
    if name == "delta":
        return ProjectWarehouse(f"delta://{root / 'warehouse'}")
    if name == "duckdb_file":
        return DuckDBFile(root / "warehouse.duckdb")
    return ParquetFolder(root / "parquet")


CANDIDATES = ("sqlite", "delta", "duckdb_file", "parquet_duckdb")


def throughput(name: str, frame: pd.DataFrame, hours: int, repeats: int = 3) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"bench_storage_{name}_"))
    try:
        store = open_candidate(name, root)
        start, end = START, START + pd.Timedelta(hours=hours)
        writes = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            store.write(frame, start, end)
            writes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        back = store.read(start, end)
        read_s = time.perf_counter() - t0
        assert len(back) == len(frame), (name, len(back))
        write_s = statistics.median(writes)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        return {"write_s_median": round(write_s, 3), "write_rows_per_s": round(len(frame) / write_s),
                "read_s": round(read_s, 3), "read_rows_per_s": round(len(frame) / read_s),
                "bytes_on_disk": size}
    finally:
        shutil.rmtree(root, ignore_errors=True)


_PROBE = textwrap.dedent("""
    import sys, time, pandas as pd
    sys.path.insert(0, sys.argv[4])
    from benchmarks.bench_storage import open_candidate, features_frame, START
    from pathlib import Path
    name, root, role = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    try:
        store = open_candidate(name, root)
        if role == "read":
            for _ in range(20):
                store.read(START, START + pd.Timedelta(hours=48)); time.sleep(0.05)
        else:
            day = int(role)
            start = START + pd.Timedelta(days=day)
            for _ in range(5):
                store.write(features_frame(24, start, seed=day), start, start + pd.Timedelta(hours=24))
        print("ok")
    except Exception as exc:
        print(f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
""")


def concurrency_probe(name: str) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"bench_storage_probe_{name}_"))
    try:
        first = open_candidate(name, root)
        first.write(features_frame(24), START, START + pd.Timedelta(hours=24))  # the table exists
        del first  # (a DuckDB connection held here would lock out every other process)
        script = root / "probe.py"
        script.write_text(_PROBE)
        repo = str(Path(__file__).resolve().parent.parent)
        procs = {role: subprocess.Popen([sys.executable, str(script), name, str(root), role, repo],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for role in ("0", "1", "read")}
        outcome = {("writer_day_" + r if r != "read" else "reader"): p.communicate(timeout=600)[0].strip().splitlines()[-1]
                   for r, p in procs.items()}
        try:
            rows = len(open_candidate(name, root).read(START, START + pd.Timedelta(days=2)))
        except Exception as exc:  # noqa: BLE001
            rows = f"failed: {type(exc).__name__}"
        outcome["rows_after"] = rows
        outcome["rows_expected"] = 2 * 24 * SYMBOLS
        return outcome
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_load(days: int) -> dict:
    """Write `days` of 320-symbol hourly features into Delta (a month per write), then time `load()`."""
    from crypto_assets.loading import load

    root = Path(tempfile.mkdtemp(prefix="bench_storage_load_"))
    try:
        url = f"delta://{root / 'warehouse'}"
        wh = open_warehouse(url)
        t0 = time.perf_counter()
        day = 0
        while day < days:
            n = min(31, days - day)
            start = START + pd.Timedelta(days=day)
            wh.replace_window(ML_FEATURES, features_frame(24 * n, start, seed=day), start, start + pd.Timedelta(days=n))
            day += n
        write_s = time.perf_counter() - t0
        timings = []
        for _ in range(2):
            t0 = time.perf_counter()
            frame = load("ml_features", warehouse_url=url)
            timings.append(time.perf_counter() - t0)
            rows, cols = frame.shape
            del frame
        return {"days": days, "rows": rows, "columns": cols, "write_s": round(write_s, 1),
                "load_s": [round(t, 2) for t in timings], "target_s": 10, "meets_target": min(timings) <= 10,
                "input": "SYNTHETIC values in the declared ml_features schema"}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(args, results: dict) -> None:
    frame = features_frame(args.hours)
    results.update({
        "input": f"SYNTHETIC values in the declared ml_features schema ({len(ML_FEATURES.columns)} columns), "
                 f"{SYMBOLS} symbols x {args.hours} hourly rows = {len(frame)} rows",
        "throughput": {},
    })
    for name in CANDIDATES:
        print(f"[storage] {name}", flush=True)
        results["throughput"][name] = throughput(name, frame, args.hours)
    sqlite = results["throughput"]["sqlite"]
    results["vs_sqlite"] = {name: {"write": round(r["write_rows_per_s"] / sqlite["write_rows_per_s"], 1),
                                   "read": round(r["read_rows_per_s"] / sqlite["read_rows_per_s"], 1)}
                            for name, r in results["throughput"].items()}
    results["goal_5x_sqlite_write_and_read"] = {
        name: v["write"] >= 5 and v["read"] >= 5 for name, v in results["vs_sqlite"].items() if name != "sqlite"}
    if not args.skip_probes:
        results["concurrency"] = {}
        for name in CANDIDATES:
            print(f"[storage] concurrency {name}", flush=True)
            results["concurrency"][name] = concurrency_probe(name)
    if not args.skip_load:
        print(f"[storage] load() of {args.load_days} days", flush=True)
        results["load_ml_features"] = bench_load(args.load_days)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--load-days", type=int, default=365)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-probes", action="store_true")
    args = parser.parse_args()
    with measured("storage") as results:
        measure(args, results)
    print(results)


if __name__ == "__main__":
    main()
