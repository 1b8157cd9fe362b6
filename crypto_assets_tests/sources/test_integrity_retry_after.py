"""Issue 19, item 10: a Retry-After of -5, 0 or a past date does not turn retries into a burst.

The exponential backoff is a floor under what the server asks for; a longer Retry-After (within
the cap) is waited out in full, and one beyond the cap still fails at once. Requests are counted
and timestamped on a loopback `httpx.MockTransport`; the client's sleep is injected (measured)
or real (timestamps of the requests themselves).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from crypto_assets.llm.ollama import LLMError, OllamaClient
from crypto_assets.sources.client import SourceClient, SourceError, SourceSpec

PAST = format_datetime(datetime.now(timezone.utc) - timedelta(days=2), usegmt=True)
# Fixed test ids: an id made from PAST changes with the clock, and pytest-xdist refuses to run when its
# workers collect different ids.
WAIT_IDS = {"-5": "negative", "0": "zero", "0.0": "zero-decimal", PAST: "http-date-in-the-past"}
SPEC = SourceSpec(name="busy", base_url="https://busy.example.test", max_retries=4, backoff_base_s=1.0,
                  backoff_max_s=60.0)


def always(status: int, retry_after: str):
    stamps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        return httpx.Response(status, headers={"Retry-After": retry_after}, json={"error": "busy"})

    return httpx.MockTransport(handler), stamps


@pytest.mark.parametrize("retry_after", ["-5", "0", "0.0", PAST], ids=WAIT_IDS.get)
@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_that_asks_for_no_wait_still_backs_off(status, retry_after):
    transport, stamps = always(status, retry_after)
    sleeps: list[float] = []
    client = SourceClient(SPEC, transport=transport, sleep=sleeps.append)
    with pytest.raises(SourceError, match="failed after 5 attempts"):
        client.get("/x")
    assert len(stamps) == 5 and len(sleeps) == 4
    # backoff_base_s * 2**attempt, jittered into [50 %, 100 %)
    for attempt, slept in enumerate(sleeps):
        assert 0.5 * 2**attempt <= slept < 2**attempt, sleeps
    assert client.retry_waited_s == pytest.approx(sum(sleeps))


def test_requests_are_spaced_by_the_backoff_in_real_time():
    spec = SourceSpec(name="busy", base_url="https://busy.example.test", max_retries=3, backoff_base_s=0.08)
    transport, stamps = always(503, "0")
    client = SourceClient(spec, transport=transport)  # the real time.sleep
    with pytest.raises(SourceError):
        client.get("/x")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) == 4
    for attempt, gap in enumerate(gaps):
        assert gap >= 0.5 * 0.08 * 2**attempt, gaps  # not the burst of back-to-back requests it was


def test_the_wait_is_the_larger_of_retry_after_and_the_backoff_and_a_huge_one_still_fails_fast():
    transport, stamps = always(429, "1")
    sleeps: list[float] = []
    with pytest.raises(SourceError):
        SourceClient(SPEC, transport=transport, sleep=sleeps.append).get("/x")
    # backoffs [0.5, 1), [1, 2), [2, 4), [4, 8): the server's 1 s only while it is the larger
    assert sleeps[0] == 1.0 and 1.0 <= sleeps[1] < 2.0 and 2.0 <= sleeps[2] < 4.0 and 4.0 <= sleeps[3] < 8.0, sleeps
    transport, stamps = always(429, "7")
    sleeps = []
    with pytest.raises(SourceError):
        SourceClient(SPEC, transport=transport, sleep=sleeps.append).get("/x")
    assert sleeps[:3] == [7.0, 7.0, 7.0] and 7.0 <= sleeps[3] < 8.0  # honoured in full while larger
    transport, stamps = always(429, "86400")
    sleeps = []
    with pytest.raises(SourceError, match="retry_after_max_s"):
        SourceClient(SPEC, transport=transport, sleep=sleeps.append).get("/x")
    assert sleeps == [] and len(stamps) == 1  # beyond the cap: no wait, no retry


@pytest.mark.parametrize("retry_after", ["-5", "0", PAST], ids=WAIT_IDS.get)
def test_the_llm_client_backs_off_too(retry_after):
    transport, stamps = always(503, retry_after)
    sleeps: list[float] = []
    client = OllamaClient("http://127.0.0.1:9", "m", transport=transport, sleep=sleeps.append, http_retries=3,
                          backoff_s=0.5)
    with pytest.raises(LLMError, match="failed after 4 attempts"):
        client.tags()
    assert len(stamps) == 4 and sleeps == [0.5, 1.0, 2.0]
