"""Binance's public data archive (https://data.binance.vision): years of history in files.

The archive publishes one zip per (symbol, month) and per (symbol, day), each next to a
`.CHECKSUM` file holding `<sha256>  <filename>`:

- spot klines: `data/spot/{monthly,daily}/klines/<SYM>/<interval>/<SYM>-<interval>-<period>.zip`
  (no header row; `open_time` in milliseconds before 2025-01-01, in MICROseconds from then on:
  told apart by magnitude, row by row);
- USD-M funding settlements: `data/futures/um/monthly/fundingRate/<SYM>/<SYM>-fundingRate-<YYYY-MM>.zip`
  (header `calc_time,funding_interval_hours,last_funding_rate`; `calc_time` is a few ms after the
  settlement: rounded to the settlement hour). MONTHLY files only: the daily fundingRate prefix is
  empty and daily URLs answer 404 (crypto_assets_tests/data/binance_archive/SOURCES.md), so no daily
  funding file is ever requested;
- USD-M daily metrics (open interest every 5 minutes): `data/futures/um/daily/metrics/<SYM>/<SYM>-metrics-<day>.zip`
  (header `create_time,symbol,sum_open_interest,sum_open_interest_value,...`).

Every download goes through the project's `SourceClient` (retries, spacing, budget, replay
transport; source `binance_archive` in resources/sources.yaml). A zip is used only after its
SHA-256 matches its `.CHECKSUM`: a mismatch, an unreadable checksum or zip, or a CSV of the wrong
shape raises `SourceError` naming the file (invariant 12), never zero rows. A file whose checksum
answers 404 does not exist for that symbol and period (not listed yet, delisted, or not published
yet): a GAP, reported by the caller, not a failure. Verified downloads are cached on disk
(`$DAGSTER_HOME/archive_cache/<path>`, replayed files under `archive_cache/replay/`), re-verified
against their stored checksum on every read, so a re-run makes no request for them. Gaps are not
cached: a month may be published later.

Plan: whole months before the current month come from monthly files; days of the current month
(up to yesterday: a day's file exists only after it closed) from daily files (klines, metrics).
Funding is monthly only: the archive covers a window's funding up to the current month's first day,
and the rest of the window (`funding_rest_from`: the current month, and the previous month too
while its file is not published, in the first days of a month) is for Binance's REST funding
history (crypto_assets/sources/derivatives.py asks it for exactly that part).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from crypto_assets.sources.client import SourceClient, SourceError

try:  # zlib-ng (a dependency of ccxt) inflates the archive's zips about twice as fast as the stdlib's zlib
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - same format, same checks, slower
    _zlib = zlib

SOURCE = "binance_archive"
BASE_URL = "https://data.binance.vision"
US_THRESHOLD = 10**14  # an open_time at or above this is in microseconds (ms stay below ~1e13 until year 5138)
KLINE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trade_count",
                 "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
FUNDING_HEADER = ("calc_time", "funding_interval_hours", "last_funding_rate")
METRICS_HEAD = ("create_time", "symbol", "sum_open_interest", "sum_open_interest_value")
_CHECKSUM = re.compile(r"^\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")


def _utc(value) -> pd.Timestamp:
    value = pd.Timestamp(value)
    return value.tz_convert("UTC") if value.tzinfo else value.tz_localize("UTC")


def default_cache_dir(mode: str = "live") -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home")
    root = home / "archive_cache"
    return root / "replay" if mode == "replay" else root


# -- paths and plan ---------------------------------------------------------------------------

def _freq(period: str) -> str:
    return "monthly" if len(period) == 7 else "daily"


def kline_path(symbol: str, interval: str, period: str) -> str:
    return f"data/spot/{_freq(period)}/klines/{symbol}/{interval}/{symbol}-{interval}-{period}.zip"


def funding_path(symbol: str, period: str) -> str:
    return f"data/futures/um/{_freq(period)}/fundingRate/{symbol}/{symbol}-fundingRate-{period}.zip"


def metrics_path(symbol: str, day: str) -> str:
    return f"data/futures/um/daily/metrics/{symbol}/{symbol}-metrics-{day}.zip"


def plan_periods(start, end, now, *, monthly: bool = True, daily: bool = True) -> list[str]:
    """Archive periods covering [start, end): 'YYYY-MM' for months wholly before `now`'s month
    (when `monthly`), 'YYYY-MM-DD' for days of later months that closed before `now` (when `daily`;
    `daily=False`: monthly files only, as funding is published)."""
    start, end, now = _utc(start), _utc(end), _utc(now)
    today, day = now.date(), start.date()
    stop = end.date() if end == end.normalize() else end.date() + timedelta(days=1)  # days starting before `end`
    this_month = today.replace(day=1)
    out: list[str] = []
    while day < stop and day < today:  # a day's file exists once it closed
        if monthly and day.replace(day=1) < this_month:
            label = f"{day:%Y-%m}"
            if not out or out[-1] != label:
                out.append(label)
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)  # the next month's first day
            continue
        if not daily:
            break
        out.append(f"{day:%Y-%m-%d}")
        day += timedelta(days=1)
    return out


def month_start(value) -> pd.Timestamp:
    """The first instant (UTC) of `value`'s month."""
    value = _utc(value)
    return pd.Timestamp(year=value.year, month=value.month, day=1, tz="UTC")


def funding_rest_from(start, end, now, missing_months=()) -> pd.Timestamp | None:
    """Where the part of [start, end) that the archive's funding files cannot give begins; that part
    runs to `end`, and is None when the files cover the whole window. Funding is published monthly
    only, a month's file after the month ended: the current month (`now`'s) is never in the archive,
    and the previous month is not either while its file is not published yet (the first days of a
    month): when its period 'YYYY-MM' is in `missing_months` (a gap), the part starts with it."""
    start, end = _utc(start), _utc(end)
    this_month = month_start(now)
    previous = month_start(this_month - pd.Timedelta(days=1))
    begin = max(start, previous if f"{previous:%Y-%m}" in set(missing_months) else this_month)
    return begin if begin < end else None


# -- parsing (pure) ---------------------------------------------------------------------------

def _rows(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.splitlines() if line.strip()]


# The kline fields kept (index in the 12-field row -> column); times and the trade count are integers.
_KLINE_FIELDS = {0: "bar_start", 1: "open", 2: "high", 3: "low", 4: "close", 5: "volume", 6: "close_time",
                 7: "quote_volume", 8: "trade_count"}
_KLINE_INTS = ("bar_start", "close_time", "trade_count")
_KLINE_READ = pa_csv.ReadOptions(column_names=[f"f{i}" for i in range(12)])
_KLINE_CONVERT = pa_csv.ConvertOptions(
    include_columns=[f"f{i}" for i in _KLINE_FIELDS],
    column_types={f"f{i}": pa.int64() if name in _KLINE_INTS else pa.float64() for i, name in _KLINE_FIELDS.items()})


def _kline_rows(body: bytes) -> bytes:
    """A kline CSV's rows without a header row (futures files have one). Blank lines are left in:
    Arrow's reader skips them (and so the file is not copied to strip them)."""
    body = body.lstrip()  # the same object when there is nothing to strip
    if body and not body[:1].isdigit():
        body = body.partition(b"\n")[2]
    if not body or body.isspace():
        raise ValueError("kline file has no rows")
    return body


def _kline_columns(rows: bytes) -> dict[str, np.ndarray]:
    """Header-less kline rows -> numpy columns (_KLINE_FIELDS), times as datetime64[us] (UTC).
    Parsed column-wise by Arrow's CSV reader in one call: its cost is mostly per call, not per row."""
    try:
        # a BufferReader, not a Python file object: Arrow reads it without the GIL
        table = pa_csv.read_csv(pa.BufferReader(rows), read_options=_KLINE_READ, convert_options=_KLINE_CONVERT)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"kline file is not in the archive's 12-field layout: {str(exc)[:200]}") from None
    if table.num_rows == 0:
        raise ValueError("kline file has no rows")
    if any(column.null_count for column in table.columns):
        raise ValueError("kline file has an empty field")
    out = {name: table.column(f"f{i}").to_numpy() for i, name in _KLINE_FIELDS.items()}
    for name in ("bar_start", "close_time"):  # ms before 2025, µs from then on: told apart row by row
        ints = out[name]
        out[name] = np.where(ints >= US_THRESHOLD, ints, ints * 1000).view("datetime64[us]")
    out["trade_count"] = out["trade_count"].astype("float64")  # as the REST path gives it
    return out


def _kline_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = {name: columns[name] for name in ("bar_start", "close_time", "open", "high", "low", "close", "volume",
                                              "quote_volume", "trade_count")}
    for name in ("bar_start", "close_time"):
        frame[name] = pd.DatetimeIndex(frame[name], tz="UTC")  # datetime64[us] values are UTC
    return pd.DataFrame(frame, copy=False)


def parse_klines(text: str | bytes) -> pd.DataFrame:
    """Spot kline CSV -> bar_start, close_time (UTC), open..close, volume, quote_volume, trade_count.
    Timestamps in ms or µs, told apart per row by magnitude. A header row, if any, is skipped."""
    return _kline_frame(_kline_columns(_kline_rows(text.encode() if isinstance(text, str) else text)))


def parse_funding(text: str) -> pd.DataFrame:
    """Funding CSV -> settled_at (calc_time rounded to its settlement hour), calc_time, funding_rate,
    funding_interval_hours."""
    rows = _rows(text)
    if not rows or tuple(c.strip() for c in rows[0][:3]) != FUNDING_HEADER:
        raise ValueError(f"funding file header is {','.join(rows[0]) if rows else '(empty)'!r}, "
                         f"expected {','.join(FUNDING_HEADER)!r}")
    try:
        values = np.array([r[:3] for r in rows[1:]], dtype="float64").reshape(-1, 3)
    except ValueError as exc:
        raise ValueError(f"funding file has a non-numeric field: {exc}") from None
    calc = pd.to_datetime(values[:, 0].astype("int64"), unit="ms", utc=True)
    return pd.DataFrame({"settled_at": calc.round("h"), "calc_time": calc, "funding_rate": values[:, 2],
                         "funding_interval_hours": values[:, 1]})


def parse_metrics(text: str) -> pd.DataFrame:
    """Metrics CSV -> create_time (UTC; 'YYYY-MM-DD HH:MM:SS' or epoch ms), sum_open_interest (base
    currency), sum_open_interest_value (quote currency)."""
    rows = _rows(text)
    if not rows or tuple(c.strip() for c in rows[0][:4]) != METRICS_HEAD:
        raise ValueError(f"metrics file header is {','.join(rows[0]) if rows else '(empty)'!r}, "
                         f"expected it to start with {','.join(METRICS_HEAD)!r}")
    body = rows[1:]
    raw_times = [r[0].strip() for r in body]
    if raw_times and all(t.isdigit() for t in raw_times):
        times = pd.to_datetime(np.array(raw_times, dtype="int64"), unit="ms", utc=True)
    else:
        times = pd.to_datetime(raw_times, utc=True, format="%Y-%m-%d %H:%M:%S")
    try:
        oi = np.array([r[2] or "nan" for r in body], dtype="float64")
        value = np.array([r[3] or "nan" for r in body], dtype="float64")
    except (ValueError, IndexError) as exc:
        raise ValueError(f"metrics file has a non-numeric field: {exc}") from None
    # A zero open interest (written `0E-8` in real files, e.g. BTCUSDT-metrics-2022-03-07) is Binance's
    # missing reading, not a market figure: no figure at all.
    missing = ~(oi > 0)
    oi[missing], value[missing] = np.nan, np.nan
    return pd.DataFrame({"create_time": times, "sum_open_interest": oi, "sum_open_interest_value": value})


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # a zip member's local header: signature .. name and extra lengths


def _inflate(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """A deflated zip member's bytes, checked against its size and CRC-32 as zipfile checks them, but
    inflated by zlib-ng: zipfile's own inflate (stdlib zlib) was half of reading a cached kline file."""
    try:
        signature, name_len, extra_len = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    except struct.error:
        raise zipfile.BadZipFile(f"{info.filename}: truncated local header") from None
    if signature != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"{info.filename}: bad local header")
    first = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    try:
        body = _zlib.decompress(memoryview(data)[first:first + info.compress_size], -15, max(info.file_size, 1))
    except _zlib.error as exc:
        raise zipfile.BadZipFile(f"{info.filename}: {exc}") from None
    if len(body) != info.file_size or _zlib.crc32(body) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 or size for file {info.filename!r}")
    return body


def csv_of_zip(data: bytes, raw: bool = False) -> str | bytes:
    """The one CSV inside an archive zip (its bytes when `raw`)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [i for i in archive.infolist() if i.filename.lower().endswith(".csv")]
        if len(members) != 1:
            raise ValueError(f"zip holds {len(members)} CSV files, expected 1")
        (info,) = members
        plain_deflate = info.compress_type == zipfile.ZIP_DEFLATED and not info.flag_bits & 0x1  # not encrypted
        body = _inflate(data, info) if plain_deflate else archive.read(info)
    return body if raw else body.decode("utf-8")


def parse_checksum(text: str, filename: str) -> str:
    match = _CHECKSUM.match(text.strip().splitlines()[0] if text.strip() else "")
    if not match or Path(match.group(2)).name != filename:
        raise ValueError(f"unreadable checksum {text[:120]!r} (expected '<sha256>  {filename}')")
    return match.group(1).lower()


# -- downloads --------------------------------------------------------------------------------

@dataclass
class ArchiveStats:
    downloaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    cache_repaired: list[str] = field(default_factory=list)  # cached files that failed re-verification
    bytes_downloaded: int = 0


class ArchiveClient:
    """Checksum-verified, disk-cached archive downloads through a `SourceClient`."""

    def __init__(self, client: SourceClient, cache_dir: str | Path | None = None, mode: str = "live"):
        self.client = client
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(mode)
        self.stats = ArchiveStats()

    def url(self, path: str) -> str:
        return f"{self.client.spec.base_url.rstrip('/')}/{path}"

    def fetch(self, path: str) -> bytes | None:
        """The verified zip at `path`, or None when the archive has no such file (a gap)."""
        name = path.rsplit("/", 1)[-1]
        cached, cached_sum = self.cache_dir / path, self.cache_dir / f"{path}.CHECKSUM"
        try:
            stored_sum, data = cached_sum.read_bytes(), cached.read_bytes()
        except FileNotFoundError:  # not cached (or half of it): downloaded below
            stored_sum = None
        if stored_sum is not None:
            try:
                if hashlib.sha256(data).hexdigest() == parse_checksum(stored_sum.decode(), name):
                    self.stats.cached.append(path)
                    return data
            except ValueError:
                pass
            # A damaged cache entry is never used: it is reported (stats, run metadata) and fetched again.
            self.stats.cache_repaired.append(path)
            cached.unlink(missing_ok=True)
        try:
            checksum_text = self.client.get(f"{path}.CHECKSUM").text
        except SourceError as exc:
            if exc.status == 404:
                self.stats.gaps.append(path)
                return None
            raise
        try:
            expected = parse_checksum(checksum_text, name)
        except ValueError as exc:
            raise self.client.error(self.url(f"{path}.CHECKSUM"), f"{name}: {exc}") from None
        data = self.client.get(path).content  # a zip missing next to its checksum is an error
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise self.client.error(self.url(path), f"SHA-256 mismatch for {name}: the .CHECKSUM says {expected}, "
                                                    f"the {len(data)} bytes downloaded hash to {actual}; not used")
        cached.parent.mkdir(parents=True, exist_ok=True)
        for target, content in ((cached, data), (cached_sum, checksum_text.encode())):
            tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.part")  # concurrent runs
            tmp.write_bytes(content)
            tmp.replace(target)
        self.stats.downloaded.append(path)
        self.stats.bytes_downloaded += len(data)
        return data

    def read(self, path: str, parser) -> pd.DataFrame | None:
        """`parser` applied to the CSV of the verified zip at `path`; None for a gap."""
        data = self.fetch(path)
        if data is None:
            return None
        try:
            return parser(csv_of_zip(data, raw=parser is parse_klines))
        except (ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise self.client.error(self.url(path), f"{path.rsplit('/', 1)[-1]}: unreadable archive file: {exc}") from None

    # -- one symbol over a window ---------------------------------------------------------------

    def _window(self, paths: list[str], parser, time_col: str, start, end) -> pd.DataFrame | None:
        frames = [f for f in (self.read(p, parser) for p in paths) if f is not None]
        if not frames:
            return None
        frame = pd.concat(frames, ignore_index=True)
        start, end = _utc(start), _utc(end)
        frame = frame[(frame[time_col] >= start) & (frame[time_col] < end)]
        return frame.drop_duplicates(time_col, keep="last").sort_values(time_col).reset_index(drop=True)

    def funding(self, symbol: str, start, end, now) -> pd.DataFrame | None:
        """Settlements in [start, end) from the MONTHLY files of months before `now`'s month (None:
        no file); the rest of the window is not the archive's (see `funding_part`)."""
        return self.funding_part(symbol, start, end, now)[0]

    def funding_part(self, symbol: str, start, end, now) -> tuple[pd.DataFrame | None, pd.Timestamp | None]:
        """`funding`, and where the part of the window it could not cover begins (`funding_rest_from`:
        the current month, and the previous one while its file is a gap); that part runs to `end`."""
        months = plan_periods(start, end, now, daily=False)
        paths = [funding_path(symbol, m) for m in months]
        known_gaps = len(self.stats.gaps)
        frame = self._window(paths, parse_funding, "settled_at", start, end)
        new_gaps = set(self.stats.gaps[known_gaps:])
        return frame, funding_rest_from(start, end, now, [m for m, p in zip(months, paths) if p in new_gaps])

    def klines(self, symbol: str, interval: str, start, end, now) -> pd.DataFrame | None:
        """The window's candles from every file of the plan, parsed in ONE Arrow call and kept in
        numpy (window cut, order, duplicates) until the one frame returned."""
        rows, used = [], []
        for path in (kline_path(symbol, interval, p) for p in plan_periods(start, end, now)):
            data = self.fetch(path)
            if data is None:
                continue
            name = path.rsplit("/", 1)[-1]
            try:
                rows.append(_kline_rows(csv_of_zip(data, raw=True)))
            except (ValueError, zipfile.BadZipFile) as exc:
                raise self.client.error(self.url(path), f"{name}: unreadable archive file: {exc}") from None
            used.append(name)
        if not rows:
            return None
        try:
            columns = _kline_columns(b"\n".join(rows))
        except ValueError as exc:
            raise self.client.error(self.url(kline_path(symbol, interval, "")), f"{symbol} {interval} klines "
                                    f"({', '.join(used)}): unreadable archive file: {exc}") from None
        times = columns["bar_start"]
        inside = (times >= _utc(start).asm8) & (times < _utc(end).asm8)
        if not inside.all():
            columns = {k: v[inside] for k, v in columns.items()}
            times = columns["bar_start"]
        if not (times[1:] > times[:-1]).all():  # not as published (strictly increasing): sort, the last copy wins
            order = np.argsort(times, kind="stable")
            ordered = times[order]
            keep = order[np.append(ordered[1:] != ordered[:-1], True)]
            columns = {k: v[keep] for k, v in columns.items()}
        return _kline_frame(columns)

    def metrics(self, symbol: str, start, end, now) -> pd.DataFrame | None:
        paths = [metrics_path(symbol, p) for p in plan_periods(start, end, now, monthly=False)]
        return self._window(paths, parse_metrics, "create_time", start, end)


def open_archive(mode: str = "live", replay_dir: str | None = None, cache_dir: str | Path | None = None,
                 **client_kwargs) -> ArchiveClient:
    """An archive client in live, replay or simulated mode (simulated: no file, so the archive gives no
    rows; tests may pass `transport=`)."""
    from crypto_assets.sources.catalog import mode_transport, source_spec

    spec = source_spec(SOURCE)
    client_kwargs = mode_transport(mode, SOURCE, spec.base_url, replay_dir, client_kwargs)
    return ArchiveClient(SourceClient(spec, **client_kwargs), cache_dir, mode)


__all__ = ["ArchiveClient", "ArchiveStats", "BASE_URL", "SOURCE", "csv_of_zip", "default_cache_dir", "funding_path",
           "funding_rest_from", "kline_path", "metrics_path", "month_start", "open_archive", "parse_checksum",
           "parse_funding", "parse_klines", "parse_metrics", "plan_periods"]
