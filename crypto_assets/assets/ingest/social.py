"""Social ingestion: `social_posts` from Reddit (praw)."""


import dagster as dg
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.assets.ingest.rolling import (
    json_metadata,
    merge_with_stored,
    trailing_window_schedule,
    write_rejects,
)
from crypto_assets.news.mentions import MentionTagger, coin_universe_from_csv
from crypto_assets.partitions import HOURLY
from crypto_assets.quality.quarantine import Rejects
from crypto_assets.social.reddit import TEXT_CAPS, RedditSource, load_subreddits
from crypto_assets.tables.social import SOCIAL_POSTS
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

ASSET = "social_posts"
_POST_COLUMNS = [c for c in SOCIAL_POSTS.column_names if c not in ("symbols_mentioned", "source", "ingested_at")]


@dg.asset(
    name=ASSET,
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="ingest",
    pool="reddit",
    kinds={"python", "sql"},
    description=(
        "Reddit submissions of the subreddits in resources/subreddits.yaml (praw, /new), partitioned by "
        "created hour (UTC) and tagged with the coins they mention. A run merges what the listings show "
        "now with what its hours already hold (posts that left the listing are kept; scores refresh while "
        "listed). Text longer than its cap (title 1,000, selftext 40,000 characters, ...) is cut: the post "
        "lands, and the cut is counted in metadata and kept in `quarantine`. Needs REDDIT_CLIENT_ID, "
        "REDDIT_CLIENT_SECRET, REDDIT_USER_AGENT in live mode."
    ),
)
def social_posts(context: dg.AssetExecutionContext, reddit: RedditSource, warehouse: WarehouseResource) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    results = [reddit.new_posts(spec, window.start, window.end) for spec in load_subreddits()]
    if reddit.mode == "live" and results and all(r.status == "failed" for r in results):
        problems = "; ".join(r.problem or "" for r in results)
        raise dg.Failure(f"social_posts: every subreddit failed, nothing was written. {problems}")

    fresh = pd.DataFrame([p for r in results for p in r.posts], columns=_POST_COLUMNS)
    duplicates = fresh.duplicated("post_id", keep="first")  # cross-posts listed twice
    fresh = fresh[~duplicates].assign(source=reddit.provenance, ingested_at=utcnow(), symbols_mentioned=None)
    merged, merge_stats = merge_with_stored(warehouse.get(), SOCIAL_POSTS, fresh, start, end)
    tagger = MentionTagger(coin_universe_from_csv())
    merged["symbols_mentioned"] = tagger.tag_frame(merged, ["title", "selftext"])

    rejects = Rejects(ASSET, reddit.provenance)
    landed = set(merged["post_id"])
    truncated: dict[str, int] = {}
    cut_posts: set[str] = set()
    for r in results:
        for reason, record in r.rejected:
            rejects.add(reason, record, key=f"r/{r.subreddit}|{record.get('name') or record.get('id')}")
        for reason, record in r.truncated:
            if record["post_id"] in landed and record["post_id"] not in cut_posts:  # a cross-post: once
                cut_posts.add(record["post_id"])
                rejects.add(reason, record, key=f"r/{r.subreddit}|{record['post_id']}", at=record["published_at"])
                for name in TEXT_CAPS:
                    if f"{name}_chars" in record:
                        truncated[name] = truncated.get(name, 0) + 1
    quarantined = write_rejects(warehouse.get(), ASSET, [rejects], start, end)

    failed = {r.subreddit: r.problem for r in results if r.status == "failed"}
    if failed:
        context.log.warning(f"{len(failed)} of {len(results)} subreddits failed: {sorted(failed)}")
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "rows": len(merged),
            "rows_fetched_in_window": len(fresh),
            **{f"rows_{k}": v for k, v in merge_stats.items()},
            "duplicates_dropped": int(duplicates.sum()),
            "failed_subreddits": json_metadata(failed),
            "per_subreddit": json_metadata(
                {r.subreddit: {"status": r.status, "listed": r.listed, "in_window": len(r.posts)} for r in results}
            ),
            "rows_quarantined": quarantined,
            "quarantine_by_reason": json_metadata(rejects.by_reason()),
            "rows_truncated": len(cut_posts),
            "truncated_by_field": json_metadata(truncated),
            "text_caps": json_metadata(TEXT_CAPS),
            "rows_with_symbols": int((merged["symbols_mentioned"].fillna("") != "").sum()),
        }
    )
    return merged[SOCIAL_POSTS.column_names]


ASSETS = [social_posts]

# Stopped by default: it needs Reddit credentials. See docs/news.md.
SCHEDULES = [
    trailing_window_schedule(ASSET, name="social_posts_trailing_3h", cron="*/10 * * * *", hours=3,
                             default_status=dg.DefaultScheduleStatus.STOPPED),
]
