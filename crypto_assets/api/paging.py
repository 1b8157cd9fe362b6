"""Opaque, signed page tokens for keyset paging.

A token says where the next page starts (a symbol and an inclusive time: rows of one
symbol have distinct times, so "from this time on" resumes exactly) and carries a
fingerprint of the query it belongs to: a token replayed with other parameters is refused
(422) instead of silently returning rows of another query. It also carries the range the
first page resolved (a default "last 24 h" must not move while a client pages through it).

Tokens are signed: `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`, with the
server's secret (`CRYPTO_API_TOKEN_SECRET`, else a random secret of this process; see
settings.py). A token that was not made by a server holding the secret (forged, edited,
truncated) is refused before its payload is read. What a valid token says is then checked
like the query parameters themselves (queries.Pager), so a token can never ask for more
than the same query could.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

import pandas as pd


class PageTokenError(ValueError):
    pass


@dataclass(frozen=True)
class Position:
    """Where the next page starts, and the resolved range of the query being paged."""

    time: pd.Timestamp
    symbol: str | None
    start: pd.Timestamp
    end: pd.Timestamp


def fingerprint(**params) -> str:
    """Of the parameters as the client sent them (None for a default)."""
    canonical = json.dumps({k: str(v) for k, v in sorted(params.items())}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()


def encode(query: str, position: Position, secret: bytes) -> str:
    payload = {"q": query, "t": position.time.isoformat(), "s": position.symbol,
               "a": position.start.isoformat(), "b": position.end.isoformat()}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(secret, body))}"


_INVALID = "page_token is not valid: use the next_page_token of the previous page"


def decode(token: str, query: str, secret: bytes) -> Position:
    """The position a token encodes; PageTokenError when it is not ours or not for this query.

    The signature is checked first (in constant time); only a token this server signed is parsed.
    """
    body, dot, signature = token.partition(".")
    try:
        valid = bool(dot) and hmac.compare_digest(_unb64(signature), _mac(secret, body))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        valid = False
    if not valid:
        raise PageTokenError(_INVALID)
    try:
        payload = json.loads(_unb64(body))
        if not isinstance(payload, dict):
            raise PageTokenError(_INVALID)
        times = [pd.Timestamp(payload[k]) for k in ("t", "a", "b")]
        symbol = payload.get("s")
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError, OverflowError):
        raise PageTokenError(_INVALID) from None
    if payload.get("q") != query:
        raise PageTokenError("page_token belongs to another query: keep the other parameters unchanged while paging")
    if any(t is pd.NaT or t.tzinfo is None for t in times) or not (symbol is None or isinstance(symbol, str)):
        raise PageTokenError(_INVALID)
    try:
        time, start, end = (t.tz_convert("UTC") for t in times)
    except (ValueError, OverflowError):
        raise PageTokenError(_INVALID) from None
    return Position(time, symbol, start, end)
