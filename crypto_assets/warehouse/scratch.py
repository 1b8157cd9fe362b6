"""A throwaway database on a MySQL or PostgreSQL server, for tests and benchmarks that need a clean one.

    with scratch_database("mysql+pymysql://root@127.0.0.1:3306/test", "crypto_bench") as url:
        ...  # `url` (a sqlalchemy URL) names a new, empty database (utf8mb4 on MySQL); dropped afterwards
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
    if server.get_backend_name() == "postgresql":
        create, drop = f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        create, drop = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", f"DROP DATABASE IF EXISTS `{name}`"
    # PostgreSQL refuses CREATE/DROP DATABASE inside a transaction.
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(create)
        try:
            yield server.set(database=name)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(drop)
    finally:
        admin.dispose()
