"""Warehouse write/read throughput, package import time and code location load time.

Frame: 320 symbols x 288 five-minute bars = 92,160 rows x (symbol, ts, 100 float columns),
SYNTHETIC random values. Written through `Warehouse.replace_window` (the path every asset
uses: delete window + executemany insert in one transaction), on SQLite and, when
CRYPTO_TEST_MYSQL_URL is set, on MySQL/MariaDB (a scratch database, dropped after).
Baseline for comparison: pandas `to_sql` (default method) on the same frame, SQLite.

Import times run in a fresh `python -c` each: `import crypto_assets` (must not pull torch or
transformers), and the code location load Dagster does on start (import crypto_assets.definitions
+ defs.resolve_asset_graph(); goal <= 2 s). Results go to benchmarks/results.json["warehouse"].
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

from benchmarks._results import measured  # noqa: E402
from crypto_assets.warehouse.schema import Column, TableSpec  # noqa: E402
from crypto_assets.warehouse.scratch import scratch_database  # noqa: E402
from crypto_assets.warehouse.factory import open_warehouse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS, BARS, FLOATS = 320, 288, 100
TARGET_CODE_LOCATION_S = 2.0
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
    wh = open_warehouse(url)
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


def fresh_python(code: str, repeats: int) -> list[list[str]]:
    """What `code` prints, split, from `repeats` fresh interpreters (after one more whose output is
    dropped: it warms the file cache)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("CRYPTO_RESOURCES_DIR", None)
    return [subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, env=env, capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(repeats + 1)][1:]


def import_time(repeats: int = 3) -> dict:
    code = ("import time; t=time.perf_counter(); import crypto_assets, sys; "
            "print(time.perf_counter()-t, 'torch' in sys.modules or 'transformers' in sys.modules)")
    runs = fresh_python(code, repeats)
    return {"import_crypto_assets_s_median": round(statistics.median(float(r[0]) for r in runs), 3),
            "imports_torch_or_transformers": any(r[1] == "True" for r in runs)}


def code_location_load(repeats: int = 5) -> dict:
    code = ("import time; t=time.perf_counter(); import crypto_assets.definitions as d; t1=time.perf_counter(); "
            "g=d.defs.resolve_asset_graph(); n=len(list(g.get_all_asset_keys())); t2=time.perf_counter(); "
            "print(t1-t, t2-t1, n)")
    runs = fresh_python(code, repeats)
    imports, builds = [float(r[0]) for r in runs], [float(r[1]) for r in runs]
    totals = [a + b for a, b in zip(imports, builds)]
    return {"import_definitions_s_median": round(statistics.median(imports), 3),
            "resolve_asset_graph_s_median": round(statistics.median(builds), 3),
            "total_s_median": round(statistics.median(totals), 3),
            "total_s_max": round(max(totals), 3), "repeats": repeats, "asset_keys": int(runs[-1][2]),
            "target_s": TARGET_CODE_LOCATION_S, "meets_target": statistics.median(totals) <= TARGET_CODE_LOCATION_S,
            "method": "fresh `python -c` per repeat: import crypto_assets.definitions + defs.resolve_asset_graph(); "
                      "first (cold-cache) run dropped"}


def measure(results: dict) -> None:
    df = frame()
    results["frame"] = f"{len(df)} rows x {FLOATS} float columns + symbol + ts (synthetic)"
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
    results["code_location_load"] = code_location_load()


def main() -> None:
    with measured("warehouse") as results:
        measure(results)
    print(results)


if __name__ == "__main__":
    main()
