"""The shared source client: retries, Retry-After, budgets, errors that name source and URL."""

from __future__ import annotations

import logging
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


# -- secrets never leave the client (issue 11, item 10) -------------------------------------

KEY = "k3y-Secr3t/with+chars"  # '/' and '+' are URL-encoded in a query string


def test_a_key_echoed_in_the_provider_error_body_is_redacted_everywhere():
    echo = f'{{"error": "api key {KEY} is not valid", "url": "/v1/x?key={KEY.replace("/", "%2F")}"}}'.encode()
    transport, seen = scripted([(503, {}, echo), (401, {}, echo)])
    logs = []
    client = SourceClient(SPEC, transport=transport, sleep=lambda s: None, api_key=KEY, log=logs.append)
    with pytest.raises(SourceError) as err:
        client.get_json("/x")
    assert err.value.status == 401 and len(seen) == 2
    texts = [str(err.value), err.value.url, *logs]
    assert logs and "not valid" in logs[0] and "not valid" in str(err.value)  # the provider's words stay
    for text in texts:
        assert KEY not in text and "k3y-Secr3t%2Fwith%2Bchars" not in text and "Secr3t" not in text, text
    assert "***" in str(err.value)


def test_a_key_from_the_environment_is_redacted_even_in_a_header_source(monkeypatch):
    monkeypatch.setenv("TESTSRC_KEY", KEY)
    spec = SourceSpec(name="hdr", base_url="https://h.test", api_key_env="TESTSRC_KEY", api_key_header="x-key",
                      max_retries=0)
    transport, seen = scripted([(403, {}, f"forbidden for {KEY}".encode())])
    with pytest.raises(SourceError) as err:
        SourceClient(spec, transport=transport, api_key=KEY).get("/y")
    assert seen[0].headers["x-key"] == KEY and KEY not in str(err.value)


def test_httpx_request_log_lines_do_not_show_the_key(caplog):
    transport, _ = scripted([(200, {}, b"{}")])
    client = SourceClient(SPEC, transport=transport, api_key=KEY)
    with caplog.at_level(logging.INFO, logger="httpx"):
        client.get_json("/z")
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("Secr3t" not in line for line in lines), lines


@pytest.mark.slow
def test_a_key_echoed_by_the_provider_never_reaches_dagster_events_or_metadata(tmp_path, monkeypatch):
    """A per-series 400 from FRED whose body echoes the key: the run goes on, and neither its
    metadata nor any event of the run (logs included) holds the key."""
    import dagster as dg

    from crypto_assets.assets.ingest.macro import macro_series
    from crypto_assets.sources.fred import Fred
    from crypto_assets.sources.yahoo import YahooFinance
    from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource

    secret = "fred-key-0123456789abcdef"
    monkeypatch.setenv("FRED_API_KEY", secret)

    calls = []

    def echo(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:  # a retry, whose log line carries the body
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"error_message": f"busy ({secret})"})
        return httpx.Response(400, json={"error_message": f"Bad Request. api_key {secret} rejected for this series"})

    class EchoingFred(Fred):  # the real resource, answered by a scripted provider
        def live_transport(self):
            return httpx.MockTransport(echo)

    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [macro_series], partition_key="2020-01-02", instance=instance, raise_on_error=False,
            resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                       "yahoo": YahooFinance(mode="replay"), "fred": EchoingFred(mode="live")})
        records = instance.get_records_for_run(result.run_id).records
        everything = "\n".join(str(r.event_log_entry) for r in records)
    assert result.success and calls[0].url.params["api_key"] == secret
    assert "busy (***)" in everything  # the retry log line
    assert "rejected for this series" in everything  # the provider's message did reach the events ...
    assert secret not in everything  # ... without the key


# -- Retry-After is capped (issue 11, item 11) --------------------------------------------------

@pytest.mark.parametrize("header", ["86400", "Fri, 01 Jan 2099 00:00:00 GMT", "inf", "1e400"])
def test_a_retry_after_beyond_the_cap_fails_fast_naming_source_and_wait(header):
    transport, seen = scripted([(429, {"Retry-After": header}, b'{"error":"slow down"}'), (200, {}, b"[]")])
    sleeps = []
    client = SourceClient(SPEC, transport=transport, sleep=sleeps.append)
    with pytest.raises(SourceError) as err:
        client.get_json("/things")
    message = str(err.value)
    assert sleeps == [] and len(seen) == 1  # no sleep at all, no retry
    assert message.startswith("testsrc:") and f"Retry-After: {header}" in message
    assert "retry_after_max_s" in message and "300 s" in message and "https://api.example.test/v1/things" in message
    assert err.value.status == 429


def test_a_retry_after_within_the_cap_is_honoured_and_counted_against_the_wait_budget():
    spec = SourceSpec(name="waits", base_url="https://w.test", max_retries=5, retry_after_max_s=60,
                      retry_wait_budget_s=100)
    transport, seen = scripted([(429, {"Retry-After": "60"}, b"{}")])
    sleeps = []
    client = SourceClient(spec, transport=transport, sleep=sleeps.append)
    with pytest.raises(SourceBudgetExceeded, match=r"retry wait budget of 100 s per run is spent \(60 s waited"):
        client.get("/x")
    assert sleeps == [60.0] and len(seen) == 2 and client.retry_waited_s == 60.0


def test_retry_after_values_that_mean_nothing_fall_back_to_the_backoff():
    assert retry_after_seconds("nan") is None and retry_after_seconds("-5") == 0.0
    assert retry_after_seconds("inf") == float("inf")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert retry_after_seconds("Fri, 01 Jan 2099 00:00:00 GMT", now=now) > 70 * 365 * 86400
