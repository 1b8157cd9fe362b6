"""SYNTHETIC replay inputs for the scale benchmark, generated per size into a temporary resources
folder that the code reads through its own override (CRYPTO_RESOURCES_DIR, crypto_assets/paths.py).

A coin universe of N coins (the real rows of resources/coins.csv, then made-up coins QAAA, QAAB,
...) and replay payloads for every source in the provider's format: CoinGecko
/market_chart/range (one random-walk point per coin and hour), RSS documents for every feed of
news_feeds.yaml and Guardian /search pages (news per hour in all), Reddit /new listings for every
subreddit of subreddits.yaml, paged by praw (posts per hour), Yahoo charts and FRED observations
for every series of macro_series.yaml, blockchain.com charts and DefiLlama TVL for every metric of
onchain_metrics.yaml.

Each backfill chunk gets only its own time range, as a provider answers it:
- CoinGecko and the Guardian are asked for a range (`from`/`to`, `from-date`/`to-date`): one
  recording per range the chunks ask for, picked by those query params (replay file names with
  {param}s, crypto_assets/sources/replay.py).
- RSS feeds and Reddit's /new listing take no range: they list what is recent when asked. Before
  each chunk's runs, `serve_chunk` puts in place what they list at that chunk's end (its items
  only), as a deployment polling them while those hours were recent would have seen.
Macro and on-chain payloads cover the whole window (a few points per series and day).
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import numpy as np
import yaml

# No crypto_assets import at module level: the backfill process imports this module before it
# sets CRYPTO_RESOURCES_DIR, which crypto_assets.paths reads once, at its import.
ROOT = Path(__file__).resolve().parents[2]
REAL_RESOURCES = ROOT / "resources"
SYNTHETIC_NOTE = ("SYNTHETIC inputs: made-up coin universe beyond the 20 real rows, random-walk prices, "
                  "generated news/social texts, macro and on-chain values; served as replay payloads, each "
                  "backfill chunk only its own range. Not real data.")
CHUNKS_FILE = "chunks.json"  # in the replay folder: what `serve_chunk` puts in place per chunk

POSITIVE = ["surges", "rallies", "gains", "soars", "rebounds", "climbs", "wins approval", "beats forecasts",
            "hits record", "strong demand lifts"]
NEGATIVE = ["plunges", "slumps", "falls", "crashes", "drops", "faces lawsuit", "hit by hack", "loses support",
            "weak demand sinks", "sell-off deepens"]
NEUTRAL = ["trades sideways", "holds steady", "updates roadmap", "lists on exchange", "schedules upgrade",
           "publishes report", "moves to new chain", "sees mixed flows"]
TOPICS = ["ETF flows", "regulators", "miners", "DeFi lending", "stablecoin supply", "exchange reserves",
          "the Fed", "options expiry", "layer-2 fees", "on-chain activity"]


def chunk_windows(start: datetime, end: datetime, hours: int) -> list[tuple[datetime, datetime]]:
    """[start, end) in consecutive runs of `hours` hours, the last one shorter (0: one run), as the
    backfill daemon splits a range under BackfillPolicy.multi_run."""
    step = timedelta(hours=hours) if hours else end - start
    out, lo = [], start
    while lo < end:
        out.append((lo, min(end, lo + step)))
        lo = out[-1][1]
    return out


def http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(timezone.utc), usegmt=True)


def synthetic_symbols(n: int) -> list[tuple[str, str, str, str]]:
    """(symbol, coingecko_id, name, aliases): the real rows of resources/coins.csv first, then
    made-up coins QAAA, QAAB, ... (names 'Qaaacoin'), none of which is an English word."""
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


def _catalog(folder: Path, routes: list[dict]) -> None:
    _write(folder, "catalog.yaml", yaml.safe_dump({"routes": routes}, sort_keys=False))


def _split(n: int, parts: int) -> list[int]:
    """n items over `parts` as evenly as possible."""
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _in_chunk(times: list[datetime], lo: datetime, hi: datetime) -> list[int]:
    return [i for i, t in enumerate(times) if lo <= t < hi]


def write_synthetic_resources(dest: Path, start: datetime, end: datetime, chunk_hours: int, n_symbols: int,
                              news_per_hour: float, social_per_hour: float, seed: int = 0) -> dict:
    """A complete resources/ folder (catalogs + replay payloads) for the window [start, end),
    backfilled in chunks of `chunk_hours` (0: one). Returns what was generated; the first
    chunk's RSS and Reddit listings are in place."""
    from crypto_assets.sources.coingecko import market_chart_pieces

    t0 = time.perf_counter()
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    hours = int((end - start) / timedelta(hours=1))
    label = f"{hours // 24}d"  # in ids and links: sizes never share an article
    chunks = chunk_windows(start, end, chunk_hours)
    serve: list[list[tuple[str, str]]] = [[] for _ in chunks]  # per chunk: (its file, the file served)
    answered = http_date(datetime.now(timezone.utc))  # the "recording time" (Date header): now
    shutil.copytree(REAL_RESOURCES, dest, ignore=shutil.ignore_patterns("replay"))
    replay = dest / "replay"
    counts: dict[str, int] = {"chunks": len(chunks)}

    # -- coin universe ------------------------------------------------------------------------
    coins = synthetic_symbols(n_symbols)
    with open(dest / "coins.csv", "w") as fh:
        fh.write("symbol,coingecko_id,name,aliases\n")
        fh.writelines(f"{s},{cid},{name},{aliases}\n" for s, cid, name, aliases in coins)
    counts["coins"] = len(coins)

    # -- CoinGecko /coins/{id}/market_chart/range: one point per hour (the provider's granularity
    #    for 2-90 day ranges), a few seconds to minutes after the hour; one file per coin and
    #    requested range [from, to] (seconds, both ends included as the provider does) ------------
    folder = replay / "coingecko"
    folder.mkdir(parents=True)
    routes = []
    base_ms = int(start.timestamp() * 1000)
    ranges = [piece for lo, hi in chunks for piece in market_chart_pieces(lo, hi)]
    for k, (_, cid, _, _) in enumerate(coins):
        offsets = nrng.integers(0, 300_000, size=hours)
        stamps = base_ms + np.arange(hours, dtype=np.int64) * 3_600_000 + offsets
        price = float(10 ** nrng.uniform(-3, 4.5)) * np.exp(np.cumsum(nrng.normal(0, 0.01, size=hours)))
        caps = price * float(10 ** nrng.uniform(6, 9))
        vols = caps * nrng.uniform(0.01, 0.2, size=hours)
        for lo_s, hi_s in ranges:
            a, b = np.searchsorted(stamps, lo_s * 1000), np.searchsorted(stamps, hi_s * 1000, side="right")
            payload = {name: [[int(t), float(v)] for t, v in zip(stamps[a:b], series[a:b])]
                       for name, series in (("prices", price), ("market_caps", caps), ("total_volumes", vols))}
            _write(folder, f"mc_{k:04d}_{lo_s}_{hi_s}.json", payload)
        routes.append({"path": f"/coins/{cid}/market_chart/range", "params": {"vs_currency": "usd"},
                       "file": f"mc_{k:04d}_{{from}}_{{to}}.json", "headers": {"Date": answered}})
    counts["price_points"] = hours * len(coins)
    _catalog(folder, routes)

    # -- News: RSS documents for every catalog feed + Guardian /search pages ----------------------
    feeds_cfg = yaml.safe_load((REAL_RESOURCES / "news_feeds.yaml").read_text())
    feeds = feeds_cfg["feeds"]
    n_news = int(round(news_per_hour * hours))
    n_guardian = max(1, n_news // 40)  # the Guardian publishes few crypto articles: ~2.5%
    n_rss = n_news - n_guardian
    folder = replay / "rss"
    folder.mkdir(parents=True)
    routes = []
    for feed, n in zip(feeds, _split(n_rss, len(feeds))):
        times = _times(rng, n, start, end)
        items = []
        for j, when in enumerate(times):
            title, lead = _headline(rng, coins)
            link = f"https://news.example.com/{feed['id']}/{label}/{j}-{rng.getrandbits(32):08x}"
            items.append(f"<item><title>{escape(title)}</title><link>{link}</link><guid>{link}</guid>"
                         f"<pubDate>{http_date(when)}</pubDate><description>{escape(lead)}</description>"
                         f"<author>desk@example.com (Synthetic Desk)</author></item>")
        served = f"{feed['id']}.xml"
        for c, (lo, hi) in enumerate(chunks):
            listed = "".join(items[i] for i in reversed(_in_chunk(times, lo, hi)))  # feeds list newest first
            doc = ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
                   f"<title>{escape(feed['name'])} (synthetic)</title><link>https://news.example.com/</link>"
                   f"<description>synthetic benchmark feed</description>{listed}</channel></rss>")
            own = _write(folder, f"{feed['id']}.chunk{c}.xml", doc)
            serve[c].append((f"rss/{own}", f"rss/{served}"))
        routes.append({"url": feed["url"], "file": served, "content_type": "application/rss+xml",
                       "headers": {"Date": answered}})
    _catalog(folder, routes)

    # The Guardian is asked for whole days (from-date .. to-date, the chunk's first and last day):
    # one set of pages per such day range, holding the articles of those days.
    folder = replay / "guardian"
    folder.mkdir(parents=True)
    page_size = 200
    results = []
    for j, when in enumerate(_times(rng, n_guardian, start, end)):  # order-by oldest
        title, lead = _headline(rng, coins)
        results.append({"id": f"technology/synthetic/{label}/{j}", "type": "article",
                        "webPublicationDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "webTitle": title,
                        "webUrl": f"https://www.theguardian.com/technology/synthetic/{label}/{j}",
                        "fields": {"trailText": lead, "byline": "Synthetic Reporter"}, "tags": []})
    max_pages = 1
    for first, last in dict.fromkeys((lo.date(), (hi - timedelta(microseconds=1)).date()) for lo, hi in chunks):
        days = [r for r in results if first.isoformat() <= r["webPublicationDate"][:10] <= last.isoformat()]
        pages = max(1, -(-len(days) // page_size))
        max_pages = max(max_pages, pages)
        for p in range(1, pages + 1):
            body = {"response": {"status": "ok", "userTier": "developer", "total": len(days),
                                 "startIndex": (p - 1) * page_size + 1, "pageSize": page_size, "currentPage": p,
                                 "pages": pages, "orderBy": "oldest",
                                 "results": days[(p - 1) * page_size: p * page_size]}}
            _write(folder, f"search_{first}_{last}_p{p}.json", body)
    _catalog(folder, [{"path": "/search", "file": "search_{from-date}_{to-date}_p{page}.json",
                       "headers": {"Date": answered}}])
    feeds_cfg["guardian"]["max_pages"] = max(int(feeds_cfg["guardian"].get("max_pages", 25)), max_pages)
    (dest / "news_feeds.yaml").write_text(yaml.safe_dump(feeds_cfg, sort_keys=False))
    counts.update(news_rss_items=n_rss, news_guardian_items=n_guardian, news_guardian_pages_max=max_pages)

    # -- Reddit /r/<name>/new listings, 100 per page as praw pages them: the first page per chunk
    #    (served by `serve_chunk`), the next ones by the `after` praw sends ----------------------
    subs_cfg = yaml.safe_load((REAL_RESOURCES / "subreddits.yaml").read_text())
    names = [s if isinstance(s, str) else s["name"] for s in subs_cfg["subreddits"]]
    n_social = int(round(social_per_hour * hours))
    per_sub = _split(n_social, len(names))
    folder = replay / "reddit"
    folder.mkdir(parents=True)
    shutil.copy(REAL_RESOURCES / "replay" / "reddit" / "access_token.json", folder / "access_token.json")
    page_routes, first_routes, subs_out, most_listed = [], [], [], 0
    for s, (name, n) in enumerate(zip(names, per_sub)):
        times = _times(rng, n, start, end)
        posts = []
        for j, when in enumerate(times):
            title, lead = _headline(rng, coins, 0.6)
            pid = f"s{label}x{s:02d}x{j:05d}"
            posts.append({"kind": "t3", "data": {
                "id": pid, "name": f"t3_{pid}", "created_utc": when.timestamp(), "subreddit": name,
                "author": f"synthetic_user_{rng.randrange(5000)}", "title": title, "selftext": lead,
                "url": f"https://www.reddit.com/r/{name}/comments/{pid}/", "permalink": f"/r/{name}/comments/{pid}/",
                "score": rng.randrange(0, 500), "num_comments": rng.randrange(0, 200),
                "upvote_ratio": round(rng.uniform(0.5, 1.0), 2), "over_18": False, "is_self": True}})
        sub = name.lower()
        for c, (lo, hi) in enumerate(chunks):
            listed = [posts[i] for i in reversed(_in_chunk(times, lo, hi))]  # /new: newest first
            most_listed = max(most_listed, len(listed))
            pages = [listed[i:i + 100] for i in range(0, len(listed), 100)] or [[]]
            for p, page in enumerate(pages):
                after = page[-1]["data"]["name"] if p < len(pages) - 1 else None
                body = {"kind": "Listing", "data": {"after": after, "before": None, "dist": len(page),
                                                    "modhash": "", "children": page}}
                if p == 0:
                    own = _write(folder, f"{sub}_new.chunk{c}.json", body)
                    serve[c].append((f"reddit/{own}", f"reddit/{sub}_new.json"))
                else:
                    _write(folder, f"{sub}_after_{pages[p - 1][-1]['data']['name']}.json", body)
        url = f"https://oauth.reddit.com/r/{name}/new"
        page_routes.append({"url": url, "file": f"{sub}_after_{{after}}.json"})
        first_routes.append({"url": url, "file": f"{sub}_new.json"})
        subs_out.append({"name": name, "limit": 1000})
    if most_listed > 990:
        raise SystemExit(f"--social-per-hour too high: {most_listed} posts per subreddit and chunk exceed "
                         "Reddit's ~1000-item listing (subreddits.yaml limit 1..1000)")
    # A first-page route matches any request to its listing: the `after` routes go first.
    _catalog(folder, [{"url": "https://www.reddit.com/api/v1/access_token", "file": "access_token.json"},
                      *page_routes, *first_routes])
    (dest / "subreddits.yaml").write_text(yaml.safe_dump({"default_limit": 100, "subreddits": subs_out}))
    counts["social_posts"] = n_social

    # -- Macro: Yahoo charts (weekday closes) and FRED observations --------------------------------
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
    _catalog(y_folder, y_routes)
    _catalog(f_folder, f_routes)
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
    _catalog(b_folder, b_routes)
    _catalog(d_folder, d_routes)
    counts["onchain_metrics"] = len(metrics)
    counts["generate_s"] = round(time.perf_counter() - t0, 2)
    # Sources this generator does not synthesize (Fear & Greed, the exchanges) replay the project's
    # own recordings: their assets run and find no data in the window, as in the demo.
    for source in (REAL_RESOURCES / "replay").iterdir():
        if source.is_dir() and not (replay / source.name).exists():
            shutil.copytree(source, replay / source.name)
    _write(replay, CHUNKS_FILE, {"chunks": [[lo.isoformat(), hi.isoformat()] for lo, hi in chunks], "serve": serve})
    serve_chunk(dest, 0)
    counts["bytes"] = sum(p.stat().st_size for p in replay.rglob("*") if p.is_file())
    return counts


def serve_chunk(resources: Path, index: int) -> None:
    """Put in place what the range-less sources (RSS, Reddit /new) list at the end of chunk
    `index`: its own items."""
    replay = Path(resources) / "replay"
    for own, served in json.loads((replay / CHUNKS_FILE).read_text())["serve"][index]:
        shutil.copyfile(replay / own, replay / served)
