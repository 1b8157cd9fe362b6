"""Damage to the Delta warehouse is loud, never "no data" (issue 19, items 2, 3 and part of 14).

A real Delta warehouse is seeded (crypto_assets_tests/api/api_support.py: every API table with rows
around now, every other declared table created empty), then one file of `price_observations` is
damaged the way a disk, a person or a crash would: the newest commit file deleted or emptied, the
whole `_delta_log/` deleted, a data file truncated, overwritten or deleted. For each:
- `load()` raises `WarehouseDamaged` naming the table (not an empty frame, not a raw pyarrow error);
- the API's price endpoints answer 503 naming the dataset, the other tables still serve;
- `/ready` with a key names the damaged table, without a key says only the state word "damaged";
- `crypto-assets warehouse check` (a subprocess) exits 1 naming the table; it exited 0 before the damage;
- the metrics exporter's `crypto_warehouse_table_damaged` is 1 for the table, 0 for the others;
- `crypto-assets warehouse repair price_observations` makes it readable again and names the
  partitions to re-materialize; writing those partitions again restores every seeded row.
Also: a check of a folder that is not there creates nothing; absent optional tables are not a
failure; a write to a full disk (a 1 MiB tmpfs) fails with the warehouse's own error and no Rust
backtrace, and leaves the table as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from crypto_assets import cli
from crypto_assets.api import create_app
from crypto_assets.loading import load
from crypto_assets.metrics.exporter import PlatformCollector
from crypto_assets.tables import all_tables, table
from crypto_assets.warehouse.check import optional_tables
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import WarehouseDamaged
from crypto_assets_tests.api.api_support import headers, seed, settings

RO = headers("readonly")
PRICES = "price_observations"
LOG = "_delta_log"


def _log_files(folder: Path) -> list[Path]:
    return sorted((folder / LOG).glob("*.json"))


def _data_file(folder: Path) -> Path:
    """A data file the table's current version references (old, unreferenced ones lie beside them)."""
    import deltalake

    files = sorted(Path(p.removeprefix("file://")) for p in deltalake.DeltaTable(str(folder)).file_uris())
    assert files and all(f.exists() for f in files), files
    return files[-1]


def _garbage(path: Path) -> None:
    size = path.stat().st_size
    path.write_bytes(b"\x00not parquet\xff" * (size // 13 + 1))  # same kind of size, no Parquet in it


DAMAGE = {
    "newest commit file deleted": lambda folder: _log_files(folder)[-1].unlink(),
    "newest commit file emptied": lambda folder: _log_files(folder)[-1].write_bytes(b""),
    "whole _delta_log deleted": lambda folder: shutil.rmtree(folder / LOG),
    "data file truncated": lambda folder: os.truncate(_data_file(folder), 100),
    "data file overwritten with garbage": lambda folder: _garbage(_data_file(folder)),
    "data file deleted": lambda folder: _data_file(folder).unlink(),
}


@pytest.fixture
def warehouse(tmp_path):
    """A seeded Delta warehouse in which every declared table exists (so `check` passes before damage)."""
    url = f"delta://{tmp_path / 'warehouse'}"
    now = pd.Timestamp.now(tz="UTC")
    frames = seed(url, now)
    wh = open_warehouse(url)
    for spec in all_tables().values():
        wh.migrate(spec)
    return url, tmp_path / "warehouse", frames


def _check_cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crypto_assets.cli", "warehouse", "check", "--url", url, *args],
                          capture_output=True, text=True, timeout=180)


def _samples(collector) -> dict[tuple[str, frozenset], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _windows(lines: list[str]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """[start, end) of each `--partition-range "D1-00:00...D2-23:00"` the repair printed."""
    found = []
    for first, last in re.findall(r'--partition-range "(\d{4}-\d\d-\d\d)-00:00\.\.\.(\d{4}-\d\d-\d\d)-23:00"',
                                  "\n".join(lines)):
        found.append((pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC") + pd.Timedelta("1D")))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_table_is_an_error_everywhere_and_repair_restores_it(warehouse, kind, capsys):
    url, root, frames = warehouse
    before = _check_cli(url)
    assert before.returncode == 0, before.stdout + before.stderr  # the check passes on the intact warehouse
    writer, spec, seeded = open_warehouse(url), table(PRICES), frames[PRICES]
    hour = seeded.observed_at.max().floor("h")
    newest_hour = seeded[seeded.observed_at >= hour]
    writer.replace_window(spec, newest_hour, hour, hour + pd.Timedelta("1h"))  # a writer of this process
    DAMAGE[kind](root / PRICES)

    # load(): the warehouse's own error, naming the table; never an empty frame
    with pytest.raises(WarehouseDamaged) as err:
        load(PRICES, warehouse_url=url)
    assert err.value.table == PRICES and f"table {PRICES} is damaged" in str(err.value)
    assert str(root) not in err.value.problem  # no server path in what API clients may see
    with pytest.raises(WarehouseDamaged):
        load(PRICES, symbols=["BTC"], warehouse_url=url, newest_first=True, limit=1)
    assert len(load("ohlcv_bars", warehouse_url=url)) == len(frames["ohlcv_bars"])  # others still read
    if "data file" not in kind:  # nothing is committed on top of a damaged log, even by a warmed-up writer
        with pytest.raises(WarehouseDamaged, match="nothing was written"):
            writer.replace_window(spec, newest_hour, hour, hour + pd.Timedelta("1h"))

    # the API: 503 naming the dataset on the damaged table's endpoints, the others serve
    with TestClient(create_app(settings(url, None, "unused"))) as client:
        for path in ("/api/v1/prices/current/BTC", "/api/v1/prices/historical/BTC"):
            r = client.get(path, headers=RO)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["dataset"] == PRICES and PRICES in r.json()["detail"]
            assert str(root) not in r.text
        bars = client.get("/api/v1/ohlcv/BTC", params={"interval": "1h"}, headers=RO)
        assert bars.status_code == 200 and bars.json()["count"] > 0
        assert client.get("/api/v1/symbols", headers=RO).json()["count"] == 3

        detailed = client.get("/ready", headers=RO)
        assert detailed.status_code == 200
        body = detailed.json()
        assert body["status"] == "degraded" and body["warehouse"]["state"] == "damaged"
        assert list(body["warehouse"]["damaged"]) == [PRICES]
        assert body["warehouse"]["datasets"][PRICES]["state"] == "damaged"
        assert body["warehouse"]["datasets"]["ohlcv_bars"]["state"] == "ok"
        public = client.get("/ready")
        assert public.json() == {"status": "degraded", "warehouse": {"state": "damaged"},
                                 "redis": {"state": "not_configured"}, "feed": {"mode": "polling"}}
        assert PRICES not in public.text

    # the metrics exporter
    with dg.DagsterInstance.ephemeral() as instance:
        found = _samples(PlatformCollector(instance, [], open_warehouse(url)))
    assert found[("crypto_warehouse_table_damaged", frozenset({("table", PRICES)}))] == 1
    assert found[("crypto_warehouse_table_damaged", frozenset({("table", "ohlcv_bars")}))] == 0
    assert found[("crypto_warehouse_damaged_tables", frozenset())] == 1

    # `crypto-assets warehouse check`, a subprocess
    done = _check_cli(url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"table {PRICES}: DAMAGED" in done.stdout and "Traceback" not in done.stderr
    assert "table ohlcv_bars: matches the code" in done.stdout

    # recovery: repair, then re-materialize the partitions it names
    capsys.readouterr()
    assert cli.main(["warehouse", "repair", PRICES, "--url", url]) == 0
    said = capsys.readouterr().out.splitlines()
    assert any("re-materialize" in line for line in said), said
    repaired = load(PRICES, warehouse_url=url)  # readable again: what is intact, nothing invented
    assert set(zip(repaired.symbol, repaired.observed_at)) <= set(zip(seeded.symbol, seeded.observed_at))
    windows = _windows(said)
    assert windows, said
    wh = open_warehouse(url)
    for start, end in windows:
        part = seeded[(seeded.observed_at >= start) & (seeded.observed_at < end)]
        wh.replace_window(table(PRICES), part, start, end)
    back = load(PRICES, warehouse_url=url).sort_values(["symbol", "observed_at"]).reset_index(drop=True)
    want = seeded.sort_values(["symbol", "observed_at"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back[want.columns.tolist()], want, check_dtype=False)
    capsys.readouterr()
    assert cli.main(["warehouse", "check", "--url", url]) == 0, capsys.readouterr().out


@pytest.mark.slow
def test_deep_check_reads_every_file_and_restore_of_a_version_works(warehouse, capsys):
    url, root, frames = warehouse
    wh = open_warehouse(url)
    spec = table(PRICES)
    seeded = frames[PRICES]
    start = seeded.observed_at.min().floor("D")
    end = seeded.observed_at.max().floor("D") + pd.Timedelta("1D")
    wh.replace_window(spec, seeded.iloc[:0], start, end)  # a newer version that emptied the table
    assert wh.count(spec) == 0
    version = len(_log_files(root / PRICES)) - 2  # the version before that write
    assert cli.main(["warehouse", "repair", PRICES, "--url", url, "--version", str(version)]) == 0
    assert len(load(PRICES, warehouse_url=url)) == len(seeded)  # the rows are back
    capsys.readouterr()
    done = _check_cli(url, "--deep")
    assert done.returncode == 0 and "deep check: every data file read whole" in done.stdout, done.stdout


def test_check_of_a_folder_that_is_not_there_creates_nothing(tmp_path):
    missing = tmp_path / "no" / "warehouse"
    done = _check_cli(f"delta://{missing}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no warehouse at" in done.stderr and "Traceback" not in done.stderr
    assert not missing.exists() and not (tmp_path / "no").exists()


@pytest.mark.slow
def test_absent_optional_tables_are_not_a_failure_but_absent_required_ones_are(tmp_path):
    url = f"delta://{tmp_path / 'warehouse'}"
    seed(url)
    wh = open_warehouse(url)
    optional = optional_tables()
    assert {"news_narratives", "llm_cache", "fear_greed_index"} <= set(optional)
    for name, spec in all_tables().items():
        if name not in optional:
            wh.migrate(spec)
    done = _check_cli(url)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("news_narratives", "llm_cache", "fear_greed_index"):
        assert f"table {name}: not created yet (optional" in done.stdout
    (tmp_path / "warehouse" / "exchange_candles").rename(tmp_path / "elsewhere")  # a required table gone
    done = _check_cli(url)
    assert done.returncode == 1 and "table exchange_candles: does not exist" in done.stdout


_FULL_DISK = textwrap.dedent("""
    import json, os, resource, signal, sys
    import pandas as pd
    from crypto_assets.tables import table
    from crypto_assets.warehouse.factory import open_warehouse
    from crypto_assets.warehouse.store import WarehouseUnavailable
    from crypto_assets_tests.api.api_support import frame_for

    folder, limit = sys.argv[1], sys.argv[2]
    spec = table("price_observations")
    hour = pd.Timestamp("2024-01-01", tz="UTC")
    small = frame_for(spec, 12, symbol="BTC", observed_at=pd.date_range(hour, periods=12, freq="5min"))
    wh = open_warehouse(f"delta://{folder}/warehouse")
    wh.replace_window(spec, small, hour, hour + pd.Timedelta("1h"))
    if limit == "tmpfs":  # fill the disk
        free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
        with open(f"{folder}/filler", "wb") as fh:
            fh.write(b"x" * max(0, free - 2048))
    else:  # no mount allowed: a file-size limit makes writes fail the same way (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
    big = frame_for(spec, 50_000, symbol="BTC", observed_at=pd.date_range(hour, periods=50_000, freq="50ms"))
    big["coingecko_id"] = [os.urandom(6).hex() for _ in range(len(big))]
    result = {}
    try:
        wh.replace_window(spec, big, hour, hour + pd.Timedelta("1h"))
        result["error"] = None
    except BaseException as exc:
        result = {"error": type(exc).__name__, "message": str(exc),
                  "warehouse_error": isinstance(exc, WarehouseUnavailable)}
    if limit != "tmpfs":
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    else:
        os.remove(f"{folder}/filler")
    fresh = open_warehouse(f"delta://{folder}/warehouse")
    result["rows_after"] = len(fresh.read(spec))
    result["damage"] = fresh.damage(spec, footers=True)
    print(json.dumps(result))
""")


@contextlib.contextmanager
def _small_disk(folder: Path):
    """A 1 MiB tmpfs on `folder` (unmounted afterwards), or None where mounting is not permitted."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    try:
        yield done.returncode == 0
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", str(folder)], check=True, timeout=30)


@pytest.mark.slow
def test_a_write_to_a_full_disk_fails_cleanly_without_a_backtrace_and_keeps_the_table(tmp_path):
    with _small_disk(tmp_path / "disk") as mounted:
        done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path / "disk"),
                               "tmpfs" if mounted else "65536"],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "RUST_BACKTRACE": "1", "PYTHONPATH": str(Path.cwd())})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] == "WarehouseUnavailable" and result["warehouse_error"], result
    assert "stack backtrace" not in done.stderr, done.stderr[-3000:]
    assert result["rows_after"] == 12 and result["damage"] == []  # the table is as it was
    if mounted:
        assert "disk holding the warehouse" in result["message"] and "full" in result["message"], result
