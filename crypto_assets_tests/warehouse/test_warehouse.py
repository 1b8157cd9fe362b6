"""Warehouse invariants: idempotent and atomic window writes, schema in code, typed reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from crypto_assets.tables.prices import PRICE_OBSERVATIONS
from crypto_assets.warehouse.schema import Column, TableSpec, common_columns
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import SchemaMismatchError
from crypto_assets_tests.warehouse.warehouse_support import every_kind_spec, rename_column

HOUR = pd.Timestamp("2021-05-15 10:00", tz="UTC")


def observations(hour: pd.Timestamp, symbols=("BTC", "ETH"), price=100.0) -> pd.DataFrame:
    times = pd.date_range(hour, periods=12, freq="5min")
    rows = [
        {"symbol": s, "observed_at": t, "coingecko_id": s.lower(), "price_usd": price + i,
         "market_cap_usd": np.nan, "volume_24h_usd": 1e9, "endpoint": "test", "source": "test",
         "ingested_at": pd.Timestamp("2026-01-01", tz="UTC")}
        for s in symbols for i, t in enumerate(times)
    ]
    return pd.DataFrame(rows)


def test_window_write_is_idempotent(warehouse_url):
    wh = open_warehouse(warehouse_url)
    neighbour = observations(HOUR - pd.Timedelta("1h"))
    wh.replace_window(PRICE_OBSERVATIONS, neighbour, HOUR - pd.Timedelta("1h"), HOUR)
    frame = observations(HOUR)
    snapshots = []
    for _ in range(3):
        assert wh.replace_window(PRICE_OBSERVATIONS, frame, HOUR, HOUR + pd.Timedelta("1h")) == 24
        snapshots.append(wh.read(PRICE_OBSERVATIONS))
    for snap in snapshots[1:]:
        pd.testing.assert_frame_equal(snap, snapshots[0])
    everything = snapshots[0]
    assert len(everything) == 48  # neighbour hour untouched, no duplicates
    assert not everything.duplicated(["symbol", "observed_at"]).any()
    # Values and types survive the round trip: UTC-aware timestamps, NaN stays NaN (NULL).
    got = wh.read(PRICE_OBSERVATIONS, HOUR, HOUR + pd.Timedelta("1h"), filters={"symbol": ["BTC"]})
    assert str(got.observed_at.dt.tz) == "UTC"
    assert got.observed_at.tolist() == frame[frame.symbol == "BTC"].observed_at.tolist()
    assert got.price_usd.tolist() == [100.0 + i for i in range(12)]
    assert got.market_cap_usd.isna().all()
    wh.dispose()


def test_a_whole_day_window_replaces_exactly_its_days(warehouse_url):
    """Windows of whole UTC days (a backfill chunk's writes) take a faster path on Delta (whole
    `_part`s dropped): the rows at either edge of the window must still be kept or replaced exactly."""
    day = pd.Timestamp("2021-05-15", tz="UTC")
    edges = [day - pd.Timedelta("1us"), day, day + pd.Timedelta("1D") - pd.Timedelta("1us"),
             day + pd.Timedelta("2D") - pd.Timedelta("1us"), day + pd.Timedelta("2D")]

    def rows(times, price):
        return pd.DataFrame([{"symbol": "BTC", "observed_at": t, "coingecko_id": "bitcoin", "price_usd": price,
                              "market_cap_usd": np.nan, "volume_24h_usd": 1.0, "endpoint": "test", "source": "test",
                              "ingested_at": pd.Timestamp("2026-01-01", tz="UTC")} for t in times])

    wh = open_warehouse(warehouse_url)
    wh.replace_window(PRICE_OBSERVATIONS, rows(edges, 1.0), day - pd.Timedelta("1D"), day + pd.Timedelta("3D"))
    # Two whole days, replaced by one row at noon of the first.
    assert wh.replace_window(PRICE_OBSERVATIONS, rows([day + pd.Timedelta("12h")], 2.0),
                             day, day + pd.Timedelta("2D")) == 1
    got = wh.read(PRICE_OBSERVATIONS).sort_values("observed_at")
    assert got.observed_at.tolist() == [edges[0], day + pd.Timedelta("12h"), edges[4]]
    assert got.price_usd.tolist() == [1.0, 2.0, 1.0]
    wh.dispose()


def test_failed_write_leaves_previous_content(warehouse_url):
    wh = open_warehouse(warehouse_url)
    end = HOUR + pd.Timedelta("1h")
    wh.replace_window(PRICE_OBSERVATIONS, observations(HOUR, price=100.0), HOUR, end)
    before = wh.read(PRICE_OBSERVATIONS)
    # A replacement whose last row has no key: refused before anything is changed, naming the column.
    bad = observations(HOUR, price=200.0)
    bad.loc[len(bad) - 1, "symbol"] = None
    with pytest.raises(ValueError, match="price_observations.symbol: 1 rows have no value"):
        wh.replace_window(PRICE_OBSERVATIONS, bad, HOUR, end)
    pd.testing.assert_frame_equal(wh.read(PRICE_OBSERVATIONS), before)
    wh.dispose()


def test_failure_between_chunks_rolls_back(sqlite_url, monkeypatch):
    """A crash after some insert chunks committed nothing: the window keeps its old rows."""
    import crypto_assets.warehouse.sql as store

    wh = open_warehouse(sqlite_url)
    end = HOUR + pd.Timedelta("1h")
    wh.replace_window(PRICE_OBSERVATIONS, observations(HOUR), HOUR, end)
    before = wh.read(PRICE_OBSERVATIONS)
    monkeypatch.setattr(store, "_INSERT_CHUNK", 5)
    calls = {"n": 0}
    real = sa.engine.Connection.exec_driver_sql

    def crash_on_third_chunk(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected crash mid-write")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(sa.engine.Connection, "exec_driver_sql", crash_on_third_chunk)
    with pytest.raises(RuntimeError, match="injected"):
        wh.replace_window(PRICE_OBSERVATIONS, observations(HOUR, price=500.0), HOUR, end)
    assert calls["n"] == 3
    monkeypatch.setattr(sa.engine.Connection, "exec_driver_sql", real)
    pd.testing.assert_frame_equal(wh.read(PRICE_OBSERVATIONS), before)


def test_rows_outside_the_window_are_refused(sqlite_url):
    wh = open_warehouse(sqlite_url)
    with pytest.raises(ValueError, match="outside the window"):
        wh.replace_window(PRICE_OBSERVATIONS, observations(HOUR), HOUR, HOUR + pd.Timedelta("30min"))


def test_duplicate_keys_are_refused(sqlite_url):
    wh = open_warehouse(sqlite_url)
    frame = observations(HOUR)
    with pytest.raises(ValueError, match="share a primary key"):
        wh.replace_window(PRICE_OBSERVATIONS, pd.concat([frame, frame.head(1)]), HOUR, HOUR + pd.Timedelta("1h"))


def test_renamed_column_blocks_writes_naming_it(warehouse_url):
    wh = open_warehouse(warehouse_url)
    end = HOUR + pd.Timedelta("1h")
    wh.replace_window(PRICE_OBSERVATIONS, observations(HOUR), HOUR, end)
    rename_column(warehouse_url, "price_observations", "price_usd", "price")
    fresh = open_warehouse(warehouse_url)  # a new process: nothing cached
    diff = fresh.schema_diff(PRICE_OBSERVATIONS)
    assert not diff.ok and diff.missing == ("price_usd",) and diff.unexpected == ("price",)
    with pytest.raises(SchemaMismatchError, match="missing columns: price_usd"):
        fresh.replace_window(PRICE_OBSERVATIONS, observations(HOUR), HOUR, end)
    # Migration is additive: it adds the column back, the renamed one stays for a human to fix.
    assert fresh.migrate(PRICE_OBSERVATIONS)
    assert fresh.schema_diff(PRICE_OBSERVATIONS).ok
    wh.dispose()
    fresh.dispose()


def test_mistyped_column_is_named(sqlite_url):
    wh = open_warehouse(sqlite_url)
    spec = TableSpec("t_typed", (Column("k", "str"), Column("v", "float"), *common_columns()), ("k",))
    with wh.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t_typed (k VARCHAR(10) PRIMARY KEY, v DATETIME, source VARCHAR(10), ingested_at DATETIME)")
    diff = wh.schema_diff(spec)
    assert diff.mistyped and diff.mistyped[0].startswith("v: expected float")
    with pytest.raises(SchemaMismatchError, match="mistyped columns: v"):
        wh.verify_schema(spec)


def test_read_of_absent_table_is_typed_and_empty(sqlite_url):
    got = open_warehouse(sqlite_url).read(PRICE_OBSERVATIONS, HOUR, HOUR + pd.Timedelta("1h"))
    assert got.empty and list(got.columns) == PRICE_OBSERVATIONS.column_names


def test_every_column_kind_round_trips_with_nulls(warehouse_url):
    spec = every_kind_spec("kinds_roundtrip", "key")
    times = pd.to_datetime(["2021-05-15 10:00:00.123456", "2021-05-15 10:05", "2021-05-15 10:10"],
                           utc=True, format="ISO8601")
    frame = pd.DataFrame({
        "key": ["a", "b", "c"], "at": times,
        "when": [times[1], pd.NaT, times[1]],  # repeated value and a NULL among them
        "day": [pd.Timestamp("2021-05-14").date(), None, pd.Timestamp("2021-05-14").date()],
        "n": pd.array([1, None, 3], dtype="Int64"), "flag": pd.array([True, None, False], dtype="boolean"),
        "x": [1.5, np.nan, -2.25], "label": ["p", None, "q"],
    })
    wh = open_warehouse(warehouse_url)
    wh.ensure_table(spec)
    wh.replace_window(spec, frame, "2021-05-15", "2021-05-16")
    got = wh.read(spec)
    assert got["at"].tolist() == times.tolist()  # microseconds kept
    assert got["when"].tolist()[0] == times[1] and pd.isna(got["when"][1]) and got["when"][2] == times[1]
    assert str(got["day"][0]) == "2021-05-14" and pd.isna(got["day"][1])
    assert got.n.tolist()[0] == 1 and pd.isna(got.n[1]) and got.n.tolist()[2] == 3
    assert bool(got.flag[0]) is True and pd.isna(got.flag[1]) and bool(got.flag[2]) is False
    assert got.x[0] == 1.5 and np.isnan(got.x[1]) and got.x[2] == -2.25
    assert got.label.tolist()[0] == "p" and pd.isna(got.label[1])
    wh.dispose()


def test_schema_drift_on_a_read_says_the_read_was_refused_not_that_nothing_was_written(warehouse_url):
    wh = open_warehouse(warehouse_url)
    end = HOUR + pd.Timedelta("1h")
    wh.replace_window(PRICE_OBSERVATIONS, observations(HOUR), HOUR, end)
    rename_column(warehouse_url, "price_observations", "price_usd", "price")
    fresh = open_warehouse(warehouse_url)
    with pytest.raises(SchemaMismatchError) as err:
        fresh.read(PRICE_OBSERVATIONS, HOUR, end)
    message = str(err.value)
    assert "missing columns: price_usd" in message and "this read was refused" in message
    assert "nothing was written" not in message
    with pytest.raises(SchemaMismatchError, match="nothing was written"):
        fresh.replace_window(PRICE_OBSERVATIONS, observations(HOUR), HOUR, end)
    wh.dispose()
    fresh.dispose()


def _warehouse_cli(*args, env=None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "crypto_assets.cli", "warehouse", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.slow
@pytest.mark.parametrize("how", ["--url", "env"])
def test_warehouse_check_on_an_unreachable_warehouse_prints_one_line_and_fails(how):
    from crypto_assets_tests.api.api_support import free_port

    port = free_port()  # nothing listens there
    url = f"mysql+pymysql://produser:hunter2pw@127.0.0.1:{port}/proddb"
    done = (_warehouse_cli("check", "--url", url) if how == "--url"
            else _warehouse_cli("check", env={"CRYPTO_WAREHOUSE_URL": url}))
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2
    assert len(output.splitlines()) == 1, output  # not a traceback
    assert "Traceback" not in output and "hunter2pw" not in output
    assert f"mysql+pymysql://produser:***@127.0.0.1:{port}/proddb" in output
    assert "Can't connect to MySQL server" in output and "Connection refused" in output


@pytest.mark.slow
def test_warehouse_check_on_an_unopenable_sqlite_file_prints_one_line(tmp_path):
    done = _warehouse_cli("check", "--url", f"sqlite:///{tmp_path / 'no-such-dir' / 'w.sqlite'}")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "unable to open database file" in done.stderr


_WRITER = r"""
import sys, numpy as np, pandas as pd
from crypto_assets.tables.prices import PRICE_OBSERVATIONS
from crypto_assets.warehouse.factory import open_warehouse
url, hour, first = sys.argv[1], pd.Timestamp(sys.argv[2]), int(sys.argv[3])
wh = open_warehouse(url)
times = pd.date_range(hour, periods=12, freq="5min")
symbols = [f"S{i:03d}" for i in range(200)]
for version in range(first, first + 10_000):
    frame = pd.DataFrame({"symbol": np.repeat(symbols, 12), "observed_at": np.tile(times, 200),
                          "coingecko_id": "x", "price_usd": float(version), "market_cap_usd": np.nan,
                          "volume_24h_usd": 1.0, "endpoint": "t", "source": "t",
                          "ingested_at": pd.Timestamp("2026-01-01", tz="UTC")})
    wh.replace_window(PRICE_OBSERVATIONS, frame, hour, hour + pd.Timedelta("1h"))
    print(version, flush=True)
"""


@pytest.mark.slow
def test_concurrent_writers_and_a_killed_writer_never_leave_a_mixed_or_duplicated_window(warehouse_url, tmp_path):
    """Two processes replace the same hour over and over while this one reads it, then one is killed
    mid-write (kill -9): every read sees exactly one whole version of the window (2,400 rows, one
    price), never a mix, a duplicate or a gap, and the neighbouring hour is never touched."""
    import os
    import signal
    import subprocess
    import sys
    import time

    wh = open_warehouse(warehouse_url)
    neighbour = observations(HOUR - pd.Timedelta("1h"))
    wh.replace_window(PRICE_OBSERVATIONS, neighbour, HOUR - pd.Timedelta("1h"), HOUR)
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    writers = [subprocess.Popen([sys.executable, str(script), warehouse_url, HOUR.isoformat(), str(first)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for first in (0, 100_000)]
    try:
        for w in writers:  # both have committed at least one version
            assert w.stdout.readline().strip(), w.stderr.read()
        seen = set()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            got = wh.read(PRICE_OBSERVATIONS, HOUR, HOUR + pd.Timedelta("1h"))
            assert len(got) == 2400 and not got.duplicated(["symbol", "observed_at"]).any()
            assert got.price_usd.nunique() == 1, "a read saw two versions of the window at once"
            seen.add(float(got.price_usd.iloc[0]))
        os.kill(writers[0].pid, signal.SIGKILL)
        writers[0].wait(timeout=10)
        assert len(seen) >= 3, seen  # the reads really raced the writes (both writers committed above)
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
            w.wait(timeout=10)
    after = open_warehouse(warehouse_url)
    got = after.read(PRICE_OBSERVATIONS, HOUR, HOUR + pd.Timedelta("1h"))
    assert len(got) == 2400 and got.price_usd.nunique() == 1
    pd.testing.assert_frame_equal(
        after.read(PRICE_OBSERVATIONS, HOUR - pd.Timedelta("1h"), HOUR).reset_index(drop=True),
        wh.read(PRICE_OBSERVATIONS, HOUR - pd.Timedelta("1h"), HOUR).reset_index(drop=True))
    assert len(after.read(PRICE_OBSERVATIONS, HOUR - pd.Timedelta("1h"), HOUR)) == len(neighbour)
    wh.dispose()
    after.dispose()


def test_optimize_compacts_a_days_hourly_files_without_changing_a_row(delta_url):
    wh = open_warehouse(delta_url)
    day = pd.Timestamp("2021-05-15", tz="UTC")
    for h in range(24):  # what a day of live hourly runs leaves: one small file per hour
        hour = day + pd.Timedelta(hours=h)
        wh.replace_window(PRICE_OBSERVATIONS, observations(hour, price=float(h)), hour, hour + pd.Timedelta("1h"))
    before = wh.read(PRICE_OBSERVATIONS)
    result = wh.optimize(PRICE_OBSERVATIONS, retention_hours=0)
    assert result["files_before"] == 24 and result["files_after"] == 1, result
    pd.testing.assert_frame_equal(wh.read(PRICE_OBSERVATIONS), before)
    assert wh.count(PRICE_OBSERVATIONS) == 24 * 24


def test_nanoseconds_are_stored_as_microseconds_on_every_backend(warehouse_url):
    """Computed times (e.g. start + a float number of seconds) carry nanoseconds; every backend keeps
    microseconds (SQL DATETIME(6), Delta timestamp[us]) instead of refusing or rounding differently."""
    spec = TableSpec("ns_times", (Column("k", "str"), Column("at", "datetime"), Column("seen", "datetime")),
                     ("k", "at"), time_column="at")
    at = pd.Timestamp("2024-02-29 00:00:32.832277749", tz="UTC")
    wh = open_warehouse(warehouse_url)
    wh.replace_window(spec, pd.DataFrame({"k": ["a"], "at": [at], "seen": [at + pd.Timedelta("999ns")]}),
                      "2024-02-29", "2024-03-01")
    got = wh.read(spec)
    assert got["at"][0] == pd.Timestamp("2024-02-29 00:00:32.832277", tz="UTC")
    assert got["seen"][0] == pd.Timestamp("2024-02-29 00:00:32.832278", tz="UTC")
    wh.dispose()
