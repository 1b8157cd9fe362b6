"""`crypto-assets warehouse migrate --from`: an earlier version's SQLite warehouse copied into the
Delta Lake default, losslessly, repeatably, without touching the source."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from crypto_assets.tables import all_tables
from crypto_assets.warehouse.factory import open_warehouse

ROWS = 40


def every_kind_of_value(spec, rng) -> pd.DataFrame:
    """CONSTRUCTED rows (not data): every declared column of the table, NULL in every other row of a
    nullable column, microsecond times and rows on both sides of a month boundary."""
    base = pd.Timestamp("2024-01-31 22:00:00.123456", tz="UTC")
    data = {}
    for i, col in enumerate(spec.columns):
        nullable = col.nullable and col.name not in spec.primary_key
        if col.name == spec.time_column or (col.kind in ("datetime", "date") and col.name in spec.primary_key):
            times = pd.DatetimeIndex([base + pd.Timedelta(hours=3 * n) for n in range(ROWS)])
            if col.kind == "date":
                values = list((base.normalize() + pd.to_timedelta(np.arange(ROWS) - 20, unit="D")).date)
            else:
                values = list(times)
        elif col.kind == "float":
            values = list(rng.normal(size=ROWS) * 10.0 ** rng.integers(-9, 12, size=ROWS))
        elif col.kind == "int":
            values = list(rng.integers(-(2**40), 2**40, size=ROWS))
        elif col.kind == "bool":
            values = [bool(n % 3) for n in range(ROWS)]
        elif col.kind == "datetime":
            values = list(pd.date_range("2023-06-01 00:00:00.000001", periods=ROWS, freq="37min", tz="UTC"))
        elif col.kind == "date":
            values = list(pd.date_range("2023-06-01", periods=ROWS, freq="D").date)
        elif col.kind == "text":
            values = [f"«{col.name}» row {n} — it's \"quoted\", 🚀 and |pipes| " + "x" * (n * 50) for n in range(ROWS)]
        else:
            values = [f"{col.name}-{n}" for n in range(ROWS)]
        if nullable:
            values = [None if n % 2 else v for n, v in enumerate(values)]
        data[col.name] = values
    frame = pd.DataFrame(data)
    for col in spec.columns:
        if col.kind == "int":
            frame[col.name] = frame[col.name].astype("Int64")
        elif col.kind == "bool":
            frame[col.name] = frame[col.name].astype("boolean")
        elif col.kind == "float":
            frame[col.name] = frame[col.name].astype("float64")
    return frame


def _cli(*args, home):
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("CRYPTO_WAREHOUSE_URL", None)
    return subprocess.run([sys.executable, "-m", "crypto_assets.cli", "warehouse", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def _sorted(frame: pd.DataFrame, spec) -> pd.DataFrame:
    keys = list(spec.primary_key) or [c.name for c in spec.columns if c.kind == "str"][:1]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.slow
def test_sqlite_warehouse_is_copied_into_delta_losslessly_and_repeatably(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    legacy_url = f"sqlite:///{home / 'warehouse.sqlite'}"
    legacy = open_warehouse(legacy_url)
    rng = np.random.default_rng(7)
    written = {}
    for name, spec in all_tables().items():
        frame = every_kind_of_value(spec, rng)
        if spec.time_column is None:
            legacy.replace_all(spec, frame)
        else:
            legacy.replace_window(spec, frame, "2023-01-01", "2025-01-01")
        written[name] = legacy.read(spec)
        assert len(written[name]) == ROWS
    before = (home / "warehouse.sqlite").stat().st_mtime_ns

    # An earlier version's home keeps using its SQLite file until it is migrated.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("CRYPTO_WAREHOUSE_URL", raising=False)
    from crypto_assets.warehouse.store import default_warehouse_url

    assert default_warehouse_url() == legacy_url

    done = _cli("migrate", "--from", legacy_url, home=home)
    assert done.returncode == 0, done.stderr
    assert f"done: {ROWS * len(written)} rows in {len(written)} tables" in done.stdout
    assert (home / "warehouse.sqlite").stat().st_mtime_ns == before  # the source is only read
    assert default_warehouse_url() == f"delta://{home / 'warehouse'}"  # now the default

    delta = open_warehouse(default_warehouse_url())
    for name, spec in all_tables().items():
        copied = delta.read(spec)
        pd.testing.assert_frame_equal(_sorted(copied, spec), _sorted(written[name], spec), check_dtype=False,
                                      check_exact=True, obj=name)
        for col in spec.columns:  # NULLs stayed NULL (not "", 0, NaT-as-epoch or "None")
            assert copied[col.name].isna().sum() == written[name][col.name].isna().sum(), (name, col.name)

    again = _cli("migrate", "--from", legacy_url, home=home)  # a second run changes nothing
    assert again.returncode == 0, again.stderr
    for name, spec in all_tables().items():
        assert delta.count(spec) == ROWS, name
        pd.testing.assert_frame_equal(_sorted(delta.read(spec), spec), _sorted(written[name], spec),
                                      check_dtype=False, obj=name)


@pytest.mark.slow
def test_migrate_from_an_unreadable_source_says_so_in_one_line(tmp_path):
    missing = f"sqlite:///{tmp_path / 'no-such-dir' / 'warehouse.sqlite'}"
    done = _cli("migrate", "--from", missing, home=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crypto-assets warehouse migrate:"), done.stderr


@pytest.mark.parametrize("action", ["check"])
def test_from_is_refused_without_migrate(tmp_path, action):
    done = _cli(action, "--from", "sqlite:///x.sqlite", home=tmp_path)
    assert done.returncode == 2 and "--from goes with migrate" in done.stderr
