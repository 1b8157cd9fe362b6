"""Issue 19, item 9: one oversized record never fails a partition, and its cut is visible.

A Guardian /search answer (the project's recording, re-dated into the partition, CONSTRUCTED
here) whose first item has a 17 MB title and a 17 MB trail text (summary): MySQL refused it
whole (error 1153, max_allowed_packet) and `news_articles` failed for every source. Now the
article lands cut to the documented caps, the other items land untouched, and the cut is counted
in the run's metadata and kept in `quarantine` with the original lengths. Same caps for Reddit
posts (`social_posts`).
"""

from __future__ import annotations

import json
import shutil
import warnings
from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.ingest.news import news_articles
from crypto_assets.news.feeds import RssFeeds
from crypto_assets.news.guardian import GuardianContent
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.social.reddit import RedditSource, SubredditSpec
from crypto_assets.tables.news import NEWS_ARTICLES
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse

warnings.filterwarnings("ignore", category=dg.BetaWarning)

HUGE = 17_000_000  # characters: over MySQL's 16 MB packet and MEDIUMTEXT
HOUR = "2023-03-13-10:00"
H0 = pd.Timestamp("2023-03-13 10:00", tz="UTC")
TITLE_CAP, SUMMARY_CAP = 1_000, 10_000  # documented in docs/news.md


def _huge(words: str) -> str:
    return (words * (HUGE // len(words) + 1))[:HUGE]


@pytest.fixture
def replay(tmp_path):
    """Replay folders: the Guardian's recorded /search re-dated into HOUR, its first item
    oversized; RSS with no recordings (every feed a replay 404)."""
    payload = json.loads((RESOURCES_DIR / "replay" / "guardian" / "search.json").read_text())
    for minute, item in enumerate(payload["response"]["results"]):
        item["webPublicationDate"] = f"2023-03-13T10:{minute * 5:02d}:00Z"
        item["fields"] = {"trailText": f"<p>Trail text of item {minute}</p>"}
    big = payload["response"]["results"][0]
    big["webTitle"] = _huge("Bitcoin rallies past records again ")
    big["fields"]["trailText"] = "<p>" + _huge("Ether and bitcoin summary text ") + "</p>"
    folder = tmp_path / "replay"
    (folder / "guardian").mkdir(parents=True)
    (folder / "guardian" / "search.json").write_text(json.dumps(payload))
    (folder / "guardian" / "catalog.yaml").write_text("routes:\n  - path: /search\n    file: search.json\n")
    (folder / "rss").mkdir()
    (folder / "rss" / "catalog.yaml").write_text("routes: []\n")
    return str(folder), payload["response"]["results"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["mysql", "delta"])
def test_a_17_mb_title_and_summary_land_cut_and_the_cut_is_visible(backend, replay, request):
    url = request.getfixturevalue(f"{backend}_url")
    replay_dir, items = replay
    result = dg.materialize(
        [news_articles], partition_key=HOUR, raise_on_error=False,
        resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                   "rss": RssFeeds(mode="replay", replay_dir=replay_dir),
                   "guardian": GuardianContent(mode="replay", replay_dir=replay_dir)})
    assert result.success  # the partition did not fail

    warehouse = open_warehouse(url)
    rows = warehouse.read(NEWS_ARTICLES, H0, H0 + pd.Timedelta(hours=1)).set_index("url")
    assert len(rows) == 10  # every item landed
    big = rows.loc[items[0]["webUrl"]]
    assert len(big.title) == TITLE_CAP and big.title.startswith("Bitcoin rallies past records again")
    assert len(big.summary) == SUMMARY_CAP and big.summary.startswith("Ether and bitcoin summary text")
    assert "BTC" in big.symbols_mentioned.split("|")
    other = rows.loc[items[3]["webUrl"]]
    assert other.title == items[3]["webTitle"] and other.summary == "Trail text of item 3"  # untouched

    metadata = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert metadata["rows_truncated"] == 1
    assert metadata["truncated_by_field"] == {"title": 1, "summary": 1}
    assert metadata["text_caps"]["title"] == TITLE_CAP and metadata["text_caps"]["summary"] == SUMMARY_CAP
    quarantine = warehouse.read(QUARANTINE)
    cut = quarantine[quarantine.reason.str.startswith("text truncated")]
    assert cut.reason.tolist() == [f"text truncated: summary over {SUMMARY_CAP} characters, "
                                   f"title over {TITLE_CAP} characters"]
    record = json.loads(cut.record.iloc[0])
    assert record["title_chars"] == HUGE and HUGE - 2 <= record["summary_chars"] <= HUGE  # lengths as parsed
    assert record["url"] == items[0]["webUrl"] and len(cut.record.iloc[0]) < 2_000
    assert metadata["quarantine_by_reason"] == {cut.reason.iloc[0]: 1}


def test_reddit_posts_are_cut_to_the_same_kind_of_caps_and_the_cut_is_noted(tmp_path):
    listing = json.loads((RESOURCES_DIR / "replay" / "reddit" / "r_askreddit_new.json").read_text())
    first = listing["data"]["children"][0]["data"]
    first["title"] = _huge("Bitcoin to the moon ")
    first["selftext"] = _huge("a very long self post ")
    folder = tmp_path / "reddit"
    folder.mkdir()
    shutil.copy(RESOURCES_DIR / "replay" / "reddit" / "access_token.json", folder)
    shutil.copy(RESOURCES_DIR / "replay" / "reddit" / "catalog.yaml", folder)
    (folder / "r_askreddit_new.json").write_text(json.dumps(listing))

    result = RedditSource(mode="replay", replay_dir=str(tmp_path)).new_posts(
        SubredditSpec("askreddit", 100), datetime(2016, 3, 1, 7, tzinfo=timezone.utc),
        datetime(2016, 3, 1, 9, tzinfo=timezone.utc))
    assert result.status == "ok" and len(result.posts) == 100
    post = next(p for p in result.posts if p["post_id"] == first["name"])
    assert len(post["title"]) == 1_000 and len(post["selftext"]) == 40_000
    assert result.truncated == [(
        "text truncated: selftext over 40000 characters, title over 1000 characters",
        {"post_id": first["name"], "subreddit": "AskReddit", "published_at": post["published_at"],
         "title": post["title"][:200], "title_chars": HUGE, "selftext_chars": HUGE,
         "title_kept_chars": 1_000, "selftext_kept_chars": 40_000})]
    others = [p for p in result.posts if p["post_id"] != first["name"]]
    assert all(len(p["title"]) < 1_000 for p in others)  # nothing else was touched
