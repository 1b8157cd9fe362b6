"""Shared fixtures: warehouses on SQLite (always) and MySQL (when CRYPTO_TEST_MYSQL_URL is set)."""

from __future__ import annotations

import os
import warnings

import pytest
from dagster._core.storage.defs_state.base import set_defs_state_storage

from crypto_assets.warehouse.scratch import scratch_database

warnings.filterwarnings("ignore", module="dagster")

MYSQL_ENV = "CRYPTO_TEST_MYSQL_URL"


@pytest.fixture(autouse=True)
def no_disposed_instance_left_current():
    """Each test starts with no current defs-state storage.

    Dagster 1.13.27's `DagsterInstance.__enter__` makes the instance's defs-state storage current (a
    ContextVar) and `__exit__` disposes the instance without undoing that, so after any
    `with instance_for_test() as instance:` the next `dg.materialize` of another test failed with
    "Attempted to resolve undefined DagsterInstance weakref" (test files passed alone and failed
    in some orders)."""
    with set_defs_state_storage(None):
        yield


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"


@pytest.fixture
def mysql_url():
    """A fresh database on the test MySQL server, dropped afterwards."""
    base = os.environ.get(MYSQL_ENV)
    if not base:
        pytest.skip(f"{MYSQL_ENV} is not set")
    with scratch_database(base, "crypto_wh_test") as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture
def delta_url(tmp_path) -> str:
    return f"delta://{tmp_path / 'warehouse'}"


@pytest.fixture(params=["delta", "sqlite", "mysql"])
def warehouse_url(request) -> str:
    """Every backend the warehouse contract holds on: the embedded default (Delta Lake), the SQLite
    row store of earlier versions, and MySQL/MariaDB."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def configured_warehouse(tmp_path, monkeypatch) -> str:
    """The warehouse the code location's resources use by default (CRYPTO_WAREHOUSE_URL), fresh per test."""
    from crypto_assets.warehouse.resource import get_warehouse

    url = f"delta://{tmp_path / 'configured_warehouse'}"
    monkeypatch.setenv("CRYPTO_WAREHOUSE_URL", url)
    get_warehouse.cache_clear()
    yield url
    get_warehouse.cache_clear()
