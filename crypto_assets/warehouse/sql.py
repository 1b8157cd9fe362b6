"""The SQL warehouse: SQLAlchemy over MySQL/MariaDB (the server option) or SQLite (the row store
of earlier versions; `crypto-assets warehouse migrate --from` copies it into Delta Lake).

Writes replace a time window (or a whole table) in one transaction: the delete of the old
window and the insert of the new rows commit together or not at all. Inserts go through
the driver's `executemany` on column-wise converted tuples: pandas `to_sql` spends most of
its time converting values one by one (~8k rows/s for 100 float columns), which is too slow
for the feature table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from crypto_assets.warehouse.schema import TableSpec
from crypto_assets.warehouse.store import (
    SchemaDiff,
    Warehouse,
    date_bound,
    default_warehouse_url,
    format_times,
    retry_pause,
    to_utc,
)

_INSERT_CHUNK = 20_000
_TRANSACTION_ATTEMPTS = 20
_RETRIED_MYSQL_ERRORS = (1213, 1205)  # deadlock victim; lock wait timeout
_SQL_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # what SQLAlchemy's SQLite DateTime stores and compares


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # 16 KB pages (only takes effect on a new, empty file): a feature row of ~170 doubles fills a
    # quarter of a 4 KB page, and bulk writes of such rows measured ~25% faster with 16 KB pages.
    cur.execute("PRAGMA page_size=16384")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MB page cache per connection (default 2 MB)
    # WAL lets notebooks and the API read while a run writes; busy_timeout makes concurrent
    # runs wait for the write lock instead of failing with "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600)


def _sql_param(value):
    """Bind value for a time bound: naive UTC, as the columns store it."""
    if isinstance(value, datetime) or isinstance(value, pd.Timestamp):
        return to_utc(value).replace(tzinfo=None)
    return value


def _time_bound(spec: TableSpec, value):
    """Bind value for a bound on the time column.

    A `date` column compares as the instant D 00:00 UTC, so a bound becomes the first date at or
    after it. (Binding a datetime to a DATE column compares as text on SQLite, where
    '2024-01-01' < '2024-01-01 00:00:00': the window would shift by one day.)
    """
    if spec.column(spec.time_column).kind == "date":
        return date_bound(value)
    return _sql_param(value)


class SqlWarehouse(Warehouse):
    """The warehouse on a SQL database (see the module docstring)."""

    def __init__(self, url: str | None = None, engine: sa.Engine | None = None):
        self.url = url or default_warehouse_url()
        self.engine = engine or make_engine(self.url)
        self.metadata = sa.MetaData()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def has_table(self, spec: TableSpec) -> bool:
        return sa.inspect(self.engine).has_table(spec.name)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------

    def table(self, spec: TableSpec) -> sa.Table:
        return spec.sa_table(self.metadata)

    def ensure_table(self, spec: TableSpec) -> None:
        """Create the table if it does not exist. Never alters an existing table."""
        self.table(spec).create(self.engine, checkfirst=True)

    def schema_diff(self, spec: TableSpec) -> SchemaDiff:
        insp = sa.inspect(self.engine)
        if not insp.has_table(spec.name):
            return SchemaDiff(spec.name, missing_table=True)
        found = {c["name"]: c["type"] for c in insp.get_columns(spec.name)}
        missing = tuple(c.name for c in spec.columns if c.name not in found)
        unexpected = tuple(n for n in found if n not in spec.column_names)
        mistyped = tuple(
            f"{c.name}: expected {c.kind}, found {found[c.name]}"
            + (" (migrate widens it)" if c.widenable_from(found[c.name]) else "")
            for c in spec.columns
            if c.name in found and not c.matches_reflected(found[c.name], self.dialect)
        )
        return SchemaDiff(spec.name, False, missing, unexpected, mistyped)

    def migrate(self, spec: TableSpec) -> list[str]:
        """Create the table, add the columns the code declares and the table lacks, and widen
        bounded string columns the code now declares as `text` (MySQL: VARCHAR(191) -> MEDIUMTEXT).

        Additive only: a column is never dropped, renamed, narrowed or otherwise retyped; every
        step is lossless, and a second run finds nothing to do.
        """
        diff = self.schema_diff(spec)
        if diff.missing_table:
            self.ensure_table(spec)
            return [f"created {spec.name}"]
        done = []
        quoted = self.engine.dialect.identifier_preparer.quote
        found = {c["name"]: c for c in sa.inspect(self.engine).get_columns(spec.name)}
        with self.engine.begin() as conn:
            for name in diff.missing:
                col = spec.column(name)
                ddl_type = col.sql_type().compile(dialect=self.engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {quoted(spec.name)} ADD COLUMN {quoted(name)} {ddl_type}")
                done.append(f"{spec.name}: added {name} {ddl_type}")
            if self.dialect in ("mysql", "mariadb"):
                for col in spec.columns:
                    old = found.get(col.name)
                    if old is None or col.matches_reflected(old["type"], self.dialect) \
                            or not col.widenable_from(old["type"]):
                        continue
                    ddl_type = col.sql_type().compile(dialect=self.engine.dialect)
                    null = "NULL" if old.get("nullable", True) else "NOT NULL"
                    conn.exec_driver_sql(f"ALTER TABLE {quoted(spec.name)} MODIFY COLUMN {quoted(col.name)} "
                                         f"{ddl_type} CHARACTER SET utf8mb4 {null}")
                    done.append(f"{spec.name}: widened {col.name} {old['type']} -> {ddl_type}")
        self._forget_schema(spec)
        return done

    # -- writes ---------------------------------------------------------------------------

    def replace_window(self, spec: TableSpec, df: pd.DataFrame, start, end, *, where: dict | None = None,
                       keep: Sequence[dict] | None = None) -> int:
        """Replace rows with `start <= time_column < end` (and matching `where`, and of no key in
        `keep`: see Warehouse.replace_window) by `df`, atomically.

        Rows of `df` outside the window are refused: writing them would leave data no
        partition owns, and a later re-materialization would duplicate it.
        """
        start, end = to_utc(start), to_utc(end)
        frame = self._conform(spec, df)
        self._check_window(spec, frame, start, end)
        keep = self._check_keep(spec, frame, keep)
        table = self.table(spec)
        cond = sa.and_(
            table.c[spec.time_column] >= _time_bound(spec, start), table.c[spec.time_column] < _time_bound(spec, end)
        )
        for col, value in (where or {}).items():
            cond = sa.and_(cond, table.c[col] == value)
        if keep:
            cond = sa.and_(cond, sa.not_(sa.or_(*(
                sa.and_(*(table.c[c] == v for c, v in key.items())) for key in keep))))
        return self._replace(spec, frame, sa.delete(table).where(cond))

    def replace_all(self, spec: TableSpec, df: pd.DataFrame, *, where: dict | None = None) -> int:
        """Replace the whole table (or the rows matching `where`) by `df`, atomically."""
        table = self.table(spec)
        stmt = sa.delete(table)
        for col, value in (where or {}).items():
            stmt = stmt.where(table.c[col] == value)
        return self._replace(spec, self._conform(spec, df), stmt)

    def _replace(self, spec: TableSpec, frame: pd.DataFrame, delete_stmt) -> int:
        self.verify_schema(spec)
        self._check_unique(spec, frame)
        # SQLite stores a bound NaN as NULL itself; other drivers need None.
        rows = self._rows(spec, frame, nan_as_none=self.dialect != "sqlite")
        sql = self._insert_sql(spec)
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    conn.execute(delete_stmt)
                    for i in range(0, len(rows), _INSERT_CHUNK):
                        conn.exec_driver_sql(sql, rows[i : i + _INSERT_CHUNK])
                return len(rows)
            except sa.exc.OperationalError as exc:
                # Two runs replacing the same window at once: InnoDB picks one transaction as the
                # deadlock victim and rolls it back whole; running it again is exactly right.
                code = exc.orig.args[0] if getattr(exc, "orig", None) is not None and exc.orig.args else None
                if code not in _RETRIED_MYSQL_ERRORS or attempt == _TRANSACTION_ATTEMPTS - 1:
                    raise
                time.sleep(retry_pause(attempt, 0.05))
        return len(rows)

    def _insert_sql(self, spec: TableSpec) -> str:
        quote = self.engine.dialect.identifier_preparer.quote
        marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        cols = ", ".join(quote(c) for c in spec.column_names)
        marks = ", ".join([marker] * len(spec.columns))
        return f"INSERT INTO {quote(spec.name)} ({cols}) VALUES ({marks})"

    @staticmethod
    def _rows(spec: TableSpec, frame: pd.DataFrame, nan_as_none: bool = True) -> list[tuple]:
        """Column-wise conversion to driver values (NaN/NaT -> NULL), then zip into rows."""
        columns = []
        for col in spec.columns:
            s = frame[col.name]
            if col.kind == "float":
                arr = pd.to_numeric(s, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
                if not nan_as_none or not np.isnan(arr).any():
                    columns.append(arr.tolist())
                    continue
                values = arr.astype(object)
                values[np.isnan(arr)] = None
            elif col.kind == "datetime":
                values = format_times(s, _SQL_DATETIME)
            elif col.kind == "date":
                values = format_times(pd.to_datetime(s), "%Y-%m-%d")
            elif col.kind == "int":
                values = s.astype("Int64").to_numpy(dtype=object, na_value=None)
            elif col.kind == "bool":
                values = s.astype("boolean").astype("Int64").to_numpy(dtype=object, na_value=None)
            else:
                values = s.astype(object).where(s.notna(), None).to_numpy(dtype=object)
                values = np.array([v if v is None or isinstance(v, str) else str(v) for v in values], dtype=object)
            columns.append(values.tolist())
        return list(zip(*columns))

    # -- reads ----------------------------------------------------------------------------

    def read(
        self,
        spec: TableSpec,
        start=None,
        end=None,
        *,
        columns: Sequence[str] | None = None,
        filters: dict[str, Iterable] | None = None,
        lists_any: dict[str, Sequence[str]] | None = None,
        order_by: Sequence[str] | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> pd.DataFrame:
        wanted = self._wanted(spec, columns)
        if not sa.inspect(self.engine).has_table(spec.name):
            return self._typed(spec, wanted, [])
        self.verify_schema(spec, action="read")
        table = self.table(spec)
        # NullType: the driver's own values come back (SQLite: ISO strings for datetimes) without
        # SQLAlchemy's per-value result processing; `_typed` converts whole columns instead.
        stmt = sa.select(*(sa.type_coerce(table.c[c], sa.types.NullType()).label(c) for c in wanted))
        if spec.time_column is not None:
            if start is not None:
                stmt = stmt.where(table.c[spec.time_column] >= _time_bound(spec, start))
            if end is not None:
                stmt = stmt.where(table.c[spec.time_column] < _time_bound(spec, end))
        elif start is not None or end is not None:
            raise ValueError(f"{spec.name} has no time column; read it without start/end")
        for col, values in (filters or {}).items():
            if col not in spec.column_names:
                raise KeyError(f"{spec.name} has no column {col!r} to filter on")
            stmt = stmt.where(table.c[col].in_(list(values)))
        for col, tickers in (lists_any or {}).items():
            stmt = stmt.where(_lists_any(table.c[col], tickers))
        order = list(order_by) if order_by else [c for c in (*spec.primary_key,) if c in wanted]
        if order:
            stmt = stmt.order_by(*(table.c[c].desc() if descending else table.c[c] for c in order))
        if limit is not None:
            stmt = stmt.limit(int(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).fetchall()
        return self._typed(spec, wanted, rows)

    @staticmethod
    def _typed(spec: TableSpec, names: list[str], rows: Sequence[Sequence]) -> pd.DataFrame:
        """Driver rows -> a frame of declared dtypes, converting column by column (a DataFrame of
        the raw rows first would infer object dtypes for 170 columns and then convert them again)."""
        kinds = {c.name: c.kind for c in spec.columns}
        values = list(zip(*rows)) if rows else [()] * len(names)
        typed = {}
        floats = [i for i, name in enumerate(names) if kinds[name] == "float"]
        try:  # every float column in one numpy conversion (None -> NaN)
            block = np.array([values[i] for i in floats], dtype="float64").reshape(len(floats), len(rows))
            typed.update({names[i]: block[j] for j, i in enumerate(floats)})
        except (TypeError, ValueError):  # a value that is not a number (e.g. SQLite affinity): per column
            pass
        for name, col in zip(names, values):
            kind = kinds[name]
            if name in typed:
                continue
            if kind == "float":
                typed[name] = pd.to_numeric(pd.Series(col, dtype=object), errors="coerce").astype("float64")
            elif kind == "datetime":
                typed[name] = pd.to_datetime(pd.Series(col, dtype=object), utc=True, format="ISO8601")
            elif kind == "date":
                typed[name] = pd.to_datetime(pd.Series(col, dtype=object)).dt.date if col else pd.Series([], dtype=object)
            elif kind == "int":
                try:
                    typed[name] = pd.array(col, dtype="Int64")
                except (TypeError, ValueError):
                    typed[name] = pd.to_numeric(pd.Series(col, dtype=object), errors="coerce").astype("Int64")
            elif kind == "bool":
                typed[name] = pd.Series(col, dtype=object).astype("boolean")
            else:
                typed[name] = pd.Series(col, dtype=object)
        # One frame at the end: assigning 100+ columns one by one makes pandas re-split its
        # blocks on every assignment.
        return pd.DataFrame({name: typed[name] for name in names}, columns=names)

    def count(self, spec: TableSpec) -> int:
        if not sa.inspect(self.engine).has_table(spec.name):
            return 0
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self.table(spec))).scalar_one())


def _lists_any(column, tickers: Sequence[str]):
    """`column` (tickers separated by '|') lists one of `tickers` as a whole ticker (BTC, not WBTC).

    Bound LIKE patterns (no SQL text is built); `%`, `_` in a ticker are escaped to match literally.
    """
    conditions = []
    for symbol in tickers:
        s = symbol.replace("/", "//").replace("%", "/%").replace("_", "/_")
        conditions += [
            column == symbol,
            column.like(f"{s}|%", escape="/"),
            column.like(f"%|{s}", escape="/"),
            column.like(f"%|{s}|%", escape="/"),
        ]
    return sa.or_(*conditions) if conditions else sa.false()


__all__ = ["SqlWarehouse", "make_engine"]
