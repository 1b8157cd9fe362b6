"""Reddit through praw: the resource (live or replay) and the parser (submission -> row).

Replay mode hands praw a `requests.Session` whose HTTP is answered from the replay catalog
(`resources/replay/reddit/catalog.yaml`, served by the same `httpx.MockTransport` every
source uses). So praw itself authenticates, pages and parses the recorded listing into
`Submission` objects, exactly as live: the parser sees the same objects in both modes.
`post_row` also accepts a listing child's plain `data` dict, whose keys are the attributes
praw sets on a Submission.

Text caps (`TEXT_CAPS`, as for news): no post can make a row too big to store or too long for
its column. A longer field is cut, the post lands, and the cut is noted
(`SubredditResult.truncated`: the asset puts it in `quarantine` and counts it in metadata).
Reddit's own limits are 300 characters for a title and 40,000 for a self post's body, so only
a broken or hostile listing is ever cut. A rejected submission's quarantine record keeps at most
`_RECORD_TEXT_LIMIT` characters of each attribute.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import dagster as dg
import httpx
import requests
import yaml
from pydantic import Field, PrivateAttr
from requests.adapters import BaseAdapter

from crypto_assets.news.feeds import cap_fields, truncation_reason
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.catalog import provenance
from crypto_assets.sources.client import MissingCredentialsError, redact_then_cut
from crypto_assets.sources.replay import replay_transport
from crypto_assets.warehouse.schema import STR_MAX_CHARS
from crypto_assets.warehouse.store import to_utc
from crypto_assets.sources.requests_bridge import requests_response

if TYPE_CHECKING:
    import praw

SOURCE = "reddit"
CREDENTIAL_ENV = {
    "client_id": "REDDIT_CLIENT_ID",
    "client_secret": "REDDIT_CLIENT_SECRET",
    "user_agent": "REDDIT_USER_AGENT",
}
REDDIT_URL = "https://www.reddit.com"
MAX_LIMIT = 1000  # Reddit lists at most ~1000 items per listing
# Longest value kept per `social_posts` field (characters); `author` and `subreddit` are `str`
# columns (191 characters on every backend).
TEXT_CAPS = {"title": 1_000, "selftext": 40_000, "url": 4_096, "permalink": 4_096, "author": STR_MAX_CHARS,
             "subreddit": STR_MAX_CHARS}
_RECORD_TEXT_LIMIT = 1000


@dataclass(frozen=True)
class SubredditSpec:
    name: str
    limit: int = 100


@cache
def _subreddit_file(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text()) or {}


def load_subreddits(path: str | Path | None = None) -> list[SubredditSpec]:
    raw = _subreddit_file(str(path or RESOURCES_DIR / "subreddits.yaml"))
    default = int(raw.get("default_limit", 100))
    out = []
    for entry in raw.get("subreddits", []):
        if isinstance(entry, str):
            spec = SubredditSpec(entry, default)
        else:
            spec = SubredditSpec(entry["name"], int(entry.get("limit", default)))
        if not 1 <= spec.limit <= MAX_LIMIT:
            raise ValueError(f"subreddits.yaml: limit for r/{spec.name} must be 1..{MAX_LIMIT}")
        out.append(spec)
    return out


def _name(value) -> str | None:
    """Redditor/Subreddit objects print as their name; listing JSON has plain strings."""
    if value is None:
        return None
    text = str(value)
    return None if text in ("", "[deleted]") else text


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def post_row(data: dict) -> dict:
    """A submission (`vars(submission)` or a listing child's `data`) -> a `social_posts` row
    (without symbols/source/ingested_at). Raises ValueError when it has no id or no time."""
    fullname = data.get("name") or (f"t3_{data['id']}" if data.get("id") else None)
    if not fullname:
        raise ValueError("submission without id")
    if len(str(fullname)) > STR_MAX_CHARS:  # the table's key: cannot be cut, and would fail the write
        raise ValueError(f"submission id longer than {STR_MAX_CHARS} characters")
    created = data.get("created_utc")
    if not isinstance(created, (int, float)) or isinstance(created, bool):
        raise ValueError(f"submission {fullname} without a usable created_utc: {created!r}")
    permalink = data.get("permalink")
    ratio = data.get("upvote_ratio")
    return {
        "post_id": fullname,
        "published_at": datetime.fromtimestamp(float(created), tz=timezone.utc),
        "subreddit": _name(data.get("subreddit")),
        "author": _name(data.get("author")),
        "title": data.get("title"),
        "selftext": data.get("selftext") or None,
        "url": data.get("url"),
        "permalink": f"{REDDIT_URL}{permalink}" if permalink and permalink.startswith("/") else permalink,
        "score": _int(data.get("score")),
        "num_comments": _int(data.get("num_comments")),
        "upvote_ratio": float(ratio) if isinstance(ratio, (int, float)) else None,
        "over_18": bool(data.get("over_18")) if data.get("over_18") is not None else None,
        "is_self": bool(data.get("is_self")) if data.get("is_self") is not None else None,
    }


def listing_children(listing: dict) -> list[dict]:
    """The submission dicts of a raw Listing JSON (kind t3 only)."""
    return [c["data"] for c in listing.get("data", {}).get("children", []) if c.get("kind") == "t3"]


class _ReplayAdapter(BaseAdapter):
    """A requests adapter answering from an httpx transport (the shared replay catalog)."""

    def __init__(self, transport: httpx.BaseTransport):
        super().__init__()
        self._transport = transport

    def send(self, request, **kwargs):
        body = request.body.encode() if isinstance(request.body, str) else request.body
        answer = self._transport.handle_request(
            httpx.Request(request.method, request.url, headers=dict(request.headers), content=body or b"")
        )
        answer.read()
        return requests_response(answer, request)

    def close(self) -> None:
        pass


def replay_session(replay_dir: str | None = None) -> requests.Session:
    session = requests.Session()
    adapter = _ReplayAdapter(replay_transport(SOURCE, "", replay_dir))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass
class SubredditResult:
    subreddit: str
    status: str  # ok | failed
    problem: str | None = None
    posts: list[dict] = field(default_factory=list)
    rejected: list[tuple[str, dict]] = field(default_factory=list)
    listed: int = 0
    truncated: list[tuple[str, dict]] = field(default_factory=list)  # (reason, record) of posts kept cut


class RedditSource(dg.ConfigurableResource):
    """Reddit via praw. Live mode needs REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET and
    REDDIT_USER_AGENT (an app of type "script" at reddit.com/prefs/apps); a missing one fails
    at resource setup, naming the variables."""

    mode: str = Field(default="live", description="'live' calls Reddit; 'replay' serves recorded responses.")
    client_id: str | None = Field(default=None, description="Default: env REDDIT_CLIENT_ID.")
    client_secret: str | None = Field(default=None, description="Default: env REDDIT_CLIENT_SECRET.")
    user_agent: str | None = Field(default=None, description="Default: env REDDIT_USER_AGENT.")
    replay_dir: str | None = Field(default=None, description="Folder of replay catalogs (default resources/replay).")

    _reddit: object | None = PrivateAttr(default=None)  # a praw.Reddit

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._reddit = self.make_reddit()

    @property
    def provenance(self) -> str:
        return provenance(self.mode, SOURCE)

    def credentials(self) -> dict[str, str]:
        values = {key: getattr(self, key) or os.environ.get(env) for key, env in CREDENTIAL_ENV.items()}
        missing = [CREDENTIAL_ENV[k] for k, v in values.items() if not v]
        if missing:
            raise MissingCredentialsError(
                f"reddit: set the environment variable(s) {', '.join(missing)} to use the live source "
                f"(a 'script' app at https://www.reddit.com/prefs/apps), or run with CRYPTO_SOURCE_MODE=replay"
            )
        return values

    def make_reddit(self) -> praw.Reddit:
        import praw  # imported here: praw (with aiohttp) adds ~0.35 s to every code-location load

        common = {"check_for_updates": False, "check_for_async": False}
        if self.mode == "replay":
            # praw needs some app credentials to run its (recorded) token request; these are not secrets.
            return praw.Reddit(client_id="replay", client_secret="replay", user_agent="crypto-assets replay",
                               requestor_kwargs={"session": replay_session(self.replay_dir)}, **common)
        if self.mode != "live":  # simulated mode has no Reddit simulation: never real posts in its warehouse
            raise ValueError(f"reddit: mode must be 'live' or 'replay' (simulated mode has no Reddit), "
                             f"got {self.mode!r}")
        return praw.Reddit(**self.credentials(), **common)

    @property
    def reddit(self) -> praw.Reddit:
        if self._reddit is None:  # outside a run (notebook, test)
            self._reddit = self.make_reddit()
        return self._reddit

    def new_posts(self, spec: SubredditSpec, start: datetime, end: datetime) -> SubredditResult:
        """Submissions of r/<name>/new created in [start, end); newest first, so the listing is
        read until it passes `start` (or `limit` items)."""
        start, end = to_utc(start), to_utc(end)
        import praw
        import prawcore

        result = SubredditResult(spec.name, "ok")
        try:
            for submission in self.reddit.subreddit(spec.name).new(limit=spec.limit):
                result.listed += 1
                data = vars(submission)
                try:
                    row = post_row(data)
                except ValueError as exc:
                    result.rejected.append((str(exc)[:_RECORD_TEXT_LIMIT], {
                        k: str(v)[:_RECORD_TEXT_LIMIT] for k, v in data.items() if not k.startswith("_")}))
                    continue
                if row["published_at"] < start:
                    break
                if row["published_at"] < end:
                    cut = cap_fields(row, TEXT_CAPS)
                    if cut:
                        result.truncated.append((truncation_reason(cut, TEXT_CAPS), {
                            "post_id": row["post_id"], "subreddit": row["subreddit"],
                            "published_at": row["published_at"],
                            "title": (row.get("title") or "")[:200],
                            **{f"{name}_chars": n for name, n in cut.items()},
                            **{f"{name}_kept_chars": TEXT_CAPS[name] for name in cut}}))
                    result.posts.append(row)
        except (prawcore.PrawcoreException, praw.exceptions.PRAWException) as exc:
            result.status = "failed"
            # the app's id and secret never reach the metadata, even if an error quotes them
            secrets = [getattr(self, k) or os.environ.get(CREDENTIAL_ENV[k]) for k in ("client_id", "client_secret")]
            result.problem = redact_then_cut(f"r/{spec.name}: {type(exc).__name__}: {exc}",
                                             [s for s in secrets if s], 1000)
        return result
