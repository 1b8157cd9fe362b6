"""Canonical URLs, article ids, and dedup of one article reached through several feeds."""

from __future__ import annotations

import pandas as pd
import pytest

from crypto_assets.news.canonical import article_id, canonical_url
from crypto_assets.news.collect import collect_articles
from crypto_assets.news.feeds import Feed, parse_feed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://WWW.CoinDesk.com/markets/2023/03/13/usdc/?utm_medium=referral&utm_source=rss&utm_campaign=x",
         "https://www.coindesk.com/markets/2023/03/13/usdc/"),
        ("https://cointelegraph.com/news/x#comments", "https://cointelegraph.com/news/x"),
        ("https://example.com:443/a?b=2&a=1&fbclid=abc&UTM_Content=z", "https://example.com/a?a=1&b=2"),
        ("http://example.com:8080/a?id=7", "http://example.com:8080/a?id=7"),
        ("https://example.com", "https://example.com/"),
        ("  https://example.com/path/Case?Q=Keep  ", "https://example.com/path/Case?Q=Keep"),
    ],
)
def test_canonical_url(raw, expected):
    assert canonical_url(raw) == expected


@pytest.mark.parametrize("bad", ["", "tag:github.com,2008:Repository/1", "/relative/path", "ftp://x.org/a",
                                 "mailto:a@b"])
def test_non_http_urls_are_refused(bad):
    with pytest.raises(ValueError):
        canonical_url(bad)


def test_article_id_ignores_tracking_and_fragment_but_not_the_path():
    a = article_id("https://decrypt.co/1/btc?utm_source=rss")
    assert a == article_id("https://DECRYPT.co/1/btc#top") == article_id("https://decrypt.co/1/btc?gclid=1")
    assert a != article_id("https://decrypt.co/2/btc")
    assert len(a) == 32 and int(a, 16) >= 0


def _feed_doc(link: str, title: str) -> bytes:
    # Constructed test input (not a recording): the same article as two feeds would list it.
    return f"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
    <item><title>{title}</title><link>{link}</link><pubDate>Mon, 13 Mar 2023 10:15:00 GMT</pubDate></item>
    </channel></rss>""".encode()


def test_same_article_via_two_feeds_with_different_tracking_params_is_one_row():
    first = parse_feed(Feed("coindesk", "CoinDesk", "https://a.example/feed"),
                       _feed_doc("https://www.coindesk.com/x/usdc/?utm_source=rss&amp;utm_medium=feed",
                                 "USDC regains peg"))
    second = parse_feed(Feed("aggregator", "Aggregator", "https://b.example/feed"),
                        _feed_doc("https://WWW.COINDESK.COM/x/usdc/?utm_source=twitter#share", "USDC regains its peg"))
    start, end = pd.Timestamp("2023-03-13 10:00", tz="UTC"), pd.Timestamp("2023-03-13 11:00", tz="UTC")
    frame, stats = collect_articles([first, second], start, end)
    assert len(frame) == 1 and stats["duplicates_dropped"] == 1
    assert frame.loc[0, "feed"] == "coindesk"  # the feed listed first in the catalog wins
    assert frame.loc[0, "url"] == "https://www.coindesk.com/x/usdc/"
    # the other order keeps the other feed's row: the winner follows catalog order, not chance
    frame, _ = collect_articles([second, first], start, end)
    assert frame.loc[0, "feed"] == "aggregator"


def test_collect_keeps_only_the_window():
    result = parse_feed(Feed("f", "F", "https://a.example/feed"), _feed_doc("https://n.example/a", "A"))
    frame, stats = collect_articles([result], pd.Timestamp("2023-03-13 11:00", tz="UTC"),
                                    pd.Timestamp("2023-03-13 12:00", tz="UTC"))
    assert frame.empty and stats["outside_window"] == 1
