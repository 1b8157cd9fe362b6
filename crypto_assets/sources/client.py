"""The one HTTP client every source goes through.

Timeouts, retries with exponential backoff on 429/5xx and transport errors (honouring
`Retry-After` up to `retry_after_max_s`; the backoff is a floor, so a `Retry-After` of 0, -5 or
a past date does not make the retries a burst), a per-source request budget (minimum spacing, a cap
on requests and on retry waiting per run), and errors that name the source and the URL but
never the API key. Live and replay mode differ only in the `httpx` transport, so the parsing
code is the same in both.

Secrets: every message the client produces (exception texts, log lines, and so whatever the
assets copy into Dagster metadata) goes through one `redact` step that replaces each known
secret value (the configured key, the value of the source's key variable, any `secrets=`
given), raw or URL-encoded, by `***`. A provider that echoes the key in its error body, or a
URL carrying it, never shows it. The same values are scrubbed from httpx's own request log.

A text that is shortened (an error body kept to 300 characters, a metadata value) goes through
`redact_then_cut(text, secrets, limit)`: secrets are blanked BEFORE the cut, so a key cut in half
cannot escape recognition. `redact` also blanks any piece of at least `PARTIAL_SECRET_CHARS` (8)
characters that starts or ends a secret (its first or last 8+ characters, raw or URL-encoded):
what is left of a key that someone else's cut (`text[:300]`) split in two.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class SourceSpec:
    """How to talk to one provider; loaded from `resources/sources.yaml`."""

    name: str
    base_url: str = ""
    timeout_s: float = 20.0
    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    min_interval_s: float = 0.0  # spacing between requests (the provider's rate budget)
    max_requests_per_run: int | None = None
    # Longest single wait a `Retry-After` may ask for; a longer one (a day, a date in 2099,
    # `inf`) fails the request at once, naming the source and the requested wait.
    retry_after_max_s: float = 300.0
    # Total seconds one client (one run) may spend waiting between retries (Retry-After and
    # backoff together): the time side of the rate budget. Past it the run fails.
    retry_wait_budget_s: float = 900.0
    api_key_env: str | None = None
    api_key_required: bool = False
    api_key_param: str | None = None  # sent as a query parameter ...
    api_key_header: str | None = None  # ... or as a header
    pool: str | None = None  # Dagster concurrency pool for runs that call this source
    # The provider's published rate limit for the endpoints used ({requests: N, per_s: W, source: where it
    # is published}), documented next to `min_interval_s`; tests keep the spacing within it.
    published_limit: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class SourceError(RuntimeError):
    """A request to a source failed; the message names the source and the (redacted) URL."""

    def __init__(self, source: str, url: str, message: str, status: int | None = None):
        self.source, self.url, self.status = source, url, status
        # True when the replay transport had no recording for the request (not a fault of the source).
        self.replay_miss = False
        super().__init__(f"{source}: {message} ({url})")


class SourceBudgetExceeded(SourceError):
    pass


class MissingCredentialsError(RuntimeError):
    pass


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds):
            return None  # meaningless: fall back to the backoff
        return max(0.0, seconds)  # may be inf: the caller refuses waits beyond its cap
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def response_time(response: httpx.Response) -> datetime:
    """The response's Date header as UTC, or the local clock when it has none."""
    header = response.headers.get("Date")
    if header:
        try:
            when = email.utils.parsedate_to_datetime(header)
            return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        except (TypeError, ValueError):
            pass
    return datetime.now(timezone.utc)


REDACTED = "***"
_MIN_SECRET_CHARS = 4  # shorter "keys" would turn every message into asterisks; none is that short
# A piece of a secret this long that begins or ends it is blanked too (what a cut leaves of a key).
PARTIAL_SECRET_CHARS = 8
# Default length `redact_then_cut` keeps (an error body in a message).
ERROR_TEXT_CHARS = 300
_known_secrets: dict[str, re.Pattern] = {}


def _char_forms(char: str) -> str:
    # raw, percent-encoded as `quote` does it, and percent-encoded even where `quote` would not
    # ('-' as %2D is legal too)
    forms = {re.escape(char), re.escape(urllib.parse.quote(char, safe="")),
             re.escape("".join(f"%{b:02X}" for b in char.encode("utf-8")))}
    if char == " ":
        forms.add(r"\+")
    return "(?:" + "|".join(sorted(forms)) + ")"


def _pattern(secret: str) -> re.Pattern:
    """Matches a secret as it may appear in text: raw, or with any of its characters
    percent-encoded (query strings, paths) or a space as '+'. A secret of PARTIAL_SECRET_CHARS
    or more also matches any piece of it at least that long which begins it (a key cut at the
    end of a shortened text) or ends it (a key cut at the start)."""
    chars = [_char_forms(c) for c in secret]
    whole = "".join(chars)
    n = PARTIAL_SECRET_CHARS
    if len(secret) <= n:
        return re.compile(whole, re.IGNORECASE)  # %2f and %2F alike
    # Longest first: the whole secret, then its prefixes (greedy nested optionals), then suffixes.
    prefix = "".join(chars[:n]) + "".join("(?:" + c for c in chars[n:]) + ")?" * (len(chars) - n)
    suffixes = ["".join(chars[i:]) for i in range(1, len(chars) - n + 1)]
    return re.compile("|".join([whole, prefix, *suffixes]), re.IGNORECASE)


def _patterns(secrets: Iterable[str] | None) -> dict[str, re.Pattern]:
    patterns = dict(_known_secrets)
    for secret in secrets or ():
        if secret and len(secret) >= _MIN_SECRET_CHARS and secret not in patterns:
            patterns[secret] = _pattern(secret)
    return patterns


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every known secret (registered by a client, or given) replaced by `***`,
    and any piece of PARTIAL_SECRET_CHARS+ characters that begins or ends one."""
    patterns = _patterns(secrets)
    for secret in sorted(patterns, key=len, reverse=True):
        text = patterns[secret].sub(REDACTED, text)
    return text


def redact_then_cut(text: object, secrets: Iterable[str] | None = None, limit: int = ERROR_TEXT_CHARS) -> str:
    """`text` (str() of it) without any secret, then cut to `limit` characters and stripped.

    The ONE way to shorten a text that may carry a key (a provider's error body, an exception
    text headed for a log line or Dagster metadata): redacting after a cut would miss a key cut
    in half. Only the head that can reach the result is redacted (a secret, even URL-encoded,
    that overlaps the first `limit` characters lies wholly within it), so a 17 MB body costs
    no more than a short one; what the cut leaves of a secret at the end is blanked too."""
    text = str(text)
    secrets = tuple(s for s in (secrets or ()) if s)
    longest = max((len(s) for s in (*_known_secrets, *secrets)), default=0)
    head = text[: limit + 12 * longest]  # a character's longest form: 4 UTF-8 bytes as '%XX' each
    return redact(redact(head, secrets)[:limit], secrets).strip()


def register_secret(secret: str | None) -> None:
    """Remember a secret value so that every message of this process's source clients hides it."""
    if secret and len(secret) >= _MIN_SECRET_CHARS and secret not in _known_secrets:
        _known_secrets[secret] = _pattern(secret)


class _RedactSecrets(logging.Filter):
    """Scrubs known secrets from records of httpx/httpcore, which log every request URL at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _known_secrets:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactSecrets()
for _name in ("httpx", "httpcore"):
    if _FILTER not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_FILTER)


class SourceClient:
    def __init__(
        self,
        spec: SourceSpec,
        *,
        transport: httpx.BaseTransport | None = None,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
        secrets: Iterable[str] = (),
    ):
        self.spec = spec
        self._api_key = api_key
        env_key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        self._secrets = tuple(s for s in (api_key, env_key, *secrets) if s)
        for secret in self._secrets:
            register_secret(secret)
        self._sleep, self._clock = sleep, clock
        sink = log or (lambda _msg: None)
        self._log = lambda message: sink(self.redact(message))
        headers = {"User-Agent": "crypto-assets/0.1 (+data pipeline)", **spec.headers}
        if api_key and spec.api_key_header:
            headers[spec.api_key_header] = api_key
        self._http = httpx.Client(
            base_url=spec.base_url,
            timeout=spec.timeout_s,
            transport=transport,
            headers=headers,
            follow_redirects=True,
        )
        self.requests_made = 0
        self.retries_made = 0
        self.retry_waited_s = 0.0  # counted against spec.retry_wait_budget_s
        self._last_request_at: float | None = None
        # Server time of the last successful response (its Date header): "now" for the
        # payload, which in replay mode is the time of the recording.
        self.last_response_at: datetime | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public ---------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """`text` without any secret this client knows of (see the module docstring)."""
        return redact(text, self._secrets)

    def redact_then_cut(self, text: object, limit: int = ERROR_TEXT_CHARS) -> str:
        """`text` without this client's secrets, then cut to `limit` characters (see the module
        function of the same name)."""
        return redact_then_cut(text, self._secrets, limit)

    def error(self, url: str, message: str, status: int | None = None, kind: type[SourceError] | None = None):
        """A SourceError (or `kind`) whose every part has been redacted. Parsers that fail on a
        payload should raise through this too."""
        return (kind or SourceError)(self.spec.name, self.redact(url), self.redact(message), status=status)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.get(path, params)
        try:
            return response.json()
        except ValueError as exc:
            raise self.error(self._display_url(response.request.url), f"response is not JSON: {exc}") from None

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET with retries; returns a 2xx response or raises `SourceError`."""
        params = dict(params or {})
        if self._api_key and self.spec.api_key_param:
            params[self.spec.api_key_param] = self._api_key
        request = self._http.build_request("GET", path, params=params)
        shown = self._display_url(request.url)
        attempts = self.spec.max_retries + 1
        last_problem = ""
        for attempt in range(attempts):
            self._respect_budget(shown)
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                wait = None
            else:
                if response.status_code < 400:
                    self.last_response_at = response_time(response)
                    return response
                body = self.redact_then_cut(response.text)
                last_problem = f"HTTP {response.status_code} {response.reason_phrase}: {body}"
                if response.status_code not in RETRY_STATUSES:
                    error = self.error(shown, last_problem, status=response.status_code)
                    error.replay_miss = response.headers.get("X-Replay") == "miss"
                    raise error
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is not None and not wait <= self.spec.retry_after_max_s:
                    asked = self.redact_then_cut(response.headers.get("Retry-After", ""), 60)
                    raise self.error(
                        shown,
                        f"the server asked to wait {_seconds(wait)} before retrying (Retry-After: {asked}), more "
                        f"than this source's retry_after_max_s of {_seconds(self.spec.retry_after_max_s)}; failing "
                        f"instead of waiting. Last error: {last_problem}",
                        status=response.status_code,
                    )
            if attempt == attempts - 1:
                break
            # The backoff is a floor: a Retry-After of 0, -5 or a past date (read as 0) must not
            # turn the retries into an immediate burst; a longer Retry-After (up to the cap
            # checked above) is waited out in full.
            backoff = min(self.spec.backoff_max_s, self.spec.backoff_base_s * 2**attempt)
            backoff *= 0.5 + random.random() / 2  # jitter: retries of parallel runs spread out
            wait = backoff if wait is None else max(wait, backoff)
            if self.retry_waited_s + wait > self.spec.retry_wait_budget_s:
                raise self.error(
                    shown,
                    f"retry wait budget of {_seconds(self.spec.retry_wait_budget_s)} per run is spent "
                    f"({_seconds(self.retry_waited_s)} waited, {_seconds(wait)} more requested); last error: "
                    f"{last_problem}",
                    kind=SourceBudgetExceeded,
                )
            self.retries_made += 1
            self.retry_waited_s += wait
            self._log(f"{self.spec.name}: {last_problem}; retry {attempt + 1}/{attempts - 1} in {wait:.1f}s")
            self._sleep(wait)
        raise self.error(shown, f"failed after {attempts} attempts; last error: {last_problem}")

    # -- internals ------------------------------------------------------------------------

    def _respect_budget(self, shown_url: str) -> None:
        cap = self.spec.max_requests_per_run
        if cap is not None and self.requests_made >= cap:
            raise self.error(shown_url, f"request budget of {cap} requests per run is spent", kind=SourceBudgetExceeded)
        if self.spec.min_interval_s and self._last_request_at is not None:
            wait = self._last_request_at + self.spec.min_interval_s - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_request_at = self._clock()
        self.requests_made += 1

    def _display_url(self, url: httpx.URL) -> str:
        """The URL with the API key removed, for messages and logs."""
        if self.spec.api_key_param and self.spec.api_key_param in url.params:
            url = url.copy_remove_param(self.spec.api_key_param)
        return self.redact(str(url))


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return "forever"
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
