"""Table of news articles (RSS/Atom feeds and the Guardian content API)."""

from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

NEWS_ARTICLES = TableSpec(
    name="news_articles",
    description=(
        "News articles partitioned by the hour they were PUBLISHED (UTC), one row per canonical URL. "
        "A re-run of an hour merges what the sources list now with what the hour already holds, so an "
        "article that has scrolled out of its feed is kept. Items without a usable date are never "
        "stamped with the fetch time: they go to `quarantine`."
    ),
    columns=(
        Column("article_id", "str", "sha256 (first 32 hex) of the canonical URL: tracking params, fragment dropped.",
               nullable=False),
        Column("published_at", "datetime", "Publication time given by the source (UTC): the partition time.",
               nullable=False),
        Column("title", "text", "Headline, HTML stripped."),
        Column("summary", "text", "Summary / description / trail text, HTML stripped."),
        Column("url", "text", "Canonical URL of the article."),
        Column("publisher", "str", "Who published it, e.g. CoinDesk, The Guardian."),
        Column("feed", "str", "Catalog entry it came from (resources/news_feeds.yaml id, or 'guardian')."),
        Column("authors", "text", "Author names separated by '|'; empty when the source names none."),
        Column("published_field", "str", "Source field the time came from: published, updated or webPublicationDate."),
        Column("symbols_mentioned", "text", "Tickers of the coin universe mentioned in title or summary, sorted, "
               "separated by '|'; empty when none."),
        *common_columns(),
    ),
    primary_key=("article_id",),
    time_column="published_at",
)

TABLES = [NEWS_ARTICLES]
