"""`derivatives_metrics`: perpetual-swap funding, open interest, mark/index price and basis.

From binance, bybit and okx (resources/derivatives.yaml) through ccxt and the project's
`SourceClient` (crypto_assets/sources/derivatives.py). Per run:
- live: settled funding rates and hourly open interest in the run's window (history), plus the
  current funding/open-interest snapshot when the window reaches the present;
- replay: the recorded current snapshots (bybit funding 2024-11-04 14:21 UTC, bybit open interest
  2025-02-16 17:00, okx open interest 2024-10-12 10:18). No recording of funding or open-interest
  HISTORY exists, so windows without a recorded snapshot land empty, and `empty_reason` says why.
- binance history from its public data archive (crypto_assets/sources/binance_archive.py): settled
  funding rates and daily open interest, in replay (real BTCUSDT funding files of April/May 2021 are
  recorded) and for windows starting more than `archive.before_days` (resources/derivatives.yaml)
  before now and ending by today's midnight; binance's REST open-interest history is then not asked
  for. The archive publishes funding in MONTHLY files only: the part of the window they cannot cover
  (the current month, and the previous one while its file is not published) takes binance's REST
  funding history, asked for exactly that part (live; `run_funding_from_rest`). A file the archive
  lacks is a gap (`run_archive_gaps`), not a failure.
Rows are kept when `observed_at` is in the run's window; others are listed, not stored.
An exchange that is down or blocked costs its own rows (`run_failures`), never the run, and the
rows it has stored for the window stay (`keys_failed`); a run in which nothing could be fetched fails.
"""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.partitions import HOURLY
from crypto_assets.sources.binance_archive import SOURCE as ARCHIVE_SOURCE
from crypto_assets.sources.binance_archive import funding_path, month_start, open_archive
from crypto_assets.sources.derivatives import (
    ARCHIVE_KINDS,
    HISTORY_KINDS,
    NO_HISTORY_RECORDING,
    archive_history,
    DerivativesCatalog,
    fetch_metrics,
    frame_of,
    load_derivatives_catalog,
    map_swaps,
    now_utc,
    open_derivatives,
)
from crypto_assets.sources.client import redact_then_cut
from crypto_assets.sources.exchanges import Exchanges
from crypto_assets.tables.derivatives import DERIVATIVES_METRICS
from crypto_assets.warehouse.failed_keys import FailedFetch, failed_fetches, mark_failed, raise_if_nothing_fetched
from crypto_assets.warehouse.store import utcnow

# The current snapshot is taken when the run's window ends at most this long before now
# (automation runs the last two hourly partitions shortly after each hour).
SNAPSHOT_REACH = pd.Timedelta(hours=2)


def _one_exchange(exchanges: Exchanges, name: str, symbols: list[str], catalog: DerivativesCatalog, start, end,
                  snapshot: bool, history: bool, log=None, history_kinds: tuple[str, ...] = HISTORY_KINDS,
                  history_start: dict | None = None, client_kwargs: dict | None = None) -> dict:
    out = {"rows": [], "markets": {}, "unlisted": [], "failures": {}, "requests": 0, "error": None, "attempted": 0}
    try:
        client = open_derivatives(exchanges, name, catalog, log=log, **(client_kwargs or {}))
        markets = map_swaps(client.markets(), name, symbols, catalog.settle)
    except Exception as exc:  # noqa: BLE001 - ccxt's own hierarchy or SourceError: this exchange is out
        out["error"] = redact_then_cut(f"{type(exc).__name__}: {exc}", None, 500)
        return out
    out["unlisted"] = sorted(set(symbols) - set(markets))
    result = fetch_metrics(client, markets, start, end, snapshot=snapshot, history=history,
                           history_limit=catalog.history_limit.get(name, 100), max_pages=catalog.max_history_pages,
                           history_kinds=history_kinds, history_start=history_start)
    out.update(rows=result.rows, markets=result.markets, failures=result.failures, requests=result.requests,
               attempted=result.attempted, error=result.stopped)
    return out


def archive_exchange_for(catalog: DerivativesCatalog, mode: str, start, end, now) -> str | None:
    """The exchange whose history this window takes from Binance's public data archive, or None: in replay
    (the recorded archive files), and in live mode for a window starting more than `archive.before_days`
    before now that ends by today's midnight (the archive has closed days only: a window reaching into
    today stays on REST as a whole)."""
    if catalog.archive_exchange not in catalog.exchanges:
        return None
    now = pd.Timestamp(now)
    old = pd.Timestamp(start) < now - pd.Timedelta(days=catalog.archive_before_days)
    return catalog.archive_exchange if mode == "replay" or (old and pd.Timestamp(end) <= now.normalize()) else None


def collect(exchanges: Exchanges, symbols: list[str], start, end, now=None, log=None,
            catalog: "DerivativesCatalog | None" = None,
            client_kwargs: dict[str, dict] | None = None) -> tuple[pd.DataFrame, dict]:
    """Rows with observed_at in [start, end) from every configured exchange, and run metadata.
    `client_kwargs`: extra SourceClient arguments per source (an exchange's name or binance_archive);
    tests pass a scripted `transport=` and `sleep=`."""
    catalog = catalog or load_derivatives_catalog()
    client_kwargs = client_kwargs or {}
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    now = pd.Timestamp(now or now_utc())
    replay = exchanges.mode == "replay"
    snapshot = replay or end >= now - SNAPSHOT_REACH
    history = not replay
    archived = archive_exchange_for(catalog, exchanges.mode, start, end, now)
    with ThreadPoolExecutor(max_workers=max(1, len(catalog.exchanges))) as pool:
        futures = {name: pool.submit(_one_exchange, exchanges, name, symbols, catalog, start, end, snapshot, history,
                                     log, client_kwargs=client_kwargs.get(name))
                   for name in catalog.exchanges if name != archived}
        # The archived exchange: its archive first (alongside the other exchanges), then its REST calls, whose
        # funding history covers exactly the part of the window the archive's monthly funding files could not.
        archive_meta, archive_rows, archive_failed, archive_attempted, rest_funding = _from_archive(
            exchanges, archived, symbols, catalog, start, end, now, log, client_kwargs.get(ARCHIVE_SOURCE))
        if archived:  # replay: no REST history is replayed, so the REST part is not asked
            futures[archived] = pool.submit(
                _one_exchange, exchanges, archived, symbols, catalog, start, end, snapshot,
                history and bool(rest_funding), log, history_kinds=("funding_history",), history_start=rest_funding,
                client_kwargs=client_kwargs.get(archived))
        results = {name: futures[name].result() for name in catalog.exchanges}
    frame = frame_of([row for r in results.values() for row in r["rows"]] + archive_rows)
    inside = (frame.observed_at >= start) & (frame.observed_at < end)
    outside = frame[~inside]
    frame = frame[inside].drop_duplicates(["exchange", "symbol", "kind", "observed_at"], keep="last")
    if archived and "run_archive" in archive_meta:
        # Live: the part asked from REST (markets binance lists); replay: the part nobody covered.
        part = rest_funding if replay else {s: t for s, t in rest_funding.items() if s in results[archived]["markets"]}
        archive_meta = _rest_part_meta(archive_meta, part, end, now, catalog.settle[0], replay)
        origin = came_from_archive(frame, archive_meta)
        funding = (frame.exchange == archived) & (frame.kind == "funding_history")
        archive_meta["run_archive"]["funding_history_rows"] = {"archive": int((funding & origin).sum()),
                                                               "rest": int((funding & ~origin).sum())}
    meta = {
        "run_rows_by_exchange_kind": {f"{e}:{k}": int(n) for (e, k), n in frame.groupby(["exchange", "kind"]).size().items()},
        "run_markets": {n: r["markets"] for n, r in results.items()},
        "run_not_listed": {n: r["unlisted"] for n, r in results.items() if r["unlisted"]},
        "run_failures": {n: r["failures"] for n, r in results.items() if r["failures"]},
        "run_exchange_errors": {n: r["error"] for n, r in results.items() if r["error"]},
        "run_requests_by_exchange": {n: r["requests"] for n, r in results.items()},
        "run_outside_window": [f"{r.exchange}:{r.symbol}:{r.kind}@{r.observed_at.isoformat()}"
                               for r in outside.itertuples()][:50],
        "history": NO_HISTORY_RECORDING if replay else "live: settled funding rates and hourly open interest",
        **({"archive_history": f"{archived}: settled funding rates of whole months before the current one (monthly "
                               "files: funding is published monthly only) and daily open interest (daily metrics "
                               "files) from its public data archive (data.binance.vision); funding of the rest of "
                               "the window (the current month, and the previous one while its file is not "
                               "published) from its REST funding history (run_funding_from_rest); its REST "
                               "open-interest history is not asked"} if archived else {}),
        **archive_meta,
        "snapshot": ("taken" if snapshot else f"not taken: the window ended more than {SNAPSHOT_REACH} before now"),
    }
    if frame.empty:
        reasons = []
        if archived:
            reasons.append(f"{archived}'s public data archive has no file for this window (run_archive_gaps)")
        if replay:
            reasons.append(NO_HISTORY_RECORDING)
            reasons.append("the recorded current snapshots fall outside this window" if len(outside)
                           else "no recorded snapshot answered")
        else:
            reasons.append("no exchange gave a figure in this window (see run_failures / run_exchange_errors)")
        meta["empty_reason"] = "; ".join(reasons)
    failed = failed_metric_fetches(results) + archive_failed
    raise_if_nothing_fetched("derivatives_metrics", sum(_planned(r) for r in results.values()) + archive_attempted,
                             failed)
    return mark_failed(frame, failed), meta


def _from_archive(exchanges: Exchanges, exchange: str | None, symbols: list[str], catalog: DerivativesCatalog,
                  start, end, now, log=None, client_kwargs: dict | None = None
                  ) -> tuple[dict, list[dict], list[FailedFetch], int, dict]:
    """(metadata, rows, failed keys, keys attempted, symbol -> start of the part of the window whose
    funding the archive could not cover) of the archive path; nothing when it is off."""
    if exchange is None:
        return {}, [], [], 0, {}
    try:
        archive = open_archive(exchanges.mode, exchanges.replay_dir, log=log, **(client_kwargs or {}))
        result = archive_history(archive, exchange, symbols, catalog.settle[0], start, end, now)
    except Exception as exc:  # noqa: BLE001 - the archive could not be reached at all: every key of it failed
        reason = redact_then_cut(f"{type(exc).__name__}: {exc}", None, 300)
        failed = [FailedFetch({"exchange": exchange, "symbol": s, "kind": k}, f"{exchange} archive: {reason}")
                  for s in symbols for k in ARCHIVE_KINDS]
        return {"run_archive_error": reason}, [], failed, len(failed), {}
    failed = []
    for symbol_kind, reason in sorted(result.failures.items()):
        symbol, _, kind = symbol_kind.partition(":")
        failed.append(FailedFetch({"exchange": exchange, "symbol": symbol, "kind": kind}, f"{exchange} archive: {reason}"))
    stats = archive.stats
    meta = {
        "run_archive": {"exchange": exchange, "files_downloaded": len(stats.downloaded),
                        "files_from_cache": len(stats.cached), "bytes_downloaded": stats.bytes_downloaded,
                        "requests": result.requests, "gaps": len(stats.gaps), "cache": str(archive.cache_dir),
                        "cache_entries_damaged_and_refetched": stats.cache_repaired[:20]},
        # A file the archive does not have (symbol not listed then, or not published yet): a gap, not a failure.
        "run_archive_gaps": [p.rsplit("/", 1)[-1] for p in stats.gaps],
    }
    return meta, result.rows, failed, result.attempted, result.rest_funding


def _rest_part_meta(meta: dict, part: dict, end, now, settle: str, replay: bool) -> dict:
    """The archive's metadata with the part of the window whose funding its monthly files could not
    cover (symbol -> [from, window end)): asked from the REST history (live, `run_funding_from_rest`) or,
    in replay, not covered (`run_funding_not_covered`). A missing monthly file whose month REST was asked
    for is no gap: it moves from `run_archive_gaps` to `run_archive_gaps_taken_from_rest`."""
    meta = dict(meta)
    span = {s: [pd.Timestamp(t).isoformat(), pd.Timestamp(end).isoformat()] for s, t in sorted(part.items())}
    if span:
        meta["run_funding_not_covered" if replay else "run_funding_from_rest"] = span
    taken = set() if replay else {funding_path(f"{s.upper()}{settle.upper()}", f"{t:%Y-%m}").rsplit("/", 1)[-1]
                                  for s, t in part.items() if t < month_start(now)}  # the previous month's file
    gaps = meta["run_archive_gaps"]
    real = [g for g in gaps if g not in taken]
    meta["run_archive_gaps"] = real[:100]
    if len(real) < len(gaps):
        meta["run_archive_gaps_taken_from_rest"] = [g for g in gaps if g in taken][:100]
    meta["run_archive"] = {**meta["run_archive"], "gaps": len(real)}
    return meta


def came_from_archive(frame: pd.DataFrame, meta: dict) -> pd.Series:
    """Which rows of `collect`'s frame came from the public data archive: the archived exchange's
    daily open interest, and its funding history except the part asked from REST (run_funding_from_rest)."""
    archived = (meta.get("run_archive") or {}).get("exchange")
    ours = (frame.exchange == archived) & frame.kind.isin(ARCHIVE_KINDS)
    rest_from = {s: pd.Timestamp(span[0]) for s, span in (meta.get("run_funding_from_rest") or {}).items()}
    if rest_from:
        since = pd.to_datetime(frame.symbol.map(rest_from), utc=True)
        ours &= ~((frame.kind == "funding_history") & since.notna() & (frame.observed_at >= since))
    return ours


def row_sources(frame: pd.DataFrame, meta: dict, exchanges: Exchanges) -> list[str]:
    """The `source` of each row: binance_archive for what came from the archive, else the exchange."""
    archive_source = exchanges.provenance(ARCHIVE_SOURCE)
    archived = came_from_archive(frame, meta)
    return [archive_source if a else exchanges.provenance(e) for e, a in zip(frame.exchange, archived)]


NOT_OFFERED = "not offered by ccxt"  # a kind the exchange has no endpoint for: never fetched, nothing to keep


def _planned(result: dict) -> int:
    """(symbol, kind) fetches an exchange was to make this run (1 for an exchange never opened)."""
    if result["error"] and not result["failures"]:
        return 1
    return result["attempted"] + sum(": not asked: " in reason for reason in result["failures"].values())


def failed_metric_fetches(results: dict) -> list[FailedFetch]:
    """(exchange, symbol, kind) fetches that failed, or the whole exchange when it could not be opened."""
    failed = []
    for name, result in results.items():
        if result["error"] and not result["failures"]:  # never opened: all of it
            failed.append(FailedFetch({"exchange": name}, f"{name}: {result['error']}"))
            continue
        for market_kind, reason in sorted(result["failures"].items()):
            if NOT_OFFERED in reason:
                continue
            symbol, _, kind = market_kind.partition(":")
            failed.append(FailedFetch({"exchange": name, "symbol": symbol, "kind": kind}, f"{name}: {reason}"))
    return failed


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="ingest",
    pool="exchanges",
    kinds={"python", "sql"},
    description=(
        "Perpetual-swap funding rates, open interest, mark/index price and basis (mark / index - 1) per "
        "(exchange, symbol) from binance, bybit and okx through ccxt (public endpoints, no keys; "
        "resources/derivatives.yaml). Real figures only: what an exchange does not give is empty. Each row has "
        "`available_at`, when the figure became known; ml_features joins it as-of. Binance's settled funding "
        "rates and daily open interest of old windows (and in replay) come from its public data archive "
        "(checksum-verified files, source binance_archive; missing files listed in run_archive_gaps); funding is "
        "published there in monthly files only, so the current month's settlements come from binance's REST "
        "funding history (run_funding_from_rest). In replay "
        "the ccxt path serves only the recorded current snapshots; windows without any figure are empty and "
        "the metadata `empty_reason` says why."
    ),
)
def derivatives_metrics(
    context: dg.AssetExecutionContext,
    coin_universe: pd.DataFrame,
    exchanges: Exchanges,
) -> pd.DataFrame:
    window = window_of(context)
    symbols = sorted(coin_universe.symbol.dropna().unique())
    frame, meta = collect(exchanges, symbols, window.start, window.end, log=context.log.info)
    failed = failed_fetches(frame)
    frame = frame.assign(source=row_sources(frame, meta, exchanges), ingested_at=utcnow())
    context.add_output_metadata({
        "partition": partition_label(context),
        **{k: (dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v) for k, v in meta.items()},
        "run_symbols_covered": int(frame.symbol.nunique()),
    })
    return mark_failed(frame.sort_values(["exchange", "symbol", "kind", "observed_at"])[DERIVATIVES_METRICS.column_names],
                       failed)


ASSETS = [derivatives_metrics]
