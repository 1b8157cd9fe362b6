"""The Dagster instance storage a scale-benchmark size runs on: its DAGSTER_HOME's dagster.yaml
and the environment its process needs, on a scratch database where the storage is a server.

- `sqlite`: the repo's dagster.yaml (the embedded default; run, event and schedule storage in
  SQLite files under DAGSTER_HOME).
- `mysql`: deploy/dagster.mysql.yaml (the documented production instance) on a scratch database
  of the MariaDB server CRYPTO_TEST_MYSQL_URL names (default the machine's root@127.0.0.1:3306).
- `postgres`: the repo's dagster.yaml plus `storage: postgres` (dagster-postgres, the `bench`
  extra) on a scratch database of CRYPTO_BENCH_POSTGRES_URL (default postgres@127.0.0.1:5432).
- `postgres_batched`: the same with DAGSTER_EVENT_BATCH_SIZE=1000 (only dagster-postgres writes
  events in batches).
Every scratch database is dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crypto_assets.warehouse.scratch import scratch_database

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("sqlite", "mysql", "postgres", "postgres_batched")
DEFAULT_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"
DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
EVENT_BATCH = 1000

DESCRIBE = {
    "sqlite": "SQLite files under DAGSTER_HOME (repo dagster.yaml, the embedded default)",
    "mysql": "MariaDB through dagster-mysql (deploy/dagster.mysql.yaml), scratch database",
    "postgres": "PostgreSQL through dagster-postgres (storage: postgres), scratch database",
    "postgres_batched": f"PostgreSQL through dagster-postgres, DAGSTER_EVENT_BATCH_SIZE={EVENT_BATCH}",
}


@contextmanager
def instance_storage(kind: str, home: Path) -> Iterator[dict[str, str]]:
    """Writes `home/dagster.yaml` for `kind`; yields the environment the size's process needs."""
    if kind not in KINDS:
        raise ValueError(f"instance storage {kind!r}: expected one of {', '.join(KINDS)}")
    if kind == "sqlite":
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        yield {}
    elif kind == "mysql":
        server = os.environ.get("CRYPTO_TEST_MYSQL_URL") or DEFAULT_MYSQL
        with scratch_database(server, "dagster_bench") as url:
            shutil.copy(ROOT / "deploy" / "dagster.mysql.yaml", home / "dagster.yaml")
            yield {"DAGSTER_MYSQL_HOST": url.host or "127.0.0.1", "DAGSTER_MYSQL_PORT": str(url.port or 3306),
                   "DAGSTER_MYSQL_USER": url.username or "root", "DAGSTER_MYSQL_PASSWORD": url.password or "",
                   "DAGSTER_MYSQL_DB": url.database}
    else:
        with scratch_database(os.environ.get("CRYPTO_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES, "dagster_bench") as url:
            config = (ROOT / "dagster.yaml").read_text() + (
                "\nstorage:\n  postgres:\n    postgres_url: "
                f"\"{url.render_as_string(hide_password=False)}\"\n")
            (home / "dagster.yaml").write_text(config)
            yield {"DAGSTER_EVENT_BATCH_SIZE": str(EVENT_BATCH)} if kind == "postgres_batched" else {}
