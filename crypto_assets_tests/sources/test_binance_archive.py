"""Binance's public data archive (crypto_assets/sources/binance_archive.py) and its use by
derivatives_metrics: checksum-verified downloads, the on-disk cache, gaps, and the three parsers.

Data: the funding files are Binance's REAL BTCUSDT settlements of April/May 2021 as recorded for
replay (resources/replay/binance_archive, see its ATTRIBUTION.md). The kline and metrics CSVs
below are CONSTRUCTED in the archive's real layout (no licensed copy was available offline); they
test the parsers' handling of the layout, never a market fact, and are never served by replay.
"""

from __future__ import annotations

import hashlib
import io
import zipfile

import httpx
import pandas as pd
import pytest

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.binance_archive import (
    ArchiveClient,
    funding_path,
    kline_path,
    metrics_path,
    open_archive,
    plan_periods,
)
from crypto_assets.sources.client import SourceError
from crypto_assets.sources.derivatives import archive_history

UTC = "UTC"
RECORDED = RESOURCES_DIR / "replay" / "binance_archive"
NOW = pd.Timestamp("2026-12-06 12:00", tz=UTC)


def _real_csv(month: str) -> str:
    with zipfile.ZipFile(RECORDED / f"BTCUSDT-fundingRate-{month}.zip") as z:
        return z.read(f"BTCUSDT-fundingRate-{month}.csv").decode()


def _zip(path: str, csv: str) -> tuple[bytes, bytes]:
    name = path.rsplit("/", 1)[-1]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name.replace(".zip", ".csv"), csv)
    data = buf.getvalue()
    return data, f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()


class Served:
    """A scripted archive host: path -> body; anything else 404 (as data.binance.vision answers)."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.seen = files, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.lstrip("/")
        self.seen.append(path)
        if path in self.files:
            return httpx.Response(200, content=self.files[path])
        return httpx.Response(404, text="<Error><Code>NoSuchKey</Code></Error>")


def _client(files: dict[str, bytes], cache) -> tuple[ArchiveClient, Served]:
    served = Served(files)
    return open_archive("live", cache_dir=cache, transport=httpx.MockTransport(served), sleep=lambda _s: None), served


def _files(path: str, csv: str) -> dict[str, bytes]:
    data, checksum = _zip(path, csv)
    return {path: data, f"{path}.CHECKSUM": checksum}


def test_real_funding_files_are_verified_parsed_and_rounded_to_the_settlement(tmp_path):
    archive = open_archive("replay", cache_dir=tmp_path)
    frame = archive.funding("BTCUSDT", "2021-04-01", "2021-06-01", NOW)
    raw = pd.concat([pd.read_csv(io.StringIO(_real_csv(m))) for m in ("2021-04", "2021-05")], ignore_index=True)
    assert len(frame) == len(raw) == 183  # 90 + 93 real settlements, two monthly files
    assert archive.stats.downloaded == [funding_path("BTCUSDT", "2021-04"), funding_path("BTCUSDT", "2021-05")]
    calc = pd.to_datetime(raw.calc_time, unit="ms", utc=True)
    assert (calc != calc.dt.floor("h")).sum() > 100  # the real files carry ms of jitter ...
    assert list(frame.settled_at) == list(calc.dt.floor("h"))  # ... rounded off to the settlement
    assert set(frame.settled_at.dt.hour) == {0, 8, 16}
    assert frame.settled_at.iloc[0] == pd.Timestamp("2021-04-01 00:00", tz=UTC)  # calc_time 1617235200025
    assert list(frame.funding_rate) == list(raw.last_funding_rate)


def test_a_rerun_reads_the_cache_and_makes_no_request(tmp_path):
    first = open_archive("replay", cache_dir=tmp_path)
    expected = first.funding("BTCUSDT", "2021-05-14", "2021-05-16", NOW)
    assert first.client.requests_made == 2  # the .CHECKSUM, then the zip
    assert (tmp_path / funding_path("BTCUSDT", "2021-05")).exists()

    def refuse(request):
        raise AssertionError(f"second request: {request.url}")

    again = open_archive("replay", cache_dir=tmp_path, transport=httpx.MockTransport(refuse))
    frame = again.funding("BTCUSDT", "2021-05-14", "2021-05-16", NOW)
    assert again.client.requests_made == 0 and again.stats.cached == [funding_path("BTCUSDT", "2021-05")]
    pd.testing.assert_frame_equal(frame, expected)
    assert len(frame) == 6  # 14-15 May 2021: 00, 08, 16 UTC each day


def test_a_checksum_mismatch_is_an_error_naming_the_file_and_nothing_is_cached(tmp_path):
    path = funding_path("BTCUSDT", "2021-05")
    files = {path: (RECORDED / "BTCUSDT-fundingRate-2021-05.zip").read_bytes(),
             f"{path}.CHECKSUM": (RECORDED / "BTCUSDT-fundingRate-2021-05.zip.CHECKSUM").read_bytes()}
    tampered = bytearray(files[path])
    tampered[-30] ^= 0xFF
    files[path] = bytes(tampered)
    archive, _ = _client(files, tmp_path)
    with pytest.raises(SourceError, match=r"SHA-256 mismatch for BTCUSDT-fundingRate-2021-05\.zip") as err:
        archive.funding("BTCUSDT", "2021-05-14", "2021-05-16", NOW)
    assert err.value.source == "binance_archive"
    assert not (tmp_path / path).exists()
    # A damaged cache entry is never used: it is fetched again (and verified).
    good, _ = _client({path: (RECORDED / "BTCUSDT-fundingRate-2021-05.zip").read_bytes(),
                       f"{path}.CHECKSUM": files[f"{path}.CHECKSUM"]}, tmp_path)
    assert len(good.funding("BTCUSDT", "2021-05-14", "2021-05-16", NOW)) == 6
    (tmp_path / path).write_bytes(bytes(tampered))
    refetch, served = _client({path: (RECORDED / "BTCUSDT-fundingRate-2021-05.zip").read_bytes(),
                               f"{path}.CHECKSUM": files[f"{path}.CHECKSUM"]}, tmp_path)
    assert len(refetch.funding("BTCUSDT", "2021-05-14", "2021-05-16", NOW)) == 6 and served.seen
    assert refetch.stats.cache_repaired == [path]  # the damage is reported, not silently absorbed


def test_a_missing_month_is_a_gap_but_a_missing_zip_next_to_its_checksum_is_an_error(tmp_path):
    archive, served = _client({}, tmp_path)
    assert archive.funding("NEWUSDT", "2021-05-01", "2021-06-01", NOW) is None
    assert archive.stats.gaps == [funding_path("NEWUSDT", "2021-05")] and served.seen == [
        funding_path("NEWUSDT", "2021-05") + ".CHECKSUM"]
    path = funding_path("BTCUSDT", "2021-05")
    only_sum = {f"{path}.CHECKSUM": (RECORDED / "BTCUSDT-fundingRate-2021-05.zip.CHECKSUM").read_bytes()}
    broken, _ = _client(only_sum, tmp_path / "other")
    with pytest.raises(SourceError, match="404"):
        broken.funding("BTCUSDT", "2021-05-01", "2021-06-01", NOW)


# CONSTRUCTED kline rows in the archive's spot layout (12 fields, no header): the last hour of
# 2024 in milliseconds and the first hour of 2025 in MICROseconds, as Binance switched on 2025-01-01.
KLINES_2024 = "1735686000000,93000.1,93500.0,92800.0,93400.5,120.5,1735689599999,11230000.5,4321,60.1,5600000.2,0\n"
KLINES_2025 = "1735689600000000,93400.5,94000.0,93300.0,93900.0,150.25,1735693199999999,14100000.0,5123,70.0,6570000.0,0\n"


def test_kline_times_in_milliseconds_and_microseconds_are_both_read(tmp_path):
    dec, jan = kline_path("BTCUSDT", "1h", "2024-12"), kline_path("BTCUSDT", "1h", "2025-01")
    archive, _ = _client({**_files(dec, KLINES_2024), **_files(jan, KLINES_2025)}, tmp_path)
    frame = archive.klines("BTCUSDT", "1h", "2024-12-31 23:00", "2025-01-01 01:00", NOW)
    assert list(frame.bar_start) == [pd.Timestamp("2024-12-31 23:00", tz=UTC), pd.Timestamp("2025-01-01 00:00", tz=UTC)]
    assert list(frame.close_time.dt.floor("s")) == [pd.Timestamp("2024-12-31 23:59:59", tz=UTC),
                                                     pd.Timestamp("2025-01-01 00:59:59", tz=UTC)]
    assert list(frame.close) == [93400.5, 93900.0] and list(frame.trade_count) == [4321, 5123]
    assert list(frame.quote_volume) == [11230000.5, 14100000.0]


def test_a_funding_file_with_another_header_is_an_error_naming_the_file(tmp_path):
    path = funding_path("BTCUSDT", "2021-05")
    archive, _ = _client(_files(path, "<html>maintenance</html>\n"), tmp_path)
    with pytest.raises(SourceError, match=r"BTCUSDT-fundingRate-2021-05\.zip: unreadable archive file"):
        archive.funding("BTCUSDT", "2021-05-01", "2021-06-01", NOW)


# CONSTRUCTED metrics rows in the archive's real layout (header; create_time as 'YYYY-MM-DD HH:MM:SS').
METRICS_HEADER = ("create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
                  "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n")


def _metrics(day: str, values: list[float]) -> str:
    start = pd.Timestamp(day)
    return METRICS_HEADER + "".join(
        f"{start + pd.Timedelta(minutes=5 * i):%Y-%m-%d %H:%M:%S},BTCUSDT,{v},{v * 50000},1.1,1.2,1.3,0.9\n"
        for i, v in enumerate(values))


def test_daily_open_interest_is_the_days_last_figure_known_only_after_the_day_closed(tmp_path):
    days = {"2021-05-14": [100.0, 101.0, 102.5], "2021-05-15": [90.0, 95.0]}
    files = {}
    for day, values in days.items():
        files.update(_files(metrics_path("BTCUSDT", day), _metrics(day, values)))
    archive, _ = _client(files, tmp_path)
    result = archive_history(archive, "binance", ["BTC", "DOGE"], "USDT", pd.Timestamp("2021-05-14", tz=UTC),
                             pd.Timestamp("2021-05-16", tz=UTC), NOW, kinds=("open_interest_daily",))
    assert result.failures == {}
    rows = sorted(result.rows, key=lambda r: r["observed_at"])
    assert [r["open_interest"] for r in rows] == [102.5, 95.0]
    assert [r["observed_at"] for r in rows] == [pd.Timestamp("2021-05-14 00:10", tz=UTC),
                                                 pd.Timestamp("2021-05-15 00:05", tz=UTC)]
    # No look-ahead: a day's figure is known at the next midnight, after every figure of that day.
    assert [r["available_at"] for r in rows] == [pd.Timestamp("2021-05-15", tz=UTC), pd.Timestamp("2021-05-16", tz=UTC)]
    assert all(r["kind"] == "open_interest_daily" and r["value_currency"] == "USDT" for r in rows)
    # DOGE has no file: two gaps, no failure.
    assert sorted(archive.stats.gaps) == [metrics_path("DOGEUSDT", "2021-05-14"), metrics_path("DOGEUSDT", "2021-05-15")]


def test_a_zero_open_interest_is_no_figure_and_never_the_days_last_one(tmp_path):
    """Real metrics files hold a literal `0E-8` open interest where Binance had no reading (e.g.
    BTCUSDT-metrics-2022-03-07): a zero would be stored as the day's open interest, a fake figure."""
    text = _metrics("2021-05-14", [100.0, 101.0, 102.5]).replace(",102.5,", ",0E-8,")
    archive, _ = _client(_files(metrics_path("BTCUSDT", "2021-05-14"), text), tmp_path)
    result = archive_history(archive, "binance", ["BTC"], "USDT", pd.Timestamp("2021-05-14", tz=UTC),
                             pd.Timestamp("2021-05-15", tz=UTC), NOW, kinds=("open_interest_daily",))
    assert result.failures == {}
    assert [(r["observed_at"], r["open_interest"]) for r in result.rows] == [
        (pd.Timestamp("2021-05-14 00:05", tz=UTC), 101.0)]


def test_the_plan_takes_monthly_files_for_past_months_and_daily_files_up_to_yesterday():
    assert plan_periods("2021-04-20", "2021-06-03", "2021-06-05 10:00") == ["2021-04", "2021-05", "2021-06-01",
                                                                              "2021-06-02"]
    # Today's file does not exist yet: the plan stops at yesterday.
    assert plan_periods("2026-12-04", "2026-12-07", "2026-12-06 10:00") == ["2026-12-04", "2026-12-05"]
    assert plan_periods("2021-05-01", "2021-06-01", "2026-12-06", monthly=False)[:2] == ["2021-05-01", "2021-05-02"]


def test_derivatives_collect_keeps_stored_rows_for_a_key_whose_archive_file_failed(tmp_path, monkeypatch):
    """Invariant 12 through the asset's collect(): a tampered archive file fails (binance, BTC,
    funding_history) only, named with the reason; a coin the archive lacks is a gap, not a failure."""
    from crypto_assets.assets.ingest.derivatives import collect
    from crypto_assets.sources.exchanges import Exchanges
    from crypto_assets.warehouse.failed_keys import failed_fetches

    replay = tmp_path / "replay"
    (replay / "binance_archive").mkdir(parents=True)
    path = funding_path("BTCUSDT", "2021-05")
    data = bytearray((RECORDED / "BTCUSDT-fundingRate-2021-05.zip").read_bytes())
    data[-30] ^= 0xFF
    (replay / "binance_archive" / "f.zip").write_bytes(bytes(data))
    (replay / "binance_archive" / "f.sum").write_bytes((RECORDED / "BTCUSDT-fundingRate-2021-05.zip.CHECKSUM").read_bytes())
    (replay / "binance_archive" / "catalog.yaml").write_text(
        f"routes:\n  - path: /{path}\n    file: f.zip\n  - path: /{path}.CHECKSUM\n    file: f.sum\n")
    for name in ("binance", "bybit", "okx"):  # the exchanges' own replay recordings, unchanged
        (replay / name).symlink_to(RESOURCES_DIR / "replay" / name)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    start = pd.Timestamp("2021-05-14", tz=UTC)
    frame, meta = collect(Exchanges(mode="replay", replay_dir=str(replay)), ["BTC", "ETH"], start,
                          start + pd.Timedelta(days=1))
    failed = {tuple(f.key.values()): f.reason for f in failed_fetches(frame)}
    assert "SHA-256 mismatch for BTCUSDT-fundingRate-2021-05.zip" in failed[("binance", "BTC", "funding_history")]
    assert not any(k[:2] == ("binance", "ETH") for k in failed)  # ETH: gaps only
    assert "ETHUSDT-fundingRate-2021-05.zip" in meta["run_archive_gaps"]
    assert frame[(frame.exchange == "binance")].empty


def test_old_binance_candles_come_from_the_archive_and_equal_the_rest_candles(tmp_path, monkeypatch):
    """exchange_candles' collect for a window older than `archive.before_days`: binance's candles come
    from its archive (source binance_archive, no REST candle request) and are the same candles REST
    gives. The archive file here is DERIVED from real data: the 12 fields of the recorded REST answer
    (ccxt's binance fetchOHLCV case, resources/replay/binance, the same layout as the archive's kline
    files), written into a monthly zip; one hour more is asked for than the file has: a listed gap."""
    import json

    from crypto_assets.assets.ingest.exchange_bars import collect_candles
    from crypto_assets.sources.exchanges import Exchanges

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    start, end = pd.Timestamp("2024-01-30 16:00", tz=UTC), pd.Timestamp("2024-01-30 20:00", tz=UTC)
    rest, _ = collect_candles(Exchanges(mode="replay"), ["BTC"], start, end, now=NOW)
    rest = rest[rest.exchange == "binance"].reset_index(drop=True)
    assert len(rest) == 3 and (rest.source == "replay:binance").all()  # no archive file recorded: REST

    recorded = json.loads((RESOURCES_DIR / "replay" / "binance" / "fetchOHLCV__0_spot_1h.json").read_text())
    csv = "".join(",".join(str(v) for v in row) + "\n" for row in recorded)
    replay = tmp_path / "replay"
    (replay / "binance_archive").mkdir(parents=True)
    (replay / "binance").mkdir()
    (replay / "binance" / "markets.yaml").write_text((RESOURCES_DIR / "replay" / "binance" / "markets.yaml").read_text())
    (replay / "binance" / "catalog.yaml").write_text("routes: []\n")  # REST cannot answer a candle request here
    path = kline_path("BTCUSDT", "1h", "2024-01")
    data, checksum = _zip(path, csv)
    (replay / "binance_archive" / "k.zip").write_bytes(data)
    (replay / "binance_archive" / "k.sum").write_bytes(checksum)
    (replay / "binance_archive" / "catalog.yaml").write_text(
        f"routes:\n  - path: /{path}\n    file: k.zip\n  - path: /{path}.CHECKSUM\n    file: k.sum\n")
    candles, collected = collect_candles(Exchanges(mode="replay", replay_dir=str(replay)), ["BTC"], start, end, now=NOW)
    binance = collected["results"]["binance"]
    archived = candles[candles.exchange == "binance"].reset_index(drop=True)
    assert (archived.source == "replay:binance_archive").all() and binance["failures"] == {}
    assert binance["archive"]["markets"] == ["BTC"] and binance["archive"]["candles"] == 3
    assert binance["requests"] == 0  # not one REST request for binance candles
    columns = ["bar_start", "bar_end", "open", "high", "low", "close", "volume", "quote_volume", "trade_count",
               "market", "quote"]
    pd.testing.assert_frame_equal(archived[columns], rest[columns], check_dtype=False)
    assert binance["gaps"] == {"binance:BTC": [["2024-01-30T19:00:00+00:00", "2024-01-30T19:00:00+00:00"]]}


def test_daily_open_interest_enters_the_features_only_after_its_day_closed(tmp_path):
    """No look-ahead through ml_features' derivatives join: a CONSTRUCTED full day of 5-minute metrics
    (288 rows, the last at 23:55) gives one figure that the features see from midnight on, not at 23:58."""
    from crypto_assets.features.derivatives import derivative_features
    from crypto_assets.sources.derivatives import frame_of

    day = "2021-05-14"
    files = _files(metrics_path("BTCUSDT", day), _metrics(day, [1000.0 + i for i in range(288)]))
    archive, _ = _client(files, tmp_path)
    result = archive_history(archive, "binance", ["BTC"], "USDT", pd.Timestamp(day, tz=UTC),
                             pd.Timestamp("2021-05-15", tz=UTC), NOW, kinds=("open_interest_daily",))
    (row,) = result.rows
    assert row["observed_at"] == pd.Timestamp("2021-05-14 23:55", tz=UTC) and row["open_interest"] == 1287.0
    as_of = pd.to_datetime(["2021-05-14 23:58", "2021-05-15 00:00", "2021-05-15 01:00"], utc=True)
    cols = derivative_features(["BTC"] * 3, as_of, frame_of(result.rows))
    age = cols["dq_derivatives_newest_age_hours"]
    assert pd.isna(age[0])  # 3 minutes after the figure's time, but its day has not closed: unknown
    assert list(age[1:]) == [0.0, 1.0]



def test_only_old_windows_that_end_before_today_take_the_archive():
    """Which derivatives windows take binance's history from the archive (live mode): one of last month
    (older than archive.before_days, closed) does; one reaching into today does not (the archive has closed
    days only), nor a recent one. In replay every window does (the recorded archive files)."""
    from crypto_assets.assets.ingest.derivatives import archive_exchange_for
    from crypto_assets.sources.derivatives import load_derivatives_catalog

    catalog = load_derivatives_catalog()
    now = pd.Timestamp("2026-12-06 12:00", tz=UTC)
    old = pd.Timestamp("2026-10-01", tz=UTC)
    assert archive_exchange_for(catalog, "live", old, old + pd.Timedelta(days=1), now) == "binance"
    assert archive_exchange_for(catalog, "live", old, now.ceil("h"), now) is None
    assert archive_exchange_for(catalog, "live", now - pd.Timedelta(days=2), now - pd.Timedelta(days=1), now) is None
    assert archive_exchange_for(catalog, "replay", now - pd.Timedelta(days=2), now, now) == "binance"


def test_a_tampered_kline_file_fails_that_market_only_and_its_stored_candles_stay(tmp_path, monkeypatch):
    """exchange_candles: a kline zip whose SHA-256 does not match fails (binance, BTC, 1h), named with the
    file, so the IO manager keeps its stored candles (invariant 12); no candle of it is used, none from REST."""
    from crypto_assets.assets.ingest.exchange_bars import collect_candles, failed_candle_fetches
    from crypto_assets.sources.exchanges import Exchanges

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    replay = tmp_path / "replay"
    (replay / "binance_archive").mkdir(parents=True)
    (replay / "binance").symlink_to(RESOURCES_DIR / "replay" / "binance")  # REST could answer these hours
    path = kline_path("BTCUSDT", "1h", "2024-01")
    data, checksum = _zip(path, KLINES_2024)
    (replay / "binance_archive" / "k.zip").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    (replay / "binance_archive" / "k.sum").write_bytes(checksum)
    (replay / "binance_archive" / "catalog.yaml").write_text(
        f"routes:\n  - path: /{path}\n    file: k.zip\n  - path: /{path}.CHECKSUM\n    file: k.sum\n")
    start = pd.Timestamp("2024-01-30 16:00", tz=UTC)
    exchanges = Exchanges(mode="replay", replay_dir=str(replay))
    candles, collected = collect_candles(exchanges, ["BTC"], start, start + pd.Timedelta(hours=3), now=NOW)
    results = collected["results"]
    assert "SHA-256 mismatch for BTCUSDT-1h-2024-01.zip" in results["binance"]["failures"]["BTC"]
    assert candles[candles.exchange == "binance"].empty and results["binance"]["requests"] == 0
    failed, _ = failed_candle_fetches(results, candles, exchanges.catalog(), ["BTC"], None)
    keys = [f.key for f in failed if f.key.get("exchange") == "binance"]
    assert keys == [{"exchange": "binance", "symbol": "BTC", "interval": "1h"}]
