"""The feed parser against every document of the fixture collection (real feeds and broken ones).

Each file has its expected outcome stated here: status, reason, how many entries became
articles and why the others were rejected. A new file in the data folder without an
expectation fails `test_every_fixture_has_an_expectation`.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from crypto_assets.news.feeds import Feed, html_to_text, load_feed_catalog, parse_feed
from crypto_assets_tests.paths import DATA

DATA = DATA / "rss"
FEED = Feed("test", "Test Publisher", "https://example.com/feed")
NO_LINK = "entry without an http(s) link"

# file -> (status, problem contains, entries, articles, {reason: count})
EXPECTED = {
    # feedparser's hand-written ill-formed / encoding cases
    "aaa_illformed.xml": ("broken", "ill-formed XML: unclosed token", 0, 0, {}),
    "bozo_double-encoded-html.xml": ("broken", "ill-formed XML: undefined entity", 1, 0, {NO_LINK: 1}),
    "bozo_encoding_mismatch_crash.xml": ("broken", "wrong encoding: document declared as utf-8", 1, 0, {NO_LINK: 1}),
    "bozo_invalid-bytes-with-bom.xml": ("broken", "ill-formed XML: unclosed token", 0, 0, {}),
    "bozo_linenoise.xml": ("broken", "wrong encoding: document declared as utf-8, but parsed as iso-8859-2", 1, 0,
                           {NO_LINK: 1}),
    "demoronize-1.xml": ("ok", None, 1, 0, {NO_LINK: 1}),
    "http_high_bit_date.xml": ("ok", None, 0, 0, {}),
    "rss_empty_document.xml": ("broken", "empty document", 0, 0, {}),
    "rss_incomplete_cdata.xml": ("broken", "ill-formed XML: XML or text declaration not at start of entity", 1, 0,
                                 {NO_LINK: 1}),
    "rss_item_link_corrupted_ampersands.xml": ("recovered", "ill-formed XML: unclosed token", 1, 0,
                                               {"missing published date": 1}),
    "undeclared_namespace.xml": ("broken", "ill-formed XML: unbound prefix", 0, 0, {}),
    "utf-16le-bom.xml": ("ok", None, 0, 0, {}),
    "windows1255.xml": ("broken", "wrong encoding", 1, 0, {NO_LINK: 1}),
    # rss-parser's real-world inputs
    "content-encoded.rss": ("ok", None, 7, 7, {}),
    "encoding.rss": ("ok", None, 40, 40, {}),
    "heraldsun.rss": ("ok", None, 2, 0, {"missing published date": 2}),
    "incomplete-fields.atom": ("ok", None, 1, 0, {NO_LINK: 1}),
    "missing-fields.atom": ("ok", None, 1, 0, {NO_LINK: 1}),
    "reddit.rss": ("ok", None, 24, 24, {}),
    "unrecognized.rss": ("broken", "an HTML page instead of a feed (title: 'Document Moved')", 0, 0, {}),
    "uolNoticias.rss": ("recovered", "wrong encoding", 15, 0, {"unparseable date": 15}),
}


def parse(name: str, **kwargs):
    return parse_feed(FEED, (DATA / name).read_bytes(), content_type="application/xml", **kwargs)


def test_every_fixture_has_an_expectation():
    files = {p.name for p in DATA.iterdir() if p.suffix in (".xml", ".rss", ".atom")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_outcome(name):
    status, problem, entries, articles, rejected = EXPECTED[name]
    result = parse(name)
    assert result.status == status
    if problem is None:
        assert result.problem is None
    else:
        assert problem in result.problem
    assert result.entries == entries
    assert len(result.articles) == articles
    reasons: dict[str, int] = {}
    for r in result.rejected:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    assert reasons == rejected
    assert result.usable == (status in ("ok", "recovered"))


@pytest.mark.parametrize("content_type", [None, "", "text/html", "text/plain"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_content_type_label_does_not_change_the_outcome(name, content_type):
    """A feed served without a Content-Type (or with a non-XML one) is judged on its document
    only: clean feeds stay `ok`, damaged ones keep their own problem (issue 11)."""
    served_as_xml = parse(name)
    relabelled = parse_feed(FEED, (DATA / name).read_bytes(), content_type=content_type)
    assert (relabelled.status, relabelled.problem) == (served_as_xml.status, served_as_xml.problem)
    assert [a["article_id"] for a in relabelled.articles] == [a["article_id"] for a in served_as_xml.articles]
    assert [r.reason for r in relabelled.rejected] == [r.reason for r in served_as_xml.rejected]


def test_clean_real_feed_without_content_type_is_ok():
    result = parse_feed(FEED, (DATA / "reddit.rss").read_bytes(), content_type=None)
    assert result.status == "ok" and result.problem is None and len(result.articles) == 24


def test_bare_ampersand_link_is_recovered_intact():
    result = parse("rss_item_link_corrupted_ampersands.xml")
    assert result.rejected[0].record["link"] == "http://link/get?a=1&b=2"


def test_latin1_feed_declared_iso_8859_1_decodes():
    first = parse("encoding.rss").articles[0]
    assert first["title"] == "Mãe de utente é a nova presidente da Raríssimas"
    assert first["published_at"] == datetime(2018, 1, 3, 13, 47, tzinfo=timezone.utc)
    assert first["published_field"] == "published"
    assert "<img" not in first["summary"] and "&lt;" not in first["summary"]


def test_undeclared_latin1_feed_decodes_and_keeps_the_unparsed_date_in_quarantine():
    result = parse("uolNoticias.rss")
    record = result.rejected[0].record
    assert record["title"].startswith("Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações")
    assert record["published"] == "Seg, 24 Set 2018 19:42:40 -0300"  # Portuguese day/month names
    assert all(r.at is None for r in result.rejected)  # never stamped with any time


def test_windows_1252_smart_quote_is_decoded():
    assert parse("demoronize-1.xml").rejected[0].record["summary"] == "don\u2019t"


def test_items_without_dates_are_not_given_the_channel_date():
    # the channel has <pubDate>03 Apr 02 1500 GMT</pubDate>; the items have none
    result = parse("heraldsun.rss")
    assert [r.record["link"] for r in result.rejected] == [
        "http://www.oreilly.com/example/001.html", "http://www.oreilly.com/example/002.html"]


def test_medium_feed_html_is_stripped_and_authors_kept():
    article = parse("content-encoded.rss").articles[0]
    assert article["title"] == "THE CREATIVE FORAGER"
    assert article["authors"] == "Jeremy Puma"
    assert article["summary"].startswith("Using Wild Ingredients in the Kitchen")
    assert "<" not in article["summary"]
    assert article["url"].startswith("https://medium.com/invironment/the-creative-forager-125af37d838f")
    assert len(article["article_id"]) == 32


def test_reddit_rss_escaped_html_becomes_text():
    article = parse("reddit.rss").articles[0]
    assert article["title"] == "The water is too deep, so he improvises"
    assert article["published_at"] == datetime(2015, 11, 12, 21, 16, 39, tzinfo=timezone.utc)
    assert article["summary"] == "submitted by cakebeerandmorebeer to funny [link] [275 comments]"


def test_a_date_after_the_response_time_is_rejected_not_kept():
    fetched = datetime(2015, 11, 12, 20, 0, tzinfo=timezone.utc)  # before most of reddit.rss's items
    result = parse("reddit.rss", fetched_at=fetched)
    future = [r for r in result.rejected if r.reason.startswith("published in the future")]
    assert future and all(r.at > fetched for r in future)
    assert all(a["published_at"] <= fetched.replace(hour=21) for a in result.articles)
    assert len(future) + len(result.articles) == 24


def test_html_to_text():
    assert html_to_text("<p>Bitcoin &amp; <b>Ether</b></p>\n\n rally") == "Bitcoin & Ether rally"
    assert html_to_text("   ") is None
    assert html_to_text(None) is None


def test_feed_catalog_has_the_major_outlets():
    feeds = load_feed_catalog()
    assert len(feeds) >= 20
    assert len({f.id for f in feeds}) == len(feeds)
    assert all(f.url.startswith("https://") for f in feeds)
    names = {f.name for f in feeds}
    assert {"CoinDesk", "Cointelegraph", "Decrypt", "The Block", "Bitcoin Magazine", "CryptoSlate"} <= names
