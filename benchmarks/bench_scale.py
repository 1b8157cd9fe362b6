"""Scale benchmark: the WHOLE asset graph backfilled in replay mode for N days x 320 symbols
(hourly bars), on SQLite and MariaDB/MySQL, plus code-location load time and the Dagster UI's
asset-graph GraphQL latency. Results go to benchmarks/results.json["scale"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py                     # the full default
    PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py --days 1,7 --skip-mysql --skip-ui  # quick

Options: --days 1,7,30 (SQLite sizes) --mysql-days 1,7 --symbols 320 --news-per-hour 40
--social-per-hour 20 --ui-days 7 --ui-requests 20 --load-repeats 5 --window-end YYYY-MM-DD
--skip-mysql --skip-ui --skip-load --keep. MySQL uses CRYPTO_TEST_MYSQL_URL, else
mysql+pymysql://root@127.0.0.1:3306/test: a scratch database crypto_bench_<random> is created
on that server per size and dropped afterwards (only the warehouse is MySQL; the Dagster
instance stays SQLite); when the server cannot be reached the MySQL part says "skipped".
The default (SQLite 1, 7 and 30 days, MySQL 1 and 7 days, load time, UI) takes ~15 minutes on
a 2-core machine; add 30 to --mysql-days for the MySQL 30-day size (~9 more minutes).

Inputs are SYNTHETIC, generated per size into a temporary resources folder that the code
reads through its own override (CRYPTO_RESOURCES_DIR, crypto_assets/paths.py): a coin universe
of 320 coins (the 20 real rows of resources/coins.csv + 300 made-up coins QAAA, QAAB, ...) and
replay payloads for every source in the provider's format: CoinGecko /market_chart/range (one
random-walk point per coin and hour), RSS documents for every feed of news_feeds.yaml and
Guardian /search pages (--news-per-hour in all), Reddit /new listings for every subreddit of
subreddits.yaml, paged by praw (--social-per-hour), Yahoo charts and FRED observations for
every series of macro_series.yaml, blockchain.com charts and DefiLlama TVL for every metric
of onchain_metrics.yaml. Nothing is seeded into the warehouse: every asset, ingestion
included, runs its production code through Dagster the way the demo does (replay mode,
crypto_assets/demo.py): coin_universe; the daily assets (macro_series, onchain_metrics) as
one ranged run; the hourly assets (price_observations, ohlcv_bars, news_articles,
social_posts, sentiment_scores, technical_indicators) as one ranged run; ml_features as one
ranged run; each run with the asset checks that target its assets. Every window is the N
closed days before --window-end (default: yesterday 00:00 UTC), i.e. a backfill of recent
history. Sentiment is scored by VADER (HF_HUB_OFFLINE=1: the transformer models are not
loaded).

Each size runs in a fresh subprocess with a fresh DAGSTER_HOME (SQLite instance, the repo's
dagster.yaml) and a fresh warehouse, so its peak RSS (psutil, sampled every 0.1 s) is its
own. Where the time goes is measured inside that process: the run's event log (STEP_START ..
STEP_SUCCESS) gives step times; wall-clock timers wrapped around Warehouse.read/replace_*
(warehouse I/O), the sources' HTTP client and praw's replay adapter (source I/O: replay files
through httpx.MockTransport here, the network in live mode), DagsterInstance.handle_new_event
(Dagster event-log writes), TimeWindowPartitionsDefinition.get_partition_keys (Dagster listing
every hourly key since 2021, which its asset-check evaluation does once per check result) and
split each step; the rest of an asset step is compute.
Run wall time minus the step times is Dagster's per-run overhead outside steps (job build,
planning, ASSET_MATERIALIZATION_PLANNED events, resource init, run bookkeeping).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import record  # noqa: E402
from crypto_assets.warehouse.scratch import scratch_database  # noqa: E402

REAL_RESOURCES = ROOT / "resources"
# Every window ENDS at the same hour: midnight UTC one day ago, so it is a backfill of the
# most recent closed days (what a new deployment backfills first). START = END - N days.
END = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
TARGET_30D_S = 600
TARGET_LOAD_S = 2.0
TARGET_UI_S = 1.0
DEFAULT_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"
SYNTHETIC_NOTE = ("SYNTHETIC inputs: made-up coin universe beyond the 20 real rows, random-walk prices, "
                  "generated news/social texts, macro and on-chain values; served as replay payloads. Not real data.")


# ---------------------------------------------------------------------------------------------
# Synthetic replay payloads
# ---------------------------------------------------------------------------------------------

POSITIVE = ["surges", "rallies", "gains", "soars", "rebounds", "climbs", "wins approval", "beats forecasts",
            "hits record", "strong demand lifts"]
NEGATIVE = ["plunges", "slumps", "falls", "crashes", "drops", "faces lawsuit", "hit by hack", "loses support",
            "weak demand sinks", "sell-off deepens"]
NEUTRAL = ["trades sideways", "holds steady", "updates roadmap", "lists on exchange", "schedules upgrade",
           "publishes report", "moves to new chain", "sees mixed flows"]
TOPICS = ["ETF flows", "regulators", "miners", "DeFi lending", "stablecoin supply", "exchange reserves",
          "the Fed", "options expiry", "layer-2 fees", "on-chain activity"]


def http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(timezone.utc), usegmt=True)


def synthetic_symbols(n: int) -> list[tuple[str, str, str, str]]:
    """(symbol, coingecko_id, name, aliases): the real rows of resources/coins.csv first, then
    made-up coins QAAA, QAAB, ... (names 'Qaaacoin'), none of which is an English word."""
    import csv

    with open(REAL_RESOURCES / "coins.csv", newline="") as fh:
        real = [(r["symbol"], r["coingecko_id"], r["name"], r["aliases"]) for r in csv.DictReader(fh)]
    rows = real[:n]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    i = 0
    while len(rows) < n:
        code = "Q" + letters[i // 676 % 26] + letters[i // 26 % 26] + letters[i % 26]
        i += 1
        rows.append((code, f"synthetic-{code.lower()}", f"{code.capitalize()}coin", ""))
    return rows


def _headline(rng: random.Random, coins: list[tuple], sym_share: float = 0.8) -> tuple[str, str]:
    mood = rng.choice((POSITIVE, NEGATIVE, NEUTRAL))
    if rng.random() < sym_share:
        coin = rng.choice(coins)
        subject = coin[0] if rng.random() < 0.5 else coin[2]
    else:
        subject = "Crypto market"
    other = rng.choice(coins)
    title = f"{subject} {rng.choice(mood)} as {rng.choice(TOPICS)} shift"
    lead = (f"Analysts said {other[2]} and {subject} {rng.choice(mood)} while {rng.choice(TOPICS)} "
            f"and {rng.choice(TOPICS)} weighed on traders; volumes were {rng.choice(['high', 'thin', 'normal'])}.")
    return title, lead


def _times(rng: random.Random, n: int, start: datetime, end: datetime) -> list[datetime]:
    span = (end - start).total_seconds()
    return sorted(start + timedelta(seconds=rng.uniform(0, span - 1)) for _ in range(n))


def _write(folder: Path, name: str, payload) -> str:
    (folder / name).write_text(payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":")))
    return name


def write_synthetic_resources(dest: Path, days: int, n_symbols: int, news_per_hour: float,
                              social_per_hour: float, seed: int = 0) -> dict:
    """A complete resources/ folder (catalogs + replay payloads) for the window
    [END - days, END). Returns what was generated."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    start, end = END - timedelta(days=days), END
    hours = days * 24
    answered = http_date(datetime.now(timezone.utc))  # the "recording time" (Date header): now
    shutil.copytree(REAL_RESOURCES, dest, ignore=shutil.ignore_patterns("replay"))
    replay = dest / "replay"
    counts: dict[str, int] = {}

    # -- coin universe ------------------------------------------------------------------------
    coins = synthetic_symbols(n_symbols)
    with open(dest / "coins.csv", "w") as fh:
        fh.write("symbol,coingecko_id,name,aliases\n")
        fh.writelines(f"{s},{cid},{name},{aliases}\n" for s, cid, name, aliases in coins)
    counts["coins"] = len(coins)

    # -- CoinGecko /coins/{id}/market_chart/range: one point per hour (the provider's granularity
    #    for 2-90 day ranges), a few seconds to minutes after the hour --------------------------
    folder = replay / "coingecko"
    folder.mkdir(parents=True)
    routes = []
    base_ms = int(start.timestamp() * 1000)
    for k, (_, cid, _, _) in enumerate(coins):
        offsets = nrng.integers(0, 300_000, size=hours)
        stamps = base_ms + np.arange(hours, dtype=np.int64) * 3_600_000 + offsets
        price = float(10 ** nrng.uniform(-3, 4.5)) * np.exp(np.cumsum(nrng.normal(0, 0.01, size=hours)))
        caps = price * float(10 ** nrng.uniform(6, 9))
        vols = caps * nrng.uniform(0.01, 0.2, size=hours)
        payload = {name: [[int(t), float(v)] for t, v in zip(stamps, series)]
                   for name, series in (("prices", price), ("market_caps", caps), ("total_volumes", vols))}
        routes.append({"path": f"/coins/{cid}/market_chart/range", "params": {"vs_currency": "usd"},
                       "file": _write(folder, f"mc_{k:04d}.json", payload), "headers": {"Date": answered}})
    counts["price_points"] = hours * len(coins)
    _write(folder, "catalog.yaml", yaml.safe_dump({"routes": routes}, sort_keys=False))

    # -- News: RSS documents for every catalog feed + Guardian /search pages ----------------------
    feeds_cfg = yaml.safe_load((REAL_RESOURCES / "news_feeds.yaml").read_text())
    feeds = feeds_cfg["feeds"]
    n_news = int(round(news_per_hour * hours))
    n_guardian = max(1, n_news // 40)  # the Guardian publishes few crypto articles: ~2.5%
    n_rss = n_news - n_guardian
    folder = replay / "rss"
    folder.mkdir(parents=True)
    routes = []
    per_feed = [n_rss // len(feeds) + (1 if i < n_rss % len(feeds) else 0) for i in range(len(feeds))]
    for feed, n in zip(feeds, per_feed):
        items = []
        for j, when in enumerate(reversed(_times(rng, n, start, end))):  # feeds list newest first
            title, lead = _headline(rng, coins)
            link = f"https://news.example.com/{feed['id']}/{days}d/{j}-{rng.getrandbits(32):08x}"
            items.append(f"<item><title>{escape(title)}</title><link>{link}</link><guid>{link}</guid>"
                         f"<pubDate>{http_date(when)}</pubDate><description>{escape(lead)}</description>"
                         f"<author>desk@example.com (Synthetic Desk)</author></item>")
        doc = ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
               f"<title>{escape(feed['name'])} (synthetic)</title><link>https://news.example.com/</link>"
               f"<description>synthetic benchmark feed</description>{''.join(items)}</channel></rss>")
        routes.append({"url": feed["url"], "file": _write(folder, f"{feed['id']}.xml", doc),
                       "content_type": "application/rss+xml", "headers": {"Date": answered}})
    _write(folder, "catalog.yaml", yaml.safe_dump({"routes": routes}, sort_keys=False))

    folder = replay / "guardian"
    folder.mkdir(parents=True)
    page_size = 200
    pages = max(1, -(-n_guardian // page_size))
    results = []
    for j, when in enumerate(_times(rng, n_guardian, start, end)):  # order-by oldest
        title, lead = _headline(rng, coins)
        results.append({"id": f"technology/synthetic/{days}d/{j}", "type": "article",
                        "webPublicationDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "webTitle": title,
                        "webUrl": f"https://www.theguardian.com/technology/synthetic/{days}d/{j}",
                        "fields": {"trailText": lead, "byline": "Synthetic Reporter"}, "tags": []})
    routes = []
    for p in range(1, pages + 1):
        body = {"response": {"status": "ok", "userTier": "developer", "total": n_guardian, "startIndex":
                             (p - 1) * page_size + 1, "pageSize": page_size, "currentPage": p, "pages": pages,
                             "orderBy": "oldest", "results": results[(p - 1) * page_size: p * page_size]}}
        routes.append({"path": "/search", "params": {"page": p}, "file": _write(folder, f"search_p{p}.json", body),
                       "headers": {"Date": answered}})
    _write(folder, "catalog.yaml", yaml.safe_dump({"routes": routes}, sort_keys=False))
    feeds_cfg["guardian"]["max_pages"] = max(int(feeds_cfg["guardian"].get("max_pages", 25)), pages)
    (dest / "news_feeds.yaml").write_text(yaml.safe_dump(feeds_cfg, sort_keys=False))
    counts.update(news_rss_items=n_rss, news_guardian_items=n_guardian, news_guardian_pages=pages)

    # -- Reddit /r/<name>/new listings, 100 per page as praw pages them ---------------------------
    subs_cfg = yaml.safe_load((REAL_RESOURCES / "subreddits.yaml").read_text())
    names = [s if isinstance(s, str) else s["name"] for s in subs_cfg["subreddits"]]
    n_social = int(round(social_per_hour * hours))
    per_sub = [n_social // len(names) + (1 if i < n_social % len(names) else 0) for i in range(len(names))]
    if max(per_sub) > 990:
        raise SystemExit(f"--social-per-hour too high: {max(per_sub)} posts per subreddit exceed Reddit's "
                         "~1000-item listing (subreddits.yaml limit 1..1000)")
    folder = replay / "reddit"
    folder.mkdir(parents=True)
    shutil.copy(REAL_RESOURCES / "replay" / "reddit" / "access_token.json", folder / "access_token.json")
    first_routes, page_routes = [], []
    subs_out = []
    for name, n in zip(names, per_sub):
        posts = []
        for j, when in enumerate(reversed(_times(rng, n, start, end))):  # /new: newest first
            title, lead = _headline(rng, coins, 0.6)
            pid = f"s{days}x{len(subs_out):02d}x{j:05d}"
            posts.append({"kind": "t3", "data": {
                "id": pid, "name": f"t3_{pid}", "created_utc": when.timestamp(), "subreddit": name,
                "author": f"synthetic_user_{rng.randrange(5000)}", "title": title, "selftext": lead,
                "url": f"https://www.reddit.com/r/{name}/comments/{pid}/", "permalink": f"/r/{name}/comments/{pid}/",
                "score": rng.randrange(0, 500), "num_comments": rng.randrange(0, 200),
                "upvote_ratio": round(rng.uniform(0.5, 1.0), 2), "over_18": False, "is_self": True}})
        chunks = [posts[i:i + 100] for i in range(0, len(posts), 100)] or [[]]
        for c, chunk in enumerate(chunks):
            after = chunk[-1]["data"]["name"] if c < len(chunks) - 1 and chunk else None
            body = {"kind": "Listing", "data": {"after": after, "before": None, "dist": len(chunk),
                                                "modhash": "", "children": chunk}}
            file = _write(folder, f"{name.lower()}_p{c}.json", body)
            route = {"url": f"https://oauth.reddit.com/r/{name}/new", "file": file}
            if c == 0:
                first_routes.append(route)
            else:
                route["params"] = {"after": chunks[c - 1][-1]["data"]["name"]}
                page_routes.append(route)
        subs_out.append({"name": name, "limit": max(1, min(1000, n + 10))})
    routes = [{"url": "https://www.reddit.com/api/v1/access_token", "file": "access_token.json"},
              *page_routes, *first_routes]  # pages with `after` first: the first page matches any request
    _write(folder, "catalog.yaml", yaml.safe_dump({"routes": routes}, sort_keys=False))
    (dest / "subreddits.yaml").write_text(yaml.safe_dump({"default_limit": 100, "subreddits": subs_out}))
    counts["social_posts"] = n_social

    # -- Macro: Yahoo charts (weekday closes) and FRED observations --------------------------------
    from zoneinfo import ZoneInfo

    macro = yaml.safe_load((REAL_RESOURCES / "macro_series.yaml").read_text())["series"]
    first_day, last_day = (start - timedelta(days=3)).date(), (end + timedelta(days=2)).date()
    all_days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    weekdays = [d for d in all_days if d.weekday() < 5]
    y_folder, f_folder = replay / "yahoo", replay / "fred"
    y_folder.mkdir(parents=True)
    f_folder.mkdir(parents=True)
    y_routes, f_routes = [], []
    macro_points = 0
    for s in macro:
        level = float(10 ** nrng.uniform(0, 3.5))
        if s["provider"] == "yahoo":
            tz = ZoneInfo(s.get("timezone") or "America/New_York")
            stamps = [int(datetime(d.year, d.month, d.day, 9, 30, tzinfo=tz).timestamp()) for d in weekdays]
            closes = (level * np.exp(np.cumsum(nrng.normal(0, 0.01, len(stamps))))).round(4).tolist()
            body = {"chart": {"result": [{"meta": {"currency": "USD", "symbol": s["symbol"],
                                                   "exchangeTimezoneName": str(tz), "dataGranularity": "1d",
                                                   "instrumentType": "SYNTHETIC"},
                                          "timestamp": stamps,
                                          "indicators": {"quote": [{"open": closes, "high": closes, "low": closes,
                                                                    "close": closes, "volume": [0] * len(stamps)}],
                                                         "adjclose": [{"adjclose": closes}]}}], "error": None}}
            y_routes.append({"path": f"/v8/finance/chart/{s['symbol']}", "file": _write(
                y_folder, f"chart_{s['id']}.json", body), "headers": {"Date": answered}})
            macro_points += len(stamps)
        else:
            freq = s.get("frequency", "daily")
            if freq == "daily":
                dates = weekdays
            elif freq == "weekly":
                dates = [d for d in all_days if d.weekday() == 4]
            elif freq == "monthly":
                dates = [d for d in all_days if d.day == 1]
            else:
                dates = [d for d in all_days if d.day == 1 and d.month in (1, 4, 7, 10)]
            values = (level * np.exp(np.cumsum(nrng.normal(0, 0.005, max(1, len(dates)))))).round(4).tolist()
            obs = [{"realtime_start": (d + timedelta(days=1)).isoformat(), "realtime_end": "9999-12-31",
                    "date": d.isoformat(), "value": f"{v}"} for d, v in zip(dates, values)]
            body = {"realtime_start": first_day.isoformat(), "realtime_end": "9999-12-31", "units": "lin",
                    "count": len(obs), "offset": 0, "limit": 100000, "observations": obs}
            f_routes.append({"path": "/series/observations", "params": {"series_id": s["symbol"]},
                             "file": _write(f_folder, f"{s['id']}.json", body), "headers": {"Date": answered}})
            macro_points += len(obs)
    _write(y_folder, "catalog.yaml", yaml.safe_dump({"routes": y_routes}, sort_keys=False))
    _write(f_folder, "catalog.yaml", yaml.safe_dump({"routes": f_routes}, sort_keys=False))
    counts["macro_points"] = macro_points

    # -- On-chain: blockchain.com charts (the window's days) and DefiLlama TVL (a year of history) --
    metrics = yaml.safe_load((REAL_RESOURCES / "onchain_metrics.yaml").read_text())["metrics"]
    b_folder, d_folder = replay / "blockchain_com", replay / "defillama"
    b_folder.mkdir(parents=True)
    d_folder.mkdir(parents=True)
    b_routes, d_routes = [], []
    midnights = [int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) for d in all_days]
    for m in metrics:
        level = float(10 ** nrng.uniform(5, 10))
        if m["provider"] == "blockchain_com":
            vals = level * np.exp(np.cumsum(nrng.normal(0, 0.02, len(midnights))))
            body = {"status": "ok", "name": f"{m['metric']} (synthetic)", "unit": m["unit"], "period": "day",
                    "description": "synthetic", "values": [{"x": x, "y": float(v)} for x, v in zip(midnights, vals)]}
            b_routes.append({"path": f"/charts/{m['path']}", "file": _write(b_folder, f"{m['path']}.json", body),
                             "headers": {"Date": answered}})
        else:
            hist = [int((end - timedelta(days=i)).timestamp()) for i in range(365, -1, -1)]
            hist = [h - h % 86400 for h in hist]
            vals = level * np.exp(np.cumsum(nrng.normal(0, 0.02, len(hist))))
            body = [{"date": x, "tvl": float(v)} for x, v in zip(hist, vals)]
            d_routes.append({"path": f"/v2/historicalChainTvl/{m['path']}",
                             "file": _write(d_folder, f"{m['path']}.json", body), "headers": {"Date": answered}})
    _write(b_folder, "catalog.yaml", yaml.safe_dump({"routes": b_routes}, sort_keys=False))
    _write(d_folder, "catalog.yaml", yaml.safe_dump({"routes": d_routes}, sort_keys=False))
    counts["onchain_metrics"] = len(metrics)
    counts["generate_s"] = round(time.perf_counter() - t0, 2)
    # Sources this generator does not synthesize (Fear & Greed, the exchanges) replay the project's
    # own recordings: their assets run and find no data in the window, as in the demo.
    for source in (REAL_RESOURCES / "replay").iterdir():
        if source.is_dir() and not (replay / source.name).exists():
            shutil.copytree(source, replay / source.name)
    counts["bytes"] = sum(p.stat().st_size for p in replay.rglob("*") if p.is_file())
    return counts


# ---------------------------------------------------------------------------------------------
# Child process: one backfill of one size, instrumented
# ---------------------------------------------------------------------------------------------

class Timers:
    """Intervals [t0, t1] (time.time()) per category, for outermost calls only."""

    def __init__(self):
        self.intervals: dict[str, list[tuple[float, float, int]]] = {}
        self._local = threading.local()
        self._lock = threading.Lock()

    def wrap(self, owner, name: str, category: str, rows_of=None):
        original = getattr(owner, name)
        timers = self

        def wrapper(*args, **kwargs):
            depth = getattr(timers._local, category, 0)
            setattr(timers._local, category, depth + 1)
            t0 = time.time()
            try:
                out = original(*args, **kwargs)
            finally:
                setattr(timers._local, category, depth)
            if depth == 0:
                rows = rows_of(out) if rows_of else 0
                with timers._lock:
                    timers.intervals.setdefault(category, []).append((t0, time.time(), rows))
            return out

        setattr(owner, name, wrapper)

    def within(self, category: str | tuple, lo: float, hi: float) -> tuple[float, int]:
        """Seconds covered by the category's (or categories') intervals inside [lo, hi] (union:
        threads overlap), and their rows."""
        cats = category if isinstance(category, tuple) else (category,)
        spans = sorted((max(a, lo), min(b, hi), r) for c in cats for a, b, r in self.intervals.get(c, [])
                       if b > lo and a < hi)
        total, cur_a, cur_b, rows = 0.0, None, None, 0
        for a, b, r in spans:
            rows += r
            if cur_b is None or a > cur_b:
                if cur_b is not None:
                    total += cur_b - cur_a
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        if cur_b is not None:
            total += cur_b - cur_a
        return total, rows


class RssSampler(threading.Thread):
    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.samples: list[tuple[float, int]] = []
        self.interval = interval
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(recursive=True))
            except Exception:  # noqa: BLE001 - a child that just exited
                rss = self.proc.memory_info().rss
            self.samples.append((time.time(), rss))
            self.stop.wait(self.interval)

    def peak(self, lo: float = 0, hi: float = float("inf")) -> int:
        return max((r for t, r in self.samples if lo <= t <= hi), default=0)


CATEGORIES = ("warehouse_read", "warehouse_write", "source_fetch", "dagster_event_write",
              "dagster_all_partition_keys")


def _sum(rows: list[dict], key: str) -> float:
    return round(sum(r[key] for r in rows), 2)


def child_main(args) -> None:
    """Runs in a fresh process: env first (catalog paths are read at import), then the graph."""
    os.environ["CRYPTO_RESOURCES_DIR"] = args.resources
    os.environ["DAGSTER_HOME"] = args.home
    os.environ["CRYPTO_SOURCE_MODE"] = "replay"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["CRYPTO_WAREHOUSE_URL"] = args.warehouse
    import warnings

    warnings.filterwarnings("ignore")
    sampler = RssSampler()
    sampler.start()
    t_proc = time.time()

    import dagster as dg
    from dagster._core.definitions.partitions.definition.time_window import TimeWindowPartitionsDefinition

    from crypto_assets.assets import all_assets
    from crypto_assets.automation.policies import apply_policies
    from crypto_assets.checks.data_checks import all_data_checks
    from crypto_assets.partitions import HOURLY
    from crypto_assets.resources import build_resources
    from crypto_assets.social import reddit as reddit_mod
    from crypto_assets.sources.client import SourceClient
    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.resource import get_warehouse
    from crypto_assets.warehouse.store import Warehouse

    timers = Timers()
    impl = type(Warehouse(args.warehouse))  # the backend class in use (DeltaWarehouse or SqlWarehouse)
    timers.wrap(impl, "read", "warehouse_read", rows_of=len)
    timers.wrap(impl, "replace_window", "warehouse_write", rows_of=lambda n: n)
    timers.wrap(impl, "replace_all", "warehouse_write", rows_of=lambda n: n)
    timers.wrap(SourceClient, "get", "source_fetch")
    timers.wrap(reddit_mod._ReplayAdapter, "send", "source_fetch")
    timers.wrap(dg.DagsterInstance, "handle_new_event", "dagster_event_write")
    # Dagster enumerating EVERY key of a time-partitioned definition (~40k hourly keys since 2021):
    # in these runs only its asset-check evaluation does that (data_version_cache ->
    # AllPartitionsSubset.get_partition_keys), once per check result.
    timers.wrap(TimeWindowPartitionsDefinition, "get_partition_keys", "dagster_all_partition_keys")
    t_imported = time.time()

    assets = apply_policies(all_assets())
    checks = all_data_checks(assets)
    by_key = {key.to_user_string(): a for a in assets for key in a.keys}
    resources = build_resources(mode="replay")
    hourly = [k for k, a in by_key.items() if a.partitions_def == HOURLY and k != "ml_features"]
    daily = [k for k, a in by_key.items() if a.partitions_def is not None and a.partitions_def != HOURLY]
    reference = [k for k, a in by_key.items() if a.partitions_def is None]
    start, end = END - timedelta(days=args.days), END
    # The range in runs of CRYPTO_BACKFILL_HOURS_PER_RUN hours, as the backfill daemon splits it under
    # the assets' BackfillPolicy.multi_run (0: one run per step for the whole range).
    from crypto_assets.assets.common import backfill_hours_per_run

    chunk = timedelta(hours=backfill_hours_per_run() or args.days * 24)
    steps = [("reference", reference, {})]
    lo = start
    while lo < end:
        hi = min(end, lo + chunk)
        h_tags = {"dagster/asset_partition_range_start": HOURLY.get_partition_key_for_timestamp(lo.timestamp()),
                  "dagster/asset_partition_range_end": HOURLY.get_partition_key_for_timestamp(
                      (hi - timedelta(hours=1)).timestamp())}
        d_tags = {"dagster/asset_partition_range_start": lo.strftime("%Y-%m-%d"),
                  "dagster/asset_partition_range_end": (hi - timedelta(days=1)).strftime("%Y-%m-%d")}
        steps += [("daily", daily, d_tags), ("hourly", hourly, h_tags), ("features", ["ml_features"], h_tags)]
        lo = hi
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    instance = dg.DagsterInstance.get()
    t_ready = time.time()

    runs, per_asset, failures = [], {}, []
    import ctypes
    import gc

    libc = ctypes.CDLL("libc.so.6")
    for label, selection, tags in steps:
        # The daemon starts every run in a fresh process; here the runs share one, so hand the
        # memory of the previous run back to the OS before the next (else each run's peak would
        # include what the allocator kept from the ones before).
        gc.collect()
        libc.malloc_trim(0)
        t0 = time.time()
        result = dg.materialize([*assets, *checks], selection=dg.AssetSelection.assets(*selection),
                                instance=instance, resources=resources, tags=tags, raise_on_error=False,
                                run_config=quiet)
        t1 = time.time()
        records = instance.all_logs(result.run_id)
        step_start, step_end, mats, check_results = {}, {}, {}, {}
        for rec in records:
            ev = rec.dagster_event
            if ev is None:
                continue
            kind = ev.event_type_value
            if kind == "STEP_START":
                step_start[ev.step_key] = rec.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                step_end[ev.step_key] = rec.timestamp
                if kind == "STEP_FAILURE":
                    failures.append(f"{label}/{ev.step_key}: {ev.step_failure_data.error.message.strip()[:300]}")
            elif kind == "ASSET_MATERIALIZATION":
                m = ev.event_specific_data.materialization
                mats[m.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
            elif kind == "ASSET_CHECK_EVALUATION":
                e = ev.event_specific_data
                check_results[f"{e.asset_key.to_user_string()}:{e.check_name}"] = (
                    "passed" if e.passed else f"failed ({e.severity.value})")
        run_steps = []
        for key in step_start:
            lo, hi = step_start[key], step_end.get(key, t1)
            parts = {c: round(timers.within(c, lo, hi)[0], 3) for c in CATEGORIES}
            covered = timers.within(CATEGORIES, lo, hi)[0]  # = sum(parts) unless timed calls nest
            dur = hi - lo
            row = {"step": key, "kind": "asset" if key in by_key else "check", "seconds": round(dur, 3),
                   **{f"{c}_s": v for c, v in parts.items()}, "rest_s": round(dur - covered, 3),
                   "nested_s": round(sum(parts.values()) - covered, 3),
                   "peak_rss_mb": round(sampler.peak(lo, hi) / 2**20)}
            run_steps.append(row)
            if key in by_key:
                meta = mats.get(key, {})
                # A ranged run's last materialization carries the run total (run_rows_written) next
                # to its own partition's count.
                rows = meta.get("run_rows_written", meta.get("dagster/row_count", meta.get("rows_written")))
                extra = {k: meta[k] for k in ("compute_seconds", "texts_per_second", "scored_now", "engine",
                                              "symbols_covered", "symbols", "sources_usable", "requests_made",
                                              "rows_quarantined")
                         if k in meta and not isinstance(meta[k], (dict, list))}
                if isinstance(meta.get("by_item_type"), dict):
                    extra["scoring_s"] = round(sum(v.get("scoring_seconds", 0) for v in meta["by_item_type"].values()), 3)
                    extra["model"] = sorted({v.get("model") for v in meta["by_item_type"].values()})
                before = per_asset.get(key)
                if before:  # an earlier chunk of the same asset: add this one to it
                    rows = (rows or 0) + (before["rows_written"] or 0)
                    dur += before["step_s"]
                per_asset[key] = {
                    "run": label, "rows_written": rows, "warehouse_rows_read": timers.within("warehouse_read", lo, hi)[1],
                    "step_s": round(dur, 3), "rows_per_s": round(rows / dur) if rows and dur > 0 else None,
                    "step_breakdown_s": {"warehouse_read": parts["warehouse_read"],
                                         "warehouse_write": parts["warehouse_write"],
                                         "source_io_replay": parts["source_fetch"],
                                         "dagster_event_write": parts["dagster_event_write"],
                                         "compute": row["rest_s"]},
                    "metadata": extra}
        asset_steps = [r for r in run_steps if r["kind"] == "asset"]
        check_steps = [r for r in run_steps if r["kind"] == "check"]
        in_steps = sum(r["seconds"] for r in run_steps)
        runs.append({
            "run": label, "assets": selection, "success": result.success, "wall_s": round(t1 - t0, 3),
            "asset_steps_s": _sum(asset_steps, "seconds"), "check_steps": len(check_steps),
            "check_steps_s": _sum(check_steps, "seconds"),
            "dagster_outside_steps_s": round(t1 - t0 - in_steps, 3),
            "dagster_outside_steps_event_write_s": round(
                timers.within("dagster_event_write", t0, t1)[0] - sum(r["dagster_event_write_s"] for r in run_steps), 3),
            "events": len(records), "peak_rss_mb": round(sampler.peak(t0, t1) / 2**20),
            "check_results": check_results, "steps": run_steps,
        })
    t_done = time.time()

    wh = get_warehouse(None)
    tables = all_tables()
    table_rows = {k: wh.count(tables[k]) for k in sorted(by_key) if k in tables}
    sampler.stop.set()
    sampler.join()
    import resource as _resource

    wall = t_done - t_ready
    steps_all = [r for run in runs for r in run["steps"]]
    a_steps = [r for r in steps_all if r["kind"] == "asset"]
    c_steps = [r for r in steps_all if r["kind"] == "check"]
    outside = round(sum(r["dagster_outside_steps_s"] for r in runs), 2)
    outside_events = round(sum(r["dagster_outside_steps_event_write_s"] for r in runs), 2)
    assets_part = {"total": _sum(a_steps, "seconds"), "warehouse_read": _sum(a_steps, "warehouse_read_s"),
                   "warehouse_write": _sum(a_steps, "warehouse_write_s"),
                   "source_io_replay": _sum(a_steps, "source_fetch_s"),
                   "dagster_event_write": _sum(a_steps, "dagster_event_write_s"),
                   "dagster_all_partition_keys": _sum(a_steps, "dagster_all_partition_keys_s"),
                   "compute": _sum(a_steps, "rest_s")}
    checks_part = {"total": _sum(c_steps, "seconds"), "count": len(c_steps),
                   "dagster_all_partition_keys": _sum(c_steps, "dagster_all_partition_keys_s"),
                   "warehouse_read": _sum(c_steps, "warehouse_read_s"),
                   "dagster_event_write": _sum(c_steps, "dagster_event_write_s"),
                   "rest": _sum(c_steps, "rest_s")}
    dagster = (outside + assets_part["dagster_event_write"] + assets_part["dagster_all_partition_keys"]
               + checks_part["dagster_event_write"] + checks_part["dagster_all_partition_keys"])
    wh_io = (assets_part["warehouse_read"] + assets_part["warehouse_write"] + checks_part["warehouse_read"]
             + _sum(c_steps, "warehouse_write_s"))
    out = {
        "days": args.days, "backend": args.backend, "success": all(r["success"] for r in runs) and not failures,
        "failures": failures[:10],
        "window": [start.isoformat(), end.isoformat()],
        "wall_s": round(wall, 2),
        "process_import_s": round(t_imported - t_proc, 2), "graph_build_s": round(t_ready - t_imported, 2),
        "peak_rss_mb": round(sampler.peak() / 2**20),
        "peak_rss_mb_of_one_run": max((r["peak_rss_mb"] for r in runs), default=None),
        "ru_maxrss_mb": round(_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024),
        "table_rows": table_rows,
        "events_written": sum(r["events"] for r in runs),
        "where_time_goes_s": {"dagster_outside_steps": outside,
                              "dagster_outside_steps_of_which_event_writes": outside_events,
                              "asset_steps": assets_part,
                              "check_steps": checks_part},
        "where_time_goes_share": {
            "dagster_overhead": round(dagster / wall, 3),
            "warehouse_io": round(wh_io / wall, 3),
            "source_io_replay": round(assets_part["source_io_replay"] / wall, 3),
            "asset_compute": round(assets_part["compute"] / wall, 3),
            "check_code": round(checks_part["rest"] / wall, 3),
        },
        "runs": runs, "assets": per_asset,
    }
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))


# ---------------------------------------------------------------------------------------------
# Parent: sizes, MySQL, load time, UI
# ---------------------------------------------------------------------------------------------

def run_size(days: int, backend: str, args, workdir: Path, mysql_url: str | None = None) -> dict:
    home = workdir / f"{backend}_{days}d"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    gen = write_synthetic_resources(home / "resources", days, args.symbols, args.news_per_hour,
                                    args.social_per_hour, seed=days)
    warehouse = (mysql_url if backend == "mysql" else f"delta://{home / 'warehouse'}" if backend == "delta"
                 else f"sqlite:///{home / 'warehouse.sqlite'}")
    out = home / "result.json"
    cmd = [sys.executable, "-W", "ignore", str(Path(__file__).resolve()), "--child", "--days", str(days),
           "--window-end", END.strftime("%Y-%m-%d"),
           "--backend", backend, "--home", str(home), "--resources", str(home / "resources"),
           "--warehouse", warehouse, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    print(f"[scale] {backend} {days}d: {gen['price_points']} price points, "
          f"{gen['news_rss_items'] + gen['news_guardian_items']} news, {gen['social_posts']} posts "
          f"(generated in {gen['generate_s']}s)", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=args.size_timeout)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
        return {"days": days, "backend": backend, "success": False, "error": proc.stderr[-2000:],
                "process_s": round(elapsed, 1)}
    res = json.loads(out.read_text())
    res["process_s"] = round(elapsed, 2)
    res["synthetic_input"] = gen
    compact(res)
    print(f"[scale] {backend} {days}d: wall {res['wall_s']}s, peak RSS {res['peak_rss_mb']} MB, "
          f"success={res['success']}", flush=True)
    return res


def compact(size: dict) -> dict:
    """Drop the per-step rows (they stay in the child's result.json with --keep); keep per-run
    totals and check outcomes as counts."""
    for run in size.get("runs", []):
        run.pop("steps", None)
        results = run.pop("check_results", None)
        if isinstance(results, dict):
            run["checks_passed"] = sum(v == "passed" for v in results.values())
            run["checks_not_passed"] = {k: v for k, v in results.items() if v != "passed"}
    return size


def summarize(size: dict) -> dict:
    """The per-size numbers worth reading first."""
    if not size.get("success") and "wall_s" not in size:
        return size
    return {
        "wall_s": size["wall_s"], "success": size["success"], "peak_rss_mb": size["peak_rss_mb"],
        "peak_rss_mb_of_one_run": size.get("peak_rss_mb_of_one_run"),
        "runs": len(size["runs"]),
        "runs_wall_s": {label: round(sum(r["wall_s"] for r in size["runs"] if r["run"] == label), 3)
                        for label in dict.fromkeys(r["run"] for r in size["runs"])},
        "rows_written_total": sum(v["rows_written"] or 0 for v in size["assets"].values()),
        "rows_per_asset": {k: v["rows_written"] for k, v in size["assets"].items()},
        "rows_per_s_per_asset": {k: v["rows_per_s"] for k, v in size["assets"].items()},
        "where_time_goes_s": size["where_time_goes_s"], "where_time_goes_share": size["where_time_goes_share"],
    }


def scaling(sizes: dict[int, dict]) -> dict:
    ok = {d: s for d, s in sizes.items() if "wall_s" in s}
    if not ok:
        return {}
    base_d = min(ok)
    base = ok[base_d]["wall_s"]
    out = {"wall_s_by_days": {d: ok[d]["wall_s"] for d in sorted(ok)},
           "seconds_per_day": {d: round(ok[d]["wall_s"] / d, 2) for d in sorted(ok)},
           "peak_rss_mb_by_days": {d: ok[d]["peak_rss_mb"] for d in sorted(ok)}}
    out[f"ratio_wall_over_linear_from_{base_d}d"] = {
        d: round(ok[d]["wall_s"] / (base * d / base_d), 3) for d in sorted(ok) if d != base_d}
    if len(ok) >= 2:  # fixed cost + per-day cost by least squares
        xs, ys = np.array(sorted(ok), float), np.array([ok[d]["wall_s"] for d in sorted(ok)])
        slope, intercept = np.polyfit(xs, ys, 1)
        out["linear_fit"] = {"fixed_s": round(float(intercept), 2), "per_day_s": round(float(slope), 2)}
        if len(ok) >= 2:
            d_hi = max(ok)
            d_lo = sorted(ok)[-2]
            out[f"marginal_s_per_day_{d_lo}_to_{d_hi}d"] = round((ok[d_hi]["wall_s"] - ok[d_lo]["wall_s"]) / (d_hi - d_lo), 2)
    return out


def load_time(repeats: int) -> dict:
    code = ("import time; t=time.perf_counter(); import crypto_assets.definitions as d; t1=time.perf_counter(); "
            "g=d.defs.resolve_asset_graph(); n=len(list(g.get_all_asset_keys())); t2=time.perf_counter(); "
            "print(t1-t, t2-t1, n)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("CRYPTO_RESOURCES_DIR", None)
    imports, builds, totals, keys = [], [], [], 0
    for _ in range(repeats + 1):  # the first one warms the file cache, not counted
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        imports.append(float(out[0]))
        builds.append(float(out[1]))
        totals.append(float(out[0]) + float(out[1]))
        keys = int(out[2])
    return {"import_definitions_s_median": round(statistics.median(imports[1:]), 3),
            "resolve_asset_graph_s_median": round(statistics.median(builds[1:]), 3),
            "total_s_median": round(statistics.median(totals[1:]), 3),
            "total_s_max": round(max(totals[1:]), 3), "repeats": repeats, "asset_keys": keys,
            "target_s": TARGET_LOAD_S, "meets_target": statistics.median(totals[1:]) <= TARGET_LOAD_S,
            "method": "fresh `python -c` per repeat: import crypto_assets.definitions + defs.resolve_asset_graph(); "
                      "first (cold-cache) run dropped"}


def ui_queries() -> tuple[dict, str]:
    """The asset graph page's own GraphQL documents, taken from the installed dagster-webserver
    bundle (so they match this Dagster version), each with its fragments."""
    import re

    import dagster_webserver

    chunks = Path(dagster_webserver.__file__).parent / "webapp" / "build" / "_next" / "static" / "chunks"
    defs: dict[str, str] = {}
    for f in chunks.rglob("*.js"):
        s = f.read_text(errors="ignore")
        if "LocationWorkspaceAssetsQuery" not in s and "AssetGraphLiveQuery" not in s and "fragment " not in s:
            continue
        for m in re.finditer(r"(?:query|fragment) (\w+)(?: on \w+)?[^{\"]*\{", s):
            if m.group(1) in defs:
                continue
            i, depth = m.end() - 1, 0
            for j in range(i, min(len(s), i + 100_000)):
                depth += {"{": 1, "}": -1}.get(s[j], 0)
                if depth == 0:
                    break
            defs[m.group(1)] = s[m.start():j + 1].replace("\\n", "\n")

    def document(name: str) -> str:
        out, todo, seen = [], [name], set()
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            out.append(defs[n])
            todo += re.findall(r"\.\.\.(\w+)", defs[n])
        return "\n".join(out)

    try:
        return {q: document(q) for q in ("LocationWorkspaceAssetsQuery", "AssetGraphLiveQuery",
                                         "AssetsFreshnessInfoQuery")}, "extracted from the dagster-webserver bundle"
    except KeyError:
        minimal = ("query AssetGraphMinimal { assetNodes { id assetKey { path } groupName description "
                   "partitionDefinition { description } dependencyKeys { path } dependedByKeys { path } } }")
        return {"AssetGraphMinimal": minimal}, "bundle queries not found: minimal assetNodes query"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_ui(home: Path, requests_n: int, history: str) -> dict:
    import httpx

    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("CRYPTO_RESOURCES_DIR", None)
    webserver = Path(sys.executable).parent / "dagster-webserver"
    log = open(home / "webserver.log", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(webserver), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    result: dict = {"instance": history}
    try:
        client = httpx.Client(base_url=base, timeout=60)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"webserver exited: {(home / 'webserver.log').read_text()[-2000:]}")
            try:
                if client.get("/server_info").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > 120:
                raise RuntimeError("webserver did not answer /server_info in 120 s")
            time.sleep(0.2)
        result["webserver_ready_s"] = round(time.perf_counter() - t0, 2)
        queries, source = ui_queries()
        result["queries_source"] = source
        location = "crypto_assets"

        def post(name: str, doc: str, variables: dict) -> tuple[float, dict]:
            t = time.perf_counter()
            r = client.post("/graphql", json={"query": doc, "variables": variables, "operationName": name})
            dt = time.perf_counter() - t
            r.raise_for_status()
            body = r.json()
            if body.get("errors"):
                raise RuntimeError(f"{name}: {body['errors'][:2]}")
            return dt, body["data"]

        # Wait for the code location to be loaded, then take the asset keys from the answer.
        while True:
            if "LocationWorkspaceAssetsQuery" not in queries:
                _, data = post("AssetGraphMinimal", queries["AssetGraphMinimal"], {})
                keys = [n["assetKey"] for n in data["assetNodes"]]
                break
            _, data = post("LocationWorkspaceAssetsQuery", queries["LocationWorkspaceAssetsQuery"], {"name": location})
            entry = data["workspaceLocationEntryOrError"]
            loc = entry.get("locationOrLoadError") or {}
            if entry.get("loadStatus") == "LOADED" and loc.get("repositories"):
                keys = [{"path": n["assetKey"]["path"]} for r in loc["repositories"] for n in r["assetNodes"]]
                break
            if loc.get("message"):
                raise RuntimeError(f"code location failed to load: {loc['message'][:500]}")
            if time.perf_counter() - t0 > 180:
                raise RuntimeError("code location not loaded in 180 s")
            time.sleep(0.3)
        result["location_loaded_s"] = round(time.perf_counter() - t0, 2)
        result["asset_nodes"] = len(keys)
        plan = {name: ({"name": location} if name == "LocationWorkspaceAssetsQuery"
                       else {} if name == "AssetGraphMinimal" else {"assetKeys": keys}) for name in queries}
        for name, variables in plan.items():  # warm once
            post(name, queries[name], variables)
        timings: dict[str, list[float]] = {name: [] for name in plan}
        page: list[float] = []
        for _ in range(requests_n):
            total = 0.0
            for name, variables in plan.items():
                dt, _ = post(name, queries[name], variables)
                timings[name].append(dt)
                total += dt
            page.append(total)

        def stats(xs: list[float]) -> dict:
            xs = sorted(xs)
            return {"p50_s": round(statistics.median(xs), 4),
                    "p95_s": round(xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))], 4),
                    "max_s": round(xs[-1], 4)}

        result["per_query"] = {name: stats(v) for name, v in timings.items()}
        result["asset_graph_page_all_queries"] = stats(page)
        result["requests"] = requests_n
        result["target_s"] = TARGET_UI_S
        result["meets_target"] = result["asset_graph_page_all_queries"]["p95_s"] <= TARGET_UI_S
        result["method"] = ("dagster-webserver started on the benchmark's instance (SQLite storage, repo dagster.yaml, "
                            "workspace.yaml); the asset graph page's queries sent in sequence over HTTP for all asset "
                            "keys (LocationWorkspaceAssetsQuery = graph definitions, AssetGraphLiveQuery = "
                            "materializations/partition stats/checks, AssetsFreshnessInfoQuery), warmed once; "
                            "'asset_graph_page_all_queries' = the sum of the three per repetition")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the webserver and its code server (same session)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        log.close()
    result["stopped_cleanly"] = proc.returncode is not None
    return result


def parse_days(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()}) if text else []


def main() -> None:
    global END
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", default="1,7,30", help="sizes in days on the embedded warehouse, comma-separated")
    parser.add_argument("--embedded", default="delta", choices=["delta", "sqlite"],
                        help="embedded warehouse for --days: delta (the default) or sqlite (earlier versions)")
    parser.add_argument("--mysql-days", default="1,7", help="MySQL sizes in days ('' = none)")
    parser.add_argument("--symbols", type=int, default=320)
    parser.add_argument("--news-per-hour", type=float, default=40.0)
    parser.add_argument("--social-per-hour", type=float, default=20.0)
    parser.add_argument("--ui-days", type=int, default=7, help="size whose instance the UI benchmark uses")
    parser.add_argument("--ui-requests", type=int, default=20)
    parser.add_argument("--load-repeats", type=int, default=5)
    parser.add_argument("--size-timeout", type=int, default=1800, help="seconds per size before giving up")
    parser.add_argument("--skip-mysql", action="store_true")
    parser.add_argument("--skip-ui", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (instances, warehouses)")
    parser.add_argument("--window-end", default=END.strftime("%Y-%m-%d"),
                        help="UTC day the windows end at (exclusive); default yesterday")
    # child mode (internal)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--resources", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    END = datetime.strptime(args.window_end, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    if args.child:
        args.days = int(args.days)
        child_main(args)
        return

    started = time.perf_counter()
    load_before = os.getloadavg()
    sqlite_days, mysql_days = parse_days(args.days), [] if args.skip_mysql else parse_days(args.mysql_days)
    results: dict = {
        "input": SYNTHETIC_NOTE,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared, timings noisy), "
                   f"python {platform.python_version()}",
        "window": f"the N days before {END:%Y-%m-%d %H:%M} UTC (most recent closed days), hourly partitions, "
                  "each step one ranged run (BackfillPolicy.single_run)",
        "symbols": args.symbols, "bars": "hourly (one CoinGecko point per coin and hour -> 1h bars)",
        "news_per_hour": args.news_per_hour, "social_per_hour": args.social_per_hour,
        "sentiment_model": "VADER (HF_HUB_OFFLINE=1; transformer models not loaded)",
        "how_run": "replay mode, every asset computed (none seeded): coin_universe; macro_series+onchain_metrics "
                   "(daily range); price_observations, ohlcv_bars, news_articles, social_posts, sentiment_scores, "
                   "technical_indicators (hourly range); ml_features (hourly range); with their asset checks; "
                   "dagster.materialize (in-process executor) on a DagsterInstance with SQLite storage "
                   "(repo dagster.yaml) in a fresh DAGSTER_HOME per size; each size in a fresh process",
        "time_breakdown_method": "step times from the run's event log (STEP_START..STEP_SUCCESS); inside steps, "
                                 "wall-clock timers around Warehouse.read/replace_window/replace_all "
                                 "(warehouse_io), SourceClient.get + praw's replay adapter (source_io_replay: "
                                 "local payload files through httpx.MockTransport, network in live mode) and "
                                 "DagsterInstance.handle_new_event (dagster event writes); compute = step time "
                                 "minus those; dagster_overhead = run wall minus step times (job build, planning, "
                                 "resource init, run bookkeeping) plus event writes inside steps. Parsing, "
                                 "validation, tagging, scoring, indicators, features and pandas->SQL row "
                                 "conversion outside Warehouse calls count as compute",
        "options": {k: v for k, v in vars(args).items() if k not in ("child", "backend", "home", "resources",
                                                                     "warehouse", "out", "days")} | {"days": args.days},
        "load_average_at_start": [round(x, 2) for x in load_before],
        "targets": {"sqlite_30d_wall_s": TARGET_30D_S, "load_s": TARGET_LOAD_S, "ui_s": TARGET_UI_S},
    }
    workdir = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        sqlite_sizes = {d: run_size(d, args.embedded, args, workdir) for d in sqlite_days}
        results[args.embedded] = {"sizes": {d: summarize(s) for d, s in sqlite_sizes.items()},
                             "scaling": scaling(sqlite_sizes),
                             "detail": {d: s for d, s in sqlite_sizes.items()}}
        if 30 in sqlite_sizes and "wall_s" in sqlite_sizes[30]:
            wall = sqlite_sizes[30]["wall_s"]
            results["sqlite_30d_vs_target"] = {"wall_s": wall, "target_s": TARGET_30D_S,
                                               "meets_target": wall <= TARGET_30D_S and sqlite_sizes[30]["success"],
                                               "process_s_incl_imports": sqlite_sizes[30]["process_s"]}
        else:
            results["sqlite_30d_vs_target"] = "not run at this size (pass --days ...,30)"

        if mysql_days:
            url = os.environ.get("CRYPTO_TEST_MYSQL_URL") or DEFAULT_MYSQL
            mysql_sizes = {}
            try:
                for d in mysql_days:
                    with scratch_database(url, "crypto_bench") as db_url:
                        mysql_sizes[d] = run_size(d, "mysql", args, workdir,
                                                  mysql_url=db_url.render_as_string(hide_password=False))
                results["mysql"] = {"server": url.split("@")[-1], "instance_storage": "SQLite (only the warehouse "
                                    "is MySQL)", "sizes": {d: summarize(s) for d, s in mysql_sizes.items()},
                                    "scaling": scaling(mysql_sizes), "detail": mysql_sizes}
            except Exception as exc:  # noqa: BLE001 - server down: report, do not fail the other numbers
                results["mysql"] = f"skipped: {type(exc).__name__}: {str(exc)[:300]}"
        else:
            results["mysql"] = "skipped (--skip-mysql or --mysql-days '')"

        if not args.skip_load:
            print("[scale] code location load time", flush=True)
            results["code_location_load"] = load_time(args.load_repeats)
        if not args.skip_ui:
            ui_days = args.ui_days if args.ui_days in sqlite_days else (max(sqlite_days) if sqlite_days else None)
            home = workdir / f"sqlite_{ui_days}d" if ui_days else workdir / "ui_empty"
            if ui_days is None:
                home.mkdir()
                shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
            print(f"[scale] UI GraphQL on the {ui_days}-day instance", flush=True)
            history = (f"the SQLite {ui_days}-day backfill's instance (its runs and materializations)" if ui_days
                       else "an empty instance")
            try:
                results["ui_graphql"] = bench_ui(home, args.ui_requests, history)
            except Exception as exc:  # noqa: BLE001
                results["ui_graphql"] = f"failed: {type(exc).__name__}: {str(exc)[:500]}"
    finally:
        if args.keep:
            print(f"[scale] kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["benchmark_total_s"] = round(time.perf_counter() - started, 1)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = record("scale", json.loads(json.dumps(results, default=str)))
    short = {k: v for k, v in results.items() if k in ("sqlite_30d_vs_target", "code_location_load", "ui_graphql")}
    short["scaling"] = results[args.embedded]["scaling"]
    print(json.dumps(short, indent=1, default=str))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
