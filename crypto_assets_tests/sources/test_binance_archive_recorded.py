"""Binance's public data archive (crypto_assets/sources/binance_archive.py) replayed with REAL archive
files (crypto_assets_tests/data/binance_archive, see its SOURCES.md for origins and licences):

- spot 1h klines of 13-16 May 2021 (milliseconds), rows of Binance's monthly file, cut to four days;
- the spot 1h daily zip of 2025-11-04 (microseconds), Binance's zip byte for byte;
- USD-M funding settlements of AXSUSDT, January 2026, whose interval changes 8h -> 1h -> 4h.

Each file is served through the project's replay transport (a catalog.yaml written per test) with a
`.CHECKSUM` holding the SHA-256 of the served zip's own bytes: Binance's published checksum files were
not recorded with these files, so the check exercised is the client's, not a comparison with Binance's.
Expected values are read from the recorded files independently of the code under test (Python's csv
module), or come from a second, independent publication of the same market (CryptoDataDownload's daily
Binance BTC/USDT bars)."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from crypto_assets.sources.binance_archive import funding_path, kline_path, open_archive
from crypto_assets.sources.derivatives import archive_history

UTC = "UTC"
DATA = Path(__file__).resolve().parents[1] / "data" / "binance_archive"
MAY_CSV = DATA / "BTCUSDT-1h-2021-05-13_16.csv"
NOV_ZIP = DATA / "BTCUSDT-1h-2025-11-04.zip"
NOV_ZIP_SHA256 = "6eb5a63bfa9363e8b5aaefc354b901c8109a9f278f91a9c3d28c63b06900daf8"  # as committed at its origin
AXS_CSV = DATA / "AXSUSDT-fundingRate-2026-01.csv"
NOW = pd.Timestamp("2026-12-06 12:00", tz=UTC)


# -- helpers ----------------------------------------------------------------------------------

def _zip_of(member: str, body: bytes) -> bytes:
    """One CSV in a zip, as the archive packs it (fixed timestamp: the same bytes on every run)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(member, date_time=(2021, 6, 1, 0, 0, 0)), body)
    return buf.getvalue()


def _checksum(path: str, data: bytes) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {path.rsplit('/', 1)[-1]}\n".encode()


def _replay_dir(tmp_path: Path, files: dict[str, bytes]) -> str:
    """A replay folder serving `files` (archive path -> zip bytes) and their .CHECKSUM files;
    anything else answers 404, as data.binance.vision does for a file it does not have."""
    root = tmp_path / "replay"
    folder = root / "binance_archive"
    folder.mkdir(parents=True)
    routes = []
    for i, (path, data) in enumerate(files.items()):
        (folder / f"f{i}.zip").write_bytes(data)
        (folder / f"f{i}.sum").write_bytes(_checksum(path, data))
        routes += [f"  - path: /{path}\n    file: f{i}.zip\n    content_type: application/zip\n",
                   f"  - path: /{path}.CHECKSUM\n    file: f{i}.sum\n    content_type: text/plain\n"]
    (folder / "catalog.yaml").write_text("routes:\n" + "".join(routes))
    return str(root)


def _kline_rows(body: bytes) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(body.decode())) if row]


def _utc_from_epoch(value: str, unit: str) -> pd.Timestamp:
    return pd.Timestamp(int(value), unit=unit, tz=UTC)


def _assert_lands_as_published(frame: pd.DataFrame, rows: list[list[str]], unit: str) -> None:
    """Every column the source keeps equals the file's field, row for row (floats parsed by Python,
    times by pandas from the raw integer in `unit`)."""
    assert len(frame) == len(rows)
    assert list(frame.bar_start) == [_utc_from_epoch(r[0], unit) for r in rows]
    assert list(frame.close_time) == [_utc_from_epoch(r[6], unit) for r in rows]
    for i, name in ((1, "open"), (2, "high"), (3, "low"), (4, "close"), (5, "volume"), (7, "quote_volume")):
        assert list(frame[name]) == [float(r[i]) for r in rows], name
    assert list(frame.trade_count) == [int(r[8]) for r in rows]


# -- spot klines, milliseconds (May 2021) ------------------------------------------------------

def _may_archive(tmp_path: Path):
    path = kline_path("BTCUSDT", "1h", "2021-05")
    body = MAY_CSV.read_bytes()
    replay = _replay_dir(tmp_path, {path: _zip_of("BTCUSDT-1h-2021-05.csv", body)})
    return open_archive("replay", replay_dir=replay, cache_dir=tmp_path / "cache"), path, body


def test_real_may_2021_hourly_klines_land_with_the_files_values_at_the_right_utc_hours(tmp_path):
    archive, path, body = _may_archive(tmp_path)
    frame = archive.klines("BTCUSDT", "1h", "2021-05-14", "2021-05-16", NOW)

    assert archive.stats.downloaded == [path] and archive.stats.gaps == []
    rows = [r for r in _kline_rows(body) if "2021-05-14" <= f"{_utc_from_epoch(r[0], 'ms'):%Y-%m-%d}" <= "2021-05-15"]
    assert len(rows) == 48  # the window keeps 14 and 15 May out of the four recorded days
    _assert_lands_as_published(frame, rows, "ms")
    # UTC hours, one bar per hour, closing 1 ms before the next opens (the archive's convention).
    assert list(frame.bar_start) == list(pd.date_range("2021-05-14", periods=48, freq="h", tz=UTC))
    assert (frame.close_time - frame.bar_start == pd.Timedelta(hours=1) - pd.Timedelta(milliseconds=1)).all()
    first = frame.iloc[0]  # 1620950400000,49671.92,50241.19,49479.77,50029.78,... (the file's row of 14 May 00:00)
    assert (first.bar_start, first.open, first.high, first.low, first.close) == (
        pd.Timestamp("2021-05-14 00:00", tz=UTC), 49671.92, 50241.19, 49479.77, 50029.78)


# Binance BTC/USDT daily bars of 13-16 May 2021 as CryptoDataDownload publishes them (the shared
# fixture ../shared/fixtures/09-exchanges/cryptodatadownload-daily/Binance_BTCUSDT_d.csv, lines 258-261;
# StephanAkkerman/super-guppy @ 4ac3b17deee7 : data/Binance_BTCUSDT_d.csv, MIT): an independent
# publication of the same market, not derived from the hourly file.
DAILY_CDD = {
    "2021-05-13": dict(open=49537.15, high=51367.19, low=46000.00, close=49670.97, volume=147332.00212100,
                       quote_volume=7303694688.60140086, trade_count=3570506),
    "2021-05-14": dict(open=49671.92, high=51483.00, low=48799.75, close=49841.45, volume=80082.20430600,
                       quote_volume=4015904915.40791062, trade_count=2095860),
    "2021-05-15": dict(open=49844.16, high=50700.00, low=46555.00, close=46762.99, volume=89437.44935900,
                       quote_volume=4350775846.51735788, trade_count=2286791),
    "2021-05-16": dict(open=46762.99, high=49795.89, low=43825.39, close=46431.50, volume=114269.81277500,
                       quote_volume=5367497608.11590065, trade_count=2661295),
}


def test_real_hourly_klines_add_up_to_binances_daily_bars_of_13_to_16_may_2021(tmp_path):
    """The hours the source lands, aggregated per UTC day, are Binance's daily bars: a wrong hour (a
    time-zone shift, a bar off by one) or a wrong column would move a high, a low or a close across days."""
    archive, _, _ = _may_archive(tmp_path)
    frame = archive.klines("BTCUSDT", "1h", "2021-05-13", "2021-05-17", NOW)
    assert len(frame) == 96
    days = frame.groupby(frame.bar_start.dt.strftime("%Y-%m-%d")).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
        volume=("volume", "sum"), quote_volume=("quote_volume", "sum"), trade_count=("trade_count", "sum"),
        hours=("open", "size"))
    assert list(days.hours) == [24, 24, 24, 24]
    for day, bar in DAILY_CDD.items():
        got = days.loc[day]
        assert (got.open, got.high, got.low, got.close) == (bar["open"], bar["high"], bar["low"], bar["close"]), day
        assert got.trade_count == bar["trade_count"], day
        assert got.volume == pytest.approx(bar["volume"], rel=1e-12), day
        assert got.quote_volume == pytest.approx(bar["quote_volume"], rel=1e-12), day
    assert list(days.index) == list(DAILY_CDD)


# -- spot klines, microseconds (a real 2025 daily zip, byte for byte) ---------------------------

def test_a_real_2025_daily_zip_in_microseconds_verifies_and_lands_at_the_right_hours(tmp_path):
    data = NOV_ZIP.read_bytes()
    assert hashlib.sha256(data).hexdigest() == NOV_ZIP_SHA256  # the recorded zip is unchanged
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist() == ["BTCUSDT-1h-2025-11-04.csv"]
        body = z.read("BTCUSDT-1h-2025-11-04.csv")
    rows = _kline_rows(body)
    assert len(rows) == 24 and all(len(r[0]) == 16 and len(r[6]) == 16 for r in rows)  # microseconds

    path = kline_path("BTCUSDT", "1h", "2025-11-04")
    replay = _replay_dir(tmp_path, {path: data})
    archive = open_archive("replay", replay_dir=replay, cache_dir=tmp_path / "cache")
    # "Now" later in November: 4 Nov is in the current month, so the plan takes the daily file.
    frame = archive.klines("BTCUSDT", "1h", "2025-11-04", "2025-11-05", pd.Timestamp("2025-11-20", tz=UTC))

    assert archive.stats.downloaded == [path] and archive.stats.gaps == []
    _assert_lands_as_published(frame, rows, "us")
    assert list(frame.bar_start) == list(pd.date_range("2025-11-04", periods=24, freq="h", tz=UTC))
    assert (frame.close_time - frame.bar_start == pd.Timedelta(hours=1) - pd.Timedelta(microseconds=1)).all()
    assert frame.close_time.iloc[-1] == pd.Timestamp("2025-11-04 23:59:59.999999", tz=UTC)
    # Read as milliseconds, 1762214400000000 would be a date tens of thousands of years ahead.
    assert frame.bar_start.dt.year.unique().tolist() == [2025]


def test_real_2021_and_2025_klines_read_in_one_call_keep_their_own_units(tmp_path):
    """One klines() call over both recorded files: the millisecond rows of May 2021 and the microsecond
    rows of November 2025 are parsed in one pass (units told apart row by row); every month between
    has no file here and is a gap, not a failure."""
    may_path, nov_path = kline_path("BTCUSDT", "1h", "2021-05"), kline_path("BTCUSDT", "1h", "2025-11-04")
    replay = _replay_dir(tmp_path, {may_path: _zip_of("BTCUSDT-1h-2021-05.csv", MAY_CSV.read_bytes()),
                                    nov_path: NOV_ZIP.read_bytes()})
    archive = open_archive("replay", replay_dir=replay, cache_dir=tmp_path / "cache")
    frame = archive.klines("BTCUSDT", "1h", "2021-05-15 22:00", "2025-11-04 02:00", pd.Timestamp("2025-11-20", tz=UTC))

    assert list(frame.bar_start) == [pd.Timestamp(t, tz=UTC) for t in (
        "2021-05-15 22:00", "2021-05-15 23:00", "2021-05-16 00:00", "2021-05-16 01:00", "2021-05-16 02:00",
        "2021-05-16 03:00", "2021-05-16 04:00", "2021-05-16 05:00", "2021-05-16 06:00", "2021-05-16 07:00",
        "2021-05-16 08:00", "2021-05-16 09:00", "2021-05-16 10:00", "2021-05-16 11:00", "2021-05-16 12:00",
        "2021-05-16 13:00", "2021-05-16 14:00", "2021-05-16 15:00", "2021-05-16 16:00", "2021-05-16 17:00",
        "2021-05-16 18:00", "2021-05-16 19:00", "2021-05-16 20:00", "2021-05-16 21:00", "2021-05-16 22:00",
        "2021-05-16 23:00", "2025-11-04 00:00", "2025-11-04 01:00")]
    assert sorted(archive.stats.downloaded) == sorted([may_path, nov_path])
    assert len(archive.stats.gaps) == 53 + 3  # June 2021 .. October 2025 monthly, 1-3 November 2025 daily
    assert kline_path("BTCUSDT", "1h", "2025-11-03") in archive.stats.gaps
    assert frame.close.iloc[-1] == 107040.01 and frame.close.iloc[0] == 47964.69


# -- funding settlements: a real file whose interval changes within the month -------------------

def _axs_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(AXS_CSV.read_text())))


def _axs_archive(tmp_path: Path):
    path = funding_path("AXSUSDT", "2026-01")
    replay = _replay_dir(tmp_path, {path: _zip_of("AXSUSDT-fundingRate-2026-01.csv", AXS_CSV.read_bytes())})
    return open_archive("replay", replay_dir=replay, cache_dir=tmp_path / "cache"), path


def test_real_funding_with_8h_1h_and_4h_intervals_is_rounded_to_each_settlement_hour(tmp_path):
    archive, path = _axs_archive(tmp_path)
    frame = archive.funding("AXSUSDT", "2026-01-01", "2026-02-01", NOW)
    raw = _axs_rows()

    assert archive.stats.downloaded == [path]
    assert len(frame) == len(raw) == 292
    calc = [_utc_from_epoch(r["calc_time"], "ms") for r in raw]
    assert sum(c != c.floor("h") for c in calc) > 150  # the file carries ms of jitter after the hour ...
    assert list(frame.settled_at) == [c.floor("h") for c in calc]  # ... rounded off to the settlement hour
    assert list(frame.calc_time) == calc
    assert list(frame.funding_rate) == [float(r["last_funding_rate"]) for r in raw]
    assert list(frame.funding_interval_hours) == [float(r["funding_interval_hours"]) for r in raw]
    assert set(frame.funding_interval_hours) == {1.0, 4.0, 8.0}
    # Hourly settlements (17-26 Jan) fall at every hour, not only 00/08/16.
    assert set(frame.settled_at.dt.hour) == set(range(24))
    # Each settlement follows the previous one by its own interval, except where the interval grows
    # (1h -> 4h: the first 4h settlement, 26 Jan 08:00, comes one hour after the last 1h one).
    gaps = frame.settled_at.diff().dt.total_seconds().div(3600).iloc[1:]
    off = frame.iloc[1:][gaps.to_numpy() != frame.funding_interval_hours.iloc[1:].to_numpy()]
    assert list(off.settled_at) == [pd.Timestamp("2026-01-26 08:00", tz=UTC)]
    switch_to_hourly = frame[frame.funding_interval_hours == 1].settled_at.iloc[0]
    assert switch_to_hourly == pd.Timestamp("2026-01-17 17:00", tz=UTC)


def test_real_funding_settlements_become_history_rows_known_at_their_settlement(tmp_path):
    archive, _ = _axs_archive(tmp_path)
    start, end = pd.Timestamp("2026-01-17", tz=UTC), pd.Timestamp("2026-01-18", tz=UTC)
    result = archive_history(archive, "binance", ["AXS"], "USDT", start, end, NOW, kinds=("funding_history",))

    assert result.failures == {}
    raw = [r for r in _axs_rows() if start <= _utc_from_epoch(r["calc_time"], "ms") < end]
    rows = sorted(result.rows, key=lambda r: r["observed_at"])
    assert len(rows) == len(raw) == 10  # 00:00, 08:00, 16:00 (8h) then 17:00 .. 23:00 (1h)
    expected = [_utc_from_epoch(r["calc_time"], "ms").floor("h") for r in raw]
    assert [r["observed_at"] for r in rows] == expected
    assert [r["available_at"] for r in rows] == expected  # known at the settlement, not before
    assert [r["funding_time"] for r in rows] == expected
    assert [r["funding_rate"] for r in rows] == [float(r["last_funding_rate"]) for r in raw]
    assert all(r["kind"] == "funding_history" and r["symbol"] == "AXS" for r in rows)
