"""The Guardian content API: parser on real responses, paging and parameters through replay."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from crypto_assets.news.collect import collect_articles
from crypto_assets.news.feeds import FeedResult
from crypto_assets.news.guardian import MAX_PAGE_SIZE, GuardianContent, GuardianError, parse_guardian
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.client import MissingCredentialsError
from crypto_assets_tests.paths import DATA

DATA = DATA / "guardian"
SEARCH = RESOURCES_DIR / "replay" / "guardian" / "search.json"
DAY = (datetime(2014, 9, 10, tzinfo=timezone.utc), datetime(2014, 9, 11, tzinfo=timezone.utc))


def test_search_response_parses():
    articles, rejected, paging = parse_guardian(json.loads(SEARCH.read_text()))
    assert len(articles) == 10 and not rejected
    assert paging == {"total": 1687267, "pages": 168727, "currentPage": 1, "pageSize": 10}
    first = articles[0]
    assert first["title"] == "County cricket – live!"
    assert first["published_at"] == datetime(2014, 9, 10, 16, 10, 21, tzinfo=timezone.utc)
    assert first["url"] == ("http://www.theguardian.com/sport/blog/live/2014/sep/10/"
                            "county-cricket-live-blog-notts-yorkshire-surrey")
    assert first["publisher"] == "The Guardian" and first["feed"] == "guardian"
    assert first["published_field"] == "webPublicationDate"


def test_search_response_with_blocks_parses():
    articles, rejected, _ = parse_guardian(json.loads((DATA / "search-response.json").read_text()))
    assert len(articles) == 10 and not rejected
    assert {a["published_at"] for a in articles} == {datetime(2015, 4, 17, 10, 21, 49, tzinfo=timezone.utc)}
    # the benchmark payload repeats one live blog ten times: one article after dedup
    assert {a["url"] for a in articles} == {"http://www.theguardian.com/news/blog/live/2015/apr/09/example-liveblog"}
    frame, stats = collect_articles([FeedResult("guardian", "The Guardian", "ok", articles=articles)],
                                    datetime(2015, 4, 17, 10, tzinfo=timezone.utc),
                                    datetime(2015, 4, 17, 11, tzinfo=timezone.utc))
    assert len(frame) == 1 and stats["duplicates_dropped"] == 9


def test_error_response_raises_with_the_message():
    with pytest.raises(GuardianError, match="Uh oh spaghetti-o!"):
        parse_guardian(json.loads((DATA / "error.json").read_text()))


def test_items_without_date_or_url_are_rejected_not_stamped():
    payload = json.loads(SEARCH.read_text())
    results = payload["response"]["results"]
    del results[0]["webPublicationDate"]
    results[1]["webPublicationDate"] = "10/09/2014"  # not ISO 8601: day/month order unknown
    results[2]["webUrl"] = None
    articles, rejected, _ = parse_guardian(payload)
    assert sorted(r.reason for r in rejected) == [
        "entry without an http(s) link", "missing published date", "unparseable date"]
    assert all(r.at is None for r in rejected)
    assert len(articles) == 7
    assert all(a["published_at"].date().isoformat() == "2014-09-10" for a in articles)


def _replay_dir(tmp_path: Path, routes: str, files: dict[str, Path]) -> str:
    folder = tmp_path / "guardian"
    folder.mkdir()
    for name, src in files.items():
        shutil.copy(src, folder / name)
    (folder / "catalog.yaml").write_text(routes)
    return str(tmp_path)


def test_window_dates_and_page_size_are_sent(tmp_path):
    # The route answers only when the request carries these parameters; anything else is a 404.
    replay = _replay_dir(tmp_path, """routes:
  - path: /search
    params: {from-date: "2014-09-10", to-date: "2014-09-10", page-size: "200", page: "1", use-date: published}
    file: search.json
""", {"search.json": SEARCH})
    result = GuardianContent(mode="replay", replay_dir=replay).search_window(*DAY)
    assert result.status == "ok", result.problem
    assert len(result.articles) == 10 and result.entries == 10


def test_paging_continues_while_pages_are_full_and_reports_a_failed_page(tmp_path):
    replay = _replay_dir(tmp_path, """routes:
  - path: /search
    params: {page: "1"}
    file: search-response.json
  - path: /search
    params: {page: "2"}
    file: error.json
""", {"search-response.json": DATA / "search-response.json", "error.json": DATA / "error.json"})
    source = GuardianContent(mode="replay", replay_dir=replay, page_size=10)
    result = source.search_window(*DAY)
    assert result.status == "recovered"
    assert "stopped at page 2" in result.problem and "Uh oh spaghetti-o!" in result.problem
    assert len(result.articles) == 10  # page 1 kept
    assert source.client.requests_made == 2


def test_paging_stops_at_max_pages(tmp_path):
    replay = _replay_dir(tmp_path, "routes:\n  - path: /search\n    file: s.json\n",
                         {"s.json": DATA / "search-response.json"})
    source = GuardianContent(mode="replay", replay_dir=replay, page_size=10, max_pages=1)
    result = source.search_window(*DAY)
    assert result.status == "recovered" and result.problem == "stopped after 1 of 168727 pages"
    assert source.client.requests_made == 1


def test_page_size_is_capped():
    with pytest.raises(ValueError, match=str(MAX_PAGE_SIZE)):
        GuardianContent(mode="replay", page_size=500).search_window(*DAY)


def test_live_mode_without_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("GUARDIAN_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="GUARDIAN_API_KEY"):
        GuardianContent(mode="live").make_client()


def test_error_status_fails_the_source_not_the_run(tmp_path):
    replay = _replay_dir(tmp_path, "routes:\n  - path: /search\n    file: e.json\n    status: 403\n",
                         {"e.json": DATA / "error.json"})
    result = GuardianContent(mode="replay", replay_dir=replay).search_window(*DAY)
    assert result.status == "failed" and "HTTP 403" in result.problem and not result.usable
