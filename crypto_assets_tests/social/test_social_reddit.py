"""Reddit: praw parses the recorded listing in replay mode; credentials; the `social_posts` asset."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.ingest.social import social_posts
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.social.reddit import RedditSource, SubredditSpec, listing_children, load_subreddits, post_row
from crypto_assets.sources.client import MissingCredentialsError
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.tables.social import SOCIAL_POSTS
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse

warnings.filterwarnings("ignore", category=dg.BetaWarning)

LISTING = json.loads((RESOURCES_DIR / "replay" / "reddit" / "r_askreddit_new.json").read_text())
CREDENTIALS = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT")
# the recorded /new listing spans 07:44:02 .. 08:37:38 UTC on 1 March 2016
EARLY = datetime(2016, 3, 1, 7, tzinfo=timezone.utc)
LATE = datetime(2016, 3, 1, 9, tzinfo=timezone.utc)


def test_listing_json_parses_to_rows():
    rows = [post_row(child) for child in listing_children(LISTING)]
    assert len(rows) == 100 and len({r["post_id"] for r in rows}) == 100
    first = rows[0]
    assert first["post_id"] == "t3_48fbm9"
    assert first["published_at"] == datetime(2016, 3, 1, 8, 37, 38, tzinfo=timezone.utc)
    assert first["subreddit"] == "AskReddit" and first["author"] == "RedHeadQc"
    assert first["title"].startswith("[Serious] Parents of Reddit")
    assert first["permalink"] == ("https://www.reddit.com/r/AskReddit/comments/48fbm9/"
                                  "serious_parents_of_reddit_whats_the_biggest_lie/")
    assert first["score"] == 1 and first["num_comments"] == 1 and first["is_self"] is True
    assert first["upvote_ratio"] is None  # the 2016 schema has no upvote_ratio
    assert first["selftext"] is None  # empty self text


def test_praw_parses_the_recording_and_gives_the_same_rows():
    source = RedditSource(mode="replay")
    submissions = list(source.reddit.subreddit("askreddit").new(limit=100))
    assert len(submissions) == 100
    assert type(submissions[0]).__name__ == "Submission"
    from_praw = [post_row(vars(s)) for s in submissions]
    from_json = [post_row(child) for child in listing_children(LISTING)]
    assert from_praw == from_json  # one code path for live objects and listing JSON


def test_new_posts_keeps_the_window_and_stops_at_its_start():
    source = RedditSource(mode="replay")
    start, end = datetime(2016, 3, 1, 8, 0, tzinfo=timezone.utc), datetime(2016, 3, 1, 8, 30, tzinfo=timezone.utc)
    result = source.new_posts(SubredditSpec("askreddit", 100), start, end)
    expected = [c["name"] for c in listing_children(LISTING) if start.timestamp() <= c["created_utc"] < end.timestamp()]
    assert result.status == "ok" and [p["post_id"] for p in result.posts] == expected and expected
    # newest first: reading stops at the first post before the window, not at the end of the listing
    older = sum(1 for c in listing_children(LISTING) if c["created_utc"] < start.timestamp())
    assert older > 0 and result.listed == 100 - older + 1


def test_unrecorded_subreddit_fails_that_subreddit_only():
    result = RedditSource(mode="replay").new_posts(SubredditSpec("CryptoCurrency", 100), EARLY, LATE)
    assert result.status == "failed" and "NotFound" in result.problem and result.posts == []


def test_missing_credentials_name_the_variables(monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingCredentialsError) as err:
        RedditSource(mode="live").make_reddit()
    assert all(name in str(err.value) for name in CREDENTIALS)
    monkeypatch.setenv("REDDIT_CLIENT_ID", "id")
    monkeypatch.setenv("REDDIT_USER_AGENT", "crypto-assets tests")
    with pytest.raises(MissingCredentialsError) as err:
        RedditSource(mode="live").make_reddit()
    assert "REDDIT_CLIENT_SECRET" in str(err.value) and "REDDIT_CLIENT_ID" not in str(err.value)


def _resources(tmp_path, reddit: RedditSource) -> dict:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    return {"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url), "reddit": reddit}


def test_asset_fails_at_resource_setup_without_credentials(tmp_path, monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    result = dg.materialize([social_posts], resources=_resources(tmp_path, RedditSource(mode="live")),
                            partition_key="2023-03-13-10:00", raise_on_error=False)
    assert not result.success
    text = str(next(e for e in result.all_events if e.is_failure).event_specific_data)
    assert all(name in text for name in CREDENTIALS)
    assert "resource_fn on ResourceDefinition reddit" in text  # at resource setup, before the asset ran


def test_asset_in_replay_reports_unrecorded_subreddits(tmp_path):
    result = dg.materialize([social_posts], resources=_resources(tmp_path, RedditSource(mode="replay")),
                            partition_key="2023-03-13-10:00")
    meta = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert set(meta["failed_subreddits"]) == {s.name for s in load_subreddits()}
    assert meta["rows"] == 0


def test_stored_posts_survive_when_the_listing_moved_on(tmp_path):
    """Posts already stored for the hour stay when a later run's listing no longer has them."""
    hour = pd.Timestamp("2023-03-13 10:00", tz="UTC")
    warehouse = open_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    row = post_row(listing_children(LISTING)[0]) | {"published_at": hour + pd.Timedelta(minutes=5),
                                                     "symbols_mentioned": "", "source": "test", "ingested_at": hour}
    warehouse.replace_window(SOCIAL_POSTS, pd.DataFrame([row]), hour, hour + pd.Timedelta(hours=1))
    dg.materialize([social_posts], resources=_resources(tmp_path, RedditSource(mode="replay")),
                   partition_key="2023-03-13-10:00")
    kept = warehouse.read(SOCIAL_POSTS, hour, hour + pd.Timedelta(hours=1))
    assert kept.post_id.tolist() == ["t3_48fbm9"] and kept.ingested_at.iloc[0] == hour
    assert warehouse.read(QUARANTINE).empty


def test_subreddit_catalog():
    subs = load_subreddits()
    names = [s.name for s in subs]
    assert {"CryptoCurrency", "Bitcoin", "ethereum"} <= set(names) and len(names) == len(set(names))
    assert all(1 <= s.limit <= 1000 for s in subs)
