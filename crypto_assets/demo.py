"""`make demo`: materialize the whole graph offline (replay mode) into the embedded
warehouse and print what was built, per dataset: the window shown, its rows, and why that window.

Replay serves recorded real payloads only, so each source is materialized over the window its
recordings cover, never over a window it would have to invent:

- prices, bars, indicators and features: the recorded CoinGecko 5-minute day of BTC
  (14-15 May 2021), the one coherent price window; daily macro and on-chain days before it
  feed the features as of each bar, and so do Binance's settled funding rates of 13-15 May 2021
  (derivatives_metrics, backfilled from Binance's public data archive: real files);
- macro series also over the days of the Yahoo recordings (1-3 Jan 2020);
- news: the Guardian /search recording (10 Sep 2014), social: the Reddit /new listing
  (1 Mar 2016), and sentiment scored on exactly those texts. Both predate the project's hourly
  partition set (which starts 2021-04-01), so the demo runs these three assets on an hourly
  partition set that starts on the first recorded day (`TEXT_PARTITIONS_START`); the code and
  checks are the same. The Reddit listing is served through `resources/demo_replay`.

No recording of news or Reddit posts covers the price window, so the features' sentiment
columns there are empty and their `dq_*` flags say so.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import textwrap
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from crypto_assets.paths import RESOURCES_DIR

# The recorded CoinGecko minute-level day: 24 hourly partitions, one ranged run.
DEMO_HOURS = ("2021-05-14-15:00", "2021-05-15-14:00")
# Daily macro/on-chain days the features read as of each bar of DEMO_HOURS.
DEMO_DAYS = ("2021-05-01", "2021-05-15")
# Days of the Yahoo chart recordings (GC=F, EURUSD=X; requested for 2020-01-01..2020-01-03).
YAHOO_DAYS = ("2020-01-01", "2020-01-03")
# The Guardian /search recording: 10 articles published 2014-09-10 15:50-16:10 UTC.
NEWS_HOURS = ("2014-09-10-15:00", "2014-09-10-16:00")
# PRAW's recorded r/AskReddit /new listing: 100 posts created 2016-03-01 07:44-08:37 UTC.
SOCIAL_HOURS = ("2016-03-01-07:00", "2016-03-01-08:00")
# ccxt's recorded exchange cases: BTC/USDT 1h candles of 30 Jan 2024 (Binance, Kraken, OKX).
EXCHANGE_HOURS = ("2024-01-30-16:00", "2024-01-30-19:00")
# Binance's archived funding settlements (real BTCUSDT files of April/May 2021, resources/replay/binance_archive):
# the price window's days and the day before, so the features' 24 h funding change has its earlier figure too.
ARCHIVE_DERIVATIVES_HOURS = ("2021-05-13-00:00", "2021-05-15-23:00")
# The recorded current derivatives figures: Bybit funding (2024-11-04 14:21), OKX open interest (2024-10-12 10:18),
# and the archive-backed backfill of the price window's funding history.
DERIVATIVES_HOURS = (("2024-11-04-14:00", "2024-11-04-14:00"), ("2024-10-12-10:00", "2024-10-12-10:00"),
                     ARCHIVE_DERIVATIVES_HOURS)
TEXT_PARTITIONS_START = "2014-09-10-00:00"  # the first recorded day (NEWS_HOURS)
TEXT_ASSETS = ("news_articles", "social_posts", "sentiment_scores")
# Demo-only replay catalogs (see resources/demo_replay/README.md).
DEMO_REPLAY_DIR = RESOURCES_DIR / "demo_replay"

# Dagster's console stays silent (it would print a failed step's stack trace); the demo echoes
# each run's warnings and failures itself, one line each (`_warnings`). Every event is still in
# the instance (see `make dev`).
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# The prices step also stores the recorded CoinGecko /ohlc candles (BTC, 4-hour) of the window.
_WITH_CANDLES = {**_QUIET, "ops": {"ohlcv_bars": {"config": {"include_ohlc_endpoint": True}}}}


def _hours(first: str, last: str) -> tuple[str, str]:
    """Hourly partition keys first..last (inclusive) -> the [start, end) they cover."""
    start, stop = (pd.Timestamp(datetime.strptime(k, "%Y-%m-%d-%H:%M")) for k in (first, last))
    return f"{start:%Y-%m-%d %H:%M}", f"{stop + pd.Timedelta(hours=1):%Y-%m-%d %H:%M}"


def _days(first: str, last: str) -> tuple[str, str]:
    return first, f"{pd.Timestamp(last) + pd.Timedelta(days=1):%Y-%m-%d}"


@dataclass(frozen=True)
class Shown:
    """One dataset's line in the summary: the windows shown and why those."""

    dataset: str
    windows: tuple[tuple[str, str], ...]  # [start, end) in UTC; () = not time-windowed
    why: str


PRICE_WINDOW = _hours(*DEMO_HOURS)
NEWS_WINDOW = _hours(*NEWS_HOURS)
SOCIAL_WINDOW = _hours(*SOCIAL_HOURS)
EXCHANGE_WINDOW = _hours(*EXCHANGE_HOURS)
DERIVATIVES_WINDOWS = tuple(_hours(*hours) for hours in DERIVATIVES_HOURS)
SHOWN = (
    Shown("coin_universe", (), "resources/coins.csv, the tracked symbols (replay does not refresh it from CoinGecko)"),
    Shown("price_observations", (PRICE_WINDOW,),
          "the recorded CoinGecko 5-minute day of BTC (market_chart days=1, recorded 15 May 2021 14:42 UTC): the "
          "one coherent price window; no other coin has a recording of these hours"),
    Shown("ohlcv_bars", (PRICE_WINDOW, EXCHANGE_WINDOW),
          "5-minute bars resampled from those observations, plus the 4-hour candles of the recorded CoinGecko "
          "/ohlc response (no volume recorded); and the exchange candles of 30 Jan 2024 as primary bars "
          "(method='exchange', with volume). The method column says which"),
    Shown("exchange_candles", (EXCHANGE_WINDOW,),
          "the only recorded exchange candles: ccxt's BTC/USDT 1h cases of 30 Jan 2024 (Binance, Kraken, OKX; "
          "Coinbase and Bybit have no 1h recording); no exchange recording covers May 2021"),
    Shown("technical_indicators", (PRICE_WINDOW,),
          "computed on the 5-minute bars; one recorded day only, so long lookbacks (e.g. SMA 200) fill in late"),
    Shown("ml_features", (PRICE_WINDOW,),
          "one row per bar of that day, every input joined as of the bar (which inputs were there: see below)"),
    Shown("macro_series", (_days(*DEMO_DAYS), _days(*YAHOO_DAYS)),
          "the days before the price window (FRED CPILFESL, WGS10YR recordings) and the days of the Yahoo "
          "recordings (GC=F, EURUSD=X, Jan 2020; FRED CPILFESL, GDP, WGS10YR there too); VIX, SPX, DXY, DGS10 "
          "and the other series have no recording"),
    Shown("fear_greed_index", (_days(*DEMO_DAYS),),
          "a real Alternative.me answer of Apr-Jun 2021 (resources/replay/alternative_me): the days up to the "
          "price window, which the features join as-of (14 May: 26 'Fear')"),
    Shown("onchain_metrics", (_days(*DEMO_DAYS),),
          "the days before the price window: blockchain.com n-transactions (one exact value every 3rd day); "
          "hash rate, addresses and DefiLlama TVL have no recording"),
    Shown("news_articles", (NEWS_WINDOW,),
          "the only recorded articles: a Guardian /search response, 10 Sep 2014 (general news). No news recording "
          "covers the price window; the recorded RSS feeds are broken or undated (-> quarantine)"),
    Shown("social_posts", (SOCIAL_WINDOW,),
          "the only recorded Reddit listing: PRAW's r/AskReddit /new, 1 Mar 2016, served for r/ethereum "
          "(resources/demo_replay); rows keep their own subreddit. No crypto subreddit listing was recorded"),
    Shown("sentiment_scores", (NEWS_WINDOW, SOCIAL_WINDOW), "scored on exactly those articles and posts"),
    Shown("market_regimes", (PRICE_WINDOW,),
          "one row per coin and hour of the price window (and market-wide); the regime needs 192 h of history, "
          "the recordings cover one day, so the regime columns stay empty (warming up), never guessed"),
    Shown("market_anomalies", (PRICE_WINDOW,),
          "every scored hour of the price window; the robust z-scores need a 168 h baseline, which one recorded "
          "day does not give, so no hour is flagged"),
    Shown("derivatives_metrics", DERIVATIVES_WINDOWS,
          "Binance's settled BTCUSDT funding rates of 13-15 May 2021 from its public data archive (real monthly "
          "file, checksum-verified; a backfill older than the REST path: source replay:binance_archive), which "
          "ml_features joins as of each bar; and the only recorded current figures: Bybit's funding (4 Nov 2024) "
          "and OKX's open interest (12 Oct 2024). The archive files of other coins and the daily open-interest "
          "metrics were not recorded (gaps, listed in run_archive_gaps)"),
)
# Datasets the demo cannot show, and why (printed under the table).
NOT_SHOWN = {
    "news_narratives": "off by default: it needs a local LLM (CRYPTO_LLM_URL and CRYPTO_LLM_MODEL)",
}


def _widen(asset, partitions_def):
    return asset.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions_def))


def build_demo(echo=print) -> dict:
    """Materialize every step into the Dagster instance of DAGSTER_HOME and the configured
    warehouse (default: the embedded Delta Lake warehouse there). Returns {"failed_steps": [...],
    "datasets": [one dict per dataset: dataset, windows, rows_in_window, rows, partitions, why]}."""
    os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ["CRYPTO_SOURCE_MODE"] = "replay"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: fall back to VADER at once
    warnings.filterwarnings("ignore")

    import dagster as dg

    from crypto_assets.assets import all_assets
    from crypto_assets.assets.common import range_tags
    from crypto_assets.automation.policies import apply_policies
    from crypto_assets.checks.data_checks import all_data_checks
    from crypto_assets.resources import build_resources
    from crypto_assets.social.reddit import RedditSource

    assets = apply_policies(all_assets())
    by_key = {key.to_user_string(): a for a in assets for key in a.keys}
    graph = [*assets, *all_data_checks(assets)]
    # News, social and sentiment (same code, same checks) on an hourly set reaching back to the
    # first recorded day; the project's own set starts 2021-04-01.
    text_hourly = dg.HourlyPartitionsDefinition(start_date=TEXT_PARTITIONS_START, timezone="UTC", end_offset=1)
    text_assets = [_widen(by_key[k], text_hourly) for k in TEXT_ASSETS]
    text_graph = [*text_assets, *all_data_checks(text_assets)]

    resources = build_resources(mode="replay")
    resources["reddit"] = RedditSource(mode="replay", replay_dir=str(DEMO_REPLAY_DIR))

    steps = [
        ("reference", graph, ["coin_universe"], {}, _QUIET),
        ("daily", graph, ["macro_series", "onchain_metrics", "fear_greed_index"], range_tags(*DEMO_DAYS), _QUIET),
        ("yahoo days", graph, ["macro_series"], range_tags(*YAHOO_DAYS), _QUIET),
        ("prices", graph, ["price_observations", "ohlcv_bars", "technical_indicators"], range_tags(*DEMO_HOURS),
         _WITH_CANDLES),
        ("exchanges", graph, ["exchange_candles", "ohlcv_bars"], range_tags(*EXCHANGE_HOURS), _QUIET),
        ("news", text_graph, ["news_articles", "sentiment_scores"], range_tags(*NEWS_HOURS), _QUIET),
        ("social", text_graph, ["social_posts", "sentiment_scores"], range_tags(*SOCIAL_HOURS), _QUIET),
        ("intelligence", graph, ["market_regimes", "market_anomalies"], range_tags(*DEMO_HOURS), _QUIET),
        *(("derivatives", graph, ["derivatives_metrics"], range_tags(*hours), _QUIET) for hours in DERIVATIVES_HOURS),
        ("features", graph, ["ml_features"], range_tags(*DEMO_HOURS), _QUIET),
    ]
    instance = dg.DagsterInstance.get()
    failed = []
    for label, defs, selection, tags, run_config in steps:
        t0 = time.time()
        result = dg.materialize(defs, selection=dg.AssetSelection.assets(*selection), instance=instance,
                                resources=resources, tags=tags, raise_on_error=False, run_config=run_config)
        span = f" [{tags['dagster/asset_partition_range_start']} .. {tags['dagster/asset_partition_range_end']}]" if tags else ""
        echo(f"[demo] {label:<10} {', '.join(selection)}{span}: {'ok' if result.success else 'FAILED'} "
             f"in {time.time() - t0:.1f}s")
        if not result.success and full_disk() is not None:
            raise DiskFull(f"step {label!r} failed on a full disk")  # the next steps would too
        for line in _warnings(instance, result.run_id):
            echo(line)
        if not result.success:
            failed.append(label)
            for event in result.all_events:
                if event.is_step_failure:
                    echo(f"        {event.step_key}: {event.step_failure_data.error.message.strip()[:400]}")
    return {"failed_steps": failed, "datasets": _datasets(instance)}


_FAILURE_EVENTS = {"STEP_FAILURE", "RUN_FAILURE", "PIPELINE_FAILURE"}


def _warnings(instance, run_id: str) -> list[str]:
    """The run's warnings and errors, one line each (step failures are echoed by the caller).

    The demo runs with Dagster's console logger at CRITICAL and prints these itself: Dagster's
    console prints a step failure with its stack trace, which on a full disk would bury the one
    line that says what happened."""
    lines = []
    for entry in instance.all_logs(run_id):
        if entry.level < logging.WARNING:
            continue
        if entry.dagster_event is not None and entry.dagster_event.event_type_value in _FAILURE_EVENTS:
            continue
        text = (entry.user_message or "").strip().splitlines()
        lines.append(f"        {entry.step_key or 'run'}: {logging.getLevelName(entry.level).lower()}: "
                     f"{text[0][:300] if text else ''}")
    return lines


def _datasets(instance) -> list[dict]:
    import dagster as dg

    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.resource import get_warehouse

    warehouse, tables = get_warehouse(None), all_tables()
    out = []
    for shown in SHOWN:
        table, key = tables[shown.dataset], dg.AssetKey(shown.dataset)
        if shown.windows:
            partitions = len(instance.get_materialized_partitions(key))
            in_window = sum(len(warehouse.read(table, pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC")))
                            for a, b in shown.windows)
        else:
            partitions = 1 if instance.get_latest_materialization_event(key) else 0
            in_window = warehouse.count(table)
        out.append({"dataset": shown.dataset, "windows": shown.windows, "rows_in_window": in_window,
                    "rows": warehouse.count(table), "partitions": partitions, "why": shown.why})
    return out


def feature_inputs() -> dict[str, tuple[int, int]]:
    """ml_features rows that had each input: {input: (rows with it, rows)}."""
    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.resource import get_warehouse

    flags = {"sentiment": "dq_sentiment_present", "macro": "dq_macro_series_present",
             "on-chain": "dq_onchain_metrics_present", "warm indicators": "dq_indicators_warm"}
    values = {"fear & greed": "fng_value", "funding": "deriv_funding_rate"}  # values, not flags: present where known
    frame = get_warehouse(None).read(all_tables()["ml_features"], columns=[*flags.values(), *values.values()])
    counts = {name: (int((frame[col].fillna(0) > 0).sum()), len(frame)) for name, col in flags.items()}
    return counts | {name: (int(frame[col].notna().sum()), len(frame)) for name, col in values.items()}


def print_summary(report: dict, out=print) -> None:
    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.resource import get_warehouse

    warehouse = get_warehouse(None)
    out(f"\nWarehouse: {warehouse.display_url}")
    out(f"Dagster instance: {os.environ['DAGSTER_HOME']}  (open it with `make dev`)\n")
    out(f"{'dataset':<21} {'rows':>5} {'parts':>5}  window shown (UTC, [start, end)) / why this window")
    out("-" * 110)
    for line in report["datasets"]:
        windows = " + ".join(f"{a} .. {b}" for a, b in line["windows"]) or "the whole table (not time-windowed)"
        note = "" if line["rows_in_window"] == line["rows"] else f"  ({line['rows']} rows in the table in all)"
        out(f"{line['dataset']:<21} {line['rows_in_window']:>5} {line['partitions']!s:>5}  {windows}{note}")
        for chunk in textwrap.wrap(line["why"], 80):
            out(f"{'':<35}{chunk}")
    quarantined = warehouse.count(all_tables()["quarantine"])
    out(f"{'quarantine':<21} {quarantined:>5} {'':>5}  rejected input records with their reasons")
    out(f"{'':<35}(the recorded broken and undated RSS feeds, fetched with the news)")
    inputs = ", ".join(f"{name} {have}/{rows}" for name, (have, rows) in feature_inputs().items())
    out(f"\nml_features rows with each input: {inputs}.")
    out("  sentiment: no news or Reddit recording covers the price window (dq_sentiment_present = 0).")
    out("  macro: the recorded FRED values became known in Oct 2024 (their vintage), after these bars, so an")
    out("  as-of join cannot use them; the Yahoo days (Jan 2020) are far older than the staleness limits.")
    out("  funding: Binance's archived settlements (00/08/16 UTC), each known from its settlement on (as-of).")
    out("Sentiment falls back to VADER when no transformer model is available offline; its rows then say "
        "model='vader'.")
    out(f"News, social and sentiment ran on an hourly partition set from {TEXT_PARTITIONS_START} (the recordings")
    out("predate the project's, which starts 2021-04-01); `make dev` lists their rows but not those partitions.")
    for name, why in NOT_SHOWN.items():
        out(f"Not shown: {name}: {why}.")
    empty = [line["dataset"] for line in report["datasets"] if not line["rows_in_window"]]
    if empty:
        out(f"\nNo rows in the window shown for: {', '.join(empty)}")
    if report["failed_steps"]:
        out(f"Failed steps: {', '.join(report['failed_steps'])}")


# A full disk, in the words of the layers that write: the OS (ENOSPC), SQLite (Dagster's
# instance storage), delta-rs (the embedded warehouse: "No space left on device (os error 28)").
# SQLite may also say only "disk I/O error" (a journal write failed): then the disk is probed.
DISK_FULL_TEXT = ("database or disk is full", "no space left on device", "os error 28", "errno 28")
PROBE_BYTES = 1 << 20  # a disk that cannot take one more MiB is full, for the demo


class DiskFull(OSError):
    """The demo cannot go on: the disk it writes to is full."""

    def __init__(self, detail: str):
        super().__init__(errno.ENOSPC, detail)


def _says_disk_full(text: str) -> bool:
    text = text.lower()
    return any(marker in text for marker in DISK_FULL_TEXT)


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home")


def _local_warehouse_root() -> Path | None:
    from crypto_assets.warehouse.store import default_warehouse_url

    scheme, _, rest = default_warehouse_url().partition("://")
    if scheme in ("delta", "delta+file"):
        return Path(rest if rest.startswith("/") else os.path.abspath(rest))
    if scheme == "sqlite" and rest.startswith("/"):
        return Path(rest[1:]).parent
    return None


def _written_paths() -> list[tuple[str, Path]]:
    """Where the demo writes: DAGSTER_HOME, and the warehouse when it is a local path."""
    paths = [("DAGSTER_HOME", _home())]
    try:
        warehouse = _local_warehouse_root()
    except Exception:  # noqa: BLE001  (a bad URL is reported by the warehouse itself)
        warehouse = None
    if warehouse is not None:
        paths.append(("the warehouse", warehouse))
    return paths


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _no_room(path: Path) -> bool:
    """Whether `path`'s disk cannot take another PROBE_BYTES (written, synced and removed)."""
    try:
        with tempfile.TemporaryFile(dir=_existing(path)) as probe:
            probe.write(b"\0" * PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return False


def full_disk() -> tuple[str, Path] | None:
    """(name, path) of the first place the demo writes to whose disk is full, else None."""
    return next(((name, path) for name, path in _written_paths() if _no_room(path)), None)


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) comes from a full disk: ENOSPC/EDQUOT, SQLite's or
    delta-rs's words for it (they do not keep the errno), or any storage error while a disk the
    demo writes to cannot take another MiB."""
    storage_error = False
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(link, (OSError, sqlite3.Error)):
            if _says_disk_full(str(link)):
                return True  # sqlite3.OperationalError; WarehouseUnavailable (an OSError) from delta-rs
            storage_error = True
    return storage_error and full_disk() is not None


def disk_full_message() -> str:
    """One line naming the full disk and what is left on it."""
    name, path = full_disk() or min(_written_paths(), key=lambda np: _free_bytes(np[1]) or 0)
    free = _free_bytes(path)
    return (f"crypto-assets demo: the disk holding {name} is full: {path}, "
            f"{'an unknown number of' if free is None else free} bytes free "
            "(free some space or point DAGSTER_HOME elsewhere, then run it again)")


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(_existing(path)).free
    except OSError:
        return None


def run_demo() -> int:
    """`crypto-assets demo`: 0 when every dataset was built; 1 when a step failed or a dataset is
    empty; 2, with one line and no traceback, when a disk it writes to is full or the warehouse
    cannot be written."""
    from crypto_assets.warehouse.store import WarehouseUnavailable

    try:
        if full_disk() is not None:
            raise DiskFull("no room before the first step")
        return _run_demo()
    except Exception as exc:
        if disk_full(exc):
            print(disk_full_message(), file=sys.stderr, flush=True)
            return 2
        if isinstance(exc, WarehouseUnavailable):
            print(f"crypto-assets demo: the warehouse is unavailable: {str(exc)[:300]}", file=sys.stderr, flush=True)
            return 2
        raise


def _run_demo() -> int:
    started = time.time()
    report = build_demo(echo=lambda text: print(text, flush=True))
    print_summary(report)
    print(f"\nDone in {time.time() - started:.0f}s.")
    empty = [line for line in report["datasets"] if not line["rows_in_window"]]
    return 1 if report["failed_steps"] or empty else 0
