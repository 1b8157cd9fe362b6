"""The shared source client: retries, Retry-After, budgets, errors that name source and URL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from crypto_assets.sources.client import (
    SourceBudgetExceeded,
    SourceClient,
    SourceError,
    SourceSpec,
    retry_after_seconds,
)

SPEC = SourceSpec(name="testsrc", base_url="https://api.example.test/v1", max_retries=3, backoff_base_s=1.0,
                  api_key_param="key")


def scripted(responses):
    """A transport answering with the given (status, headers, body) in turn."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, headers, body = responses[min(len(seen) - 1, len(responses) - 1)]
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handler), seen


def test_429_with_retry_after_is_waited_out_and_retried():
    transport, seen = scripted([(429, {"Retry-After": "7"}, b'{"error":"rate limited"}'), (200, {}, b'[1, 2]')])
    sleeps = []
    client = SourceClient(SPEC, transport=transport, sleep=sleeps.append)
    assert client.get_json("/things") == [1, 2]
    assert sleeps == [7.0]  # exactly what the server asked for, not the backoff
    assert len(seen) == 2 and client.retries_made == 1


def test_retry_after_http_date():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30
    assert retry_after_seconds("garbage") is None


def test_5xx_backs_off_exponentially_then_fails_naming_source_and_url_without_key():
    body = b'{"status":500,"error":"Internal Server Error"}'  # the provider's real 500 body
    transport, seen = scripted([(500, {}, body)])
    sleeps = []
    client = SourceClient(SPEC, transport=transport, sleep=sleeps.append, api_key="SECRET123")
    with pytest.raises(SourceError) as err:
        client.get_json("/coins/bitcoin/ohlc", {"days": 7})
    message = str(err.value)
    assert message.startswith("testsrc:") and "failed after 4 attempts" in message
    assert "https://api.example.test/v1/coins/bitcoin/ohlc?days=7" in message
    assert "Internal Server Error" in message
    assert "SECRET123" not in message and "key=" not in message
    assert len(seen) == 4 and seen[0].url.params["key"] == "SECRET123"  # the key is sent, never shown
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]  # exponential (with jitter)


def test_4xx_is_not_retried_and_carries_the_provider_message():
    transport, seen = scripted([(422, {}, b'{"error":"Missing parameter vs_currency"}')])
    client = SourceClient(SPEC, transport=transport, sleep=lambda s: None)
    with pytest.raises(SourceError, match="Missing parameter vs_currency") as err:
        client.get_json("/coins/markets")
    assert err.value.status == 422 and len(seen) == 1


def test_transport_errors_are_retried():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"ok": True})

    client = SourceClient(SPEC, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    assert client.get_json("/x") == {"ok": True} and calls["n"] == 3


def test_request_budget_per_run_and_spacing():
    spec = SourceSpec(name="budgeted", base_url="https://b.test", max_requests_per_run=2, min_interval_s=5.0)
    transport, _ = scripted([(200, {}, b"{}")])
    clock = {"t": 100.0}
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        clock["t"] += s

    client = SourceClient(spec, transport=transport, sleep=sleep, clock=lambda: clock["t"])
    client.get_json("/a")
    clock["t"] += 1.0
    client.get_json("/b")
    assert sleeps == [pytest.approx(4.0)]  # spaced to one request per 5 s
    with pytest.raises(SourceBudgetExceeded, match="budget of 2 requests"):
        client.get_json("/c")


def test_non_json_body_is_a_clear_error():
    transport, _ = scripted([(200, {}, b"<html>Document Moved</html>")])
    with pytest.raises(SourceError, match="not JSON"):
        SourceClient(SPEC, transport=transport).get_json("/x")
