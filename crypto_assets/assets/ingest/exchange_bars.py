"""`exchange_candles`: closed exchange candles with volume, through ccxt; and how `ohlcv_bars`
takes them as its primary bars (`merge_exchange_bars`), plus the cross-exchange close check.

Which source wins a bar (documented in docs/exchanges.md):
1. A coin with at least one exchange candle of an interval in the run's window takes its bars of
   that interval (1h; 5min for the coins of `live_5m_symbols`, live hours only) from exchanges
   only: per (symbol, interval, bar_start), the candle of the first exchange in the coin's
   preference list (resources/exchanges.yaml) that has one. Its CoinGecko bars of the same
   interval are dropped (counted in metadata), so one series never mixes sources bar by bar.
2. Every other CoinGecko bar stays as it was (`method` coingecko_ohlc / resampled_observations):
   coins no configured exchange lists, and intervals without exchange candles (the 5-minute live
   bars of coins not in `live_5m_symbols`).
"""


from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.partitions import HOURLY
from crypto_assets.quality.plausibility import REFERENCE_LOOKBACK, implausible_prices
from crypto_assets.quality.quarantine import Rejects, numeric_problem
from crypto_assets.sources.binance_archive import SOURCE as ARCHIVE_SOURCE
from crypto_assets.sources.binance_archive import open_archive
from crypto_assets.sources.client import SourceError, redact_then_cut
from crypto_assets.sources.exchanges import (
    CANDLE_COLUMNS,
    CATALOG as EXCHANGES_CATALOG,
    INTERVAL_OF,
    TIMEFRAME_MS,
    Market,
    missing_ranges,
    repeated_text,
    ExchangeCatalog,
    Exchanges,
    ExchangeUnavailable,
    exchange_wide,
    load_exchange_catalog,
)
from crypto_assets.sources.parsing import SourceParseError
from crypto_assets.tables.prices import EXCHANGE_CANDLES, OHLCV_BARS
from crypto_assets.warehouse.failed_keys import FailedFetch, mark_failed, raise_if_nothing_fetched
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import rows_of_keys, utcnow

# A 4xx for one market (delisted, unknown, no recording) costs that market; anything else
# (retries exhausted on 429/5xx, network down) costs that exchange for this run.
_PER_MARKET_STATUSES = frozenset({400, 404, 422})
DIVERGENCE_BOUND = 0.01  # closes of one bar on two exchanges more than 1 % apart fail the check


# 5-minute candles (`live_5m_symbols`) are fetched for the live part of a run only: bars from the
# start of the hour before the current one (at :02, when automation runs, the hour that just
# closed) up to the window's end. A window that ends before that (a history backfill) fetches none.
LIVE_5M_TIMEFRAME = "5m"
ARCHIVE_INTERVALS = ("1m", "5m", "1h", "1d")  # timeframes whose klines Binance's archive publishes (among others)


def live_5m_span(start, end, now) -> "tuple[pd.Timestamp, pd.Timestamp] | None":
    """The part of [start, end) whose 5-minute candles a run fetches, or None (not a live window)."""
    now = pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tz is None else now
    live_from = now.floor("1h") - pd.Timedelta(hours=1)
    lo = max(pd.Timestamp(start), live_from)
    return (lo, pd.Timestamp(end)) if lo < min(pd.Timestamp(end), now) else None


def _fetch_exchange(exchanges: Exchanges, name: str, symbols: list[str], catalog: ExchangeCatalog,
                    start, end, log=None, live_5m=None, now=None) -> dict:
    """Everything one exchange gives for the run: candles per mapped coin, counts, gaps, failures;
    and, over `live_5m` (a span, see live_5m_span), the 5-minute candles of `live_5m_symbols`.
    `now`: what closes a candle (default: the time of each answer).

    A failure of one market (a 4xx for it, a ccxt error about it) costs that market (`failures`).
    Anything that concerns the exchange as a whole stops the exchange for the run (`error`, no
    further request to it): retries exhausted, a rate limit or outage ccxt reports (also in a 200
    body: `ExchangeUnavailable`), an answer that is not its API (`UnreadableAnswer`). Candle times
    the exchange answered twice with different values go into the frames with every version, for
    `_validate` to quarantine."""
    out = {"frames": [], "markets": {}, "open_dropped": 0, "requests": 0, "gaps": {}, "failures": {},
           "unlisted": [], "error": None, "live_5m": {"candles": 0, "open_dropped": 0, "symbols": []}}
    try:
        client = exchanges.open(name, log=log)
        mapping = client.map(symbols, catalog.quotes)
    except Exception as exc:  # noqa: BLE001 - ccxt raises its own hierarchy; the exchange is out
        out["error"] = redact_then_cut(f"{type(exc).__name__}: {exc}", None, 500)
        return out
    out["unlisted"] = sorted(set(symbols) - set(mapping))
    archive = _archive_for(exchanges, name, catalog, start, end, now, out)
    live_symbols = set(catalog.live_5m_symbols) if live_5m is not None and catalog.timeframe != LIVE_5M_TIMEFRAME \
        else set()
    for symbol, market in sorted(mapping.items()):
        out["markets"][symbol] = market.market
        fetches = [(catalog.timeframe, start, end, "")]
        if symbol in live_symbols:
            fetches.append((LIVE_5M_TIMEFRAME, *live_5m, f":{LIVE_5M_TIMEFRAME}"))
        for timeframe, first, last, suffix in fetches:
            if archive is not None and not suffix:
                try:
                    frame = archive_candles(archive, name, market, timeframe, first, last, now)
                except SourceError as exc:  # checksum mismatch, unreadable file: this market's candles fail
                    out["failures"][symbol] = redact_then_cut(exc, None, 300)
                    continue
                if frame is not None:  # else: no archive file for the window (not listed then): REST below
                    out["archive"]["markets"].append(symbol)
                    out["archive"]["candles"] += len(frame)
                    stop = min(_utc(last), _utc(now if now is not None else utcnow()))
                    gaps = missing_ranges(frame.bar_start, first, stop, pd.Timedelta(milliseconds=TIMEFRAME_MS[timeframe]))
                    if gaps:
                        out["gaps"][f"{name}:{symbol}"] = gaps
                    out["frames"].append(frame.assign(source=_archive_source(exchanges), interval=INTERVAL_OF[timeframe]))
                    continue
            try:
                result = client.closed_candles(market, first, last, timeframe, now=now)
            except SourceError as exc:
                if not isinstance(exc, ExchangeUnavailable) and (
                        isinstance(exc, SourceParseError) or exc.status in _PER_MARKET_STATUSES):
                    out["failures"][symbol + suffix] = redact_then_cut(exc, None, 300)
                    continue
                out["error"] = redact_then_cut(exc, None, 500)
                break
            except Exception as exc:  # noqa: BLE001 - a ccxt error on one market's answer (bad body)
                if exchange_wide(exc):  # rate limit, outage: the whole exchange, not this market
                    out["error"] = redact_then_cut(f"{name}: {symbol + suffix}: {type(exc).__name__}: {exc}", None, 500)
                    break
                out["failures"][symbol + suffix] = redact_then_cut(f"{type(exc).__name__}: {exc}", None, 300)
                continue
            if suffix:
                out["live_5m"]["candles"] += len(result.candles)
                out["live_5m"]["open_dropped"] += result.open_dropped
                out["live_5m"]["symbols"].append(symbol)
            else:
                out["open_dropped"] += result.open_dropped
            if result.gaps:
                out["gaps"][f"{name}:{symbol}{suffix}"] = result.gaps
            if len(result.candles):
                out["frames"].append(result.candles.assign(source=exchanges.provenance(name),
                                                           interval=INTERVAL_OF[timeframe]))
            if result.conflicts is not None and len(result.conflicts):  # quarantined by _validate
                out["frames"].append(result.conflicts.assign(source=exchanges.provenance(name),
                                                             interval=INTERVAL_OF[timeframe]))
        if out["error"]:
            break
    out["requests"] = client.client.requests_made
    if archive is not None:
        out["archive"].update(requests=archive.client.requests_made, files=len(archive.stats.downloaded),
                              cached=len(archive.stats.cached), missing_files=len(archive.stats.gaps),
                              cache_entries_damaged_and_refetched=archive.stats.cache_repaired[:20],
                              bytes=archive.stats.bytes_downloaded)
    return out


@cache
def _archive_config(path: str) -> dict:
    return (yaml.safe_load(Path(path).read_text()) or {}).get("archive") or {}


def _utc(value) -> pd.Timestamp:
    value = pd.Timestamp(value)
    return value.tz_convert("UTC") if value.tzinfo else value.tz_localize("UTC")


def _archive_source(exchanges: Exchanges) -> str:
    return exchanges.provenance(ARCHIVE_SOURCE)


def _archive_for(exchanges: Exchanges, name: str, catalog: ExchangeCatalog, start, end, now, out: dict):
    """Binance's public data archive for this exchange's candles when the window starts more than
    `archive.before_days` (resources/exchanges.yaml) before now and ends by today's midnight (the
    archive has closed days only), else None. A market the archive has no file for goes through REST
    as before; in replay only recorded archive files exist."""
    config = _archive_config(str(exchanges.catalog_path or EXCHANGES_CATALOG))
    if config.get("exchange") != name or catalog.timeframe not in ARCHIVE_INTERVALS:
        return None
    now = _utc(now if now is not None else utcnow())
    if _utc(start) >= now - pd.Timedelta(days=float(config.get("before_days", 30))) or _utc(end) > now.normalize():
        return None  # a recent window, or one reaching into today: REST
    out["archive"] = {"markets": [], "candles": 0}
    try:
        return open_archive(exchanges.mode, exchanges.replay_dir)
    except Exception as exc:  # noqa: BLE001 - no archive (e.g. a replay folder without its recordings): REST
        out["archive"]["unavailable"] = redact_then_cut(f"{type(exc).__name__}: {exc}", None, 300)
        return None


def archive_candles(archive, exchange: str, market: Market, timeframe: str, start, end, now) -> "pd.DataFrame | None":
    """Closed spot candles of `market` in [start, end) from the archive (CANDLE_COLUMNS), or None
    when the archive has no file for any part of the window."""
    frame = archive.klines(market.market.replace("/", ""), timeframe, start, end, now if now is not None else utcnow())
    if frame is None:
        return None
    # Built column by column without copies: the texts repeated, the numbers as the parsed arrays
    # (a year of a coin's 1h candles: ~1 ms instead of ~3.4 ms).
    n = len(frame)
    texts = {"exchange": exchange, "market": market.market, "symbol": market.symbol, "quote": market.quote}
    columns = {}
    for name in CANDLE_COLUMNS:
        if name in texts:
            columns[name] = repeated_text(texts[name], n)
        elif name == "bar_end":
            columns[name] = frame["bar_start"].array + pd.Timedelta(milliseconds=TIMEFRAME_MS[timeframe])
        else:
            columns[name] = frame[name].array
    return pd.DataFrame(columns, copy=False)


def collect_candles(exchanges: Exchanges, symbols: list[str], start, end, now=None, log=None,
                    catalog: "ExchangeCatalog | None" = None) -> tuple[pd.DataFrame, dict]:
    """Closed candles with bar_start in [start, end) from every configured exchange, one thread
    per exchange (each one's requests in sequence at its own spacing, resources/sources.yaml, so
    no exchange sees more than its budget), and the per-exchange results for the run metadata.
    `now` decides which part of the window is live (5-minute candles) and which candles are closed;
    default: the clock, and the time of each answer (tests and replays of a past hour pass it)."""
    catalog = catalog or exchanges.catalog()
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    span = live_5m_span(start, end, now if now is not None else utcnow()) if catalog.live_5m_symbols else None
    per_exchange: dict[str, list[str]] = {}
    for symbol in symbols:
        for name in catalog.preference_for(symbol):
            per_exchange.setdefault(name, []).append(symbol)
    with ThreadPoolExecutor(max_workers=max(1, len(per_exchange))) as pool:
        futures = {name: pool.submit(_fetch_exchange, exchanges, name, syms, catalog, start, end, log, span, now)
                   for name, syms in per_exchange.items()}
        results = {name: f.result() for name, f in futures.items()}
    frames = [frame for r in results.values() for frame in r["frames"]]
    columns = [*CANDLE_COLUMNS, "source", "interval"]
    candles = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return candles, {"results": results, "live_5m_span": span}


CONFLICTING_DUPLICATE = "conflicting duplicate candle: the exchange answered this candle time twice with different values"
_CANDLE_VALUES = ("market", "quote", "open", "high", "low", "close", "volume", "quote_volume", "trade_count")


def _validate(candles: pd.DataFrame, rejects: Rejects, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Bad candles go to quarantine with their reason, never into bars:

    - a candle time the exchange answered twice with different values (every version; identical
      repeats are collapsed to one);
    - unusable prices (`numeric_problem`: JSON numbers only, positive, finite), high/low not
      containing open and close, negative or non-finite volume, quote volume, trade count;
    - implausible prices: the rule of quality/plausibility.py (cap, step, robust median), one
      series per (symbol, interval) with ALL exchanges' candles together (their closes are one
      coin's price, so each exchange is cross-checked against the others of the same hours),
      open/high/low/close judged, the close joining the reference. `history`: stored candles
      before these (symbol, interval, bar_start, close), when the caller has them; without it the
      batch is its own reference (at least 3 candles of the coin within 24 h, else the cap only).
    """
    keys = ("exchange", "symbol", "bar_start")
    series = [c for c in ("exchange", "symbol", "interval", "bar_start") if c in candles.columns]
    repeated = candles[candles.duplicated(series, keep=False)]
    if len(repeated):
        identical = repeated.duplicated([*series, *(c for c in _CANDLE_VALUES if c in candles.columns)])
        candles = candles.drop(index=repeated.index[identical])
        candles = rejects.reject(candles, candles.duplicated(series, keep=False), CONFLICTING_DUPLICATE,
                                 key_cols=keys, time_col="bar_start")
    for col in ("open", "high", "low", "close"):
        problems = numeric_problem(candles[col])
        for reason in sorted(set(problems) - {""}):
            candles = rejects.reject(candles, problems.reindex(candles.index) == reason, f"{col}: {reason}",
                                     key_cols=keys, time_col="bar_start")
    bad_range = (candles.high < candles.low) | (candles.high < candles[["open", "close"]].max(axis=1)) | (
        candles.low > candles[["open", "close"]].min(axis=1))
    candles = rejects.reject(candles, bad_range, "high/low do not contain open and close", key_cols=keys,
                             time_col="bar_start")
    for col, what in (("volume", "volume"), ("quote_volume", "quote volume"), ("trade_count", "trade count")):
        if col not in candles.columns:
            continue
        problems = numeric_problem(candles[col], what, missing_ok=True, zero_ok=True)
        for reason in sorted(set(problems) - {""}):
            candles = rejects.reject(candles, problems.reindex(candles.index) == reason, reason, key_cols=keys,
                                     time_col="bar_start")
    judged = implausible_prices(candles, history, keys=[c for c in ("symbol", "interval") if c in candles.columns],
                                time="bar_start", price="close", judged=["open", "high", "low", "close"])
    bad = judged.reason != ""
    if bad.any():  # the quarantined record says what the candle was judged against
        flagged = candles.assign(reference_close=judged.reference_usd)
        for reason in sorted(set(judged.reason[bad])):
            flagged = rejects.reject(flagged, judged.reason.reindex(flagged.index) == reason, reason, key_cols=keys,
                                     time_col="bar_start")
        candles = candles.loc[flagged.index]
    return candles


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="ingest",
    pool="exchanges",
    kinds={"python", "sql"},
    description=(
        "Closed 1h candles with traded volume per (exchange, symbol) from binance, coinbase, kraken, okx and "
        "bybit through ccxt (public endpoints, no keys; exchanges and per-coin order in resources/exchanges.yaml), "
        "and in live runs closed 5-minute candles of the coins in `live_5m_symbols` (column `interval`). "
        "The open candle is dropped and counted; missing candles are listed per (exchange, symbol). An exchange "
        "that is down or blocked costs its own candles only (metadata `exchange_errors`), and its stored candles of the "
        "window stay (`keys_failed`); the run fails only when nothing could be fetched."
    ),
)
def exchange_candles(
    context: dg.AssetExecutionContext,
    coin_universe: pd.DataFrame,
    exchanges: Exchanges,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    catalog = exchanges.catalog()
    symbols = sorted(coin_universe.symbol.dropna().unique())
    candles, collected = collect_candles(exchanges, symbols, start, end, log=context.log.info, catalog=catalog)
    results, span = collected["results"], collected["live_5m_span"]
    rejects = Rejects("exchange_candles", "exchanges" if exchanges.mode == "live" else "replay:exchanges")
    # Stored closes of the day before: the plausibility reference of a coin with few candles here.
    history = warehouse.get().read(EXCHANGE_CANDLES, start - REFERENCE_LOOKBACK, start,
                                   columns=["symbol", "interval", "bar_start", "close"]) if len(candles) else None
    candles = _validate(candles, rejects, history) if len(candles) else candles
    candles = candles[(candles.bar_start >= start) & (candles.bar_start < end)]
    candles = candles.assign(ingested_at=utcnow())
    # Markets (or whole exchanges) whose fetch failed keep their stored candles (invariant 12).
    failed, expected = failed_candle_fetches(results, candles, catalog, symbols, span)
    raise_if_nothing_fetched("exchange_candles", expected, failed)
    # The window is replaced as a whole: where this run fetched no 5-minute candles (older hours,
    # a history backfill), the stored ones stay.
    kept_5m = _stored_5m(warehouse, start, span[0] if span else end)
    kept_5m = kept_5m[~rows_of_keys(kept_5m, [f.key for f in failed])]  # those stay through `keep` already
    if len(kept_5m):
        candles = pd.concat([candles, kept_5m[candles.columns]], ignore_index=True)
    rejects.write(warehouse.get(), start, end)
    # Figures of the whole run (a ranged backfill: its range), hence `run_`; each partition's own
    # row count is `dagster/row_count`.
    context.add_output_metadata({
        "partition": partition_label(context),
        "run_candles_by_exchange": dg.MetadataValue.json(candles.groupby("exchange").size().astype(int).to_dict()),
        "run_candles_by_interval": dg.MetadataValue.json(candles.groupby("interval").size().astype(int).to_dict()),
        "run_open_candles_dropped": dg.MetadataValue.json({n: r["open_dropped"] for n, r in results.items()}),
        "run_live_5m": dg.MetadataValue.json(_live_5m_meta(catalog, span, results, len(kept_5m))),
        "run_markets": dg.MetadataValue.json({n: r["markets"] for n, r in results.items()}),
        "run_not_listed": dg.MetadataValue.json({n: r["unlisted"] for n, r in results.items() if r["unlisted"]}),
        "run_gaps": dg.MetadataValue.json({k: v for r in results.values() for k, v in r["gaps"].items()}),
        "run_market_failures": dg.MetadataValue.json({n: r["failures"] for n, r in results.items() if r["failures"]}),
        "run_exchange_errors": dg.MetadataValue.json({n: r["error"] for n, r in results.items() if r["error"]}),
        "run_requests_by_exchange": dg.MetadataValue.json({n: r["requests"] for n, r in results.items()}),
        # Candles from Binance's public data archive (old windows; source binance_archive): markets, files, requests.
        "run_archive": dg.MetadataValue.json({n: r["archive"] for n, r in results.items() if r.get("archive")}),
        "run_rows_quarantined": len(rejects),
        "run_quarantine_by_reason": dg.MetadataValue.json(rejects.by_reason()),
        "run_symbols_covered": int(candles.symbol.nunique()),
    })
    return mark_failed(
        candles.sort_values(["exchange", "symbol", "interval", "bar_start"])[EXCHANGE_CANDLES.column_names], failed)


def failed_candle_fetches(results: dict, candles: pd.DataFrame, catalog: ExchangeCatalog, symbols: list[str],
                          span) -> tuple[list[FailedFetch], int]:
    """The (exchange, symbol, interval) fetches of the run that failed, and how many were planned.

    - a market's own failure: that market and interval;
    - an exchange that could not be opened: the whole exchange;
    - an exchange that failed part-way (retries exhausted, rate-limited): every planned fetch of it
      that brought no candle (the ones answered before the failure are replaced as usual).
    """
    live_symbols = set(catalog.live_5m_symbols) if span is not None and catalog.timeframe != LIVE_5M_TIMEFRAME \
        else set()
    fetched = set(zip(candles.exchange, candles.symbol, candles.interval)) if len(candles) else set()
    failed: list[FailedFetch] = []
    expected = 0
    for name, result in results.items():
        planned = [(symbol, INTERVAL_OF[catalog.timeframe]) for symbol in symbols
                   if name in catalog.preference_for(symbol) and symbol not in result["unlisted"]]
        planned += [(symbol, INTERVAL_OF[LIVE_5M_TIMEFRAME]) for symbol, _ in list(planned) if symbol in live_symbols]
        expected += max(1, len(planned))
        for market, reason in sorted(result["failures"].items()):
            symbol, _, timeframe = market.partition(":")
            failed.append(FailedFetch({"exchange": name, "symbol": symbol,
                                       "interval": INTERVAL_OF[timeframe or catalog.timeframe]}, f"{name}: {reason}"))
        if result["error"]:
            if not result["markets"]:  # the exchange never answered: all of it
                failed.append(FailedFetch({"exchange": name}, f"{name}: {result['error']}"))
                continue
            done = {(f.key["symbol"], f.key["interval"]) for f in failed if f.key.get("exchange") == name}
            failed += [FailedFetch({"exchange": name, "symbol": symbol, "interval": interval},
                                   f"{name}: not fetched after the exchange failed: {result['error']}")
                       for symbol, interval in planned
                       if (name, symbol, interval) not in fetched and (symbol, interval) not in done]
    return failed, expected


def _stored_5m(warehouse: WarehouseResource, start, end) -> pd.DataFrame:
    """Stored 5-minute exchange candles in [start, end) (none when the window is empty)."""
    if pd.Timestamp(end) <= pd.Timestamp(start):
        return pd.DataFrame(columns=EXCHANGE_CANDLES.column_names)
    return warehouse.get().read(EXCHANGE_CANDLES, start, end, filters={"interval": [INTERVAL_OF[LIVE_5M_TIMEFRAME]]})


def _live_5m_meta(catalog: ExchangeCatalog, span, results: dict, kept: int) -> dict:
    """What the run did about 5-minute candles, and why it fetched none when it did not."""
    if not catalog.live_5m_symbols:
        return {"fetched": False, "reason": "live_5m_symbols is empty (resources/exchanges.yaml)", "kept_stored": kept}
    if span is None:
        return {"fetched": False, "reason": "not a live window: it ends before the hour that just closed",
                "symbols": list(catalog.live_5m_symbols), "kept_stored": kept}
    return {"fetched": True, "from": span[0].isoformat(), "to": span[1].isoformat(),
            "symbols": list(catalog.live_5m_symbols), "kept_stored": kept,
            "by_exchange": {n: r["live_5m"] for n, r in results.items() if r["live_5m"]["symbols"]}}


def merge_exchange_bars(bars: pd.DataFrame, candles: "pd.DataFrame | None",
                        catalog: "ExchangeCatalog | None" = None) -> tuple[pd.DataFrame, dict]:
    """CoinGecko bars + exchange candles -> one row per (symbol, interval, bar_start); see the
    module docstring for which wins. Returns the bars (every OHLCV_BARS column) and metadata."""
    catalog = catalog or load_exchange_catalog()
    for col in ("exchange", "quote", "quote_volume", "trade_count"):
        if col not in bars.columns:
            bars = bars.assign(**{col: pd.NA if col in ("exchange", "quote") else float("nan")})
    if candles is None or candles.empty:
        return bars, {"bars_by_method": _by_method(bars), "exchange_bars_by_exchange": {}, "fallback_bars_replaced": 0}
    ranked = candles.assign(rank=[
        (catalog.preference_for(s).index(e) if e in catalog.preference_for(s) else len(catalog.exchanges))
        for s, e in zip(candles.symbol, candles.exchange)])
    best = (ranked.sort_values(["symbol", "interval", "bar_start", "rank", "exchange"])
            .drop_duplicates(["symbol", "interval", "bar_start"], keep="first"))
    exchange_bars = best.assign(method="exchange", n_observations=pd.NA).drop(columns=["rank", "market"])
    covered = set(zip(exchange_bars.symbol, exchange_bars.interval))
    replaced = pd.Series([(s, i) in covered for s, i in zip(bars.symbol, bars.interval)], index=bars.index,
                         dtype=bool)
    kept = bars[~replaced]
    merged = pd.concat([f for f in (kept, exchange_bars[[c for c in OHLCV_BARS.column_names]]) if len(f)],
                       ignore_index=True)
    return merged, {
        "bars_by_method": _by_method(merged),
        "exchange_bars_by_exchange": exchange_bars.groupby("exchange").size().astype(int).to_dict(),
        "fallback_bars_replaced": int(replaced.sum()),
    }


def _by_method(bars: pd.DataFrame) -> dict:
    return bars.groupby("method").size().astype(int).to_dict() if len(bars) else {}


def close_divergence(candles: pd.DataFrame, bound: float = DIVERGENCE_BOUND) -> pd.DataFrame:
    """Per (symbol, interval, bar_start) seen on two or more exchanges: the spread of closes
    (max/min - 1) where it exceeds `bound`. Quotes differ (USDT vs USD), so the bound is wider
    than a stablecoin's usual deviation from its peg."""
    if candles.empty:
        return pd.DataFrame(columns=["symbol", "interval", "bar_start", "exchanges", "spread"])
    grouped = candles.groupby(["symbol", "interval", "bar_start"])
    stats = grouped.close.agg(["min", "max", "count"]).reset_index()
    stats["spread"] = stats["max"] / stats["min"] - 1
    names = grouped.exchange.agg(lambda s: ",".join(sorted(s))).reset_index(drop=True)
    stats["exchanges"] = names.values
    return stats[(stats["count"] >= 2) & (stats.spread > bound)][
        ["symbol", "interval", "bar_start", "exchanges", "spread"]]


def divergence_result(candles: pd.DataFrame, bound: float = DIVERGENCE_BOUND) -> dg.AssetCheckResult:
    """The `closes_agree_across_exchanges` check (checks/data_checks.py) on the candles of its window."""
    diverging = close_divergence(candles, bound)
    shown = diverging.head(50).assign(bar_start=lambda f: f.bar_start.astype(str)).to_dict("records")
    return dg.AssetCheckResult(
        passed=diverging.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(diverging)} bars with closes more than {bound:.0%} apart across exchanges",
        metadata={"diverging_bars": len(diverging), "examples": dg.MetadataValue.json(shown), "bound": bound},
    )


ASSETS = [exchange_candles]
