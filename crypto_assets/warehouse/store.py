"""The warehouse: one interface over two kinds of storage.

- **Delta Lake** (`delta:///path`, `delta+s3://bucket/prefix`, `delta+gs://…`): the embedded
  default, a columnar table per asset (Parquet files + a transaction log) under
  `$DAGSTER_HOME/warehouse`. Chosen by measurement over SQLite, a DuckDB file and a hand-rolled
  Parquet dataset: docs/storage.md. Implementation: `delta.py`.
- **SQL** (`mysql+pymysql://…`, `sqlite:///…`): MySQL/MariaDB for teams that run a server, and the
  row-store SQLite file of earlier versions (`crypto-assets warehouse migrate --from` copies it
  into Delta). Implementation: `sql.py`.

`open_warehouse(url)` (factory.py) opens the backend the URL names. Both keep the same contract
(the tests in test_warehouse.py run on each): a window write replaces exactly its time window
atomically and idempotently, rows outside the window or with duplicate keys are refused, the schema
is declared in code and a drifted table blocks reads and writes, reads come back with the declared
dtypes.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from crypto_assets.warehouse.schema import TableSpec

WAREHOUSE_URL_ENV = "CRYPTO_WAREHOUSE_URL"
DELTA_SCHEMES = ("delta", "delta+s3", "delta+s3a", "delta+gs", "delta+az", "delta+abfss", "delta+file")
log = logging.getLogger(__name__)


class SchemaMismatchError(RuntimeError):
    """The table in the warehouse does not match the schema declared in code."""


class WarehouseUnavailable(OSError):
    """The warehouse's storage could not be read or written (path, bucket, permissions, network)."""


class WarehouseDamaged(WarehouseUnavailable):
    """A table's own files are damaged: its transaction log or a data file it references is missing,
    empty, truncated or unreadable. Nothing is read from such a table (an answer we could not read is
    an error, never "no data"). `table` names it; `problem` says what is wrong, with paths relative to
    the table's folder (no server paths: API clients may see it)."""

    def __init__(self, table: str, problem: str):
        self.table, self.problem = table, problem
        super().__init__(f"the warehouse table {table} is damaged: {problem}. Nothing was read from it; "
                         f"`crypto-assets warehouse check --deep` lists the damage, `crypto-assets warehouse repair "
                         f"{table}` recovers it (docs/storage.md, 'Damage and recovery')")

    def __reduce__(self):  # picklable despite the two-argument constructor
        return type(self), (self.table, self.problem)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class SchemaDiff:
    table: str
    missing_table: bool = False
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mistyped: tuple[str, ...] = ()  # "name: expected float, found VARCHAR(191)"

    @property
    def ok(self) -> bool:
        # Extra columns are reported but do not block: the code never reads them.
        return not (self.missing_table or self.missing or self.mistyped)

    def describe(self) -> str:
        if self.missing_table:
            return f"table {self.table} does not exist"
        parts = []
        if self.missing:
            parts.append(f"missing columns: {', '.join(self.missing)}")
        if self.mistyped:
            parts.append(f"mistyped columns: {'; '.join(self.mistyped)}")
        if self.unexpected:
            parts.append(f"columns not in the code's schema: {', '.join(self.unexpected)}")
        return f"table {self.table}: " + ("; ".join(parts) if parts else "matches the code")


def is_delta_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in DELTA_SCHEMES


def default_warehouse_url() -> str:
    """`CRYPTO_WAREHOUSE_URL`, else the embedded Delta Lake warehouse `$DAGSTER_HOME/warehouse`.

    A home that still holds the SQLite warehouse of an earlier version (and no Delta warehouse yet)
    keeps using it, with a hint to migrate: switching silently would hide all its data.
    """
    url = os.environ.get(WAREHOUSE_URL_ENV)
    if url:
        return url
    home = _home()
    legacy, delta = home / "warehouse.sqlite", home / "warehouse"
    if legacy.exists() and not delta.exists():
        log.warning("using the SQLite warehouse %s of an earlier version; `crypto-assets warehouse migrate "
                    "--from sqlite:///%s` copies it into the columnar default (docs/storage.md)", legacy, legacy)
        return f"sqlite:///{legacy}"
    return embedded_url()


def _home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    return home


def embedded_url() -> str:
    """The embedded Delta Lake warehouse under DAGSTER_HOME (the default, and `migrate --from`'s target)."""
    return f"delta://{_home() / 'warehouse'}"


def redact_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def to_utc(value) -> datetime:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def date_bound(value):
    """A bound on a `date` column: a date D compares as the instant D 00:00 UTC, so a bound becomes
    the first date at or after it."""
    return pd.Timestamp(to_utc(value)).ceil("D").date()


class Warehouse:
    """Schema-aware reads and atomic window writes for the tables declared in code.

    `open_warehouse(url)` (factory.py) returns the implementation the URL names (see the module
    docstring); every method below is implemented by both.
    """

    dialect: str = ""

    def __new__(cls, *args, **kwargs):
        # The interface alone stores nothing: refuse it rather than hand back an object whose
        # every method raises NotImplementedError.
        if cls is Warehouse:
            raise TypeError("Warehouse is the interface of the warehouse back-ends; open one with "
                            "crypto_assets.warehouse.factory.open_warehouse(url)")
        return super().__new__(cls)

    # -- the interface ------------------------------------------------------------------

    url: str

    @property
    def display_url(self) -> str:
        """The URL without a password, for metadata and messages."""
        return redact_url(self.url)

    def dispose(self) -> None:
        """Release connections (no-op where there are none)."""

    def has_table(self, spec: TableSpec) -> bool:
        raise NotImplementedError

    def ensure_table(self, spec: TableSpec) -> None:
        raise NotImplementedError

    def schema_diff(self, spec: TableSpec) -> SchemaDiff:
        raise NotImplementedError

    def migrate(self, spec: TableSpec) -> list[str]:
        raise NotImplementedError

    def replace_window(self, spec: TableSpec, df: pd.DataFrame, start, end, *, where: dict | None = None,
                       keep: Sequence[dict] | None = None) -> int:
        """Replace rows with `start <= time_column < end` (and matching `where`) by `df`, in one
        atomic commit.

        `keep`: keys whose stored rows in the window stay as they are, e.g. `[{"symbol": "BTC"}]`
        or `[{"exchange": "binance", "symbol": "BTC"}]` (each a {column: value} of primary-key
        columns): the keys whose fetch failed in this run (invariant 12: stored data is replaced
        only by data fetched for the same keys). `df` must hold no row of a kept key.
        """
        raise NotImplementedError

    def replace_all(self, spec: TableSpec, df: pd.DataFrame, *, where: dict | None = None) -> int:
        raise NotImplementedError

    def read(self, spec: TableSpec, start=None, end=None, *, columns: Sequence[str] | None = None,
             filters: dict[str, Iterable] | None = None, lists_any: dict[str, Sequence[str]] | None = None,
             order_by: Sequence[str] | None = None, descending: bool = False,
             limit: int | None = None) -> pd.DataFrame:
        """Rows with `start <= time_column < end` (bounds optional), filtered by `filters`
        ({column: allowed values}) and `lists_any` ({column: tickers}: the column, tickers separated
        by '|', names one of them as a whole ticker).

        Returns declared dtypes: UTC-aware datetimes, floats, nullable ints/bools, strings (object,
        None for NULL), dates (datetime.date). An absent table reads as an empty frame with the
        declared columns. Rows come ordered by `order_by` (default: the primary key), largest first
        when `descending`, at most `limit`.
        """
        raise NotImplementedError

    def read_arrow(self, spec: TableSpec, start=None, end=None, **options):
        """`read` as a pyarrow.Table of the table's Arrow types (float64, int64, bool,
        timestamp[us, UTC], date32, string; NULL as null), in the same rows and order. Here: the
        DataFrame converted; a back-end that reads Arrow natively (Delta) answers without pandas."""
        import pyarrow as pa

        from crypto_assets.warehouse.arrow_read import arrow_fields

        frame = self.read(spec, start, end, **options)
        return pa.Table.from_pandas(frame, schema=pa.schema(arrow_fields(spec, list(frame.columns))),
                                    preserve_index=False).replace_schema_metadata()  # no pandas metadata

    def count(self, spec: TableSpec) -> int:
        raise NotImplementedError

    def damage(self, spec: TableSpec, *, deep: bool = False, footers: bool = False) -> list[str]:
        """What is damaged in the table's storage, one line per problem ([] when nothing is).

        Delta: the transaction log (missing, empty or unparsable commits, versions gone) and the data
        files it references (missing, of another size than logged; `footers`: each file's Parquet
        footer read; `deep`: every file read whole).
        SQL backends keep no files of their own to check: the database server guards them."""
        return []

    # -- shared by the implementations ----------------------------------------------------

    def verify_schema(self, spec: TableSpec, *, action: str = "write") -> None:
        """Create a missing table; raise `SchemaMismatchError` naming the columns otherwise.

        `action` ("write" or "read") says what was refused, so the message tells the truth.
        """
        verified = self.__dict__.setdefault("_verified", set())
        if spec.name in verified:
            return
        diff = self.schema_diff(spec)
        if diff.missing_table:
            self.ensure_table(spec)
        elif not diff.ok:
            refused = ("this read was refused (nothing was read or changed)" if action == "read"
                       else "nothing was written")
            raise SchemaMismatchError(
                f"{diff.describe()}. The warehouse no longer matches the schema declared in code; "
                f"{refused}. Run `crypto-assets warehouse migrate` to add missing columns and widen "
                "columns, or restore the renamed/retyped columns."
            )
        verified.add(spec.name)

    def _forget_schema(self, spec: TableSpec) -> None:
        self.__dict__.setdefault("_verified", set()).discard(spec.name)

    @staticmethod
    def _wanted(spec: TableSpec, columns: Sequence[str] | None) -> list[str]:
        wanted = list(columns) if columns else spec.column_names
        unknown = [c for c in wanted if c not in spec.column_names]
        if unknown:
            raise KeyError(f"{spec.name} has no columns {unknown}; it has {spec.column_names}")
        return wanted

    @staticmethod
    def _conform(spec: TableSpec, df: pd.DataFrame) -> pd.DataFrame:
        """Exactly the declared columns, in order, with UTC-aware datetimes; refuses values a
        column cannot hold (too long, or NULL in a key/NOT NULL column) on every backend alike."""
        missing = [c for c in spec.column_names if c not in df.columns]
        if missing:
            raise ValueError(f"{spec.name}: frame lacks declared columns {missing}")
        frame = df.loc[:, spec.column_names].copy()
        for col in spec.columns:
            if col.kind == "datetime":
                frame[col.name] = pd.to_datetime(frame[col.name], utc=True)
            elif col.max_chars is not None:
                _check_length(spec, col, frame[col.name])
            required = not col.nullable or col.name in spec.primary_key
            if required and len(frame) and frame[col.name].isna().any():
                bad = frame[col.name].isna()
                raise ValueError(f"{spec.name}.{col.name}: {int(bad.sum())} rows have no value (NULL) in a "
                                 f"column that requires one (key or NOT NULL); nothing was written")
        return frame.reset_index(drop=True)

    @staticmethod
    def _check_window(spec: TableSpec, frame: pd.DataFrame, start: datetime, end: datetime) -> None:
        """Rows of `frame` outside [start, end) are refused: writing them would leave data no
        partition owns, and a later re-materialization would duplicate it."""
        if spec.time_column is None:
            raise ValueError(f"{spec.name} is not time-partitioned; use replace_all")
        if not len(frame):
            return
        times = frame[spec.time_column]
        if spec.column(spec.time_column).kind == "date":  # a date D is the instant D 00:00 UTC
            times = pd.to_datetime(times).dt.tz_localize("UTC")
        outside = ~((times >= pd.Timestamp(start)) & (times < pd.Timestamp(end)))
        if outside.any():
            raise ValueError(
                f"{spec.name}: {int(outside.sum())} rows fall outside the window "
                f"[{start.isoformat()}, {end.isoformat()}) being written"
            )

    @staticmethod
    def _check_keep(spec: TableSpec, frame: pd.DataFrame, keep: Sequence[dict] | None) -> list[dict]:
        """Validate `keep` (see replace_window): known NOT NULL columns, and no row of `frame`
        belonging to a kept key (it would sit beside the stored rows it was meant to replace)."""
        keep = [dict(k) for k in (keep or ()) if k]
        for key in keep:
            for col in key:
                if col not in spec.column_names:
                    raise KeyError(f"{spec.name} has no column {col!r} to keep stored rows by")
                if col not in spec.primary_key:
                    # A kept row then differs from every written row in its key: no duplicate keys.
                    raise ValueError(f"{spec.name}.{col}: keep stored rows by primary-key columns only")
            if len(frame):
                mask = rows_of_keys(frame, [key])
                if mask.any():
                    raise ValueError(f"{spec.name}: {int(mask.sum())} rows of {key}, a key whose stored rows are "
                                     "kept (its fetch failed); nothing was written")
        return keep

    @staticmethod
    def _check_unique(spec: TableSpec, frame: pd.DataFrame) -> None:
        if not spec.primary_key:
            return
        dupes = frame.duplicated(subset=list(spec.primary_key), keep=False)
        if dupes.any():
            sample = frame.loc[dupes, list(spec.primary_key)].head(3).to_dict("records")
            raise ValueError(f"{spec.name}: {int(dupes.sum())} rows share a primary key, e.g. {sample}")


def rows_of_keys(frame: pd.DataFrame, keys: Sequence[dict]) -> pd.Series:
    """Which rows of `frame` belong to one of `keys` (each a {column: value}, as `keep` takes them)."""
    mask = pd.Series(False, index=frame.index)
    for key in keys:
        match = pd.Series(True, index=frame.index)
        for col, value in key.items():
            match &= frame[col] == value
        mask |= match
    return mask


def lists_any_mask(values: pd.Series, tickers: Sequence[str]) -> np.ndarray:
    """Rows whose '|'-separated list names one of `tickers` as a whole ticker (BTC, not WBTC)."""
    wanted = set(tickers)
    return np.fromiter(
        (isinstance(v, str) and not wanted.isdisjoint(v.split("|")) for v in values), dtype=bool, count=len(values)
    )


def _check_length(spec: TableSpec, col, values: pd.Series) -> None:
    """Refuse values longer than the column holds, on every backend alike (MySQL would refuse
    them mid-write, SQLite and Delta would store them silently)."""
    present = values.dropna()
    if present.empty:
        return
    lengths = present.astype(str).str.len()
    too_long = lengths > col.max_chars
    if too_long.any():
        sample = str(present[too_long].iloc[0])
        raise ValueError(
            f"{spec.name}.{col.name}: {int(too_long.sum())} values are longer than the column's "
            f"{col.max_chars} characters (longest {int(lengths.max())}, e.g. {sample[:60]!r}...); a `str` "
            "column holds keys and short labels: declare unbounded values as `text`"
        )


def format_times(times: pd.Series, fmt: str) -> np.ndarray:
    """`times` as strings (NaT -> None). Formats each distinct value once: a partition's rows
    share few timestamps (288 bar starts for 92,160 rows), and strftime is the slow part."""
    codes, uniques = pd.factorize(times, use_na_sentinel=True)
    formatted = np.append(pd.Series(uniques).dt.strftime(fmt).to_numpy(dtype=object), None)
    return formatted[codes]  # code -1 (NaT) picks the trailing None


def retry_pause(attempt: int, base_s: float) -> float:
    """Seconds to wait before retrying a write that lost a race with another writer: doubling from
    `base_s`, capped at 2 s, jittered so racing writers do not retry in step."""
    return min(2.0, base_s * 2 ** attempt) * (0.5 + random.random())


__all__ = [
    "SchemaDiff",
    "SchemaMismatchError",
    "Warehouse",
    "WarehouseDamaged",
    "WarehouseUnavailable",
    "date_bound",
    "default_warehouse_url",
    "is_delta_url",
    "redact_url",
    "to_utc",
    "utcnow",
]
