"""Exchange candles: a 320-symbol x 1-year 1h backfill from replayed paged payloads, and the live
request plan against each exchange's published limit. Results: benchmarks/results.json["exchanges"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_exchanges.py [--symbols 320] [--days 365]

Payloads are SYNTHETIC (generated here, labelled synthetic in the results): pages shaped exactly like
the recorded answers (Binance /api/v3/klines 12-field string rows, 1000 per page; OKX
/api/v5/market/history-candles 9-field rows newest first, 100 per page), served by an httpx
MockTransport. Everything after the transport is the production path: SourceClient (retries,
budget; spacing switched off, as in replay), the requests adapter, ccxt's fetch_ohlcv parsing,
paging, open-candle and gap logic, and the candle frame with quote volume and trade count.

Candles parsed per second = candles returned / wall time of that path (goal >= 200k/s).
Live plan: requests per minute that resources/sources.yaml's spacing allows (the SourceClient starts a
request at most every min_interval_s; one client per exchange at a time), versus the published limit
documented there (goal: at least 80 %, never above), and how long the same backfill takes live at that rate.
"""

from __future__ import annotations

import argparse
import json
import time

import httpx
import numpy as np
import pandas as pd

from benchmarks._results import measured
from crypto_assets.sources.catalog import source_spec
from crypto_assets.sources.exchanges import TIMEFRAME_MS, Exchanges, Market, load_exchange_catalog, request_plan

START = pd.Timestamp("2024-01-01", tz="UTC")
HOUR_MS = TIMEFRAME_MS["1h"]

def _binance_pages(n_candles: int, limit: int) -> dict[int, bytes]:
    """startTime -> the JSON body of one page (same values for every symbol: the parser does not care)."""
    rng = np.random.default_rng(7)
    close = 40000 * np.exp(np.cumsum(rng.normal(0, 0.004, n_candles)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n_candles))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n_candles))
    vol = rng.uniform(500, 3000, n_candles)
    trades = rng.integers(1000, 9000, n_candles)
    t0 = int(START.timestamp() * 1000)
    pages = {}
    for first in range(0, n_candles, limit):
        rows = []
        for i in range(first, min(first + limit, n_candles)):
            t = t0 + i * HOUR_MS
            rows.append([t, f"{open_[i]:.2f}", f"{high[i]:.2f}", f"{low[i]:.2f}", f"{close[i]:.2f}", f"{vol[i]:.5f}",
                         t + HOUR_MS - 1, f"{vol[i] * close[i]:.4f}", int(trades[i]), f"{vol[i] / 2:.5f}",
                         f"{vol[i] * close[i] / 2:.4f}", "0"])
        pages[t0 + first * HOUR_MS] = json.dumps(rows, separators=(",", ":")).encode()
    return pages


def _okx_pages(n_candles: int, limit: int) -> dict[int, bytes]:
    """`after` cursor (exclusive, ms) -> body: rows older than it, newest first (OKX history-candles)."""
    rng = np.random.default_rng(8)
    close = 40000 * np.exp(np.cumsum(rng.normal(0, 0.004, n_candles)))
    t0 = int(START.timestamp() * 1000)
    rows = [[str(t0 + i * HOUR_MS), f"{close[i]:.1f}", f"{close[i] * 1.002:.1f}", f"{close[i] * 0.998:.1f}",
             f"{close[i]:.1f}", f"{100 + i % 50:.4f}", f"{(100 + i % 50) * close[i]:.2f}",
             f"{(100 + i % 50) * close[i]:.2f}", "1"] for i in range(n_candles)]
    return {"rows": rows}


def _binance_transport(pages: dict[int, bytes], counter: list[int]) -> httpx.MockTransport:
    empty = b"[]"

    def handler(request: httpx.Request) -> httpx.Response:
        counter[0] += 1
        return httpx.Response(200, content=pages.get(int(request.url.params["startTime"]), empty),
                              headers={"Content-Type": "application/json"})
    return httpx.MockTransport(handler)


def _okx_transport(data: dict, counter: list[int]) -> httpx.MockTransport:
    rows = data["rows"]
    times = np.array([int(r[0]) for r in rows])

    def handler(request: httpx.Request) -> httpx.Response:
        counter[0] += 1
        params = request.url.params
        limit = int(params.get("limit", 100))
        if "before" in params:  # newer than `before`: the oldest `limit` of them, returned newest first
            lo = int(np.searchsorted(times, int(params["before"]), side="right"))
            chosen = rows[lo:lo + limit]
        else:
            hi = int(np.searchsorted(times, int(params["after"]), side="left")) if "after" in params else len(rows)
            chosen = rows[max(0, hi - limit):hi]
        body = {"code": "0", "msg": "", "data": chosen[::-1]}
        return httpx.Response(200, content=json.dumps(body, separators=(",", ":")).encode(),
                              headers={"Content-Type": "application/json"})
    return httpx.MockTransport(handler)


def run_backfill(exchange: str, n_symbols: int, days: int) -> dict:
    catalog = load_exchange_catalog()
    limit = catalog.exchanges[exchange].max_candles_per_request
    n_candles = days * 24
    end = START + pd.Timedelta(hours=n_candles)
    counter = [0]
    pages = _binance_pages(n_candles, limit) if exchange == "binance" else _okx_pages(n_candles, limit)
    transport = (_binance_transport if exchange == "binance" else _okx_transport)(pages, counter)
    market_symbol = "BTC/USDT"
    candles = gaps = 0
    spec = source_spec(exchange)
    budget = spec.max_requests_per_run
    # Where the time goes: wall time inside ccxt's fetch_ohlcv (request building, the requests session,
    # our adapter and SourceClient, the mock transport, JSON decoding, ccxt's parse) and inside its
    # parse_ohlcvs alone, measured by timing wrappers on the instance (two calls per page).
    timers = {"open_clients_incl_ccxt_import": 0.0, "ccxt_fetch_ohlcv": 0.0, "ccxt_parse_ohlcvs": 0.0}

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers[key] += time.perf_counter() - t
        return wrapper

    t0 = time.perf_counter()
    for i in range(n_symbols):
        # one client per 200 symbols, as the per-run request budget (sources.yaml) would otherwise stop it
        if i % 200 == 0:
            t_open = time.perf_counter()
            client = Exchanges(mode="replay").open(exchange, transport=transport, sleep=lambda _s: None)
            client.markets()
            client.ccxt.fetch_ohlcv = timed(client.ccxt.fetch_ohlcv, "ccxt_fetch_ohlcv")
            client.ccxt.parse_ohlcvs = timed(client.ccxt.parse_ohlcvs, "ccxt_parse_ohlcvs")
            timers["open_clients_incl_ccxt_import"] += time.perf_counter() - t_open
        result = client.closed_candles(Market(exchange, f"SYN{i}", market_symbol, "USDT"), START, end,
                                       now=end + pd.Timedelta(days=1))
        candles += len(result.candles)
        gaps += len(result.gaps)
    elapsed = time.perf_counter() - t0
    requests_per_symbol = counter[0] / n_symbols
    parse = timers["ccxt_parse_ohlcvs"]
    fetch_rest = timers["ccxt_fetch_ohlcv"] - parse
    project = elapsed - timers["ccxt_fetch_ohlcv"] - timers["open_clients_incl_ccxt_import"]
    return {
        "symbols": n_symbols, "days": days, "candles": candles, "gaps_found": gaps, "requests": counter[0],
        "requests_per_symbol": round(requests_per_symbol, 2), "page_limit": limit, "seconds": round(elapsed, 2),
        "candles_per_second": round(candles / elapsed), "goal_candles_per_second": 200_000,
        "goal_met": candles / elapsed >= 200_000,
        "seconds_by_part": {
            "ccxt_parse_ohlcvs": round(parse, 2),
            "ccxt_fetch_ohlcv_without_parse (request, session, SourceClient, transport, JSON)": round(fetch_rest, 2),
            "project_paging_open_candles_extras_gaps_frame": round(project, 2),
            "open_clients_incl_ccxt_import": round(timers["open_clients_incl_ccxt_import"], 2),
        },
        "share_by_part": {
            "ccxt_parse_ohlcvs": round(parse / elapsed, 3),
            "ccxt_fetch_ohlcv_without_parse": round(fetch_rest / elapsed, 3),
            "project": round(project / elapsed, 3),
            "open_clients_incl_ccxt_import": round(timers["open_clients_incl_ccxt_import"] / elapsed, 3),
        },
        "candles_per_second_if_ccxt_parse_were_free": round(candles / (elapsed - parse)),
        "requests_vs_per_run_budget": f"{counter[0]} requests vs max_requests_per_run {budget}"
                                      + (" (a single run of this backfill would exceed it)" if budget and counter[0] > budget
                                         else ""),
    }


def ccxt_parse_ceiling(repeat: int = 30) -> dict:
    """ccxt's own parse of already-decoded Binance pages (no HTTP, no frame): the ceiling of any path
    that lets ccxt parse."""
    pages = _binance_pages(10_000, 1000)
    client = Exchanges(mode="replay").open("binance", transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    client.markets()
    market = client.ccxt.market("BTC/USDT")
    decoded = [json.loads(body) for body in pages.values()]
    t0 = time.perf_counter()
    n = 0
    for _ in range(repeat):
        for rows in decoded:
            n += len(client.ccxt.parse_ohlcvs(rows, market, "1h"))
    elapsed = time.perf_counter() - t0
    return {"candles": n, "seconds": round(elapsed, 2), "candles_per_second": round(n / elapsed)}


def live_plan(n_symbols: int, days: int) -> dict:
    """Per exchange: the rate the SourceClient's spacing allows (resources/sources.yaml `min_interval_s`,
    times the clients of one exchange that send at once, CLIENTS_PER_EXCHANGE) against the published
    limit documented there (`published_limit`), and what the backfill costs at that rate."""
    catalog = load_exchange_catalog()
    plan = {}
    for name, config in catalog.exchanges.items():
        spec = source_spec(name)
        entry = request_plan(spec)
        planned = entry["planned_requests_per_minute"]
        per_symbol = -(-min(days * 24, config.history_candles or days * 24) // config.max_candles_per_request)
        requests = n_symbols * per_symbol
        entry.update({
            "backfill_requests": requests,
            "backfill_minutes_at_planned_rate": round(requests / planned, 1) if planned else None,
            "backfill_exceeds_max_requests_per_run": bool(spec.max_requests_per_run
                                                          and requests > spec.max_requests_per_run),
        })
        plan[name] = entry
    return plan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=320)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--okx-symbols", type=int, default=32, help="OKX pages are 100 candles: a 10th of the symbols")
    args = parser.parse_args()
    with measured("exchanges") as results:
        results.update({
            "data": "SYNTHETIC payloads shaped like the recorded binance/okx answers (not recordings)",
            "backfill_binance": run_backfill("binance", args.symbols, args.days),
            "backfill_okx": run_backfill("okx", args.okx_symbols, args.days),
            "ccxt_parse_only_binance": ccxt_parse_ceiling(),
            "live_plan": live_plan(args.symbols, args.days),
        })
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
