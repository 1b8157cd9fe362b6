"""Reference data: the coin universe every other asset iterates over.

The universe follows the market by default: resources/coins.csv plus the top `DEFAULT_TOP_N`
coins by market cap (CoinGecko /coins/markets), refreshed weekly by the automation (policies.py:
"when missing, and every Monday 00:00 UTC"). Replay keeps resources/coins.csv alone: its one
recorded /coins/markets answer is not a market ranking.

Request budget (resources/sources.yaml, coingecko): the live price run of the open hour asks
/coins/markets for every coin of the universe, `MAX_PER_PAGE` (250) ids per request, so 320
coins plus the catalog's extras (<= 341) cost 2 requests per 5-minute tick = 0.4 requests/min
(24 requests/hour, 576/day), against the client's planned 24/min (min_interval_s 2.5) and the
provider's ~30/min. The weekly refresh adds 2 requests. Per month that is ~17,300 requests: the
keyless public API has no monthly quota; a demo key's 10,000 calls/month covers one page
(<= 250 coins: 8,640/month), so with COINGECKO_API_KEY set keep the universe within 250 coins
(refresh_top_n) or lengthen CRYPTO_LIVE_CRON. `price_request_budget` computes these figures.
"""

import math

import dagster as dg
import pandas as pd

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.catalog import default_source_mode
from crypto_assets.sources.coingecko import MAX_PER_PAGE, CoinGecko, parse_markets
from crypto_assets.tables.prices import COIN_UNIVERSE
from crypto_assets.warehouse.store import utcnow


def catalog_universe() -> pd.DataFrame:
    """The symbols declared in `resources/coins.csv`."""
    frame = pd.read_csv(RESOURCES_DIR / "coins.csv", dtype=str, keep_default_na=False)
    frame["symbol"] = frame["symbol"].str.strip().str.upper()
    if frame["symbol"].duplicated().any():
        raise ValueError(f"resources/coins.csv repeats symbols: {sorted(frame.symbol[frame.symbol.duplicated()])}")
    return frame.replace({"": None})


DEFAULT_TOP_N = 320


def default_top_n(mode: str | None = None) -> int:
    """How many top coins by market cap the universe adds by default: `DEFAULT_TOP_N` where the
    source answers for now (live, simulated); none in replay (recordings, not a ranking)."""
    return 0 if (mode or default_source_mode()) == "replay" else DEFAULT_TOP_N


def price_request_budget(coins: int, ticks_per_hour: float = 12) -> dict[str, float]:
    """CoinGecko requests of the live price runs for a universe of `coins`: one /coins/markets
    request per `MAX_PER_PAGE` coins per tick (12 ticks an hour: the 5-minute cron)."""
    per_tick = math.ceil(coins / MAX_PER_PAGE)
    per_hour = per_tick * ticks_per_hour
    return {"per_tick": per_tick, "per_minute": per_hour / 60, "per_day": per_hour * 24,
            "per_month": per_hour * 24 * 30}


class CoinUniverseConfig(dg.Config):
    # >0: add the top-N coins by market cap from CoinGecko /coins/markets; 0: resources/coins.csv
    # only; unset: the source mode's default (`default_top_n`).
    refresh_top_n: int | None = None


@dg.asset(
    group_name="reference",
    description="Tracked symbols with CoinGecko ids, names and aliases: resources/coins.csv, optionally "
    "extended with the top-N coins by market cap from CoinGecko /coins/markets (by default the top "
    f"{DEFAULT_TOP_N} in live mode, none in replay), refreshed weekly.",
    kinds={"python", "sql"},
)
def coin_universe(context: dg.AssetExecutionContext, config: CoinUniverseConfig, coingecko: CoinGecko) -> pd.DataFrame:
    universe = catalog_universe()
    universe["market_cap_rank"] = pd.NA
    universe["source"] = "resources/coins.csv"
    top_n = config.refresh_top_n if config.refresh_top_n is not None else default_top_n(coingecko.mode)
    if top_n > 0:
        top = parse_markets(coingecko.markets(per_page=min(MAX_PER_PAGE, top_n),
                                              max_pages=-(-top_n // MAX_PER_PAGE)))
        top = top.head(top_n)
        ranks = dict(zip(top.coingecko_id, top.market_cap_rank))
        universe["market_cap_rank"] = universe.coingecko_id.map(ranks)
        new = top[~top.coingecko_id.isin(universe.coingecko_id) & ~top.provider_symbol.isin(universe.symbol)]
        new = new.drop_duplicates("provider_symbol")
        universe = pd.concat(
            [universe, pd.DataFrame({"symbol": new.provider_symbol, "coingecko_id": new.coingecko_id,
                                     "name": new.name, "aliases": None, "market_cap_rank": new.market_cap_rank,
                                     "source": coingecko.provenance})],
            ignore_index=True,
        )
    universe["ingested_at"] = utcnow()
    context.add_output_metadata({"symbols": len(universe), "symbol_list": ", ".join(universe.symbol)})
    return universe[COIN_UNIVERSE.column_names]


ASSETS = [coin_universe]
