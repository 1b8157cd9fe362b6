"""Dagster instance storage on MySQL/MariaDB: widen dagster-mysql's 64 KB body columns.

dagster-mysql 0.29.27 declares several serialized-body columns as plain `Text`/`LargeBinary`,
which MySQL and MariaDB create as TEXT/BLOB (at most 65,535 bytes). With the default strict
`sql_mode` a larger body fails the whole write (`1406 Data too long for column ...`): the first
automation tick of our graph already wrote ~95 KB evaluation bodies. Dagster's own alembic
migrations never touch these types, so we widen them to LONGTEXT/LONGBLOB in place, after
Dagster has created (or migrated) the schema. Re-running is a no-op: columns that are already
long are skipped, so the step is safe after every `dagster instance migrate`.

CLI (wired by the project CLI as `crypto-assets instance widen-mysql`, or run directly with
`python -m crypto_assets.deploy.mysql_instance`):

    widen-mysql                 # the instance in $DAGSTER_HOME (creates its schema if missing)
    widen-mysql --url URL       # one database, e.g. mysql+pymysql://user:pw@host:3306/dagster
    widen-mysql --check         # exit 1 if any column is still narrow (changes nothing)
    widen-mysql --dry-run       # print the ALTER statements only
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa


@dataclass(frozen=True)
class BodyColumn:
    table: str
    column: str
    target: str  # LONGTEXT or LONGBLOB
    why: str


# Every column below was TEXT/BLOB in a fresh 0.29.27 schema on MariaDB 10.11 and holds a
# serialized object whose size grows with the asset graph, the run or the error it records.
# Key/name columns (asset_key, step_key, ...) are TEXT too but bounded, and some are
# indexed: altering them would rebuild the biggest table (event_logs) for nothing.
BODY_COLUMNS: tuple[BodyColumn, ...] = (
    BodyColumn("asset_daemon_asset_evaluations", "asset_evaluation_body", "LONGTEXT",
               "automation condition evaluation per asset (48 h lookback trees pass 64 KB)"),
    BodyColumn("job_ticks", "tick_body", "LONGTEXT", "sensor/schedule tick: run requests, errors"),
    BodyColumn("runs", "run_body", "LONGTEXT", "serialized run: tags, asset selection, config"),
    BodyColumn("run_tags", "value", "LONGTEXT", "a run tag value (also copied into run_body)"),
    BodyColumn("backfill_tags", "value", "LONGTEXT", "a backfill tag value (copied from run tags)"),
    BodyColumn("instigators", "instigator_body", "LONGTEXT", "sensor state incl. its cursor"),
    BodyColumn("jobs", "job_body", "LONGTEXT", "legacy copy of the instigator state, written too"),
    BodyColumn("kvs", "value", "LONGTEXT", "key-value cursors (set_cursor_values)"),
    BodyColumn("daemon_heartbeats", "body", "LONGTEXT", "daemon heartbeat incl. error tracebacks"),
    BodyColumn("asset_check_executions", "evaluation_event", "LONGTEXT", "check result + metadata"),
    BodyColumn("snapshots", "snapshot_body", "LONGBLOB", "compressed job/execution-plan snapshot"),
)

_LONG_TYPES = {"longtext", "longblob"}


@dataclass(frozen=True)
class ColumnState:
    table: str
    column: str
    data_type: str  # lower-case: text, blob, longtext, ...
    nullable: bool
    charset: str | None
    collation: str | None

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass
class WidenReport:
    database: str
    widened: list[str] = field(default_factory=list)
    already_wide: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # table/column not (yet) in this database
    statements: list[str] = field(default_factory=list)


def mysql_engine(url: str) -> sa.Engine:
    """An engine for `url`; a bare `mysql://` URL uses mysql-connector (dagster-mysql's driver)."""
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("mysql") and not parsed.drivername.startswith("mariadb"):
        raise ValueError(f"not a MySQL/MariaDB URL: {parsed.render_as_string(hide_password=True)}")
    if parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername="mysql+mysqlconnector")
    if not parsed.database:
        raise ValueError(f"the URL names no database: {parsed.render_as_string(hide_password=True)}")
    return sa.create_engine(parsed, pool_pre_ping=True)


def _column_states(conn: sa.Connection, columns: Iterable[BodyColumn]) -> dict[tuple[str, str], ColumnState]:
    wanted = {(c.table, c.column) for c in columns}
    rows = conn.execute(
        sa.text(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
        )
    ).fetchall()
    states = {}
    for table, column, data_type, nullable, charset, collation in rows:
        if (table, column) in wanted:
            states[(table, column)] = ColumnState(
                table, column, str(data_type).lower(), nullable == "YES", charset, collation
            )
    return states


def _alter_statement(state: ColumnState, target: str) -> str:
    charset = ""
    if target == "LONGTEXT" and state.charset:
        # MODIFY replaces the whole column definition: keep charset, collation and nullability.
        charset = f" CHARACTER SET {state.charset}" + (f" COLLATE {state.collation}" if state.collation else "")
    null = "NULL" if state.nullable else "NOT NULL"
    return f"ALTER TABLE `{state.table}` MODIFY `{state.column}` {target}{charset} {null}"


def widen_mysql_instance_columns(
    url: str, *, dry_run: bool = False, columns: Sequence[BodyColumn] = BODY_COLUMNS
) -> WidenReport:
    """Widen Dagster's body columns in the database of `url` to LONGTEXT/LONGBLOB (idempotent).

    Run it after Dagster has created the schema (first start, `dagster instance migrate`).
    Tables that do not exist yet are reported in `missing`, not created.
    """
    engine = mysql_engine(url)
    try:
        with engine.connect() as conn:
            report = WidenReport(database=conn.execute(sa.text("SELECT DATABASE()")).scalar_one())
            states = _column_states(conn, columns)
            for col in columns:
                state = states.get((col.table, col.column))
                name = f"{col.table}.{col.column}"
                if state is None:
                    report.missing.append(name)
                elif state.data_type in _LONG_TYPES:
                    report.already_wide.append(name)
                else:
                    report.statements.append(_alter_statement(state, col.target))
                    report.widened.append(name)
            if not dry_run:
                for statement in report.statements:
                    conn.execute(sa.text(statement))  # DDL commits implicitly in MySQL
                conn.commit()
        return report
    finally:
        engine.dispose()


def narrow_columns(url: str, columns: Sequence[BodyColumn] = BODY_COLUMNS) -> list[str]:
    """Body columns that are still TEXT/BLOB (64 KB) in the database of `url`."""
    return widen_mysql_instance_columns(url, dry_run=True, columns=columns).widened


def instance_mysql_urls(instance) -> list[str]:
    """The MySQL URLs of an instance's run, event-log and schedule storages (deduplicated)."""
    urls: list[str] = []
    for storage in (instance.run_storage, instance.event_log_storage, instance.schedule_storage):
        url = getattr(storage, "mysql_url", None)
        if url and url not in urls:
            urls.append(url)
    return urls


def _redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="crypto-assets instance widen-mysql",
        description="Widen Dagster's 64 KB TEXT/BLOB body columns on MySQL/MariaDB (idempotent).",
    )
    parser.add_argument("--url", help="database URL; default: the instance in $DAGSTER_HOME")
    parser.add_argument("--check", action="store_true", help="exit 1 if a column is still narrow")
    parser.add_argument("--dry-run", action="store_true", help="print the ALTER statements only")
    args = parser.parse_args(argv)

    if args.url:
        urls = [args.url]
    else:
        from dagster import DagsterInstance

        # Loading the instance creates the schema on a fresh database.
        with DagsterInstance.get() as instance:
            urls = instance_mysql_urls(instance)
        if not urls:
            print("the instance in $DAGSTER_HOME does not use MySQL storage: nothing to widen", file=sys.stderr)
            return 2

    narrow = 0
    for url in urls:
        report = widen_mysql_instance_columns(url, dry_run=args.dry_run or args.check)
        narrow += len(report.widened)
        verb = "still narrow" if args.check else ("would widen" if args.dry_run else "widened")
        print(f"{_redact(url)} (database {report.database}):")
        for name, statement in zip(report.widened, report.statements):
            print(f"  {verb}: {name}" + (f"  [{statement}]" if args.dry_run else ""))
        print(f"  already long: {len(report.already_wide)}; not in this database: {', '.join(report.missing) or 'none'}")
    return 1 if (args.check and narrow) else 0


if __name__ == "__main__":
    sys.exit(main())
