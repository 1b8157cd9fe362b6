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
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote

import numpy as np
import pandas as pd

from crypto_assets.warehouse.arrow_read import Gather, arrow_fields
from crypto_assets.warehouse.schema import TableSpec
from crypto_assets.warehouse.store import (
    SchemaDiff,
    Warehouse,
    WarehouseDamaged,
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
log = logging.getLogger(__name__)

# -- damage detection (local tables) -------------------------------------------------------------
# A Delta table whose log was damaged can open silently at an older version, or not at all, which
# delta-rs reports as "no table": both would read as "no data". So every open of a local table
# first lists its `_delta_log/` (and stats the commits after the newest checkpoint: what delta-rs
# reads anyway) and refuses a log with a gap, an empty commit, a checkpoint named but gone, or
# versions lower than this warehouse once committed (HIGH_WATER). Measured: docs/storage.md.

LOG = "_delta_log"
# In each table's folder: the newest version this warehouse committed ({"version": N}). A log that
# ends below it lost its newest commits (a deleted last commit file leaves no other trace).
# Vacuum and readers skip files starting with "_".
HIGH_WATER = "_crypto_assets_version.json"
KEEP_RUST_BACKTRACE_ENV = "CRYPTO_KEEP_RUST_BACKTRACE"  # "1": leave RUST_BACKTRACE as it is
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT_FILE = re.compile(r"^(\d{20})\.checkpoint(?:\.\d{10}\.\d{10}|\.[0-9A-Za-z-]+)?\.(?:parquet|json)$")
_COMPACTED_FILE = re.compile(r"^(\d{20})\.(\d{20})\.compacted\.json$")


@dataclass
class _LogListing:
    """One listing of a local table's `_delta_log/` (see `_list_log`)."""

    folder: str
    exists: bool = False  # the table's folder
    commits: dict[int, os.DirEntry] = field(default_factory=dict)
    checkpoints: dict[int, list[os.DirEntry]] = field(default_factory=dict)
    compacted: list[tuple[int, int]] = field(default_factory=list)
    last_checkpoint: int | None = None  # the version `_last_checkpoint` names
    high_water: int | None = None

    @property
    def versions(self) -> list[int]:
        return [*self.commits, *self.checkpoints, *(hi for _lo, hi in self.compacted)]

    @property
    def newest(self) -> int | None:
        """The highest version anything in the log (or the high-water mark) speaks of."""
        known = [*self.versions, *(v for v in (self.last_checkpoint, self.high_water) if v is not None)]
        return max(known) if known else None


def _read_version_file(path: str, key: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            return int(json.loads(fh.read() or b"null")[key])
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError, IndexError):
        return -1  # present but unreadable: reported by the caller


def _list_log(folder: str) -> _LogListing:
    """List `folder/_delta_log`. The high-water mark is read FIRST: a writer raises it only after
    its commit file exists, so a commit landing between the two reads never looks like a lost one."""
    listing = _LogListing(folder, high_water=_read_version_file(f"{folder}/{HIGH_WATER}", "version"))
    try:
        entries = os.scandir(f"{folder}/{LOG}")
    except FileNotFoundError:
        listing.exists = os.path.isdir(folder)
        return listing
    listing.exists = True
    with entries:
        for entry in entries:
            name = entry.name
            if (m := _COMMIT_FILE.match(name)) is not None:
                listing.commits[int(m[1])] = entry
            elif (m := _CHECKPOINT_FILE.match(name)) is not None:
                listing.checkpoints.setdefault(int(m[1]), []).append(entry)
            elif (m := _COMPACTED_FILE.match(name)) is not None:
                listing.compacted.append((int(m[1]), int(m[2])))
            elif name == "_last_checkpoint":
                listing.last_checkpoint = _read_version_file(entry.path, "version")
    return listing


def _spans(numbers: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    out, numbers = [], sorted(numbers)
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ", ".join(out)


def _log_problems(listing: _LogListing, *, parse: bool = False) -> list[str]:
    """What is wrong with a listed log ([]: nothing found). `parse`: also parse every commit read
    (after the newest checkpoint) as JSON lines: the CLI check and the error path do, reads do not
    (delta-rs parses them and fails on a bad one: `_open` then asks again with `parse`)."""
    problems = []
    if listing.high_water == -1:
        problems.append(f"{HIGH_WATER} is unreadable")
    if listing.last_checkpoint == -1:
        problems.append(f"{LOG}/_last_checkpoint is unreadable")
    base = None  # the newest checkpoint whose files are not empty
    for version in sorted(listing.checkpoints, reverse=True):
        empty = [e.name for e in listing.checkpoints[version] if _size(e) == 0]
        if not empty:
            base = version
            break
        problems.append(f"checkpoint file {LOG}/{empty[0]} is empty (0 bytes)")
    if not listing.commits and base is None:
        return problems  # no log (or no commit): `_open` tells an absent table from a lost log
    first = 0 if base is None else base + 1
    newest_commit = max(listing.commits, default=-1)
    covered = set(listing.commits) | {v for lo, hi in listing.compacted for v in range(lo, hi + 1)}
    missing = [v for v in range(first, newest_commit + 1) if v not in covered]
    if missing:
        problems.append(f"commit files missing from {LOG}: version{'s' if len(missing) > 1 else ''} {_spans(missing)}")
    for version in sorted(v for v in listing.commits if v >= first):
        entry = listing.commits[version]
        if _size(entry) == 0:
            problems.append(f"commit file {LOG}/{entry.name} is empty (0 bytes)")
        elif parse:
            bad = _unparsable_line(entry.path)
            if bad:
                problems.append(f"commit file {LOG}/{entry.name} is not valid JSON ({bad})")
    present = max(listing.versions, default=-1)
    if listing.last_checkpoint is not None and listing.last_checkpoint > -1 \
            and listing.last_checkpoint not in listing.checkpoints:
        problems.append(f"{LOG}/_last_checkpoint names the checkpoint of version {listing.last_checkpoint}, "
                        "whose file is gone")
    if listing.high_water is not None and listing.high_water > present:
        lost = f"{present + 1}" if listing.high_water == present + 1 else f"{present + 1}-{listing.high_water}"
        problems.append(f"commit version{'s' if listing.high_water > present + 1 else ''} {lost} "
                        f"{'are' if listing.high_water > present + 1 else 'is'} gone from {LOG}: this warehouse "
                        f"committed version {listing.high_water}, the log now ends at version {present} "
                        "(the data of the lost commits is no longer part of the table)")
    return problems


def _size(entry: os.DirEntry) -> int | None:
    """The entry's size; None when it went away since the listing (log cleanup, a repair)."""
    try:
        return entry.stat().st_size
    except FileNotFoundError:
        return None


def _unparsable_line(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"line {number}: {type(exc).__name__}"
    except FileNotFoundError:
        return None  # went away since the listing
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def _leftovers(listing: _LogListing) -> str | None:
    """Why a folder without a readable log is not simply "no table": data files or a log remain."""
    if not listing.exists:
        return None
    data = 0
    with os.scandir(listing.folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name.startswith(f"{PART}="):
                data += sum(1 for _root, _dirs, files in os.walk(entry.path) for f in files if f.endswith(".parquet"))
            elif entry.is_file() and entry.name.endswith(".parquet"):
                data += 1
    log_files = len(os.listdir(f"{listing.folder}/{LOG}")) if os.path.isdir(f"{listing.folder}/{LOG}") else 0
    if not (data or log_files or listing.high_water is not None):
        return None
    has_log = "holds no readable commit" if os.path.isdir(f"{listing.folder}/{LOG}") else "is missing"
    what = [f"{data} data file{'s' if data != 1 else ''} remain"] if data else []
    if listing.high_water is not None and listing.high_water > -1:
        what.append(f"this warehouse committed version {listing.high_water}")
    return f"its transaction log ({LOG}/) {has_log}, but {' and '.join(what) or 'log files remain'}"


def _short(exc: BaseException, folder: str | None = None) -> str:
    """`Type: first line` of an error, with the table's folder cut out of paths."""
    text = (str(exc).splitlines() or [""])[0][:300]
    if folder:
        text = text.replace(folder + "/", "").replace(folder.lstrip("/") + "/", "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _file_problems(folder: str, files: dict[str, int | None], *, deep: bool, footers: bool = True) -> list[str]:
    """Damage of the data files `files` ({path relative to the table folder, as logged: size in
    bytes as logged}): missing, another size than logged, footer unreadable (`footers`), or
    (`deep`) unreadable when read whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    problems = []
    for rel, size in files.items():
        path = f"{folder}/{unquote(rel)}"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            problems.append(f"data file {rel} is missing")
            continue
        if size is not None and st.st_size != size:
            problems.append(f"data file {rel} has {st.st_size} bytes, the log says {size} (truncated or overwritten)")
            continue
        if not (footers or deep):
            continue
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        if not deep and _good_footers.get(path) == stamp:
            continue  # Delta data files never change: a footer read once stays good while the file is the same
        try:
            parquet = pq.ParquetFile(path)
            if deep:
                parquet.read()
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"data file {rel} is unreadable ({_short(exc, folder)})")
            continue
        if len(_good_footers) > 500_000:
            _good_footers.clear()
        _good_footers[path] = stamp
    return problems


_good_footers: dict[str, tuple[int, int, int]] = {}  # path -> (size, mtime_ns, inode) of a footer read fine


def _disk_note(folder: str, exc: BaseException, need_bytes: int) -> str:
    """" (the disk is full ...)" when a failed write looks like one, else ""."""
    text = str(exc)
    if "No space left on device" in text or "os error 28" in text:
        return " (the disk holding the warehouse is full)"
    path = folder
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        free = shutil.disk_usage(path or "/").free
    except OSError:
        return ""
    if free < need_bytes + (1 << 20):
        return f" (the disk holding the warehouse has {free} bytes free: probably full)"
    return ""


# Damage a read found in data files, per table folder: (table version it was found at, problem).
# The exporter and /ready report it (the cheap check does not read files); a new version forgets it.
_seen_damage: dict[str, tuple[int, str]] = {}
_seen_lock = threading.Lock()


def _root(url: str) -> str:
    """`delta:///abs/path` -> `/abs/path`; `delta+s3://bucket/prefix` -> `s3://bucket/prefix`.
    Creates nothing: a table's folder appears with its first write (a check of a mistyped path must
    not leave a new, empty warehouse behind)."""
    scheme, rest = url.split("://", 1)
    if scheme in ("delta", "delta+file"):
        path = rest if rest.startswith("/") else os.path.abspath(rest)
        return path.rstrip("/") or "/"
    return f"{scheme.split('+', 1)[1]}://{rest}".rstrip("/")


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


def _whole_days(spec: TableSpec, lo, hi) -> bool:
    """Whether [lo, hi) of a timestamp column is exactly the `_part` days it touches (daily `_part`)."""
    if spec.column(spec.time_column).kind == "date" or lo is None or hi is None:
        return False
    return lo == lo.floor("D") and hi == hi.floor("D") and hi > lo


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value) -> str:
    """A SQL literal for a delta-rs predicate (values are escaped, never spliced raw)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value)) if isinstance(value, (float, np.floating)) else str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


def _not_any(keys: list[dict]) -> str:
    """A predicate true for rows of none of `keys` (columns are NOT NULL, so NOT never meets NULL)."""
    return "NOT (" + " OR ".join(
        "(" + " AND ".join(f"{_quote(c)} = {_literal(v)}" for c, v in key.items()) + ")" for key in keys) + ")"


def _places(keys, order: list[str], descending: bool, lists_any: dict | None, limit: int | None) -> np.ndarray | None:
    """Each scanned row's place in the result (-1: not in it), from the first scan's `keys`; None:
    every row, in the order scanned (already in key order, nothing dropped)."""
    import pyarrow.compute as pc

    n = keys.num_rows
    chosen = None  # the scanned rows of the result, in result order
    if lists_any:
        kept = np.ones(n, dtype=bool)
        for col, tickers in lists_any.items():
            kept &= lists_any_mask(keys.column(col).to_pylist(), tickers)
        chosen = None if kept.all() else np.flatnonzero(kept)
    if order and (n if chosen is None else len(chosen)) > 1:
        sortable = keys.select(order) if chosen is None else keys.select(order).take(chosen)
        rows = pc.sort_indices(sortable, sort_keys=[(c, "descending" if descending else "ascending")
                                                    for c in order]).to_numpy()
        if not np.array_equal(rows, np.arange(len(rows))):  # files written in key order often are
            chosen = rows if chosen is None else chosen[rows]
    if limit is not None and int(limit) < (n if chosen is None else len(chosen)):
        chosen = (np.arange(n) if chosen is None else chosen)[: int(limit)]
    if chosen is None:
        return None
    places = np.full(n, -1, dtype=np.intp)
    places[chosen] = np.arange(len(chosen))
    return places


def _put_batch(out: Gather, batch, names: list[str], places: np.ndarray | None, offset: int) -> None:
    """Put the columns `names` of a batch of scanned rows (from row `offset` on) at their places."""
    import pyarrow as pa

    if places is None:
        where = slice(offset, offset + batch.num_rows)
    else:
        where = places[offset:offset + batch.num_rows]
        kept = where >= 0
        if not kept.all():
            if not kept.any():
                return
            batch, where = batch.filter(pa.array(kept)), where[kept]
    for name in names:
        out.put(name, batch.column(name), where)


class DeltaWarehouse(Warehouse):
    """The warehouse on Delta Lake tables (see the module docstring)."""

    dialect = "delta"
    # A read of at most this many columns besides the sort keys scans once and holds them as Arrow
    # while placing them (a copy of a few columns: faster); wider reads stream them in a second scan.
    one_scan_columns = 16

    def __init__(self, url: str | None = None, storage_options: dict | None = None):
        self.url = url or default_warehouse_url()
        self.root = _root(self.url)
        env_options = os.environ.get(STORAGE_OPTIONS_ENV)
        self.storage_options = storage_options or (json.loads(env_options) if env_options else None)

    @cached_property
    def _dl(self):
        # A write that meets a full disk makes a delta-rs worker thread panic (the write itself fails
        # cleanly: WarehouseUnavailable below); with RUST_BACKTRACE=1 the panic printed a backtrace
        # of a handled condition. Rust reads the variable at its first panic, so set it before any.
        if os.environ.get(KEEP_RUST_BACKTRACE_ENV) != "1":
            os.environ["RUST_BACKTRACE"] = "0"
        import deltalake  # heavy: only when a Delta warehouse is used

        return deltalake

    @property
    def local(self) -> bool:
        """Tables in a local folder (damage checks list and stat their files; object storage is
        checked by what delta-rs itself reports)."""
        return "://" not in self.root

    def _path(self, spec: TableSpec) -> str:
        return f"{self.root}/{spec.name}"

    def exists(self) -> bool:
        """Whether the warehouse's folder exists (object storage: always assumed)."""
        return not self.local or os.path.isdir(self.root)

    def _open(self, spec: TableSpec):
        """The table's newest version, or None when it does not exist; `WarehouseDamaged` when its
        log is damaged, or its folder holds data files without a readable log."""
        path = self._path(spec)
        listing = None
        if self.local:
            try:
                listing = _list_log(path)
            except OSError as exc:  # e.g. permissions
                raise WarehouseUnavailable(f"{spec.name} at {self.display_url}: {_short(exc)}") from exc
            problems = _log_problems(listing)
            if problems:
                raise WarehouseDamaged(spec.name, "; ".join(problems))
        # An undamaged local table whose log has not moved since the last open is the same snapshot:
        # reuse its DeltaTable instead of loading the log again (the API reads per request).
        seen = (max(listing.versions), len(listing.versions)) if listing is not None and listing.versions else None
        cached = self._tables.get(path) if seen is not None else None
        if cached is not None and cached[0] == seen:
            return cached[1]
        dl = self._dl
        try:
            table = dl.DeltaTable(path, storage_options=self.storage_options)
        except dl.exceptions.TableNotFoundError:
            left = _leftovers(listing) if listing is not None else None
            if left:
                raise WarehouseDamaged(spec.name, left) from None
            return None
        except (dl.exceptions.DeltaError, OSError) as exc:
            if listing is not None:
                problems = _log_problems(listing, parse=True)
                if problems:
                    raise WarehouseDamaged(spec.name, "; ".join(problems)) from exc
                if isinstance(exc, dl.exceptions.DeltaError) and _LOG_DAMAGE.search(str(exc)):
                    # The log is there and listed whole, yet delta-rs cannot parse it.
                    raise WarehouseDamaged(spec.name, f"its transaction log cannot be read "
                                                      f"({_short(exc, path)})") from exc
            raise WarehouseUnavailable(f"{spec.name} at {self.display_url}: {_short(exc)}") from exc
        if listing is not None and listing.newest is not None and table.version() < listing.newest:
            raise WarehouseDamaged(spec.name, f"{LOG} goes up to version {listing.newest}, but the table opens at "
                                              f"version {table.version()} only")
        if seen is not None:
            self._tables[path] = (seen, table)
        return table

    @cached_property
    def _tables(self) -> dict:
        """{table path: ((newest log version, log entries), DeltaTable)}: the snapshots `_open` reuses."""
        return {}

    def _note_version(self, spec: TableSpec) -> None:
        """Raise the table's high-water mark to its newest commit (after each commit of this
        warehouse). A mark that cannot be written is logged, never a reason to fail a write that
        committed."""
        if not self.local:
            return
        path = self._path(spec)
        try:
            listing = _list_log(path)
            newest = max(listing.versions, default=None)
            if newest is None or (listing.high_water is not None and listing.high_water >= newest):
                return
            tmp = f"{path}/{HIGH_WATER}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "w") as fh:
                json.dump({"version": newest, "note": "the newest version crypto-assets committed; a log ending "
                                                      "below it lost commits (docs/storage.md)"}, fh)
            os.replace(tmp, f"{path}/{HIGH_WATER}")
        except OSError as exc:
            log.warning("%s: could not record the table's newest version (%s); a later loss of its newest commit "
                        "would not be detected", spec.name, _short(exc))

    # -- schema ---------------------------------------------------------------------------

    def arrow_schema(self, spec: TableSpec):
        import pyarrow as pa

        fields = arrow_fields(spec)
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
        self._note_version(spec)

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
            self._note_version(spec)
        self._forget_schema(spec)
        return done

    # -- writes ---------------------------------------------------------------------------

    def replace_window(self, spec: TableSpec, df: pd.DataFrame, start, end, *, where: dict | None = None,
                       keep: Sequence[dict] | None = None) -> int:
        """Replace rows with `start <= time_column < end` (and matching `where`, and of no key in
        `keep`) by `df`, in one commit."""
        start, end = to_utc(start), to_utc(end)
        frame = self._conform(spec, df)
        self._check_window(spec, frame, start, end)
        keep = self._check_keep(spec, frame, keep)
        lo, hi, part_lo, part_hi = _window_bounds(spec, start, end)
        # The `_part` bounds let delta-rs skip every other day's files when finding what to replace.
        # A window of whole UTC days (a backfill chunk's) is exactly its days' `_part`s: without a time
        # term delta-rs drops those files whole instead of reading their rows to filter them (a day of
        # ml_features: 1.12 s instead of 1.25 s, median of 6, load ~3.5).
        whole_days = _whole_days(spec, lo, hi)
        predicate = " AND ".join([
            f"{_quote(PART)} >= {_literal(part_lo)}", f"{_quote(PART)} <= {_literal(part_hi)}",
            *([] if whole_days else [f"{_quote(spec.time_column)} >= {_literal(lo.isoformat())}",
                                     f"{_quote(spec.time_column)} < {_literal(hi.isoformat())}"]),
            *(f"{_quote(c)} = {_literal(v)}" for c, v in (where or {}).items()),
            *([_not_any(keep)] if keep else []),
        ])
        return self._commit(spec, frame, predicate)

    def replace_all(self, spec: TableSpec, df: pd.DataFrame, *, where: dict | None = None) -> int:
        """Replace the whole table (or the rows matching `where`) by `df`, in one commit."""
        predicate = " AND ".join(f"{_quote(c)} = {_literal(v)}" for c, v in (where or {}).items()) or None
        return self._commit(spec, self._conform(spec, df), predicate)

    def _commit(self, spec: TableSpec, frame: pd.DataFrame, predicate: str | None) -> int:
        self.verify_schema(spec)
        if self.local:  # never commit on top of a damaged log (verify_schema's open is cached per process)
            listing = _list_log(self._path(spec))
            problems = _log_problems(listing)
            if not problems and not listing.commits and not listing.checkpoints:
                problems = [p for p in [_leftovers(listing)] if p]
            if problems:
                raise WarehouseDamaged(spec.name, "; ".join(problems) + "; nothing was written")
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
                self._note_version(spec)
                return len(frame)
            except dl.exceptions.CommitFailedError:
                # Another writer committed to the same rows first: retry on its version.
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(retry_pause(attempt, 0.02))
            except (dl.exceptions.DeltaError, OSError) as exc:
                raise WarehouseUnavailable(f"writing {spec.name} at {self.display_url}: {type(exc).__name__}: "
                                           f"{str(exc).splitlines()[0][:300]}"
                                           f"{_disk_note(self._path(spec), exc, data.nbytes)}; a failed commit "
                                           "leaves the table as it was") from exc
            except BaseException as exc:  # pyo3_runtime.PanicException is a BaseException
                if type(exc).__name__ != "PanicException":
                    raise
                raise WarehouseUnavailable(f"writing {spec.name} at {self.display_url}: delta-rs panicked: "
                                           f"{_short(exc)}{_disk_note(self._path(spec), exc, data.nbytes)}; "
                                           "nothing was committed") from None
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
                # float64 columns (nearly all of ml_features' 200) go to Arrow as they are: converting and
                # copying each one first was ~40 % of a wide write's conversion.
                values = s.to_numpy() if s.dtype == np.float64 else pd.to_numeric(s, errors="raise").to_numpy(
                    dtype="float64", na_value=np.nan)
                arr = pa.array(values, from_pandas=True)
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
                try:  # strings and missing values only: Arrow converts them without a Python call per value
                    arr = pa.array(s, type=pa.string(), from_pandas=True)
                except (pa.ArrowTypeError, pa.ArrowInvalid):  # other objects are stored as their str()
                    values = s.astype(object).where(s.notna(), None)
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
        return self._gather(spec, start, end, columns=columns, filters=filters, lists_any=lists_any,
                            order_by=order_by, descending=descending, limit=limit).frame()

    def read_arrow(self, spec: TableSpec, start=None, end=None, *, columns: Sequence[str] | None = None,
                   filters: dict[str, Iterable] | None = None, lists_any: dict[str, Sequence[str]] | None = None,
                   order_by: Sequence[str] | None = None, descending: bool = False, limit: int | None = None):
        """`read` as a pyarrow.Table of the table's Arrow types (float64, int64, bool,
        timestamp[us, UTC], date32, string; NULL as null), in the same rows and order."""
        return self._gather(spec, start, end, columns=columns, filters=filters, lists_any=lists_any,
                            order_by=order_by, descending=descending, limit=limit, arrow=True).table()

    def _gather(self, spec: TableSpec, start, end, *, columns, filters, lists_any, order_by, descending, limit,
                arrow: bool = False) -> Gather:
        """The rows of a read, in their order, as a `Gather` (see arrow_read.py).

        The first scan reads the columns that decide which rows come and in what order (the sort
        keys, the `lists_any` columns), which gives each scanned row its place. A wide read then
        streams its other columns into those places batch by batch in a second scan of the same
        snapshot, so the whole table never sits in memory twice (a narrow one reads them in the
        first scan: faster). Both scans yield the files' rows in the same order (ordered scans of
        the same files with the same filter); the second re-reads one key column and checks that
        it lines up."""
        import pyarrow as pa
        import pyarrow.compute as pc

        wanted = self._wanted(spec, columns)
        for col in [*(filters or {}), *(lists_any or {})]:
            if col not in spec.column_names:
                raise KeyError(f"{spec.name} has no column {col!r} to filter on")
        if spec.time_column is None and (start is not None or end is not None):
            raise ValueError(f"{spec.name} has no time column; read it without start/end")
        table = self._open(spec)
        if table is None:
            return Gather(spec, wanted, 0, arrow=arrow)
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
        first = list(dict.fromkeys([*order, *(lists_any or {})]))
        check = spec.time_column if spec.time_column in first else (first[0] if first else None)
        rest = [c for c in wanted if c not in first]
        streamed = len(rest) > self.one_scan_columns
        try:
            dataset = self._scan(table, spec, parts)
            keys = dataset.to_table(columns=first if streamed else [*first, *rest], filter=expr)
            places = _places(keys, order, descending, lists_any, limit)
            out = Gather(spec, wanted, keys.num_rows if places is None else int((places >= 0).sum()), arrow=arrow)
            placed = [c for c in keys.column_names if c in out.kinds]
            scanned = 0
            for batch in keys.select(placed).to_batches() if placed else []:
                _put_batch(out, batch, placed, places, scanned)
                scanned += batch.num_rows
            if streamed:
                scanned = 0
                for batch in dataset.to_batches(columns=[*rest, *([check] if check else [])], filter=expr):
                    if check and not pa.chunked_array([batch.column(check)]).equals(
                            keys.column(check).slice(scanned, batch.num_rows)):
                        raise RuntimeError(f"{spec.name}: the two scans of one snapshot disagree on the rows' order")
                    _put_batch(out, batch, rest, places, scanned)
                    scanned += batch.num_rows
                if scanned != keys.num_rows:
                    raise RuntimeError(f"{spec.name}: the two scans of one snapshot found {keys.num_rows} and "
                                       f"{scanned} rows")
        except (OSError, pa.ArrowException) as exc:
            self._raise_if_damaged(spec, table, parts, exc)
            if not isinstance(exc, OSError):
                raise
            raise WarehouseUnavailable(f"reading {spec.name} at {self.display_url}: {exc}") from exc
        return out

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
        self._note_version(spec)
        table = self._open(spec)
        table.create_checkpoint()
        removed = table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
        return {"table": spec.name, "files_before": before, "files_after": len(self._open(spec).file_uris()),
                "files_compacted": metrics.get("numFilesRemoved", 0), "files_deleted": len(removed)}


    # -- damage -----------------------------------------------------------------------------

    def _logged_files(self, table, parts: list[tuple] | None = None) -> dict[str, int | None]:
        """{path relative to the table folder: size in bytes} of the snapshot's files (in `parts`)."""
        actions = table.get_add_actions(flatten=True)
        paths, sizes = actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist()
        column = f"partition.{PART}"
        if not parts or column not in actions.column_names:
            return dict(zip(paths, sizes))
        ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}
        values = actions.column(column).to_pylist()
        return {path: size for path, size, value in zip(paths, sizes, values)
                if value is None or all(ops[op](value, bound) for _col, op, bound in parts)}

    def _raise_if_damaged(self, spec: TableSpec, table, parts: list[tuple], exc: BaseException) -> None:
        """After a failed scan: `WarehouseDamaged` naming the files that are missing, of another
        size than logged or unreadable (footers first, then whole reads of the files the error names)."""
        import pyarrow as pa

        if not self.local:
            return
        folder = self._path(spec)
        try:
            files = self._logged_files(table, parts)
        except Exception:  # noqa: BLE001 - the scan's own error is the one to show
            return
        problems = _file_problems(folder, files, deep=False)
        if not problems:
            named = {rel: size for rel, size in files.items() if unquote(rel) in str(exc)}
            problems = _file_problems(folder, named, deep=True)
        if not problems and isinstance(exc, pa.ArrowException) and _PARQUET_DAMAGE.search(str(exc)):
            problems = [f"reading its data files failed ({_short(exc, folder)})"]
        if problems:
            problem = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            with _seen_lock:
                _seen_damage[folder] = (table.version(), problem)
            raise WarehouseDamaged(spec.name, problem) from exc

    def damage(self, spec: TableSpec, *, deep: bool = False, footers: bool = False) -> list[str]:
        """See `Warehouse.damage`. Cheap by default (the log listed and parsed, every referenced
        file stat'ed and its size compared with the log's, plus damage a read of this process met at
        the table's current version); `footers` also opens each referenced file's Parquet footer,
        `deep` reads every referenced file whole."""
        try:
            table = self._open(spec)
        except WarehouseDamaged as exc:
            problems = [exc.problem]
            if self.local:  # name every problem of the log, not only those that stopped the open
                more = [p for p in _log_problems(_list_log(self._path(spec)), parse=True) if p not in exc.problem]
                problems += more
            return problems
        if table is None:
            return []
        folder = self._path(spec)
        if not self.local:
            if deep:
                try:
                    table.to_pyarrow_dataset().to_table()
                except Exception as exc:  # noqa: BLE001 - any failure to read it whole is the finding
                    return [f"reading it whole failed ({_short(exc)})"]
            return []
        problems = _log_problems(_list_log(folder), parse=True)
        problems += _file_problems(folder, self._logged_files(table), deep=deep, footers=footers or deep)
        with _seen_lock:
            seen = _seen_damage.get(folder)
            if seen is not None and seen[0] != table.version():
                del _seen_damage[folder]
            elif seen is not None and not any(p in seen[1] for p in problems):
                problems.append(f"{seen[1]} (met by a read of version {seen[0]} in this process)")
        return problems

    def _placeholder_commit(self, spec: TableSpec, folder: str, version: int) -> None:
        """Write commit `version` (created only if absent, like every commit) as a placeholder for a
        lost one: no change to the table; version 0 gets the protocol and schema of a new table of
        `spec` (the original creation is what was lost)."""
        import tempfile

        if version == 0:
            with tempfile.TemporaryDirectory(prefix="_repair-", dir=f"{folder}/{LOG}") as tmp:
                self._dl.DeltaTable.create(f"{tmp}/t", self.arrow_schema(spec),
                                           partition_by=[PART] if spec.time_column is not None else None,
                                           description=spec.description or None)
                with open(f"{tmp}/t/{LOG}/{0:020d}.json", "rb") as fh:
                    body = fh.read()
        else:
            body = (json.dumps({"commitInfo": {
                "timestamp": int(time.time() * 1000),
                "operation": "crypto-assets repair: placeholder for a lost commit",
                "operationParameters": {"lostVersion": str(version)},
            }}) + "\n").encode()
        fd = os.open(f"{folder}/{LOG}/{version:020d}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)

    def repair(self, spec: TableSpec, *, version: int | None = None, deep: bool = False) -> dict:
        """Make a damaged local table readable again from what is intact, and say what was lost.

        Nothing is deleted: damaged files are moved under `<table>/_damaged/<UTC time>/` (a table
        without a readable log as a whole to `<root>/_damaged/<table>-<UTC time>/`).
        - log: commit files from the first damaged or missing version on are set aside, so the table
          opens at the last version before it; a commit that is simply gone (the log ends below the
          high-water mark) is accepted as lost;
        - data files the current version references that are missing, of another size than logged,
          with an unreadable footer (`deep`: unreadable at all) are set aside and dropped from the
          table in one commit (delta-rs `repair`, an FSCK commit);
        - `version`: then restore that earlier version (delta-rs `restore`: a new commit).
        Returns {"table", "actions": [...], "lost_versions": [...], "partitions": [`_part` values
        whose rows were lost: re-materialize them], "version": the version now, "all": True when
        the whole table must be re-materialized}.
        """
        if not self.local:
            raise WarehouseUnavailable(f"repair works on local tables only; {spec.name} is at {self.display_url} "
                                       "(object storage: restore a version with deltalake's DeltaTable.restore)")
        dl = self._dl
        folder = self._path(spec)
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%fZ")
        aside = f"{folder}/_damaged/{stamp}"
        done = {"table": spec.name, "actions": [], "lost_versions": [], "partitions": [], "version": None,
                "all": False}
        parts: set[str] = set()

        def set_aside(rel: str) -> None:
            target = f"{aside}/{rel}"
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(f"{folder}/{rel}", target)
            done["actions"].append(f"set aside {rel} -> {target.removeprefix(folder + '/')}")

        def set_table_aside(why: str) -> dict:
            found = {p for p in (_part_of(rel) for rel in _data_files(folder)) if p}
            target = f"{self.root}/_damaged/{spec.name}-{stamp}"
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(folder, target)
            done["actions"].append(f"{why}: moved the whole table to {target}; it reads as absent until "
                                   "re-materialized")
            with _seen_lock:
                _seen_damage.pop(folder, None)
            self._forget_schema(spec)
            done.update(all=True, partitions=sorted(found | parts))
            return done

        listing = _list_log(folder)
        if not listing.commits and not listing.checkpoints:
            left = _leftovers(listing)
            if left is None:
                done["actions"].append("nothing to repair: the table does not exist")
                return done
            return set_table_aside(left)

        if _log_problems(listing, parse=True):
            # 1. Checkpoints that are empty (and a `_last_checkpoint` naming one that is gone): set
            #    aside; the table then reads from the commit files (kept until log cleanup).
            for v, entries in sorted(listing.checkpoints.items()):
                if not all(e.stat().st_size for e in entries):
                    for entry in entries:
                        set_aside(f"{LOG}/{entry.name}")
            listing = _list_log(folder)
            if listing.last_checkpoint is not None and listing.last_checkpoint not in listing.checkpoints:
                set_aside(f"{LOG}/_last_checkpoint")
                listing = _list_log(folder)
            # 2. Every commit version that is missing, empty or unparsable, up to the newest version
            #    this warehouse committed, gets a placeholder commit that says so: the commits after it
            #    stay readable, and the history keeps the hole visible.
            base = max(listing.checkpoints, default=None)
            first = 0 if base is None else base + 1
            top = max([*listing.commits, listing.high_water if listing.high_water is not None else -1])
            lost = [v for v in range(first, top + 1) if v not in listing.commits
                    or listing.commits[v].stat().st_size == 0 or _unparsable_line(listing.commits[v].path)]
            if not listing.commits and base is None:
                return set_table_aside("no readable commit is left in its log")
            before = lost and listing.commits.get(min(lost) - 1)
            since = os.stat(before.path).st_mtime if before else 0.0
            for v in lost:
                name = f"{v:020d}.json"
                if v in listing.commits:
                    set_aside(f"{LOG}/{name}")
                self._placeholder_commit(spec, folder, v)
            done["lost_versions"] = lost
            if lost:
                done["actions"].append(f"wrote placeholder commits for the lost version(s) {_spans(lost)} "
                                       "(their changes are gone; the later commits are kept)")
            # Rows of the lost commits: the data files they added stay on disk, referenced by no
            # commit now; they name the partitions to re-materialize (old files that later commits
            # removed are named by those commits and are not counted).
            if lost:
                table = dl.DeltaTable(folder, storage_options=self.storage_options)
                live = {unquote(p) for p in self._logged_files(table)}
                removed = set()
                for entry in _list_log(folder).commits.values():
                    removed |= _commit_removes(entry.path)
                parts |= {_part_of(rel) for rel in _data_files(folder)
                          if rel not in live and rel not in removed
                          and os.stat(f"{folder}/{rel}").st_mtime >= since} - {None}
            self._note_version(spec)

        table = dl.DeltaTable(folder, storage_options=self.storage_options)
        files = self._logged_files(table)
        problems = _file_problems(folder, files, deep=deep)
        broken = [rel for rel in files if any(f"data file {rel} " in p for p in problems)]
        if broken:
            for rel in broken:
                parts.add(_part_of(unquote(rel)))
                if os.path.exists(f"{folder}/{unquote(rel)}"):
                    set_aside(unquote(rel))
            removed = table.repair(dry_run=False).get("files_removed", [])
            done["actions"].append(f"dropped {len(removed)} unreadable or missing data file(s) from the table "
                                   "(one FSCK commit)")
            self._note_version(spec)
        if version is not None:
            table = dl.DeltaTable(folder, storage_options=self.storage_options)
            if version >= table.version():
                raise ValueError(f"{spec.name}: --version {version} is not older than the current version "
                                 f"{table.version()}")
            table.restore(version)
            self._note_version(spec)
            done["actions"].append(f"restored version {version} (a new commit; later versions stay in the history)")
        with _seen_lock:
            _seen_damage.pop(folder, None)
        self._forget_schema(spec)
        done["version"] = dl.DeltaTable(folder, storage_options=self.storage_options).version()
        done["partitions"] = sorted(p for p in parts if p)
        if not done["actions"]:
            done["actions"].append("nothing to repair: no damage found")
        return done


def _commit_actions(path: str):
    """The actions (JSON objects) of a commit file, one per line; unreadable lines and an
    unreadable file give nothing (the damage check reports those)."""
    try:
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    action = json.loads(line)
                except ValueError:
                    continue
                if isinstance(action, dict):
                    yield action
    except OSError:
        return


def _commit_removes(path: str) -> set[str]:
    """Paths (relative, unquoted) a readable commit file removed from the table."""
    return {unquote(action["remove"].get("path", "")) for action in _commit_actions(path)
            if isinstance(action.get("remove"), dict)}


def _data_files(folder: str) -> list[str]:
    """Parquet files under the table folder (relative paths), outside `_`-prefixed folders other than `_part=`."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder)
        dirs[:] = [d for d in dirs if not d.startswith("_") or d.startswith(f"{PART}=")]
        found += [f if rel_root == "." else f"{rel_root}/{f}" for f in files if f.endswith(".parquet")]
    return found


def _part_of(rel: str) -> str | None:
    head = rel.split("/", 1)[0]
    return head.split("=", 1)[1] if head.startswith(f"{PART}=") and "/" in rel else None


def _commit_parts(path: str) -> set[str]:
    """`_part` values a (readable) commit file added or removed files in."""
    return {value for action in _commit_actions(path) for kind in ("add", "remove")
            if (value := ((action.get(kind) or {}).get("partitionValues") or {}).get(PART))}


_LOG_DAMAGE = re.compile(r"[Jj]son|JSON|[Pp]arse|[Pp]arquet|[Cc]heckpoint|contiguous|[Cc]orrupt|EOF|[Mm]issing")
_PARQUET_DAMAGE = re.compile(r"[Pp]arquet|magic bytes|[Tt]hrift|[Cc]orrupt|[Dd]ecompress|[Uu]nexpected end", re.S)


__all__ = ["DeltaWarehouse", "PART"]
