"""News ingestion: `news_articles` from RSS/Atom feeds and the Guardian content API."""

import os

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.assets.ingest.rolling import (
    json_metadata,
    merge_with_stored,
    trailing_window_schedule,
    write_rejects,
)
from crypto_assets.news.collect import collect_articles
from crypto_assets.news.feeds import NO_RECORDING, TEXT_CAPS, FeedResult, RssFeeds, load_feed_catalog
from crypto_assets.news.guardian import GuardianContent
from crypto_assets.news.mentions import MentionTagger, coin_universe_from_csv
from crypto_assets.partitions import HOURLY
from crypto_assets.quality.quarantine import Rejects
from crypto_assets.tables.news import NEWS_ARTICLES
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

ASSET = "news_articles"


def _rejects(results: list[FeedResult], provenance: dict[str, str], landed: set[str]) -> list[Rejects]:
    """Rejected entries, and the articles of `landed` (ids) whose text was cut to TEXT_CAPS: the
    cut article is in the table, its quarantine row says what was cut and how long it was."""
    by_source: dict[str, Rejects] = {}
    cut_seen: set[str] = set()  # an article listed by two feeds is noted once, like it lands once
    for result in results:
        source = provenance["guardian" if result.feed_id == "guardian" else "rss"]
        rejects = by_source.setdefault(source, Rejects(ASSET, source))
        for r in result.rejected:
            rejects.add(r.reason, r.record, key=r.key, at=r.at)
        for r in result.truncated:
            article = r.record.get("article_id")
            if article in landed and article not in cut_seen:
                cut_seen.add(article)
                rejects.add(r.reason, r.record, key=r.key, at=r.at)
    return list(by_source.values())


def _truncated(results: list[FeedResult], landed: set[str]) -> dict[str, int]:
    """{field: articles of this run's window cut to its cap}."""
    counts: dict[str, int] = {}
    seen: set[str] = set()
    for result in results:
        for r in result.truncated:
            article = r.record.get("article_id")
            if article in landed and article not in seen:
                seen.add(article)
                for name in TEXT_CAPS:
                    if f"{name}_chars" in r.record:
                        counts[name] = counts.get(name, 0) + 1
    return counts


@dg.asset(
    name=ASSET,
    partitions_def=HOURLY,
    backfill_policy=HOURLY_BACKFILL,
    group_name="ingest",
    pool="news",
    kinds={"python", "sql"},
    description=(
        "News articles partitioned by PUBLISHED hour (UTC): every RSS/Atom feed of resources/news_feeds.yaml "
        "(feedparser) plus the Guardian content API for the run's window. One row per canonical URL "
        "(tracking parameters stripped), tagged with the coins it mentions. A run merges what the sources "
        "list now with what its hours already hold, so late articles land in their own hour and articles "
        "that scrolled out of a feed stay. Broken feeds are reported in metadata; items without a usable "
        "date go to `quarantine`. Text longer than its cap (title 1,000, summary 10,000, authors 1,000 "
        "characters) is cut: the article lands, and the cut is counted in metadata and kept in `quarantine`."
    ),
)
def news_articles(
    context: dg.AssetExecutionContext,
    rss: RssFeeds,
    guardian: GuardianContent,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    results = rss.fetch_all(load_feed_catalog())
    if guardian.enabled:
        results.append(guardian.search_window(window.start, window.end))
    provenance = {"rss": rss.provenance, "guardian": guardian.provenance}

    if rss.mode == "live" and not any(r.usable for r in results):
        problems = "; ".join(f"{r.feed_id}: {r.problem}" for r in results)
        raise dg.Failure(f"news_articles: no news source answered usably, nothing was written. {problems}")

    fresh, stats = collect_articles(results, start, end)
    fresh["source"] = [provenance["guardian" if f == "guardian" else "rss"] for f in fresh["feed"]]
    fresh["ingested_at"] = utcnow()
    fresh["symbols_mentioned"] = None
    merged, merge_stats = merge_with_stored(warehouse.get(), NEWS_ARTICLES, fresh, start, end)
    tagger = MentionTagger(coin_universe_from_csv())
    merged["symbols_mentioned"] = tagger.tag_frame(merged, ["title", "summary"])

    landed = set(merged["article_id"])
    rejects = _rejects(results, provenance, landed)
    truncated = _truncated(results, landed)
    quarantined = write_rejects(warehouse.get(), ASSET, rejects, start, end)
    by_reason: dict[str, int] = {}
    for r in rejects:
        for reason, n in r.by_reason().items():
            by_reason[reason] = by_reason.get(reason, 0) + n

    # Replay has recordings of few feeds: a source it has nothing for is not broken, and says so.
    unrecorded = sorted(r.feed_id for r in results if r.status == NO_RECORDING)
    broken = {r.feed_id: f"{r.status}: {r.problem}" for r in results if not r.usable and r.status != NO_RECORDING}
    recovered = {r.feed_id: r.problem for r in results if r.status == "recovered"}
    in_window = fresh.groupby("feed").size().astype(int).to_dict()
    per_feed = {r.feed_id: {**r.summary(), "in_window": in_window.get(r.feed_id, 0)} for r in results}
    if broken:
        context.log.warning(f"{len(broken)} of {len(results) - len(unrecorded)} news sources broken or failed: "
                            f"{sorted(broken)}" + (f" ({len(unrecorded)} more have no recording in replay)"
                                                   if unrecorded else ""))
    elif unrecorded:
        context.log.info(f"replay: {len(unrecorded)} of {len(results)} news sources have no recording "
                         "(not broken: replay serves only what was recorded)")
    tagged = merged["symbols_mentioned"].fillna("") != ""
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "rows": len(merged),
            "rows_fetched_in_window": len(fresh),
            **{f"rows_{k}": v for k, v in merge_stats.items()},
            "articles_outside_window": stats["outside_window"],
            "duplicates_dropped": stats["duplicates_dropped"],
            "sources_usable": sum(r.usable for r in results),
            "sources_total": len(results),
            "broken_feeds": json_metadata(broken),
            "sources_without_recording": json_metadata(unrecorded),
            "recovered_feeds": json_metadata(recovered),
            "per_feed": json_metadata(per_feed),
            "rows_quarantined": quarantined,
            "quarantine_by_reason": json_metadata(by_reason),
            "rows_truncated": len({r.record["article_id"] for res in results for r in res.truncated} & landed),
            "truncated_by_field": json_metadata(truncated),
            "text_caps": json_metadata(TEXT_CAPS),
            "rows_with_symbols": int(tagged.sum()),
            "requests_made": rss.client.requests_made + (guardian.client.requests_made if guardian.enabled else 0),
        }
    )
    return merged[NEWS_ARTICLES.column_names]


ASSETS = [news_articles]

# Live: the last 3 hours every 10 minutes (late articles, the hour boundary; CRYPTO_NEWS_CRON
# overrides the cron); a daily sweep of the last 48 hours catches what was published earlier still.
# Fetch cost does not grow with N: every run fetches each feed once. See docs/news.md.
NEWS_CRON = os.environ.get("CRYPTO_NEWS_CRON", "*/10 * * * *")
SCHEDULES = [
    trailing_window_schedule(ASSET, name="news_articles_trailing_3h", cron=NEWS_CRON, hours=3),
    trailing_window_schedule(ASSET, name="news_articles_daily_sweep_48h", cron="20 0 * * *", hours=48),
]
