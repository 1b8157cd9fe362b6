"""Shared fixtures: warehouses on SQLite (always) and MySQL (when CRYPTO_TEST_MYSQL_URL is set)."""

from __future__ import annotations

import os
import uuid
import warnings

import pytest
import sqlalchemy as sa

warnings.filterwarnings("ignore", module="dagster")

MYSQL_ENV = "CRYPTO_TEST_MYSQL_URL"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"


@pytest.fixture
def mysql_url():
    """A fresh database on the test MySQL server, dropped afterwards."""
    base = os.environ.get(MYSQL_ENV)
    if not base:
        pytest.skip(f"{MYSQL_ENV} is not set")
    url = sa.engine.make_url(base)
    name = f"crypto_wh_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


@pytest.fixture(params=["sqlite", "mysql"])
def warehouse_url(request) -> str:
    return request.getfixturevalue(f"{request.param}_url")
