"""Parse failures that say where they came from: the source, the coin or series, the URL.

One mechanism for every JSON source (CoinGecko, Yahoo, FRED, blockchain.com, DefiLlama):

- `fetch_json(client, path, params, subject=..., expect=dict|list)` fetches through the source's
  `SourceClient` (retries, budget, replay, key redaction), and returns the body as a
  `JsonObject`/`JsonArray`: a plain dict/list that also remembers its `origin` (source,
  subject, URL with the key removed). A body of the wrong type at the top (a list where an
  object is expected, a string, null) fails right there.
- `@parser("what")` on a parse function turns any exception it raises on such a payload
  (`AttributeError: 'list' object has no attribute 'get'`, a `KeyError`, a `ValueError` about
  candle spacing, ...) into a `SourceParseError` naming the source, the subject and the URL.

`SourceParseError` is a `SourceError` with no HTTP status: callers that tolerate one coin or
series failing (a 404 for an unknown id) decide for themselves whether a parse failure is also
per coin. The message goes through the client's redaction, so no key can reach it. A parser
called directly on a plain dict (tests, notebooks) raises its own exception unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from crypto_assets.sources.client import SourceClient, SourceError


class SourceParseError(SourceError):
    """A response arrived, but its body is not what the parser expects."""


@dataclass(frozen=True)
class Origin:
    """Where a payload came from. `url` is already shown without the key."""

    client: SourceClient
    subject: str
    url: str

    def error(self, message: str) -> SourceParseError:
        return self.client.error(self.url, f"{self.subject}: {message}", kind=SourceParseError)


class JsonObject(dict):
    """A JSON object body that knows its `origin`."""

    origin: Origin | None = None


class JsonArray(list):
    """A JSON array body that knows its `origin`."""

    origin: Origin | None = None


_KINDS = {dict: (JsonObject, "a JSON object"), list: (JsonArray, "a JSON array")}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a JSON object", list: "a JSON array", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def fetch_json(client: SourceClient, path: str, params: Mapping[str, Any] | None = None, *,
               subject: str, expect: type = dict) -> JsonObject | JsonArray:
    """GET `path` as JSON of type `expect` (dict or list), tagged with its origin."""
    response = client.get(path, params)
    # The client's own display form of the URL: the key parameter removed, secrets redacted.
    origin = Origin(client, subject, client._display_url(response.request.url))
    try:
        body = response.json()
    except ValueError as exc:
        raise origin.error(f"response is not JSON: {exc}") from None
    kind, wanted = _KINDS[expect]
    if not isinstance(body, expect):
        raise origin.error(f"expected {wanted}, got {_describe(body)}: {client.redact_then_cut(response.text, 120)!r}")
    tagged = kind(body)
    tagged.origin = origin
    return tagged


F = TypeVar("F", bound=Callable[..., Any])


def parser(what: str) -> Callable[[F], F]:
    """Decorate a parse function whose first argument is a payload from `fetch_json`."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def parse(payload, *args, **kwargs):
            try:
                return fn(payload, *args, **kwargs)
            except SourceError:
                raise
            except Exception as exc:
                origin = getattr(payload, "origin", None)
                if origin is None:  # a plain payload (a test, a notebook): nothing to add
                    raise
                raise origin.error(f"cannot parse {what}: {type(exc).__name__}: {exc}") from exc

        return parse  # type: ignore[return-value]

    return decorate
