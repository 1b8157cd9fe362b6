"""The one HTTP client every source goes through.

Timeouts, retries with exponential backoff on 429/5xx and transport errors (honouring
`Retry-After`), a per-source request budget (minimum spacing and a cap per run), and errors
that name the source and the URL but never the API key. Live and replay mode differ only in
the `httpx` transport, so the parsing code is the same in both.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
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
    api_key_env: str | None = None
    api_key_required: bool = False
    api_key_param: str | None = None  # sent as a query parameter ...
    api_key_header: str | None = None  # ... or as a header
    pool: str | None = None  # Dagster concurrency pool for runs that call this source
    headers: Mapping[str, str] = field(default_factory=dict)


class SourceError(RuntimeError):
    """A request to a source failed; the message names the source and the (redacted) URL."""

    def __init__(self, source: str, url: str, message: str, status: int | None = None):
        self.source, self.url, self.status = source, url, status
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
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
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
    ):
        self.spec = spec
        self._api_key = api_key
        self._sleep, self._clock, self._log = sleep, clock, log or (lambda _msg: None)
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

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.get(path, params)
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(
                self.spec.name, self._display_url(response.request.url), f"response is not JSON: {exc}"
            ) from exc

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
                body = response.text[:300].strip()
                last_problem = f"HTTP {response.status_code} {response.reason_phrase}: {body}"
                if response.status_code not in RETRY_STATUSES:
                    raise SourceError(self.spec.name, shown, last_problem, status=response.status_code)
                wait = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == attempts - 1:
                break
            if wait is None:
                backoff = min(self.spec.backoff_max_s, self.spec.backoff_base_s * 2**attempt)
                wait = backoff * (0.5 + random.random() / 2)  # jitter: retries of parallel runs spread out
            self.retries_made += 1
            self._log(f"{self.spec.name}: {last_problem}; retry {attempt + 1}/{attempts - 1} in {wait:.1f}s")
            self._sleep(wait)
        raise SourceError(self.spec.name, shown, f"failed after {attempts} attempts; last error: {last_problem}")

    # -- internals ------------------------------------------------------------------------

    def _respect_budget(self, shown_url: str) -> None:
        cap = self.spec.max_requests_per_run
        if cap is not None and self.requests_made >= cap:
            raise SourceBudgetExceeded(
                self.spec.name, shown_url, f"request budget of {cap} requests per run is spent"
            )
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
        text = str(url)
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text
