"""Binance's public data archive vs the REST path: a year of 1h spot candles of 320 symbols.
Results: benchmarks/results.json["archive"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_archive.py [--symbols 320] [--days 365]

Files are SYNTHETIC (generated here, labelled synthetic in the results), in the archive's real
layout: one monthly zip per symbol holding `<SYM>-1h-YYYY-MM.csv` (12 fields, no header, ms
timestamps as before 2025) with its `.CHECKSUM` (`<sha256>  <file>`), laid out in the on-disk
cache exactly as a download leaves them. Everything after the disk is the production path, per
market as exchange_candles' collect runs it: `open_archive`, then `archive_candles` (ArchiveClient.klines:
cache read, SHA-256 re-verification against the stored .CHECKSUM, unzip with CRC-32 check, Arrow CSV
parse, ms/µs times, window cut; then the exchange_candles frame) and `missing_ranges` (the gaps the run
reports). Timed from the client's opening, with no untimed warm-up, as the REST side is timed from
its clients' opening (ccxt import included). The REST path is measured in the same run by
bench_exchanges.run_backfill (synthetic Binance /api/v3/klines pages through SourceClient and
ccxt's parser; its closed_candles finds gaps too). Goal: archive candles/s >= 10x REST's.

Request plan for the same year: archive files (monthly zips + checksums) and bytes, next to REST's
requests, and what each costs at resources/sources.yaml's spacing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script (run_all.py, `make bench`)

from benchmarks._results import measured  # noqa: E402
from benchmarks.bench_exchanges import START, run_backfill  # noqa: E402
from crypto_assets.sources.binance_archive import kline_path, open_archive, plan_periods  # noqa: E402
from crypto_assets.sources.catalog import source_spec  # noqa: E402
from crypto_assets.sources.exchanges import Market, missing_ranges  # noqa: E402

HOUR_MS = 3_600_000


def _month_csv(month: pd.Timestamp, rng) -> bytes:
    hours = int(((month + pd.offsets.MonthBegin(1)) - month) / pd.Timedelta(hours=1))
    t = int(month.timestamp() * 1000) + np.arange(hours, dtype="int64") * HOUR_MS
    close = 40000 * np.exp(np.cumsum(rng.normal(0, 0.004, hours)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high, low = np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999
    vol = rng.uniform(500, 3000, hours)
    trades = rng.integers(1000, 9000, hours)
    lines = [f"{t[i]},{open_[i]:.8f},{high[i]:.8f},{low[i]:.8f},{close[i]:.8f},{vol[i]:.8f},{t[i] + HOUR_MS - 1},"
             f"{vol[i] * close[i]:.8f},{trades[i]},{vol[i] / 2:.8f},{vol[i] * close[i] / 2:.8f},0"
             for i in range(hours)]
    return ("\n".join(lines) + "\n").encode()


def build_cache(root: Path, n_symbols: int, months: list[str]) -> dict:
    """The cache as downloads leave it: per symbol and month a zip and its .CHECKSUM."""
    rng = np.random.default_rng(11)
    zips = {}
    for month in months:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"SYN-1h-{month}.csv", _month_csv(pd.Timestamp(f"{month}-01", tz="UTC"), rng))
        zips[month] = buf.getvalue()
    total = 0
    for i in range(n_symbols):
        for month, data in zips.items():
            path = root / kline_path(f"SYN{i}USDT", "1h", month)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.with_name(path.name + ".CHECKSUM").write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
            total += len(data)
    return {"files": n_symbols * len(months), "zip_bytes": total,
            "zip_bytes_per_symbol_year": sum(len(d) for d in zips.values())}


def run_archive(n_symbols: int, days: int) -> dict:
    from crypto_assets.assets.ingest.exchange_bars import archive_candles

    end = START + pd.Timedelta(days=days)
    now = end + pd.Timedelta(days=40)  # every month of the window closed and published
    months = plan_periods(START, end, now)
    root = Path(tempfile.mkdtemp(prefix="bench_archive_"))
    try:
        built = build_cache(root, n_symbols, months)

        def refuse(request):
            raise AssertionError(f"the benchmark reads the cache only: {request.url}")

        step = pd.Timedelta(hours=1)
        t0 = time.perf_counter()
        archive = open_archive("live", cache_dir=root, transport=httpx.MockTransport(refuse))
        candles = gaps = 0
        for i in range(n_symbols):
            frame = archive_candles(archive, "binance", Market("binance", f"SYN{i}", f"SYN{i}/USDT", "USDT"), "1h",
                                    START, end, now)
            candles += len(frame)
            gaps += len(missing_ranges(frame.bar_start, START, end, step))
        elapsed = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert len(archive.stats.cached) == built["files"] and not archive.stats.cache_repaired
    return {"symbols": n_symbols, "days": days, "months": months, "candles": candles, "gaps_found": gaps,
            "files_read": len(archive.stats.cached), "requests": archive.client.requests_made,
            "seconds": round(elapsed, 2), "candles_per_second": round(candles / elapsed), **built}


def request_plan(n_symbols: int, days: int, rest_requests: int, archive: dict) -> dict:
    """A year of candles: archive files vs REST requests, and the time each takes at the planned spacing."""
    archive_spec, rest_spec = source_spec("binance_archive"), source_spec("binance")
    files = archive["files"]
    requests = 2 * files  # each zip and its .CHECKSUM
    one_minute = n_symbols * -(-days * 24 * 60 // 1000)  # the same year at 1m: REST pages of 1000
    return {
        "1h": {
            "rest_requests": rest_requests,
            "rest_minutes_at_planned_rate": round(rest_requests * rest_spec.min_interval_s / 60, 1),
            "archive_files": files, "archive_requests_incl_checksums": requests,
            "archive_bytes_synthetic_zips": archive["zip_bytes"],
            "archive_minutes_at_planned_rate": round(requests * archive_spec.min_interval_s / 60, 1),
            "note": "at 1h the archive needs more requests than REST (2 per month vs 1 per 1000 candles) but no "
                    "request weight; a re-run reads the cache and makes none",
        },
        "1m_same_year_computed": {
            "rest_requests": one_minute,
            "archive_requests_incl_checksums": requests,  # still 12 monthly files per symbol
            "note": "computed, not measured: 1m klines are 60x the rows, the archive still 12 files per symbol-year",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=320)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with measured("archive") as results:
        archive = run_archive(args.symbols, args.days)
        rest = run_backfill("binance", args.symbols, args.days)
        speedup = archive["candles_per_second"] / rest["candles_per_second"]
        results.update({
            "data": "SYNTHETIC files in the archive's real layout (monthly zips + .CHECKSUM, 12-field 1h klines); "
                    "REST: synthetic /api/v3/klines pages (bench_exchanges), both parsed by the production code",
            "archive_1h_year": {k: v for k, v in archive.items() if k != "months"},
            "rest_1h_year": {k: rest[k] for k in ("symbols", "days", "candles", "gaps_found", "requests", "seconds",
                                                  "candles_per_second")},
            "archive_vs_rest_candles_per_second": round(speedup, 1),
            "goal_speedup": 10, "goal_met": speedup >= 10,
            "request_plan_year": request_plan(args.symbols, args.days, rest["requests"], archive),
        })
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
