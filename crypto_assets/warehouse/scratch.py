"""A throwaway database on a MySQL server, for tests and benchmarks that need a clean one.

    with scratch_database("mysql+pymysql://root@127.0.0.1:3306/test", "crypto_bench") as url:
        ...  # `url` (a sqlalchemy URL) names a new, empty utf8mb4 database; dropped afterwards
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def scratch_database(server_url: str | sa.URL, prefix: str) -> Iterator[sa.URL]:
    server = sa.engine.make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        try:
            yield server.set(database=name)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.dispose()
