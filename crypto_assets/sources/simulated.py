"""Simulated live market (`CRYPTO_SOURCE_MODE=simulated`): synthetic answers for the CURRENT time.

A soak of the whole stack (daemon, automation, every run) at full scale needs a market that keeps
moving now, which replay (recordings of the past) is not. This module answers the providers'
endpoints through an `httpx.MockTransport`, in the providers' own formats, so the same parsing
code reads them:

- coingecko: /coins/markets (a ranking of `LISTED_COINS` coins: resources/coins.csv first, then
  SIM001...; or the `ids` asked for) and /coins/{id}/market_chart/range;
- binance: /api/v3/klines (spot candles) and the USD-M futures market data derivatives_metrics
  reads (premiumIndex, openInterest, fundingRate, openInterestHist); the market list is
  `simulated_markets`;
- rss: every feed URL answers an RSS 2.0 document with a few headlines of the current hour.

Any other request gets a 404 naming the mode, as replay does for a request it has no recording
for: a source without a simulation simply has no data (never real data).

Prices are seeded random walks, deterministic in (seed, coin, minute) so that every run process
sees the same market: per coin a daily walk from `ORIGIN`, and within a day a Brownian bridge of
1-minute steps between the two day levels. Every row a source writes in this mode has the
provenance `simulated:<source>` (`provenance`).

Simulated and real data are never mixed (`check_separation`): the mode needs its own DAGSTER_HOME
and warehouse, both set explicitly, and marks the home with `MARKER` (naming the warehouse) when
the code location loads, before any run; a home so marked refuses every other mode and any other
warehouse, and simulated mode refuses a home that already holds runs without the marker (a real
deployment's).
"""

from __future__ import annotations

import json
import math
import os
import zlib
from datetime import datetime, timezone
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import numpy as np
import pandas as pd

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.warehouse.failed_keys import REPLAY_MISS_MARK

SIMULATED = "simulated"
SEED_ENV = "CRYPTO_SIMULATED_SEED"
MARKER = ".crypto_simulated"  # in DAGSTER_HOME: this home (and its warehouse) hold synthetic data only
ORIGIN = pd.Timestamp("2020-01-01", tz="UTC")  # the walks start here
LISTED_COINS = 1000  # the simulated /coins/markets ranking
DAILY_SIGMA = 0.03  # log-price standard deviation per day
MINUTE_MS = 60_000
HOUR_MS = 3_600_000


class SimulationMixingError(RuntimeError):
    """Simulated and real data would share a Dagster home or a warehouse."""


def provenance(source: str) -> str:
    return f"{SIMULATED}:{source}"


def seed() -> int:
    return int(os.environ.get(SEED_ENV, "7"))


# -- separation from real data -------------------------------------------------------------------

def _runs_in(home: Path) -> list[str]:
    """Runs a DAGSTER_HOME already holds: the per-run event logs of Dagster's default SQLite storage
    (`history/runs/<run id>.db`; index.db is created with the instance, before any run)."""
    folder = home / "history" / "runs"
    return sorted(p.stem for p in folder.glob("*.db") if p.name != "index.db") if folder.is_dir() else []


def check_separation(mode: str, home: str | None = None, warehouse_url: str | None = None) -> None:
    """Refuse to mix simulated and real data (see the module docstring); mark a simulated home.

    `home` / `warehouse_url` default to DAGSTER_HOME / CRYPTO_WAREHOUSE_URL."""
    home = home if home is not None else os.environ.get("DAGSTER_HOME")
    warehouse_url = warehouse_url if warehouse_url is not None else os.environ.get("CRYPTO_WAREHOUSE_URL")
    marker = Path(home) / MARKER if home else None
    if mode != SIMULATED:
        if marker is not None and marker.exists():
            raise SimulationMixingError(
                f"DAGSTER_HOME {home} holds simulated data ({MARKER}); {mode} mode never writes there: "
                "use another DAGSTER_HOME and CRYPTO_WAREHOUSE_URL, or CRYPTO_SOURCE_MODE=simulated")
        return
    if not home or not warehouse_url:
        raise SimulationMixingError(
            "simulated mode needs its own DAGSTER_HOME and CRYPTO_WAREHOUSE_URL, both set explicitly "
            "(never the live ones): e.g. DAGSTER_HOME=/tmp/sim/home CRYPTO_WAREHOUSE_URL=delta:///tmp/sim/warehouse")
    if marker.exists():
        recorded = marker.read_text().strip()
        if recorded and recorded != warehouse_url:
            raise SimulationMixingError(
                f"DAGSTER_HOME {home} is simulated with the warehouse {recorded}, not {warehouse_url}")
        return
    runs = _runs_in(Path(home))
    if runs:
        raise SimulationMixingError(
            f"DAGSTER_HOME {home} already holds {len(runs)} run(s) without the simulated marker {MARKER}: it is "
            "a real deployment's; give simulated mode a new, empty DAGSTER_HOME")
    Path(home).mkdir(parents=True, exist_ok=True)
    marker.write_text(warehouse_url + "\n")


# -- the market ----------------------------------------------------------------------------------

def _key(name: str) -> int:
    return zlib.crc32(name.encode())


@cache
def coins() -> tuple[tuple[str, str, str], ...]:
    """(symbol, coingecko id, name) of the simulated ranking: the catalog's coins, then SIM001..."""
    catalog = pd.read_csv(RESOURCES_DIR / "coins.csv", dtype=str, keep_default_na=False)
    listed = [(s.strip().upper(), i, n) for s, i, n in zip(catalog.symbol, catalog.coingecko_id, catalog.name) if i]
    for n in range(1, LISTED_COINS - len(listed) + 1):
        listed.append((f"SIM{n:03d}", f"simulated-coin-{n:03d}", f"Simulated Coin {n:03d}"))
    return tuple(listed)


@cache
def _by_id() -> dict[str, tuple[int, str, str]]:
    return {cid: (rank, symbol, name) for rank, (symbol, cid, name) in enumerate(coins(), start=1)}


@cache
def _by_symbol() -> dict[str, str]:
    return {symbol: cid for symbol, cid, _ in coins()}


def _base_price(coin: str) -> float:
    """A coin's price at ORIGIN: spread from 0.01 to 10,000 USD."""
    return float(10 ** (-2 + 6 * (_key(coin) % 10_000) / 10_000))


@cache
def _day_levels(coin: str, seed_: int, days: int) -> np.ndarray:
    """Log price at the start of each day from ORIGIN (days + 1 levels)."""
    rng = np.random.default_rng([seed_, _key(coin), 0])
    steps = rng.normal(0.0, DAILY_SIGMA, days + 1)
    return math.log(_base_price(coin)) + np.concatenate([[0.0], np.cumsum(steps)])


def _horizon_days() -> int:
    """Days from ORIGIN the daily walk covers (to a week past now; grown as time passes)."""
    return int((pd.Timestamp.now(tz="UTC") - ORIGIN).days) // 64 * 64 + 128


@cache
def _minute_path(coin: str, seed_: int, day: int) -> np.ndarray:
    """1441 log prices, one per minute of day `day` (from ORIGIN): a Brownian bridge between the
    day's level and the next day's, so that days join up."""
    levels = _day_levels(coin, seed_, max(_horizon_days(), day + 2))
    start, end = levels[day], levels[day + 1]
    rng = np.random.default_rng([seed_, _key(coin), day + 1])
    walk = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, DAILY_SIGMA / math.sqrt(1440), 1440))])
    return start + walk - np.linspace(0.0, 1.0, 1441) * (walk[-1] - (end - start))


def prices(coin: str, times_ms: np.ndarray) -> np.ndarray:
    """The coin's USD price at each time (milliseconds; the minute's price)."""
    minutes = (np.asarray(times_ms, dtype="int64") - ORIGIN.value // 1_000_000) // MINUTE_MS
    out = np.empty(len(minutes))
    days = minutes // 1440
    for day in np.unique(days):
        at = days == day
        out[at] = np.exp(_minute_path(coin, seed(), int(day))[minutes[at] - day * 1440])
    return out


def price(coin: str, when_ms: int) -> float:
    return float(prices(coin, np.array([when_ms]))[0])


def _supply(coin_id: str, rank: int) -> float:
    """Circulating supply giving a market cap at ORIGIN that falls with the catalog rank."""
    return 5e11 / rank ** 1.1 / _base_price(coin_id)


def _now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)


# -- provider answers ----------------------------------------------------------------------------

def _json(payload, now_ms: int) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(payload).encode(), headers={
        "Content-Type": "application/json", "Date": _http_date(now_ms), "X-Simulated": "true"})


def _http_date(ms: int) -> str:
    return format_datetime(datetime.fromtimestamp(ms / 1000, timezone.utc), usegmt=True)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def coingecko_markets(params: httpx.QueryParams, now_ms: int) -> list[dict]:
    """/coins/markets: the `ids` asked for (or the whole ranking), ordered by market cap now, paged."""
    by_id = _by_id()
    wanted = [i for i in params.get("ids", "").split(",") if i in by_id] if params.get("ids") else list(by_id)
    rows = []
    for coin_id in wanted:
        rank, symbol, name = by_id[coin_id]
        p = price(coin_id, now_ms)
        cap = p * _supply(coin_id, rank)
        rows.append({"id": coin_id, "symbol": symbol.lower(), "name": name, "current_price": p,
                     "market_cap": cap, "total_volume": cap * 0.05, "last_updated": _iso(now_ms)})
    rows.sort(key=lambda r: -r["market_cap"])
    for n, row in enumerate(rows, start=1):
        row["market_cap_rank"] = n
    per_page, page = int(params.get("per_page", 100)), int(params.get("page", 1))
    return rows[(page - 1) * per_page: page * per_page]


def coingecko_chart(coin_id: str, params: httpx.QueryParams, now_ms: int) -> dict:
    """/coins/{id}/market_chart/range: 5-minute points for a range of a day or less, else hourly."""
    lo, hi = int(float(params["from"])) * 1000, min(int(float(params["to"])) * 1000, now_ms)
    step = 300_000 if hi - lo <= 86_400_000 else HOUR_MS
    times = np.arange(-(-lo // step) * step, hi + 1, step, dtype="int64")
    rank = _by_id()[coin_id][0]
    p = prices(coin_id, times)
    caps = p * _supply(coin_id, rank)
    return {"prices": [[int(t), float(v)] for t, v in zip(times, p)],
            "market_caps": [[int(t), float(v)] for t, v in zip(times, caps)],
            "total_volumes": [[int(t), float(v) * 0.05] for t, v in zip(times, caps)]}


def binance_klines(params: httpx.QueryParams, now_ms: int) -> list[list] | None:
    """/api/v3/klines: candles from startTime up to now, the open one included (as Binance does)."""
    coin_id = _coin_of_market(params)
    step = {"1m": MINUTE_MS, "5m": 300_000, "1h": HOUR_MS, "1d": 86_400_000}.get(params.get("interval", ""))
    if coin_id is None or step is None:
        return None
    start = int(params.get("startTime", now_ms - 500 * step)) // step * step
    limit = int(params.get("limit", 500))
    opens = np.arange(start, min(now_ms, start + limit * step - 1) + 1, step, dtype="int64")
    opens = opens[opens <= now_ms]
    rows = []
    for t in opens:
        close_at = min(int(t) + step, now_ms)
        minutes = np.arange(int(t), close_at + 1, MINUTE_MS, dtype="int64")
        path = prices(coin_id, minutes)
        volume = 1e6 / path[0] * (1 + (_key(f"{coin_id}{t}") % 100) / 100)
        rows.append([int(t), f"{path[0]:.8g}", f"{path.max():.8g}", f"{path.min():.8g}", f"{path[-1]:.8g}",
                     f"{volume:.8g}", int(t) + step - 1, f"{volume * path.mean():.8g}", 100 + _key(str(t)) % 900,
                     "0", "0", "0"])
    return rows


_HEADLINES = ("{name} ({symbol}) rises as traders return", "{name} ({symbol}) slips in a quiet market",
              "Analysts watch {name} ({symbol}) after a volatile hour", "{name} ({symbol}) volume climbs")


def rss_feed(url: str, now_ms: int, items: int = 3) -> bytes:
    """An RSS 2.0 document with `items` synthetic headlines of the current hour, unique per feed URL."""
    hour = now_ms // HOUR_MS * HOUR_MS
    listed = coins()
    entries = []
    for n in range(items):
        symbol, coin_id, name = listed[_key(f"{url}{hour}{n}") % len(listed)]
        at = hour + (_key(f"{url}{n}") % 55) * MINUTE_MS
        at = min(at, now_ms)
        title = _HEADLINES[(_key(url) + n) % len(_HEADLINES)].format(name=name, symbol=symbol)
        link = f"https://simulated.invalid/{_key(url)}/{hour}/{n}"
        entries.append(
            f"<item><title>{escape(title)}</title><link>{link}</link><guid>{link}</guid>"
            f"<pubDate>{_http_date(at)}</pubDate>"
            f"<description>{escape('Simulated article: ' + title + '.')}</description></item>")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>"
            f"<title>Simulated feed</title><link>{escape(url)}</link><description>synthetic</description>"
            + "".join(entries) + "</channel></rss>").encode()


def simulated_markets(exchange: str) -> list[dict]:
    """The markets a simulated exchange lists (ccxt's market structure, minimal): binance has every
    simulated coin against USDT, spot and USD-M perpetual; the other exchanges list none, so binance
    wins every coin."""
    if exchange != "binance":
        return []
    common = {"quote": "USDT", "quoteId": "USDT", "margin": False, "future": False, "option": False, "active": True}
    spot = [{**common, "id": f"{s}USDT", "symbol": f"{s}/USDT", "base": s, "baseId": s, "type": "spot", "spot": True,
             "swap": False, "contract": False} for s, _, _ in coins()]
    swap = [{**common, "id": f"{s}USDT", "symbol": f"{s}/USDT:USDT", "base": s, "baseId": s, "settle": "USDT",
             "settleId": "USDT", "type": "swap", "spot": False, "swap": True, "contract": True, "linear": True,
             "inverse": False, "contractSize": 1} for s, _, _ in coins()]
    return spot + swap


def _coin_of_market(params: httpx.QueryParams) -> str | None:
    market = params.get("symbol", "")
    return _by_symbol().get(market[:-4]) if market.endswith("USDT") else None


def _funding_rate(coin_id: str, at_ms: int) -> float:
    """A funding rate around +0.01 % that follows the coin's last 8 hours of price."""
    now, before = prices(coin_id, np.array([at_ms, at_ms - 8 * HOUR_MS]))
    return 0.0001 + 0.001 * math.tanh(math.log(now / before) * 10)


def _open_interest(coin_id: str, at_ms: int) -> float:
    """Open interest in coins: about 2 % of the supply, drifting with the price."""
    rank = _by_id()[coin_id][0]
    p = price(coin_id, at_ms)
    return _supply(coin_id, rank) * 0.02 * (p / _base_price(coin_id)) ** 0.3


def binance_futures(path: str, params: httpx.QueryParams, now_ms: int):
    """USD-M futures market data: premiumIndex (current funding, mark/index price), openInterest,
    fundingRate (settlements every 8 h) and openInterestHist (hourly); None for anything else."""
    coin_id = _coin_of_market(params)
    if coin_id is None:
        return None
    market = params["symbol"]
    if path == "/fapi/v1/premiumIndex":
        p = price(coin_id, now_ms)
        return {"symbol": market, "markPrice": f"{p:.8g}", "indexPrice": f"{p * 0.9999:.8g}",
                "estimatedSettlePrice": f"{p:.8g}", "lastFundingRate": f"{_funding_rate(coin_id, now_ms):.8f}",
                "interestRate": "0.00010000", "nextFundingTime": (now_ms // (8 * HOUR_MS) + 1) * 8 * HOUR_MS,
                "time": now_ms}
    if path == "/fapi/v1/openInterest":
        return {"symbol": market, "openInterest": f"{_open_interest(coin_id, now_ms):.3f}", "time": now_ms}
    step = 8 * HOUR_MS if path == "/fapi/v1/fundingRate" else HOUR_MS
    if path not in ("/fapi/v1/fundingRate", "/futures/data/openInterestHist"):
        return None
    start = -(-int(params.get("startTime", now_ms - 30 * step)) // step) * step
    limit = int(params.get("limit", 100))
    end = min(now_ms, int(params.get("endTime", now_ms)))
    times = [t for t in range(start, end + 1, step)][:limit]
    if path == "/fapi/v1/fundingRate":
        return [{"symbol": market, "fundingTime": t, "fundingRate": f"{_funding_rate(coin_id, t):.8f}",
                 "markPrice": f"{price(coin_id, t):.8g}"} for t in times]
    return [{"symbol": market, "sumOpenInterest": f"{_open_interest(coin_id, t):.3f}",
             "sumOpenInterestValue": f"{_open_interest(coin_id, t) * price(coin_id, t):.3f}", "timestamp": t}
            for t in times]


def _miss(request: httpx.Request) -> httpx.Response:
    """Replay's answer to a request it has no recording for (its header and the mark in its body),
    so that the assets treat it alike: no data, not a failed source."""
    return httpx.Response(404, json={"error": f"simulated: no synthetic answer for {request.url} "
                                              f"({REPLAY_MISS_MARK}, no simulation of this endpoint)"},
                          headers={"X-Replay": "miss", "X-Simulated": "miss"})


def simulated_transport(source: str, base_url: str = "") -> httpx.MockTransport:
    """The transport answering `source`'s requests with the simulated market at the current time."""
    base_path = httpx.URL(base_url).path.rstrip("/") if base_url else ""

    def handler(request: httpx.Request) -> httpx.Response:
        now_ms = _now_ms()
        path = request.url.path[len(base_path):] if request.url.path.startswith(base_path) else request.url.path
        params = request.url.params
        if source == "coingecko" and path == "/coins/markets":
            return _json(coingecko_markets(params, now_ms), now_ms)
        if source == "coingecko" and path.startswith("/coins/") and path.endswith("/market_chart/range"):
            coin_id = path.split("/")[2]
            if coin_id in _by_id() and "from" in params and "to" in params:
                return _json(coingecko_chart(coin_id, params, now_ms), now_ms)
        if source == "binance" and path == "/api/v3/klines":
            rows = binance_klines(params, now_ms)
            if rows is not None:
                return _json(rows, now_ms)
        if source == "binance" and (path.startswith("/fapi/") or path.startswith("/futures/")):
            answer = binance_futures(path, params, now_ms)
            if answer is not None:
                return _json(answer, now_ms)
        if source == "rss":
            return httpx.Response(200, content=rss_feed(str(request.url), now_ms), headers={
                "Content-Type": "application/rss+xml", "Date": _http_date(now_ms), "X-Simulated": "true"})
        return _miss(request)

    return httpx.MockTransport(handler)


__all__ = ["MARKER", "SIMULATED", "SimulationMixingError", "check_separation", "coins", "price", "prices",
           "provenance", "simulated_markets", "simulated_transport"]
