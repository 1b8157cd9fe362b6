"""Issue 19, item 12: a summary is never lost to an empty field that follows it.

CoinDesk's feed layout gives each item a real `<description>` followed by an empty
`<content:encoded/>` and an empty `<dc:description/>` (and an image caption in
`<media:content><media:description>`). feedparser keeps the last value it maps to `summary`:
an empty string, so every CoinDesk summary was stored as None and sentiment scored titles only.
The feed used here is CONSTRUCTED in CoinDesk's layout (see data/integrity_feeds/SOURCES.md).
"""

from __future__ import annotations

import warnings

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.ingest.news import news_articles
from crypto_assets.news.feeds import Feed, RssFeeds, parse_feed
from crypto_assets.news.guardian import GuardianContent
from crypto_assets.tables.news import NEWS_ARTICLES
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.paths import DATA

warnings.filterwarnings("ignore", category=dg.BetaWarning)

DATA = DATA / "integrity_feeds"
COINDESK = Feed("coindesk", "CoinDesk", "https://www.coindesk.com/arc/outboundfeeds/rss/")
LAYOUT = (DATA / "coindesk_layout.xml").read_bytes()
SUMMARIES = {
    "https://www.coindesk.com/markets/2023/03/13/stablecoin-issuer-says-reserves-are-fully-backed/":
        "USDC traded back near $1 as the issuer said its reserves cover every token in circulation.",
    "https://www.coindesk.com/markets/2023/03/13/layer-2-network-sees-record-day/":
        "Solana and Ethereum decentralized exchanges handled their busiest day of the year.",
}


def test_the_description_survives_the_empty_fields_after_it():
    result = parse_feed(COINDESK, LAYOUT)
    assert result.status == "ok" and not result.rejected
    assert {a["url"]: a["summary"] for a in result.articles} == SUMMARIES  # not None, not a caption


def _item(fields: str, n: int = 1) -> str:
    return (f"<item><title>Item {n}</title><link>https://www.coindesk.com/x/{n}/</link>"
            f"<pubDate>Mon, 13 Mar 2023 10:{n:02d}:00 +0000</pubDate>{fields}</item>")


def _rss(*items: str, bare_ampersand: bool = False) -> bytes:
    title = "News & more" if bare_ampersand else "News"
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            f'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>{title}</title>'
            + "".join(items) + "</channel></rss>").encode()


CASES = {
    "description, then empty content and dc:description":
        ("<description>First real</description><content:encoded/><dc:description/>", "First real"),
    "an empty description, then dc:description, then an empty content":
        ("<description></description><dc:description>From dc</dc:description><content:encoded/>", "From dc"),
    "only content:encoded (HTML), then an empty dc:description":
        ("<content:encoded><![CDATA[<p>Full <b>body</b></p>]]></content:encoded><dc:description/>", "Full body"),
    "description, a media caption, then an empty dc:description":
        ('<description>The summary</description><media:content url="https://x/y.png">'
         "<media:description>A caption</media:description></media:content><dc:description/>", "The summary"),
    "description, then a non-empty content:encoded":
        ("<description>Short</description><content:encoded><![CDATA[<p>Long body</p>]]></content:encoded>",
         "Short"),
}


@pytest.mark.parametrize("bare_ampersand", [False, True], ids=["well-formed", "ill-formed"])
def test_the_first_non_empty_summary_like_field_is_kept(bare_ampersand):
    """Each layout, in a well-formed document (read as XML) and in one feedparser had to recover
    (a bare '&': read by the lenient scan)."""
    items = [_item(fields, n) for n, (fields, _) in enumerate(CASES.values(), start=1)]
    result = parse_feed(COINDESK, _rss(*items, bare_ampersand=bare_ampersand))
    assert result.status == ("recovered" if bare_ampersand else "ok")
    got = {a["title"]: a["summary"] for a in result.articles}
    assert got == {f"Item {n}": expected for n, (_, expected) in enumerate(CASES.values(), start=1)}


def test_stored_coindesk_rows_keep_their_summary_and_its_coins(tmp_path):
    replay = tmp_path / "replay" / "rss"
    replay.mkdir(parents=True)
    (replay / "coindesk.xml").write_bytes(LAYOUT)
    (replay / "catalog.yaml").write_text(f"routes:\n  - url: {COINDESK.url}\n    file: coindesk.xml\n")
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    result = dg.materialize(
        [news_articles], partition_key="2023-03-13-10:00",
        resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                   "rss": RssFeeds(mode="replay", replay_dir=str(replay.parent)),
                   "guardian": GuardianContent(mode="replay", enabled=False)})
    assert result.success
    start = pd.Timestamp("2023-03-13 10:00", tz="UTC")
    rows = open_warehouse(url).read(NEWS_ARTICLES, start, start + pd.Timedelta(hours=1)).set_index("url")
    assert rows["summary"].to_dict() == SUMMARIES
    # coins named only in a summary are found (the titles name none of them)
    layer2 = rows.loc["https://www.coindesk.com/markets/2023/03/13/layer-2-network-sees-record-day/"]
    assert {"SOL", "ETH"} <= set(layer2.symbols_mentioned.split("|"))
