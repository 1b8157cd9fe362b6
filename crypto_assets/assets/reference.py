"""Reference data: the coin universe every other asset iterates over."""


import dagster as dg
import pandas as pd

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.coingecko import CoinGecko, parse_markets
from crypto_assets.tables.prices import COIN_UNIVERSE
from crypto_assets.warehouse.store import utcnow


def catalog_universe() -> pd.DataFrame:
    """The symbols declared in `resources/coins.csv`."""
    frame = pd.read_csv(RESOURCES_DIR / "coins.csv", dtype=str, keep_default_na=False)
    frame["symbol"] = frame["symbol"].str.strip().str.upper()
    if frame["symbol"].duplicated().any():
        raise ValueError(f"resources/coins.csv repeats symbols: {sorted(frame.symbol[frame.symbol.duplicated()])}")
    return frame.replace({"": None})


class CoinUniverseConfig(dg.Config):
    refresh_top_n: int = 0  # >0: add the top-N coins by market cap from CoinGecko /coins/markets


@dg.asset(
    group_name="reference",
    description="Tracked symbols with CoinGecko ids, names and aliases: resources/coins.csv, optionally "
    "extended with the top-N coins by market cap from CoinGecko /coins/markets.",
    kinds={"python", "sql"},
)
def coin_universe(context: dg.AssetExecutionContext, config: CoinUniverseConfig, coingecko: CoinGecko) -> pd.DataFrame:
    universe = catalog_universe()
    universe["market_cap_rank"] = pd.NA
    universe["source"] = "resources/coins.csv"
    if config.refresh_top_n > 0:
        top = parse_markets(coingecko.markets(per_page=min(250, config.refresh_top_n),
                                              max_pages=-(-config.refresh_top_n // 250)))
        top = top.head(config.refresh_top_n)
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
