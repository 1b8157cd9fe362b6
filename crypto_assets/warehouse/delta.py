"""The columnar warehouse: one Delta Lake table per asset (`deltalake`, the delta-rs binding).

Layout: `<root>/<table>/` holds Parquet files and the `_delta_log/` transaction log. Time-partitioned
tables carry a hidden partition column `_part` (the UTC day of the time column; the month for
`date` columns), so a window write and a window read touch only the days they cover.

Why it fits the system (measurements and the alternatives: docs/storage.md):
- A window write is ONE commit: `write_deltalake(mode="overwrite", predicate=<window>)` removes the
  window's rows and adds the new files atomically; readers see the old version or the new one,
  never a mix, and a crashed writer leaves only unreferenced files.
- Several processes write at once (runs, steps, backfills): each commit is an atomic
  put-if-absent of the next log entry; a writer that loses the race gets `CommitFailedError`
  when the other commit touched its window, and retries here on the new version. Writers of
  different windows do not conflict.
- Readers (API, notebooks) never take a lock: they read a snapshot.
- Object storage: the same tables on S3/GCS/Azure (`delta+s3://bucket/prefix`); credentials come
  from the usual environment variables of each cloud (docs/scale.md).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from crypto_assets.warehouse.schema import TableSpec
from crypto_assets.warehouse.store import (
    SchemaDiff,
    Warehouse,
    WarehouseUnavailable,
    date_bound,
    default_warehouse_url,
    format_times,
    lists_any_mask,
    retry_pause,
    to_utc,
)

PART = "_part"  # hidden partition column: never read back, never in a TableSpec
STORAGE_OPTIONS_ENV = "CRYPTO_WAREHOUSE_STORAGE_OPTIONS"  # JSON object, e.g. {"AWS_REGION": "eu-west-1"}
COMMIT_ATTEMPTS = 30
_KIND_OF_DELTA_TYPE = {"double": "float", "float": "float", "long": "int", "integer": "int", "short": "int",
                       "boolean": "bool", "timestamp": "datetime", "timestamp_ntz": "datetime", "date": "date",
                       "string": "str"}


def _root(url: str) -> str:
    """`delta:///abs/path` -> `/abs/path`; `delta+s3://bucket/prefix` -> `s3://bucket/prefix`."""
    scheme, rest = url.split("://", 1)
    if scheme in ("delta", "delta+file"):
        path = rest if rest.startswith("/") else os.path.abspath(rest)
        os.makedirs(path, exist_ok=True)
        return path.rstrip("/") or "/"
    return f"{scheme.split('+', 1)[1]}://{rest}".rstrip("/")


def _arrow_type(kind: str):
    import pyarrow as pa

    return {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "datetime": pa.timestamp("us", tz="UTC"),
            "date": pa.date32(), "str": pa.string(), "text": pa.string()}[kind]


def _part_format(spec: TableSpec) -> str:
    """`_part` is the UTC day of the time column, the month for tables keyed by date."""
    return "%Y-%m" if spec.column(spec.time_column).kind == "date" else "%Y-%m-%d"


def _window_bounds(spec: TableSpec, start, end) -> tuple:
    """(lo, hi, part_lo, part_hi) for the window [start, end) of the time column: the bounds as the
    column compares them, and the first and last `_part` the window touches (None: unbounded)."""
    is_date = spec.column(spec.time_column).kind == "date"
    fmt = _part_format(spec)
    lo = hi = part_lo = part_hi = None
    if start is not None:
        lo = date_bound(start) if is_date else pd.Timestamp(to_utc(start))
        part_lo = lo.strftime(fmt)
    if end is not None:
        hi = date_bound(end) if is_date else pd.Timestamp(to_utc(end))
        part_hi = (pd.Timestamp(hi) - (pd.Timedelta(days=1) if is_date else pd.Timedelta("1us"))).strftime(fmt)
    return lo, hi, part_lo, part_hi


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value) -> str:
    """A SQL literal for a delta-rs predicate (values are escaped, never spliced raw)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value)) if isinstance(value, (float, np.floating)) else str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


class DeltaWarehouse(Warehouse):
    """The warehouse on Delta Lake tables (see the module docstring)."""

    dialect = "delta"

    def __init__(self, url: str | None = None, storage_options: dict | None = None):
        self.url = url or default_warehouse_url()
        self.root = _root(self.url)
        env_options = os.environ.get(STORAGE_OPTIONS_ENV)
        self.storage_options = storage_options or (json.loads(env_options) if env_options else None)

    @cached_property
    def _dl(self):
        import deltalake  # heavy: only when a Delta warehouse is used

        return deltalake

    def _path(self, spec: TableSpec) -> str:
        return f"{self.root}/{spec.name}"

    def _open(self, spec: TableSpec):
        """The table's newest version, or None when it does not exist."""
        try:
            return self._dl.DeltaTable(self._path(spec), storage_options=self.storage_options)
        except self._dl.exceptions.TableNotFoundError:
            return None
        except (self._dl.exceptions.DeltaError, OSError) as exc:
            raise WarehouseUnavailable(f"{spec.name} at {self.display_url}: {type(exc).__name__}: "
                                       f"{str(exc).splitlines()[0][:300]}") from exc

    # -- schema ---------------------------------------------------------------------------

    def arrow_schema(self, spec: TableSpec):
        import pyarrow as pa

        fields = [pa.field(c.name, _arrow_type(c.kind), nullable=c.nullable and c.name not in spec.primary_key)
                  for c in spec.columns]
        if spec.time_column is not None:
            fields.append(pa.field(PART, pa.string(), nullable=False))
        return pa.schema(fields)

    def has_table(self, spec: TableSpec) -> bool:
        return self._open(spec) is not None

    def ensure_table(self, spec: TableSpec) -> None:
        if self.has_table(spec):
            return
        try:
            self._dl.DeltaTable.create(
                self._path(spec), self.arrow_schema(spec), mode="ignore",
                partition_by=[PART] if spec.time_column is not None else None,
                description=spec.description or None, storage_options=self.storage_options,
            )
        except self._dl.exceptions.CommitFailedError:  # another process created it first
            pass

    def schema_diff(self, spec: TableSpec) -> SchemaDiff:
        table = self._open(spec)
        if table is None:
            return SchemaDiff(spec.name, missing_table=True)
        found = {f.name: getattr(f.type, "type", str(f.type)) for f in table.schema().fields if f.name != PART}
        missing = tuple(c.name for c in spec.columns if c.name not in found)
        unexpected = tuple(n for n in found if n not in spec.column_names)
        mistyped = tuple(
            f"{c.name}: expected {c.kind}, found {found[c.name]}"
            for c in spec.columns
            if c.name in found and _KIND_OF_DELTA_TYPE.get(found[c.name]) != ("str" if c.kind == "text" else c.kind)
        )
        return SchemaDiff(spec.name, False, missing, unexpected, mistyped)

    def migrate(self, spec: TableSpec) -> list[str]:
        """Create the table or add the columns the code declares and the table lacks (additive only;
        strings are unbounded here, so nothing needs widening)."""
        diff = self.schema_diff(spec)
        if diff.missing_table:
            self.ensure_table(spec)
            return [f"created {spec.name}"]
        done = []
        if diff.missing:
            dl = self._dl
            fields = []
            for name in diff.missing:
                kind = spec.column(name).kind
                delta_type = {"float": "double", "int": "long", "bool": "boolean", "datetime": "timestamp",
                              "date": "date"}.get(kind, "string")
                fields.append(dl.Field(name, dl.schema.PrimitiveType(delta_type), nullable=True))
                done.append(f"{spec.name}: added {name} {delta_type}")
            self._open(spec).alter.add_columns(fields)
        self._forget_schema(spec)
        return done

    # -- writes ---------------------------------------------------------------------------

    def replace_window(self, spec: TableSpec, df: pd.DataFrame, start, end, *, where: dict | None = None) -> int:
        """Replace rows with `start <= time_column < end` (and matching `where`) by `df`, in one commit."""
        start, end = to_utc(start), to_utc(end)
        frame = self._conform(spec, df)
        self._check_window(spec, frame, start, end)
        lo, hi, part_lo, part_hi = _window_bounds(spec, start, end)
        # The `_part` bounds let delta-rs skip every other day's files when finding what to replace.
        predicate = " AND ".join([
            f"{_quote(PART)} >= {_literal(part_lo)}", f"{_quote(PART)} <= {_literal(part_hi)}",
            f"{_quote(spec.time_column)} >= {_literal(lo.isoformat())}",
            f"{_quote(spec.time_column)} < {_literal(hi.isoformat())}",
            *(f"{_quote(c)} = {_literal(v)}" for c, v in (where or {}).items()),
        ])
        return self._commit(spec, frame, predicate)

    def replace_all(self, spec: TableSpec, df: pd.DataFrame, *, where: dict | None = None) -> int:
        """Replace the whole table (or the rows matching `where`) by `df`, in one commit."""
        predicate = " AND ".join(f"{_quote(c)} = {_literal(v)}" for c, v in (where or {}).items()) or None
        return self._commit(spec, self._conform(spec, df), predicate)

    def _commit(self, spec: TableSpec, frame: pd.DataFrame, predicate: str | None) -> int:
        self.verify_schema(spec)
        self._check_unique(spec, frame)
        data, properties = self._to_arrow(spec, frame), self._writer_properties(spec)
        dl = self._dl
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                dl.write_deltalake(
                    self._path(spec), data, mode="overwrite", predicate=predicate,
                    partition_by=[PART] if spec.time_column is not None else None,
                    storage_options=self.storage_options, writer_properties=properties,
                )
                return len(frame)
            except dl.exceptions.CommitFailedError:
                # Another writer committed to the same rows first: retry on its version.
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(retry_pause(attempt, 0.02))
            except (dl.exceptions.DeltaError, OSError) as exc:
                raise WarehouseUnavailable(f"writing {spec.name} at {self.display_url}: {type(exc).__name__}: "
                                           f"{str(exc).splitlines()[0][:300]}") from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _writer_properties(self, spec: TableSpec):
        """Dictionary encoding only for strings (keys, labels repeat; floats rarely do, and encoding
        them as dictionaries first made a wide write ~3x slower); LZ4: the fastest to write and read here."""
        dl = self._dl
        strings = {c.name: dl.ColumnProperties(dictionary_enabled=True) for c in spec.columns
                   if c.kind in ("str", "text")}
        return dl.WriterProperties(compression="LZ4_RAW",
                                   default_column_properties=dl.ColumnProperties(dictionary_enabled=False),
                                   column_properties=strings)

    def _to_arrow(self, spec: TableSpec, frame: pd.DataFrame):
        import pyarrow as pa

        arrays = []
        for col in spec.columns:
            s = frame[col.name]
            kind = col.kind
            if kind == "float":
                arr = pa.array(pd.to_numeric(s, errors="raise").to_numpy(dtype="float64", na_value=np.nan),
                               from_pandas=True)
            elif kind == "datetime":
                # Microseconds, like the SQL warehouses (DATETIME(6)): finer digits are dropped.
                arr = pa.array(s.dt.floor("us"), type=pa.timestamp("us", tz="UTC"), from_pandas=True)
            elif kind == "date":
                arr = pa.array(pd.to_datetime(s).dt.date.where(s.notna(), None).astype(object), type=pa.date32(),
                               from_pandas=True)
            elif kind == "int":
                arr = pa.array(s.astype("Int64"), type=pa.int64(), from_pandas=True)
            elif kind == "bool":
                arr = pa.array(s.astype("boolean"), type=pa.bool_(), from_pandas=True)
            else:
                values = s.astype(object).where(s.notna(), None)
                if not values.map(lambda v: v is None or isinstance(v, str)).all():
                    values = values.map(lambda v: v if v is None or isinstance(v, str) else str(v))
                arr = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
            arrays.append(arr)
        if spec.time_column is not None:
            times = pd.to_datetime(frame[spec.time_column])
            part = format_times(times if spec.column(spec.time_column).kind == "date" else times.dt.floor("D"),
                                _part_format(spec))
            arrays.append(pa.array(part, type=pa.string()))
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema(spec))

    # -- reads ----------------------------------------------------------------------------

    def read(self, spec: TableSpec, start=None, end=None, *, columns: Sequence[str] | None = None,
             filters: dict[str, Iterable] | None = None, lists_any: dict[str, Sequence[str]] | None = None,
             order_by: Sequence[str] | None = None, descending: bool = False,
             limit: int | None = None) -> pd.DataFrame:
        import pyarrow.compute as pc

        wanted = self._wanted(spec, columns)
        for col in [*(filters or {}), *(lists_any or {})]:
            if col not in spec.column_names:
                raise KeyError(f"{spec.name} has no column {col!r} to filter on")
        if spec.time_column is None and (start is not None or end is not None):
            raise ValueError(f"{spec.name} has no time column; read it without start/end")
        table = self._open(spec)
        if table is None:
            return self._typed(spec, wanted, None)
        self.verify_schema(spec, action="read")
        expr, parts = None, []

        def both(e):
            nonlocal expr
            expr = e if expr is None else expr & e

        if spec.time_column is not None:
            lo, hi, part_lo, part_hi = _window_bounds(spec, start, end)
            if lo is not None:
                both(pc.field(spec.time_column) >= lo)
                parts.append((PART, ">=", part_lo))
            if hi is not None:
                both(pc.field(spec.time_column) < hi)
                parts.append((PART, "<=", part_hi))
        for col, values in (filters or {}).items():
            both(pc.field(col).isin(self._typed_values(spec, col, values)))
        order = list(order_by) if order_by else [c for c in spec.primary_key if c in wanted]
        needed = list(dict.fromkeys([*wanted, *order, *(lists_any or {})]))
        try:
            data = self._scan(table, spec, parts).to_table(columns=needed, filter=expr)
        except OSError as exc:
            raise WarehouseUnavailable(f"reading {spec.name} at {self.display_url}: {exc}") from exc
        for col, tickers in (lists_any or {}).items():
            data = data.filter(lists_any_mask(data.column(col).to_pylist(), tickers))
        rows = None  # the order to take the scanned rows in (None: as scanned)
        if order and data.num_rows > 1:
            rows = pc.sort_indices(data.select(order), sort_keys=[
                (c, "descending" if descending else "ascending") for c in order]).to_numpy()
            if np.array_equal(rows, np.arange(len(rows))):
                rows = None
        if limit is not None:
            rows = (rows if rows is not None else np.arange(data.num_rows))[: int(limit)]
        return self._typed(spec, wanted, data, rows)

    def _scan(self, table, spec: TableSpec, parts: list[tuple]):
        """A pyarrow dataset over the snapshot's files in the partitions `parts` selects.

        Local tables: exactly the files the log's newest version lists, read by pyarrow itself (three
        times faster here than the dataset deltalake builds, which re-derives every file's partition
        and statistics expressions). Tables using reader features that change how files are read
        (deletion vectors, column mapping) and object storage go through deltalake's own dataset."""
        import pyarrow.dataset as pds

        protocol = table.protocol()
        local = "://" not in self.root
        if local and protocol.min_reader_version == 1 and not protocol.reader_features:
            files = table.file_uris(file_pruning_predicate=parts or None)
            schema = self.arrow_schema(spec)
            schema = schema.remove(schema.get_field_index(PART)) if PART in schema.names else schema
            return pds.dataset(files, schema=schema, format="parquet")
        dataset = table.to_pyarrow_dataset()
        if parts:
            import pyarrow.compute as pc

            ops = {">=": lambda f, v: f >= v, "<=": lambda f, v: f <= v}
            expr = None
            for col, op, value in parts:
                e = ops[op](pc.field(col), value)
                expr = e if expr is None else expr & e
            dataset = dataset.filter(expr)
        return dataset

    @staticmethod
    def _typed_values(spec: TableSpec, col: str, values: Iterable) -> list:
        kind = spec.column(col).kind
        values = list(values)
        if kind == "datetime":
            return [pd.Timestamp(to_utc(v)) for v in values]
        if kind == "date":
            return [pd.Timestamp(v).date() for v in values]
        if kind == "float":
            return [float(v) for v in values]
        if kind == "int":
            return [int(v) for v in values]
        return [str(v) for v in values]

    def _typed(self, spec: TableSpec, names: list[str], data, rows: np.ndarray | None = None) -> pd.DataFrame:
        """Arrow columns (taken in the order `rows`) -> a frame of the declared dtypes, the same as
        the SQL warehouse returns.

        Built for the wide feature table (~200 float columns, a year = 2.8 M rows, 4.8 GB): every
        float column is gathered straight into ONE preallocated 2-D block that becomes the frame's
        float block without a copy, and the other columns are inserted at their places. (Arrow's
        `take` + `to_pandas` allocated and copied the whole table twice more.)"""
        if data is None:
            data = self.arrow_schema(spec).empty_table()
        kinds = {c.name: c.kind for c in spec.columns}
        n = data.num_rows if rows is None else len(rows)
        floats = [name for name in names if kinds[name] == "float"]
        block = np.empty((len(floats), n), dtype="float64")
        for j, name in enumerate(floats):
            values = data.column(name).to_numpy()  # one column at a time: the temporary is reused
            if rows is None:
                block[j] = values
            else:
                np.take(values, rows, out=block[j])
        frame = pd.DataFrame(block.T, columns=floats, copy=False)
        for position, name in enumerate(names):
            kind = kinds[name]
            if kind == "float":
                continue
            column = data.column(name) if rows is None else data.column(name).take(rows)
            if kind in ("str", "text"):
                values = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
            elif kind == "datetime":
                values = pd.Series(column.to_pandas(), dtype="datetime64[us, UTC]")
            elif kind == "int":
                values = pd.Int64Dtype().__from_arrow__(column)
            elif kind == "bool":
                values = pd.BooleanDtype().__from_arrow__(column)
            else:  # date
                values = pd.Series(column.to_pylist(), dtype=object)
            frame.insert(position, name, values)  # a Series of dtype object stays object (not `str`)
        return frame

    def count(self, spec: TableSpec) -> int:
        table = self._open(spec)
        return 0 if table is None else int(table.count())

    # -- upkeep ---------------------------------------------------------------------------

    def optimize(self, spec: TableSpec, *, retention_hours: int = 168) -> dict:
        """Compact each day's small files into one, checkpoint the log, and delete files no version
        newer than `retention_hours` references (readers of older snapshots keep theirs)."""
        table = self._open(spec)
        if table is None:
            return {"table": spec.name, "skipped": "does not exist"}
        before = len(table.file_uris())
        metrics = table.optimize.compact()
        table = self._open(spec)
        table.create_checkpoint()
        removed = table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
        return {"table": spec.name, "files_before": before, "files_after": len(self._open(spec).file_uris()),
                "files_compacted": metrics.get("numFilesRemoved", 0), "files_deleted": len(removed)}


__all__ = ["DeltaWarehouse", "PART"]
