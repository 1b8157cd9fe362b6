"""The resources the code location binds, configured from the environment.

Nothing secret has a default: API keys are read from the environment by each source at
setup (live mode only), and a required one that is missing fails naming its variable.
"""

from __future__ import annotations

from crypto_assets.llm.ollama import LLMResource
from crypto_assets.news.feeds import RssFeeds
from crypto_assets.news.guardian import GuardianContent
from crypto_assets.sentiment.model import SentimentModel
from crypto_assets.social.reddit import RedditSource
from crypto_assets.sources.catalog import default_source_mode
from crypto_assets.sources.coingecko import CoinGecko
from crypto_assets.sources.exchanges import Exchanges
from crypto_assets.sources.fred import Fred
from crypto_assets.sources.fear_greed import AlternativeMe
from crypto_assets.sources.onchain import BlockchainCom, DefiLlama
from crypto_assets.sources.simulated import check_separation
from crypto_assets.sources.yahoo import YahooFinance
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource


def build_resources(mode: str | None = None, warehouse_url: str | None = None) -> dict:
    """`mode`: 'live', 'replay' or 'simulated' (default: CRYPTO_SOURCE_MODE, else live)."""
    mode = mode or default_source_mode()
    # When the code location loads, before any run: a simulated home is marked, a mixed one refused.
    check_separation(mode)
    return {
        "io_manager": WarehouseIOManager(url=warehouse_url),
        "warehouse": WarehouseResource(url=warehouse_url),
        "coingecko": CoinGecko(mode=mode),
        "exchanges": Exchanges(mode=mode),
        "rss": RssFeeds(mode=mode),
        "guardian": GuardianContent(mode=mode),
        "reddit": RedditSource(mode=mode),
        "yahoo": YahooFinance(mode=mode),
        "fred": Fred(mode=mode),
        "blockchain_com": BlockchainCom(mode=mode),
        "defillama": DefiLlama(mode=mode),
        "alternative_me": AlternativeMe(mode=mode),
        "sentiment_model": SentimentModel(),
        "llm": LLMResource(),  # off unless CRYPTO_LLM_URL and CRYPTO_LLM_MODEL are set
    }
