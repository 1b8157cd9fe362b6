"""Source results of one run -> the articles of the run's window, one row per article."""

from __future__ import annotations

import pandas as pd

from crypto_assets.news.feeds import FeedResult

ARTICLE_COLUMNS = ["article_id", "published_at", "title", "summary", "url", "publisher", "feed", "authors",
                   "published_field"]


def collect_articles(results: list[FeedResult], start, end) -> tuple[pd.DataFrame, dict]:
    """Articles published in [start, end), deduplicated by `article_id`.

    The same article reached through several feeds (or twice in one feed) is kept once: the
    first in catalog order wins, so the result does not depend on fetch timing.
    """
    rows = [article for result in results for article in result.articles]
    frame = pd.DataFrame(rows, columns=ARTICLE_COLUMNS)
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    inside = (frame.published_at >= start) & (frame.published_at < end)
    in_window = frame[inside]
    dupes = in_window.duplicated("article_id", keep="first")
    out = in_window[~dupes].reset_index(drop=True)
    stats = {"outside_window": int((~inside).sum()), "duplicates_dropped": int(dupes.sum())}
    return out, stats
