"""RSS/Atom feeds: the catalog, the parser (feedparser) and the resource that fetches them.

Every fetched feed ends in one `FeedResult` with a status:
- ``ok``: parsed cleanly (it may still have zero entries, or entries that were quarantined);
- ``recovered``: the document is damaged (bad encoding declaration, bare ``&``, ...) but
  feedparser recovered entries with links; they land, and the problem is reported. A missing
  or non-XML Content-Type is the server's label, not damage: it never makes a feed `recovered`;
- ``broken``: nothing usable could be read (an HTML page, an empty document, XML so broken
  that no entry with a link survives); the reason is reported;
- ``failed``: the fetch itself failed (HTTP error, timeout, no replay recording).

Each entry either becomes an article or is rejected with a reason (no http(s) link, no
usable date, a date in the future). An entry without a usable date is never stamped "now".
"""

from __future__ import annotations

import calendar
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import feedparser
import yaml
from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning
from pydantic import Field

from crypto_assets.news.canonical import article_id, canonical_url
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.catalog import HttpSource
from crypto_assets.sources.client import SourceError, response_time

FEEDS_FILE = "news_feeds.yaml"
# A date this far after the response time is wrong (bad time zone, typo), not a scoop.
FUTURE_TOLERANCE = timedelta(hours=1)
_RECORD_TEXT_LIMIT = 1000  # characters of a rejected entry's text kept in the quarantine


@dataclass(frozen=True)
class Feed:
    id: str
    name: str
    url: str
    category: str = "crypto"


@cache
def _catalog(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text()) or {}


def load_feed_catalog(path: str | Path | None = None) -> list[Feed]:
    """The feeds of `resources/news_feeds.yaml`, in catalog order (the order dedup prefers)."""
    raw = _catalog(str(path or RESOURCES_DIR / FEEDS_FILE))
    feeds = [Feed(**entry) for entry in raw.get("feeds", [])]
    ids = [f.id for f in feeds]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{FEEDS_FILE}: feed ids must be unique")
    return feeds


def guardian_settings(path: str | Path | None = None) -> dict:
    return dict(_catalog(str(path or RESOURCES_DIR / FEEDS_FILE)).get("guardian", {}))


def html_to_text(value: str | None) -> str | None:
    """Visible text of an HTML fragment, entities decoded, whitespace collapsed."""
    if value is None:
        return None
    if "<" in value or "&" in value:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            value = BeautifulSoup(value, "html.parser").get_text(" ")
    text = " ".join(value.split())
    return text or None


@dataclass
class Rejected:
    reason: str
    record: dict
    key: str | None = None
    at: datetime | None = None


@dataclass
class FeedResult:
    """What one source (a feed, or the Guardian API) gave in one run."""

    feed_id: str
    publisher: str
    status: str  # ok | recovered | broken | failed
    problem: str | None = None
    entries: int = 0
    articles: list[dict] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    encoding: str | None = None

    @property
    def usable(self) -> bool:
        """The source answered with something we could read (possibly zero articles)."""
        return self.status in ("ok", "recovered")

    def summary(self) -> dict:
        out = {"status": self.status, "entries": self.entries, "articles": len(self.articles),
               "rejected": len(self.rejected)}
        if self.problem:
            out["problem"] = self.problem
        return out


def failed(feed_id: str, publisher: str, reason: str) -> FeedResult:
    return FeedResult(feed_id, publisher, "failed", problem=reason)


def _struct_to_utc(value) -> datetime:
    # feedparser normalises every date it understands to a UTC struct_time.
    return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)


def _raw(entry, key: str):
    # dict.get: FeedParserDict maps a missing `updated` to `published` (with a warning); we
    # want to know which field the source really gave.
    return dict.get(entry, key)


def _entry_time(entry) -> tuple[datetime | None, str | None, str | None]:
    """(time, field it came from, reason when there is none)."""
    for name in ("published", "updated"):
        parsed = _raw(entry, f"{name}_parsed")
        if parsed:
            return _struct_to_utc(parsed), name, None
    if _raw(entry, "published") or _raw(entry, "updated"):
        return None, None, "unparseable date"  # the raw value is in the quarantined record
    return None, None, "missing published date"


def _entry_link(entry) -> str | None:
    candidates = [entry.get("link")] + [l.get("href") for l in entry.get("links", []) if l.get("rel") == "alternate"]
    for link in candidates:
        if link:
            try:
                return canonical_url(link)
            except ValueError:
                continue
    return None


def _entry_record(feed: Feed, entry) -> dict:
    record = {"feed": feed.id, "feed_url": feed.url}
    for key in ("id", "title", "link", "published", "updated", "author"):
        if _raw(entry, key):
            record[key] = str(_raw(entry, key))
    if entry.get("summary"):
        record["summary"] = str(entry.get("summary"))[:_RECORD_TEXT_LIMIT]
    return record


def _authors(entry) -> str:
    names = [a.get("name", "").strip() for a in entry.get("authors", []) if isinstance(a, dict)]
    if not any(names) and entry.get("author"):
        names = [entry.get("author").strip()]
    seen: dict[str, None] = {}
    for name in names:
        if name:
            seen.setdefault(name, None)
    return "|".join(seen)


def _document_problem(content: bytes, parsed) -> str:
    """Why a document yielded no feed at all."""
    head = content[:4096].decode("utf-8", errors="replace")
    without_comments = re.sub(r"<!--.*?(-->|$)", "", head, flags=re.S).strip()
    if not without_comments:
        return "empty document"
    lowered = without_comments.lower()
    if any(tag in lowered for tag in ("<html", "<head", "<body", "<!doctype html")):
        title = re.search(r"<title>(.*?)</title>", without_comments, flags=re.S | re.I)
        return "an HTML page instead of a feed" + (f" (title: {title.group(1).strip()!r})" if title else "")
    exc = parsed.get("bozo_exception")
    return f"ill-formed XML: {_describe(exc)}" if exc else "not an RSS or Atom document"


def _describe(exc) -> str:
    if exc is None:
        return ""
    line = getattr(exc, "getLineNumber", None)
    where = f" (line {line()})" if callable(line) else ""
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return f"wrong encoding: {exc}"
    if isinstance(exc, feedparser.NonXMLContentType):
        return f"not served as XML: {exc}"
    return f"{exc.getMessage() if hasattr(exc, 'getMessage') else exc}{where}"


_XML_MEDIA_TYPES = ("application/xml", "text/xml", "application/rss+xml", "application/atom+xml",
                    "application/rdf+xml", "application/xml-dtd")


def xml_content_type(content_type: str | None) -> str:
    """The Content-Type handed to feedparser: the server's, unless it does not say XML.

    The media type is the server's label, not part of the document: a feed served without a
    Content-Type, or as text/html, is not damaged (feedparser would flag it `NonXMLContentType`
    and the feed would read as `recovered`). Such a feed is parsed as `application/xml`, keeping
    any charset the server gave, so only the document's own faults (ill-formed XML, a wrong
    encoding declaration) make it `recovered` or `broken`. An XML type is passed unchanged (a
    `text/xml` without charset keeps its RFC 3023 meaning).
    """
    if not content_type or not content_type.strip():
        return "application/xml"
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media in _XML_MEDIA_TYPES or media.endswith("+xml"):
        return content_type
    return "application/xml" + (f";{params}" if params.strip() else "")


def parse_feed(feed: Feed, content: bytes, *, content_type: str | None = None,
               fetched_at: datetime | None = None) -> FeedResult:
    """One fetched document -> articles (dicts without `symbols_mentioned`) and rejected entries.

    `fetched_at` (the response's Date) bounds plausible publication times; `None` skips that check.
    """
    headers = {"content-type": xml_content_type(content_type), "content-location": feed.url}
    parsed = feedparser.parse(content, response_headers=headers)
    result = FeedResult(feed.id, feed.name, "ok", entries=len(parsed.entries), encoding=parsed.get("encoding"))
    linked = 0
    for entry in parsed.entries:
        record = _entry_record(feed, entry)
        link = _entry_link(entry)
        key = f"{feed.id}|{entry.get('link') or entry.get('id') or entry.get('title') or ''}"
        if link is None:
            result.rejected.append(Rejected("entry without an http(s) link", record, key))
            continue
        linked += 1
        published, field_name, why = _entry_time(entry)
        if published is None:
            result.rejected.append(Rejected(why, record, key))
            continue
        if fetched_at is not None and published > fetched_at + FUTURE_TOLERANCE:
            result.rejected.append(
                Rejected(f"published in the future ({published.isoformat()} > response time)", record, key, published)
            )
            continue
        result.articles.append(
            {
                "article_id": article_id(link),
                "published_at": published,
                "title": html_to_text(entry.get("title")),
                "summary": html_to_text(entry.get("summary")),
                "url": link,
                "publisher": feed.name,
                "feed": feed.id,
                "authors": _authors(entry),
                "published_field": field_name,
            }
        )
    if not parsed.get("version") and not parsed.entries:
        result.status, result.problem = "broken", _document_problem(content, parsed)
    elif parsed.get("bozo"):
        problem = _describe(parsed.get("bozo_exception")) or "ill-formed document"
        if not problem.startswith(("wrong encoding", "not served")):
            problem = f"ill-formed XML: {problem}"
        result.status, result.problem = ("recovered" if linked else "broken"), problem
    return result


class RssFeeds(HttpSource):
    """RSS/Atom feeds of `resources/news_feeds.yaml`, fetched through the shared SourceClient."""

    source_name = "rss"
    max_workers: int = Field(default=8, description="Feeds fetched in parallel (they are different hosts).")

    def fetch(self, feed: Feed) -> FeedResult:
        try:
            response = self.client.get(feed.url)
        except SourceError as exc:
            return failed(feed.id, feed.name, str(exc))
        try:
            return parse_feed(feed, response.content, content_type=response.headers.get("content-type"),
                              fetched_at=response_time(response))
        except Exception as exc:  # noqa: BLE001 - one feed's surprise must not stop the other feeds
            return FeedResult(feed.id, feed.name, "broken", problem=f"parser error: {type(exc).__name__}: {exc}")

    def fetch_all(self, feeds: list[Feed]) -> list[FeedResult]:
        """One result per feed, in catalog order; a failing feed never stops the others."""
        if not feeds:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(feeds)))) as pool:
            return list(pool.map(self.fetch, feeds))
