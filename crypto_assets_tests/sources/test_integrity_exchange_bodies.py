"""Issue 19, item 6: an exchange answer that is no candle answer is an error, never "no candles".

Binance, Kraken, OKX and Bybit each answer a candle request with status 200 and:
- `truncated`: their RECORDED body (ccxt's static test case, data/exchanges/SOURCES.md) cut in the middle;
- `empty`: no body at all;
- `html`: an HTML page (CONSTRUCTED: what a block or maintenance page looks like);
- `rate_limit`: the exchange's documented rate-limit body (CONSTRUCTED from each exchange's API docs:
  Binance code -1003, OKX code 50011, Bybit retCode 10006, Kraken EAPI:Rate limit exceeded), which
  ccxt maps to RateLimitExceeded / DDoSProtection.
Served through the replay transport (httpx.MockTransport) with a recorded exchange beside it. The
exchange must be reported in the exchange errors, naming it and the URL; no further request may go
to it in the run; what is stored for it must stay as it was. Candle times answered twice with
different values are quarantined, never decided silently.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from crypto_assets.assets.ingest.exchange_bars import CONFLICTING_DUPLICATE, collect_candles, exchange_candles
from crypto_assets.assets.reference import coin_universe
from crypto_assets.loading import load
from crypto_assets.sources.coingecko import CoinGecko
from crypto_assets.sources.exchanges import Exchanges, Market
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource, get_warehouse
from crypto_assets_tests.paths import DATA, REPO

ROOT = REPO
RECORDED = DATA / "exchanges"
REPLAY = ROOT / "resources" / "replay"
UTC = "UTC"
T16 = pd.Timestamp("2024-01-30 16:00", tz=UTC)
WINDOW = (T16, T16 + pd.Timedelta(hours=3))
NOW = T16 + pd.Timedelta(hours=3, minutes=30)

EXCHANGES = ["binance", "kraken", "okx", "bybit"]
CASES = {"binance": "binance__fetchOHLCV__0_spot_1h", "kraken": "kraken__fetchOHLCV__0",
         "okx": "okx__fetchOHLCV__0_spot_1h", "bybit": "bybit__fetchOHLCV__0_swap_1h"}
CANDLE_PATH = {"binance": "/api/v3/klines", "kraken": "/0/public/OHLC", "okx": "/api/v5/market/*candles",
               "bybit": "/v5/market/kline"}
URL = {"binance": "https://api.binance.com/api/v3/klines?", "kraken": "https://api.kraken.com/0/public/OHLC?",
       "okx": "https://www.okx.com/api/v5/market/history-candles?", "bybit": "https://api.bybit.com/v5/market/kline?"}
RATE_LIMITED = {
    "binance": {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per 1 "
                                      "MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."},
    "okx": {"code": "50011", "msg": "Too Many Requests", "data": []},
    "bybit": {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}, "time": 1706630400000},
    "kraken": {"error": ["EAPI:Rate limit exceeded"]},
}
HTML = (b"<!DOCTYPE html><html><head><title>Access denied</title></head><body><h1>Access denied</h1>"
        b"<p>The request was blocked. Ray ID: 0123456789abcdef</p></body></html>")
# Spot BTC/USDT and ETH/USDT (ccxt's market structure, minimal), so a second market is there to be asked.
MARKET_IDS = {"binance": ("BTCUSDT", "ETHUSDT"), "kraken": ("XBTUSDT", "ETHUSDT"), "okx": ("BTC-USDT", "ETH-USDT"),
              "bybit": ("BTCUSDT", "ETHUSDT")}


def _body(exchange: str, kind: str) -> tuple[bytes, str]:
    if kind == "truncated":
        text = json.dumps(json.loads((RECORDED / f"{CASES[exchange]}.json").read_text())["httpResponse"])
        return text[: len(text) // 2].encode(), "application/json"
    if kind == "empty":
        return b"", "application/json"
    if kind == "html":
        return HTML, "text/html; charset=utf-8"
    return json.dumps(RATE_LIMITED[exchange]).encode(), "application/json"


def _markets(exchange: str) -> list[dict]:
    out = []
    for base, market_id in zip(("BTC", "ETH"), MARKET_IDS[exchange]):
        market = {"id": market_id, "symbol": f"{base}/USDT", "base": base, "quote": "USDT", "baseId": base,
                  "quoteId": "USDT", "type": "spot", "spot": True, "margin": False, "swap": False, "future": False,
                  "option": False, "contract": False, "active": True}
        if exchange == "kraken":
            market["altname"] = market_id
        out.append(market)
    return out


def _replay(tmp_path: Path, exchange: str, kind: str, partners: tuple[str, ...]) -> Exchanges:
    """A replay folder: `exchange` answers every candle request with the `kind` body (status 200)
    and lists BTC and ETH; `partners` serve their recordings. Catalog: `exchange` first, then them."""
    root = tmp_path / "replay"
    for name in partners:
        shutil.copytree(REPLAY / name, root / name)
    folder = root / exchange
    folder.mkdir(parents=True)
    body, content_type = _body(exchange, kind)
    (folder / "answer.bin").write_bytes(body)
    (folder / "catalog.yaml").write_text(yaml.safe_dump({"routes": [
        {"path": CANDLE_PATH[exchange], "file": "answer.bin", "status": 200, "content_type": content_type}]}))
    (folder / "markets.yaml").write_text(yaml.safe_dump({"markets": _markets(exchange)}))
    catalog = tmp_path / "exchanges.yaml"
    text = (ROOT / "resources" / "exchanges.yaml").read_text()
    assert "preference: [binance, coinbase, kraken, okx, bybit]" in text
    catalog.write_text(text.replace("preference: [binance, coinbase, kraken, okx, bybit]",
                                    f"preference: [{', '.join((exchange, *partners))}]"))
    return Exchanges(mode="replay", replay_dir=str(root), catalog_path=str(catalog))


@pytest.mark.parametrize("kind", ["truncated", "empty", "html", "rate_limit"])
@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_bad_answer_is_an_exchange_error_and_the_exchange_is_asked_nothing_more(tmp_path, exchange, kind):
    """Before: truncated, empty and HTML bodies gave zero candles and a gap, with no error anywhere;
    the rate-limit body became a per-market failure and the exchange was asked for ETH next."""
    partner = "kraken" if exchange == "binance" else "binance"
    exchanges = _replay(tmp_path, exchange, kind, (partner,))
    candles, meta = collect_candles(exchanges, ["BTC", "ETH"], *WINDOW, now=NOW)
    result = meta["results"][exchange]
    error = result["error"] or ""
    assert error.startswith(f"{exchange}: BTC/USDT 1h: ")  # names the exchange and the market
    assert URL[exchange] in error  # and the URL it asked
    if kind == "rate_limit":
        assert "RateLimitExceeded" in error or "DDoSProtection" in error
    else:
        assert "the answer is" in error
    assert result["requests"] == 1  # nothing more after the first bad answer: ETH was not asked
    assert result["failures"] == {} and result["gaps"] == {}  # not buried as a market failure or a gap
    assert exchange not in set(candles.exchange)
    # the other exchange is not affected
    assert meta["results"][partner]["error"] is None
    assert len(candles[candles.exchange == partner]) == 3


def _materialize(url: str, exchanges: Exchanges, selection: list[str]):
    resources = {"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                 "coingecko": CoinGecko(mode="replay"), "exchanges": exchanges}
    tags = {"dagster/asset_partition_range_start": "2024-01-30-16:00",
            "dagster/asset_partition_range_end": "2024-01-30-18:00"}
    return dg.materialize([coin_universe, exchange_candles], selection=selection, resources=resources,
                          tags=tags if selection != ["coin_universe"] else {})


@pytest.mark.parametrize("kind", ["html", "rate_limit"])
def test_the_stored_candles_of_an_exchange_that_answers_badly_stay_as_they_were(sqlite_url, tmp_path, kind):
    """The recorded window lands; a second run of it gets Binance's bad answer (Kraken and OKX
    answer as recorded). Before: for the HTML page Binance's stored candles were deleted (zero
    candles, no error); for the rate limit Binance was asked twice and reported as market failures."""
    get_warehouse.cache_clear()
    assert _materialize(sqlite_url, Exchanges(mode="replay"), ["coin_universe"]).success
    assert _materialize(sqlite_url, Exchanges(mode="replay"), ["exchange_candles"]).success
    before = load("exchange_candles", warehouse_url=sqlite_url).sort_values(["exchange", "bar_start"])
    assert list(before.groupby("exchange").size().items()) == [("binance", 3), ("kraken", 3), ("okx", 3)]

    exchanges = _replay(tmp_path, "binance", kind, ("kraken", "okx"))
    result = _materialize(sqlite_url, exchanges, ["exchange_candles"])
    assert result.success
    meta = result.asset_materializations_for_node("exchange_candles")[0].metadata
    assert "binance" in meta["run_exchange_errors"].value
    assert URL["binance"] in meta["run_exchange_errors"].value["binance"]
    assert "binance" not in meta["run_market_failures"].value
    assert meta["run_requests_by_exchange"].value["binance"] == 1
    after = load("exchange_candles", warehouse_url=sqlite_url).sort_values(["exchange", "bar_start"])
    pd.testing.assert_frame_equal(after[after.exchange == "binance"].reset_index(drop=True),
                                  before[before.exchange == "binance"].reset_index(drop=True))
    assert len(after[after.exchange == "kraken"]) == 3 and len(after[after.exchange == "okx"]) == 3
    get_warehouse.cache_clear()


def _binance_answer(tmp_path: Path, rows: list) -> Exchanges:
    """The recorded replay of every exchange, with Binance's klines answer replaced by `rows`."""
    root = tmp_path / "replay"
    shutil.copytree(REPLAY, root)
    (root / "binance" / "fetchOHLCV__0_spot_1h.json").write_text(json.dumps(rows))
    return Exchanges(mode="replay", replay_dir=str(root))


def test_conflicting_duplicate_candles_are_quarantined_and_identical_ones_collapse(sqlite_url, tmp_path):
    """Binance's recorded klines with 16:00 answered twice identically and 17:00 answered twice with
    another close (inside its high-low range). Before: 17:00 was stored with the last close, silently."""
    rows = json.loads(json.dumps(json.loads((RECORDED / f"{CASES['binance']}.json").read_text())["httpResponse"]))
    other = [*rows[1][:4], "43400.00000000", *rows[1][5:]]
    exchanges = _binance_answer(tmp_path, [rows[0], rows[0], other, rows[1], rows[2]])

    get_warehouse.cache_clear()
    assert _materialize(sqlite_url, Exchanges(mode="replay"), ["coin_universe"]).success
    assert _materialize(sqlite_url, exchanges, ["exchange_candles"]).success
    stored = load("exchange_candles", warehouse_url=sqlite_url)
    binance = stored[stored.exchange == "binance"].sort_values("bar_start")
    assert list(binance.bar_start) == [T16, T16 + pd.Timedelta(hours=2)]  # 16:00 once, 17:00 in quarantine
    quarantine = load("quarantine", warehouse_url=sqlite_url)
    assert list(quarantine.reason) == [CONFLICTING_DUPLICATE] * 2  # both versions, with their values
    closes = sorted(json.loads(r)["close"] for r in quarantine.record)
    assert closes == sorted([43400.0, float(rows[1][4])])
    get_warehouse.cache_clear()
    # The client itself: one row per time, and the other version of 17:00 listed (the identical 16:00 is not).
    client = exchanges.open("binance")
    result = client.closed_candles(Market("binance", "BTC", "BTC/USDT", "USDT"), *WINDOW)
    assert len(result.candles) == 3 and list(result.conflicts.close) == [43400.0]
