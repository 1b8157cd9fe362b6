"""Price ingestion: `price_observations` (spot prices) and `ohlcv_bars` (candles)."""


from datetime import datetime
from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.partitions import HOURLY
from crypto_assets.quality.plausibility import REFERENCE_LOOKBACK, implausible_prices
from crypto_assets.quality.quarantine import Rejects, numeric_problem
from crypto_assets.sources.client import SourceBudgetExceeded, SourceError
from crypto_assets.sources.parsing import SourceParseError
from crypto_assets.sources.coingecko import (
    MARKET_CHART_HOURLY_MAX_RANGE,
    CoinGecko,
    market_chart_requests,
    ohlc_days_covering,
    parse_market_chart,
    parse_markets,
    parse_ohlc,
)
from crypto_assets.assets.ingest.exchange_bars import merge_exchange_bars
from crypto_assets.tables.prices import EXCHANGE_CANDLES, OHLCV_BARS, PRICE_OBSERVATIONS
from crypto_assets.warehouse.failed_keys import FailedFetch, mark_failed, raise_if_nothing_fetched
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

# A 4xx for one coin (unknown id, no recording) costs that coin only; anything else
# (retries exhausted on 429/5xx, network down) means the source is down: fail the run.
_PER_SYMBOL_STATUSES = frozenset({400, 404, 422})


def _per_symbol_failure(exc: SourceError) -> bool:
    """A 4xx for the coin, or a body for that coin that cannot be parsed (the error names the
    coin and the URL): that coin is missing from the run, the others land."""
    return isinstance(exc, SourceParseError) or exc.status in _PER_SYMBOL_STATUSES


class PriceObservationsConfig(dg.Config):
    mode: Literal["auto", "snapshot", "history"] = "auto"
    """auto: `snapshot` when the window contains the current time (live 5-minute runs of the
    open hour), else `history` (backfills from /market_chart/range)."""


# (column, name in the quarantine reason, optional: absent and zero allowed)
_NUMERIC_FIELDS = (("price_usd", "price", False), ("market_cap_usd", "market cap", True),
                   ("volume_24h_usd", "24h volume", True))


def _validate(raw: pd.DataFrame, rejects: Rejects, history: pd.DataFrame | None = None,
              window: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> pd.DataFrame:
    """Reject bad prices, bad market caps and volumes, missing timestamps, duplicate (symbol,
    observed_at) keys, and prices implausible against the symbol's recent prices (`history`:
    accepted rows before these; rule in quality/plausibility.py). Plausibility is judged for the
    rows inside `window` only: the others are not stored by this run.

    Numbers are JSON numbers only (`numeric_problem`: a boolean or a string is rejected). The
    price must be positive; market cap and 24h volume may be absent (stored empty) or zero, never
    negative, non-finite, a string or a boolean: such a record goes to quarantine whole."""
    for col, what, optional in _NUMERIC_FIELDS:
        if col not in raw.columns:
            continue
        problems = numeric_problem(raw[col], what, missing_ok=optional, zero_ok=optional)
        for reason in sorted(set(problems) - {""}):
            raw = rejects.reject(raw, problems.reindex(raw.index) == reason, reason,
                                 key_cols=("symbol", "observed_at"), time_col="observed_at")
    raw = rejects.reject(raw, raw["observed_at"].isna(), "missing timestamp", key_cols=("symbol",))
    dupes = raw.duplicated(subset=["symbol", "observed_at"], keep="first")
    raw = rejects.reject(raw, dupes, "duplicate timestamp", key_cols=("symbol", "observed_at"), time_col="observed_at")
    out = raw.copy()
    for col in ("price_usd", "market_cap_usd", "volume_24h_usd"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    judge = out if window is None else out[(out.observed_at >= window[0]) & (out.observed_at < window[1])]
    judged = implausible_prices(judge, history).reindex(out.index)
    judged["reason"] = judged["reason"].fillna("")
    bad = judged.reason != ""
    if bad.any():  # the quarantined record says what the price was judged against
        flagged = out.assign(reference_price_usd=judged.reference_usd)
        for reason in sorted(set(judged.reason[bad])):
            flagged = rejects.reject(flagged, judged.reason.reindex(flagged.index) == reason, reason,
                                     key_cols=("symbol", "observed_at"), time_col="observed_at")
        out = out.loc[flagged.index]
    return out


def _snapshot(coingecko: CoinGecko, universe: pd.DataFrame, rejects: Rejects) -> pd.DataFrame:
    """One observation per coin from /coins/markets (paged, <= 250 per page)."""
    ids = universe.coingecko_id.dropna().tolist()
    raw = parse_markets(coingecko.markets(ids))
    by_id = dict(zip(universe.coingecko_id, universe.symbol))
    raw["symbol"] = raw.coingecko_id.map(by_id)
    raw = rejects.reject(raw, raw.symbol.isna(), "unknown coin id", key_cols=("coingecko_id",), time_col="observed_at")
    raw["endpoint"] = "coins/markets"
    return raw


def _check_request_budget(coingecko: CoinGecko, coins: int, start: datetime, end: datetime) -> None:
    """Fail before the first request when the window's pieces for every coin exceed what is
    left of the run's request budget (resources/sources.yaml), instead of failing half-way."""
    cap = coingecko.client.spec.max_requests_per_run
    per_coin = market_chart_requests(start, end)
    needed, left = per_coin * coins, (cap - coingecko.client.requests_made if cap is not None else None)
    if left is None or needed <= left:
        return
    days_per_run = max(1, left // max(coins, 1)) * MARKET_CHART_HOURLY_MAX_RANGE.days
    raise coingecko.client.error(
        "/coins/{id}/market_chart/range",
        f"this window needs {needed} requests ({coins} coins x {per_coin} pieces of at most "
        f"{MARKET_CHART_HOURLY_MAX_RANGE.days} days, the longest range CoinGecko answers hourly), more than the "
        f"{left} left of the run's budget of {cap} (max_requests_per_run); backfill at most {days_per_run} days "
        "per run",
        kind=SourceBudgetExceeded,
    )


def _history(coingecko: CoinGecko, universe: pd.DataFrame, start: datetime, end: datetime,
             failures: dict[str, str]) -> pd.DataFrame:
    """Points from /coins/{id}/market_chart/range: per coin, the window in pieces of at most 90
    days (hourly points; a longer range would be answered with daily ones)."""
    _check_request_budget(coingecko, sum(isinstance(c, str) and c != "" for c in universe.coingecko_id), start, end)
    frames = []
    for symbol, coin_id in zip(universe.symbol, universe.coingecko_id):
        if not coin_id:
            failures[symbol] = "no coingecko_id in the universe"
            continue
        try:
            points = parse_market_chart(coingecko.market_chart_range(coin_id, start, end))
        except SourceError as exc:
            if not _per_symbol_failure(exc):
                raise
            failures[symbol] = str(exc)
            continue
        frames.append(points.assign(symbol=symbol, coingecko_id=coin_id, endpoint="market_chart/range"))
    if not frames:
        return pd.DataFrame(columns=["symbol", "coingecko_id", "observed_at", "price_usd", "market_cap_usd",
                                     "volume_24h_usd", "endpoint"])
    return pd.concat(frames, ignore_index=True)


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="ingest",
    pool="coingecko",
    kinds={"python", "sql"},
    description=(
        "Spot USD price observations per symbol, partitioned by the hour of the provider's timestamp. "
        "The open hour takes the live /coins/markets snapshot (merged with what the hour already has); "
        "past hours come from /coins/{id}/market_chart/range. Bad records go to `quarantine`."
    ),
)
def price_observations(
    context: dg.AssetExecutionContext,
    config: PriceObservationsConfig,
    coin_universe: pd.DataFrame,
    coingecko: CoinGecko,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    mode = config.mode
    if mode == "auto":
        mode = "snapshot" if start <= pd.Timestamp(utcnow()) < end else "history"
    rejects = Rejects("price_observations", coingecko.provenance)
    failures: dict[str, str] = {}

    if mode == "snapshot":
        raw = _snapshot(coingecko, coin_universe, rejects)
    else:
        raw = _history(coingecko, coin_universe, window.start, window.end, failures)
    # Accepted prices before these: the reference of the plausibility rule. In snapshot mode the
    # open hour's earlier snapshots (kept below) are history too.
    history = warehouse.get().read(PRICE_OBSERVATIONS, start - REFERENCE_LOOKBACK, start,
                                   columns=["symbol", "observed_at", "price_usd"])
    if mode == "snapshot":
        before = warehouse.get().read(PRICE_OBSERVATIONS, start, end)
        history = pd.concat([history, before[["symbol", "observed_at", "price_usd"]]], ignore_index=True)
    good = _validate(raw, rejects, history, window=(start, end))
    in_window = (good.observed_at >= start) & (good.observed_at < end)
    outside = int((~in_window).sum())
    now = utcnow()
    good = good[in_window].assign(source=coingecko.provenance, ingested_at=now)
    if mode == "snapshot":
        # Earlier snapshots of the open hour stay: the new one is merged in, not replacing them.
        good = pd.concat([before[~before.set_index(["symbol", "observed_at"]).index.isin(
            good.set_index(["symbol", "observed_at"]).index)], good], ignore_index=True)

    good = good.sort_values(["symbol", "observed_at"]).reset_index(drop=True)
    rejects.write(warehouse.get(), start, end)

    covered = sorted(good.symbol.unique())
    missing = sorted(set(coin_universe.symbol) - set(covered))
    # Coins whose fetch failed keep their stored rows of the window (invariant 12).
    failed = [FailedFetch({"symbol": s}, reason) for s, reason in sorted(failures.items())]
    raise_if_nothing_fetched("price_observations", len(coin_universe), failed)
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "mode": mode,
            "rows_quarantined": len(rejects),
            "quarantine_by_reason": dg.MetadataValue.json(rejects.by_reason()),
            "rows_outside_window": outside,
            "symbols_covered": len(covered),
            "symbols_expected": len(coin_universe),
            "symbols_missing": dg.MetadataValue.json({s: failures.get(s, "no data in window") for s in missing}),
            "requests_made": coingecko.client.requests_made,
            "retries_made": coingecko.client.retries_made,
        }
    )
    return mark_failed(good[PRICE_OBSERVATIONS.column_names], failed)


class OhlcvBarsConfig(dg.Config):
    include_ohlc_endpoint: bool = False
    """Also fetch the provider's candles from /coins/{id}/ohlc (one request per coin)."""


# Observations -> bars: the interval the observations' spacing supports, and when it supports none.
MAX_5MIN_SPACING = pd.Timedelta(minutes=6)
# CoinGecko's hourly points drift (15:04, then 16:34 in the recorded 30-day chart): up to 90 min is hourly.
MAX_1H_SPACING = pd.Timedelta(minutes=90)
# An observation with no other one of its coin within this time makes no bar (judged with the
# stored observations around the run's window too).
ISOLATION = pd.Timedelta(hours=6)
TOO_SPARSE = "observations too sparse for bars"  # quarantine reasons (`ohlcv_bars`)
ISOLATED = "isolated observation"


def bar_interval_for(times: pd.Series) -> str | None:
    """5-minute bars for dense (live or last-day) observations, hourly bars for hourly history,
    None for sparser points (daily ones), which no bar interval we build describes.

    A single observation has no spacing of its own: hourly (its neighbours judge it, see
    `resample_observations`)."""
    spacing = times.sort_values().diff().median()
    if pd.isna(spacing) or MAX_5MIN_SPACING < spacing <= MAX_1H_SPACING:
        return "1h"
    return "5min" if spacing <= MAX_5MIN_SPACING else None


def _ns(times: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def _nearest_other(times: pd.Series, known: pd.Series) -> pd.Series:
    """Per time, the distance to the nearest OTHER known time of the same coin (NaT if none)."""
    values = np.unique(_ns(known)) if len(known) else np.zeros(0, dtype="int64")
    t = _ns(times)
    left, right = np.searchsorted(values, t, "left"), np.searchsorted(values, t, "right")
    before = np.where(left > 0, t - values[np.maximum(left - 1, 0)] if len(values) else 0, np.nan)
    after = np.where(right < len(values), values[np.minimum(right, len(values) - 1)] - t if len(values) else 0,
                     np.nan)
    nearest = np.fmin(before.astype("float64"), after.astype("float64"))
    return pd.Series(pd.to_timedelta(nearest, unit="ns"), index=times.index)


def _stored_neighbours(warehouse: WarehouseResource, observations: pd.DataFrame, start, end) -> pd.DataFrame:
    """Stored observations within ISOLATION around the window, of the coins that have an
    observation without another one within ISOLATION inside the run's own input (e.g. the one
    point of an hourly partition): what judges whether that observation is isolated."""
    if observations.empty:
        return observations[["symbol", "observed_at"]]
    obs = observations[["symbol", "observed_at"]]
    lone = set()
    for symbol, part in obs.groupby("symbol"):
        nearest = _nearest_other(part.observed_at, part.observed_at)
        if (nearest.isna() | (nearest > ISOLATION)).any():
            lone.add(symbol)
    if not lone:
        return obs.iloc[0:0]
    return warehouse.get().read(PRICE_OBSERVATIONS, start - ISOLATION, end + ISOLATION,
                                columns=["symbol", "observed_at"], filters={"symbol": sorted(lone)})


def resample_observations(observations: pd.DataFrame, rejects: Rejects | None = None,
                          neighbours: pd.DataFrame | None = None) -> pd.DataFrame:
    """Observations -> bars: open/high/low/close = first/max/min/last price inside the bar.

    Bars with no observation are absent (a visible gap), never forward-filled. Per-bar volume
    is not known from spot observations (the provider's volume is a trailing 24h figure), so
    `volume` stays empty.

    Spacing must match the interval: a coin whose observations are spaced more than 90 min
    apart (daily points) makes no bars, and neither does an observation with no other one of
    its coin within 6 h (`neighbours`: stored observations around the window, symbol and
    observed_at). Both go to `rejects` with their reason and spacing, never into bars.
    """
    if observations.empty:
        return pd.DataFrame(columns=OHLCV_BARS.column_names)
    obs = observations.sort_values(["symbol", "observed_at"])
    obs = obs.assign(interval=obs.groupby("symbol").observed_at.transform(lambda t: bar_interval_for(t)))
    spacing = obs.groupby("symbol").observed_at.transform(lambda t: t.diff().median())
    known = obs[["symbol", "observed_at"]]
    if neighbours is not None and len(neighbours):
        known = pd.concat([known, neighbours[["symbol", "observed_at"]]], ignore_index=True)
    known_by_symbol = dict(tuple(known.groupby("symbol").observed_at))
    nearest = pd.concat([_nearest_other(part.observed_at, known_by_symbol[symbol])
                         for symbol, part in obs.groupby("symbol")])
    # Timedeltas; a quarantined record shows them as text ("1 days 00:00:00").
    obs = obs.assign(spacing=spacing, nearest_other=nearest.reindex(obs.index))
    rejects = rejects if rejects is not None else Rejects("ohlcv_bars", "")
    obs = rejects.reject(obs, obs.interval.isna(), TOO_SPARSE, key_cols=("symbol", "observed_at"),
                         time_col="observed_at")
    obs = rejects.reject(obs, nearest.reindex(obs.index) > ISOLATION, ISOLATED,
                         key_cols=("symbol", "observed_at"), time_col="observed_at")
    if obs.empty:
        return pd.DataFrame(columns=OHLCV_BARS.column_names)
    frames = []
    for interval, part in obs.groupby("interval"):
        part = part.assign(bar_start=part.observed_at.dt.floor(interval))
        bars = part.groupby(["symbol", "bar_start"], sort=True).price_usd.agg(
            open="first", high="max", low="min", close="last", n_observations="count"
        ).reset_index()
        bars["interval"] = interval
        bars["bar_end"] = bars.bar_start + pd.Timedelta(interval)
        frames.append(bars)
    bars = pd.concat(frames, ignore_index=True)
    bars["volume"] = float("nan")
    bars["method"] = "resampled_observations"
    return bars


@dg.asset(
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="ingest",
    pool="coingecko",
    kinds={"python", "sql"},
    description=(
        "OHLC bars per symbol: observations resampled to 5-minute bars (live) or hourly bars "
        "(history), and optionally the provider's candles from /coins/{id}/ohlc (close-time stamped). "
        "`interval` and `method` say which; bars with no data are absent, never filled. Closed exchange "
        "candles (`exchange_candles`, read from the warehouse: optional, never blocking) are the primary "
        "1h bars, and the 5-minute bars of the coins in live_5m_symbols (method=exchange, with volume); see "
        "docs/exchanges.md."
    ),
    deps=["exchange_candles"],
)
def ohlcv_bars(
    context: dg.AssetExecutionContext,
    config: OhlcvBarsConfig,
    price_observations: pd.DataFrame,
    coin_universe: pd.DataFrame,
    coingecko: CoinGecko,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    rejects = Rejects("ohlcv_bars", coingecko.provenance)
    bars = resample_observations(price_observations, rejects,
                                 _stored_neighbours(warehouse, price_observations, start, end))
    candles_kept = candles_unfinished = 0
    failures: dict[str, str] = {}
    if config.include_ohlc_endpoint:
        frames = [bars]
        for symbol, coin_id in zip(coin_universe.symbol, coin_universe.coingecko_id):
            try:
                candles = parse_ohlc(coingecko.ohlc(coin_id, ohlc_days_covering(window.start, utcnow())))
            except SourceError as exc:
                if not _per_symbol_failure(exc):
                    raise
                failures[symbol] = str(exc)
                continue
            fetched_at = pd.Timestamp(coingecko.client.last_response_at)
            unfinished = candles.bar_end > fetched_at  # the last candle may still be open
            candles_unfinished += int(unfinished.sum())
            candles = candles[~unfinished & (candles.bar_start >= start) & (candles.bar_start < end)]
            candles_kept += len(candles)
            frames.append(candles.assign(symbol=symbol, volume=float("nan"), n_observations=pd.NA,
                                         method="coingecko_ohlc"))
        bars = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else bars
    bars = bars.assign(source=coingecko.provenance, ingested_at=utcnow())
    # Exchange candles are the primary bars; CoinGecko's stay where no exchange has the coin.
    bars, merged = merge_exchange_bars(bars, warehouse.get().read(EXCHANGE_CANDLES, start, end))
    bars = bars[(bars.bar_start >= start) & (bars.bar_start < end)]
    rejects.write(warehouse.get(), start, end)
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "bars_by_interval": dg.MetadataValue.json(bars.groupby("interval").size().astype(int).to_dict()),
            "observations_quarantined": len(rejects),
            "quarantine_by_reason": dg.MetadataValue.json(rejects.by_reason()),
            "symbols_covered": int(bars.symbol.nunique()),
            "provider_candles_kept": candles_kept,
            "provider_candles_unfinished_dropped": candles_unfinished,
            "ohlc_failures": dg.MetadataValue.json(failures),
            **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in merged.items()},
        }
    )
    return bars.sort_values(["symbol", "interval", "bar_start"])[OHLCV_BARS.column_names]


ASSETS = [price_observations, ohlcv_bars]
