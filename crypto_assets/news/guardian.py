"""The Guardian content API (/search): the resource (paging) and the parser (JSON -> articles).

Unlike feeds, the API can be queried by date, so a backfill of any past hour finds its
articles: `from-date`/`to-date` select the days of the run's window, and the parser keeps
what falls inside the window itself.

Text caps are those of feeds (`TEXT_CAPS`, `MAX_URL_CHARS`): an item with a 17 MB title or
trail text lands cut, with the cut reported; it never fails the partition.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from pydantic import Field

from crypto_assets.news.canonical import article_id, canonical_url
from crypto_assets.news.feeds import (
    _RECORD_TEXT_LIMIT,
    MAX_URL_CHARS,
    FeedResult,
    Rejected,
    failed,
    guardian_settings,
    html_to_text,
)
from crypto_assets.sources.catalog import HttpSource
from crypto_assets.sources.client import SourceError
from crypto_assets.warehouse.store import to_utc

FEED_ID = "guardian"
PUBLISHER = "The Guardian"
MAX_PAGE_SIZE = 200  # the API's cap
DEFAULT_QUERY = "bitcoin OR cryptocurrency OR crypto OR ethereum OR blockchain OR stablecoin"


class GuardianError(ValueError):
    """The API answered, but with `status: error` (bad key, bad parameter, ...)."""


def _response(payload) -> dict:
    response = payload.get("response") if isinstance(payload, dict) else None
    if not isinstance(response, dict):
        raise GuardianError("guardian: payload has no 'response' object")
    if response.get("status") != "ok":
        raise GuardianError(f"guardian: API error: {response.get('message') or response.get('status')}")
    return response


def _authors(item: dict) -> str:
    byline = (item.get("fields") or {}).get("byline")
    if byline:
        return html_to_text(byline) or ""
    names = [t.get("webTitle") for t in item.get("tags") or [] if t.get("type") == "contributor" and t.get("webTitle")]
    return "|".join(dict.fromkeys(names))


def parse_guardian(payload, *, result: FeedResult | None = None) -> tuple[list[dict], list[Rejected], dict]:
    """A /search (or single-item) response -> (articles, rejected items, paging info).

    Articles are cut to the feeds' TEXT_CAPS; with `result`, the articles are also added to it
    (`FeedResult.add_article`, which notes every cut). Raises `GuardianError` for an error response.
    """
    response = _response(payload)
    items = response.get("results")
    if items is None:
        items = [response["content"]] if isinstance(response.get("content"), dict) else []
    articles, rejected = [], []
    collector = result if result is not None else FeedResult(FEED_ID, PUBLISHER, "ok")
    for item in items:
        record = {k: str(item.get(k))[:_RECORD_TEXT_LIMIT]
                  for k in ("id", "webTitle", "webUrl", "webPublicationDate") if item.get(k)}
        key = f"{FEED_ID}|{item.get('id') or item.get('webUrl') or ''}"[:_RECORD_TEXT_LIMIT]
        try:
            url = canonical_url(item.get("webUrl") or "")
        except ValueError:
            rejected.append(Rejected("entry without an http(s) link", record, key))
            continue
        if len(url) > MAX_URL_CHARS:
            rejected.append(Rejected(f"link longer than {MAX_URL_CHARS} characters", record, key))
            continue
        raw_date = item.get("webPublicationDate")
        # The API gives ISO 8601; anything else is refused, not guessed (10/09 is not a date).
        published = pd.to_datetime(raw_date, utc=True, errors="coerce", format="ISO8601") if raw_date else pd.NaT
        if pd.isna(published):
            reason = "unparseable date" if raw_date else "missing published date"
            rejected.append(Rejected(reason, record, key))
            continue
        fields = item.get("fields") or {}
        article = (
            {
                "article_id": article_id(url),
                "published_at": published.to_pydatetime(),
                "title": html_to_text(item.get("webTitle") or fields.get("headline")),
                "summary": html_to_text(fields.get("trailText")),
                "url": url,
                "publisher": PUBLISHER,
                "feed": FEED_ID,
                "authors": _authors(item),
                "published_field": "webPublicationDate",
            }
        )
        collector.add_article(article)  # cut to TEXT_CAPS, the cut noted
        articles.append(article)
    paging = {k: response.get(k) for k in ("total", "pages", "currentPage", "pageSize")}
    return articles, rejected, paging


class GuardianContent(HttpSource):
    """Guardian content API. Needs GUARDIAN_API_KEY in live mode (set `enabled: false` to skip it)."""

    source_name = "guardian"
    enabled: bool = Field(default=True, description="Query the Guardian at all.")
    query: str | None = Field(default=None, description="Search query; default from resources/news_feeds.yaml.")
    page_size: int = Field(default=MAX_PAGE_SIZE, description=f"Results per page (at most {MAX_PAGE_SIZE}).")
    max_pages: int | None = Field(default=None, description="Stop after this many pages (default from the catalog).")

    def setup_for_execution(self, context) -> None:
        if self.enabled:  # a disabled source needs no key and builds no client
            super().setup_for_execution(context)

    def search_window(self, start: datetime, end: datetime) -> FeedResult:
        """Every article published in [start, end), paging at `page_size` per request."""
        if not self.enabled:
            return FeedResult(FEED_ID, PUBLISHER, "failed", problem="disabled in the resource config")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"guardian page_size must be 1..{MAX_PAGE_SIZE}, got {self.page_size}")
        settings = guardian_settings()
        max_pages = self.max_pages or int(settings.get("max_pages", 25))
        start, end = to_utc(start), to_utc(end)
        params = {
            "q": self.query or settings.get("query") or DEFAULT_QUERY,
            "from-date": start.date().isoformat(),
            "to-date": (end - timedelta(microseconds=1)).date().isoformat(),
            "use-date": "published",
            "order-by": "oldest",
            "page-size": self.page_size,
            "show-fields": "trailText,byline",
            "show-tags": "contributor",
        }
        result = FeedResult(FEED_ID, PUBLISHER, "ok")
        page = 1
        while True:
            try:
                articles, rejected, paging = parse_guardian(self.client.get_json("/search", {**params, "page": page}),
                                                            result=result)
            except (SourceError, GuardianError) as exc:
                # A GuardianError quotes the API's own message, which may echo the key: redacted
                # (and cut) like every client message before it reaches metadata.
                problem = self.client.redact_then_cut(exc, 1000)
                if page == 1:
                    return failed(FEED_ID, PUBLISHER, problem, exc)
                result.status, result.problem = "recovered", f"stopped at page {page}: {problem}"
                break
            result.entries += len(articles) + len(rejected)
            result.rejected.extend(rejected)  # the articles are in `result` already (add_article)
            pages = int(paging.get("pages") or 1)
            got = len(articles) + len(rejected)
            if page >= pages or got < self.page_size:
                break
            if page >= max_pages:
                result.status, result.problem = "recovered", f"stopped after {max_pages} of {pages} pages"
                break
            page += 1
        return result
