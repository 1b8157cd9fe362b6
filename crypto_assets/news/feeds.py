"""RSS/Atom feeds: the catalog, the parser (feedparser) and the resource that fetches them.

Every fetched feed ends in one `FeedResult` with a status:
- ``ok``: parsed cleanly (it may still have zero entries, or entries that were quarantined);
- ``recovered``: the document is damaged (bad encoding declaration, bare ``&``, ...) but
  feedparser recovered entries with links; they land, and the problem is reported. A missing
  or non-XML Content-Type is the server's label, not damage: it never makes a feed `recovered`;
- ``broken``: nothing usable could be read (an HTML page, an empty document, XML so broken
  that no entry with a link survives); the reason is reported;
- ``failed``: the fetch itself failed (HTTP error, timeout);
- ``no_recording``: replay mode has no recording of this source (not a fault of the source).

Each entry either becomes an article or is rejected with a reason (no http(s) link, no
usable date, a date in the future, a link too long to be one). An entry without a usable date
is never stamped "now".

Summary: the first non-empty summary-like field of the item, read from the XML itself
(`<description>`, `<dc:description>`, Atom `<summary>`, then `<content:encoded>`, Atom
`<content>`, in document order). feedparser keeps only the LAST of the fields it maps to
`summary`: CoinDesk's layout (a real `<description>` followed by an empty `<content:encoded/>`
and an empty `<dc:description/>`) leaves it an empty string, and a `<media:description>` image
caption can take the place of the summary. A document that is not well-formed XML (feedparser
recovered it) is scanned leniently for the same fields; only when an entry cannot be matched to
an item (by guid/id, link, or position) are feedparser's own fields used: its summary, then
its content.

Text caps: no field may make a record too big to store (MySQL refuses a packet over
`max_allowed_packet`, a MEDIUMTEXT holds 16 MB): a title, summary or author list longer than
`TEXT_CAPS` is cut there and the cut is reported (`FeedResult.truncated`, which the asset puts
in `quarantine` and counts in its metadata); a link longer than `MAX_URL_CHARS` cannot be cut
(it would point elsewhere) and rejects its entry. Quarantined records keep at most
`_RECORD_TEXT_LIMIT` characters of each field.
"""

from __future__ import annotations

import calendar
import html
import re
import urllib.parse
import warnings
import xml.etree.ElementTree as ET
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
_RECORD_TEXT_LIMIT = 1000  # characters of each field of a rejected entry kept in the quarantine
# Longest text kept per article field (characters, after HTML is stripped); see the module docstring.
# Real headlines are < 300 characters, RSS descriptions and Guardian trail texts < 2,000.
TEXT_CAPS = {"title": 1_000, "summary": 10_000, "authors": 1_000}
MAX_URL_CHARS = 4_096  # a longer link is not a link to an article: the entry is rejected


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


def cap_fields(row: dict, caps: dict[str, int]) -> dict[str, int]:
    """Cut each string field of `row` named in `caps` to its cap, in place; returns
    {field: original length} of the fields that were cut (empty when none was)."""
    cut = {}
    for name, cap in caps.items():
        value = row.get(name)
        if isinstance(value, str) and len(value) > cap:
            cut[name] = len(value)
            row[name] = value[:cap]
    return cut


def truncation_reason(fields: dict[str, int], caps: dict[str, int]) -> str:
    """The quarantine reason of a cut record: stable per set of fields, so it groups."""
    return "text truncated: " + ", ".join(f"{name} over {caps[name]} characters" for name in sorted(fields))


@dataclass
class FeedResult:
    """What one source (a feed, or the Guardian API) gave in one run."""

    feed_id: str
    publisher: str
    status: str  # ok | recovered | broken | failed | no_recording (replay only: nothing was recorded)
    problem: str | None = None
    entries: int = 0
    articles: list[dict] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    encoding: str | None = None
    # Articles kept with a field cut to TEXT_CAPS: reason, record (lengths, key) and key, as a
    # Rejected; the article itself is in `articles`.
    truncated: list[Rejected] = field(default_factory=list)

    def add_article(self, article: dict) -> None:
        """Keep `article` with its text cut to TEXT_CAPS, noting any cut in `truncated`."""
        cut = cap_fields(article, TEXT_CAPS)
        if cut:
            record = {"article_id": article["article_id"], "feed": article.get("feed"), "url": article.get("url"),
                      "title": (article.get("title") or "")[:200],
                      **{f"{name}_chars": n for name, n in cut.items()},
                      **{f"{name}_kept_chars": TEXT_CAPS[name] for name in cut}}
            self.truncated.append(Rejected(truncation_reason(cut, TEXT_CAPS), record,
                                           f"{article.get('feed')}|{article.get('url')}", article.get("published_at")))
        self.articles.append(article)

    @property
    def usable(self) -> bool:
        """The source answered with something we could read (possibly zero articles)."""
        return self.status in ("ok", "recovered")

    def summary(self) -> dict:
        out = {"status": self.status, "entries": self.entries, "articles": len(self.articles),
               "rejected": len(self.rejected)}
        if self.truncated:
            out["truncated"] = len(self.truncated)
        if self.problem:
            out["problem"] = self.problem
        return out


def failed(feed_id: str, publisher: str, reason: str, exc: Exception | None = None) -> FeedResult:
    """A source that could not be fetched; in replay, a request nothing was recorded for is
    `no_recording` (the source is not broken: replay has nothing to serve for it)."""
    if getattr(exc, "replay_miss", False):
        return FeedResult(feed_id, publisher, NO_RECORDING, problem="replay: no recording of this source")
    return FeedResult(feed_id, publisher, "failed", problem=reason)


NO_RECORDING = "no_recording"


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


def _entry_record(feed: Feed, entry, summary: str | None = None) -> dict:
    record = {"feed": feed.id, "feed_url": feed.url}
    for key in ("id", "title", "link", "published", "updated", "author"):
        if _raw(entry, key):
            record[key] = str(_raw(entry, key))[:_RECORD_TEXT_LIMIT]
    if summary:
        record["summary"] = str(summary)[:_RECORD_TEXT_LIMIT]
    return record


# Namespaces of the summary-like elements (see the module docstring).
_RSS1 = "http://purl.org/rss/1.0/"
_ATOM = "http://www.w3.org/2005/Atom"
_ATOM03 = "http://purl.org/atom/ns#"
_DC = "http://purl.org/dc/elements/1.1/"
_CONTENT = "http://purl.org/rss/1.0/modules/content/"
_ITEM_TAGS = {"item", f"{{{_RSS1}}}item", f"{{{_ATOM}}}entry", f"{{{_ATOM03}}}entry"}
_SUMMARY_TAGS = ("description", f"{{{_RSS1}}}description", f"{{{_DC}}}description", f"{{{_ATOM}}}summary",
                 f"{{{_ATOM03}}}summary")
_CONTENT_TAGS = (f"{{{_CONTENT}}}encoded", f"{{{_ATOM}}}content", f"{{{_ATOM03}}}content")
_ID_TAGS = ("guid", "link", f"{{{_RSS1}}}link", f"{{{_ATOM}}}id", f"{{{_ATOM03}}}id")
_LINK_TAGS = (f"{{{_ATOM}}}link", f"{{{_ATOM03}}}link")


@dataclass
class _RawItem:
    keys: set[str]
    summary: str | None  # the first non-empty summary-like text; None when the item has none


# C1 control characters that are really windows-1252 punctuation (a "don\x92t"), mapped as
# feedparser maps them.
_CP1252 = {code: bytes([code]).decode("cp1252") for code in range(0x80, 0xA0)
           if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}  # undefined in windows-1252


def _as_feedparser_decodes(text: str, encoding: str | None) -> str:
    """The repairs feedparser applies to every text: UTF-8 read as Latin-1 and re-encoded (a
    'â€¦' for '…') when the document is UTF-8, and C1 controls as windows-1252."""
    if (encoding or "").lower() in ("utf-8", "utf-8_invalid_python_3"):
        try:
            text = text.encode("iso-8859-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return text.translate(_CP1252)


def _element_text(element: ET.Element, encoding: str | None) -> str | None:
    return html_to_text(_as_feedparser_decodes("".join(element.itertext()), encoding))


def _raw_items(content: bytes, encoding: str | None, base_url: str) -> list[_RawItem] | None:
    """Each item/entry of the document, in document order: read as XML when it is well-formed,
    else scanned leniently (`_scanned_items`); None when neither finds an item."""
    try:
        text = content.decode(encoding) if encoding else content
        if isinstance(text, str):
            text = text.lstrip("\ufeff")
        root = ET.fromstring(text)
    except (ET.ParseError, LookupError, UnicodeError, ValueError):
        return _scanned_items(content, encoding, base_url)
    items = []
    for element in root.iter():
        if element.tag not in _ITEM_TAGS:
            continue
        keys: set[str] = set()
        found: dict[str, list[str]] = {"summary": [], "content": []}
        for child in element:
            if child.tag in _ID_TAGS and child.text and child.text.strip():
                keys.add(urllib.parse.urljoin(base_url, child.text.strip()))
                keys.add(child.text.strip())
            elif child.tag in _LINK_TAGS and child.get("href"):
                keys.add(urllib.parse.urljoin(base_url, child.get("href").strip()))
            elif child.tag in _SUMMARY_TAGS or child.tag in _CONTENT_TAGS:
                value = _element_text(child, encoding)
                if value:
                    found["summary" if child.tag in _SUMMARY_TAGS else "content"].append(value)
        summary = next(iter(found["summary"] + found["content"]), None)
        items.append(_RawItem(keys, summary))
    return items


# The lenient scan of a document that is not well-formed XML (a bare '&', a bad byte: feedparser
# recovered it): items and their fields by tag name as written. Prefixes are the conventional
# ones (`dc:`, `content:`); `media:description` (an image caption) is not a summary, and a
# `<media:content>` block is skipped whole.
_SCAN_ITEM = re.compile(r"<(item|entry)\b[^>]*>(.*?)</\1\s*>", re.S | re.I)
_SCAN_FIELD = re.compile(r"<(?P<tag>[\w.-]+(?::[\w.-]+)?)\b(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</(?P=tag)\s*>)", re.S)
_SCAN_SUMMARY = {"description", "dc:description", "summary", "atom:summary", "rss:description"}
_SCAN_CONTENT = {"content:encoded", "content", "atom:content"}
_SCAN_ID = {"guid", "link", "id", "atom:id"}
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)


def _scanned_text(body: str, encoding: str | None) -> str | None:
    parts, at = [], 0
    for match in _CDATA.finditer(body):  # CDATA is literal; the rest is XML-escaped
        parts += [html.unescape(body[at:match.start()]), match.group(1)]
        at = match.end()
    parts.append(html.unescape(body[at:]))
    return html_to_text(_as_feedparser_decodes("".join(parts), encoding))


def _scanned_items(content: bytes, encoding: str | None, base_url: str) -> list[_RawItem] | None:
    try:
        text = content.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        text = content.decode("utf-8", errors="replace")
    items = []
    for item in _SCAN_ITEM.finditer(text):
        keys: set[str] = set()
        found: dict[str, list[str]] = {"summary": [], "content": []}
        for field_match in _SCAN_FIELD.finditer(item.group(2)):
            tag, body = field_match["tag"].lower(), field_match["body"]
            if tag in _SCAN_ID and body and body.strip():
                value = _scanned_text(body, encoding) or ""
                keys |= {value, urllib.parse.urljoin(base_url, value)}
            elif tag in ("link", "atom:link"):
                href = re.search(r"""href\s*=\s*["']([^"']+)""", field_match["attrs"])
                if href:
                    keys.add(urllib.parse.urljoin(base_url, html.unescape(href.group(1)).strip()))
            elif body and (tag in _SCAN_SUMMARY or tag in _SCAN_CONTENT):
                value = _scanned_text(body, encoding)
                if value:
                    found["summary" if tag in _SCAN_SUMMARY else "content"].append(value)
        items.append(_RawItem(keys - {""}, next(iter(found["summary"] + found["content"]), None)))
    return items or None


def _matching_item(entry, index: int, items: list[_RawItem], count: int) -> _RawItem | None:
    """The raw item of a feedparser entry: by guid/id or link, else by position when both
    sides list the same number of items."""
    keys = [entry.get("id"), entry.get("link"), *(l.get("href") for l in entry.get("links", []))]
    for key in keys:
        if key:
            for item in items:
                if key in item.keys:
                    return item
    return items[index] if len(items) == count else None


def entry_summary(entry, raw: _RawItem | None) -> str | None:
    """The summary text of an entry (see the module docstring), HTML stripped."""
    if raw is not None:
        return raw.summary
    candidates = [entry.get("summary"), *(c.get("value") for c in entry.get("content", []) if isinstance(c, dict))]
    for value in candidates:
        text = html_to_text(value) if isinstance(value, str) else None
        if text:
            return text
    return None


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
    raw_items = _raw_items(content, parsed.get("encoding"), feed.url) if parsed.entries else None
    linked = 0
    for index, entry in enumerate(parsed.entries):
        raw = _matching_item(entry, index, raw_items, len(parsed.entries)) if raw_items else None
        summary = entry_summary(entry, raw)
        record = _entry_record(feed, entry, summary)
        link = _entry_link(entry)
        key = f"{feed.id}|{entry.get('link') or entry.get('id') or entry.get('title') or ''}"[:_RECORD_TEXT_LIMIT]
        if link is None:
            result.rejected.append(Rejected("entry without an http(s) link", record, key))
            continue
        if len(link) > MAX_URL_CHARS:
            result.rejected.append(Rejected(f"link longer than {MAX_URL_CHARS} characters", record, key))
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
        result.add_article(
            {
                "article_id": article_id(link),
                "published_at": published,
                "title": html_to_text(entry.get("title")),
                "summary": summary,
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
            return failed(feed.id, feed.name, str(exc), exc)
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
