"""Warehouse write/read throughput and package import time.

Frame: 320 symbols x 288 five-minute bars = 92,160 rows x (symbol, ts, 100 float columns),
SYNTHETIC random values. Written through `Warehouse.replace_window` (the path every asset
uses: delete window + executemany insert in one transaction), on SQLite and, when
CRYPTO_TEST_MYSQL_URL is set, on MySQL/MariaDB (a scratch database, dropped after).
Baseline for comparison: pandas `to_sql` (default method) on the same frame, SQLite.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import record  # noqa: E402
from crypto_assets.warehouse.schema import Column, TableSpec  # noqa: E402
from crypto_assets.warehouse.scratch import scratch_database  # noqa: E402
from crypto_assets.warehouse.store import Warehouse  # noqa: E402

SYMBOLS, BARS, FLOATS = 320, 288, 100
SPEC = TableSpec(
    "bench_wide",
    (Column("symbol", "str"), Column("ts", "datetime"), *(Column(f"f{i:03d}", "float") for i in range(FLOATS))),
    primary_key=("symbol", "ts"),
    time_column="ts",
)


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    times = pd.date_range("2026-01-01", periods=BARS, freq="5min", tz="UTC")
    df = pd.DataFrame(rng.normal(size=(SYMBOLS * BARS, FLOATS)), columns=[f"f{i:03d}" for i in range(FLOATS)])
    df.insert(0, "ts", np.tile(times, SYMBOLS))
    df.insert(0, "symbol", np.repeat([f"S{i:03d}" for i in range(SYMBOLS)], BARS))
    return df


def time_write(url: str, df: pd.DataFrame, repeats: int = 3) -> dict:
    wh = Warehouse(url)
    start, end = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-02", tz="UTC")
    wh.replace_window(SPEC, df.head(10), start, end)  # create the table, warm up
    writes = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        wh.replace_window(SPEC, df, start, end)  # replaces the same day: delete + insert
        writes.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    back = wh.read(SPEC, start, end)
    read_s = time.perf_counter() - t0
    assert len(back) == len(df)
    wh.dispose()
    w = statistics.median(writes)
    return {"write_s_median": round(w, 3), "write_rows_per_s": round(len(df) / w),
            "read_s": round(read_s, 3), "read_rows_per_s": round(len(df) / read_s)}


def to_sql_baseline(df: pd.DataFrame) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{tmp}/baseline.sqlite")
        t0 = time.perf_counter()
        df.to_sql("baseline", engine, index=False)
        s = time.perf_counter() - t0
        engine.dispose()
    return {"write_s": round(s, 3), "write_rows_per_s": round(len(df) / s)}


def import_time(repeats: int = 3) -> dict:
    code = ("import time; t=time.perf_counter(); import crypto_assets, sys; "
            "print(time.perf_counter()-t, 'torch' in sys.modules or 'transformers' in sys.modules)")
    times, heavy = [], False
    for _ in range(repeats + 1):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        heavy |= out[1] == "True"
    defs_code = "import time; t=time.perf_counter(); import crypto_assets.definitions; print(time.perf_counter()-t)"
    defs_times = [float(subprocess.run([sys.executable, "-W", "ignore", "-c", defs_code], capture_output=True,
                                       text=True, check=True).stdout.split()[-1]) for _ in range(repeats)]
    return {"import_crypto_assets_s_median": round(statistics.median(times[1:]), 3),
            "imports_torch_or_transformers": heavy,
            "definitions_load_s_median": round(statistics.median(defs_times), 3)}


def main() -> None:
    df = frame()
    results = {"frame": f"{len(df)} rows x {FLOATS} float columns + symbol + ts (synthetic)"}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = time_write(f"sqlite:///{tmp}/bench.sqlite", df)
    results["sqlite_to_sql_baseline"] = to_sql_baseline(df)
    mysql = os.environ.get("CRYPTO_TEST_MYSQL_URL")
    if mysql:
        with scratch_database(mysql, "crypto_bench") as url:
            results["mysql"] = time_write(url.render_as_string(hide_password=False), df, repeats=2)
    else:
        results["mysql"] = "skipped: CRYPTO_TEST_MYSQL_URL not set"
    results["import"] = import_time()
    record("warehouse", results)
    print(results)


if __name__ == "__main__":
    main()
