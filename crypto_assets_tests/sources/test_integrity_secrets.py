"""Issue 19, item 7: no piece of a provider key reaches a log, an exception or the Dagster event log.

A provider that echoes the request URL (key included) in its error body is answered by a loopback
`httpx.MockTransport`; the body is built so that the key straddles the client's 300-character cut
(the reported leaks kept 24 of 36 characters of a Guardian key). Every text that leaves the
client is then searched for ANY 8-character piece of the key. The API's own access log is
checked the same way for the query-string spellings that used to slip through.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import time
import warnings
from datetime import datetime, timezone

import dagster as dg
import httpx
import pytest

from crypto_assets.api.logs import redact_query
from crypto_assets.sources import client as source_client
from crypto_assets.sources.client import SourceClient, SourceError, SourceSpec, redact
from crypto_assets.sources.parsing import SourceParseError, fetch_json
from crypto_assets_tests.api.api_support import KEYS
from crypto_assets_tests.api.test_api_access_log import server  # noqa: F401  (the real API server fixture)

warnings.filterwarnings("ignore", category=dg.BetaWarning)

GUARDIAN_KEY = "9f3c1a7e-5b2d-4e8f-a6c0-1d2e3f4a5b6c"  # 36 characters, the shape of a Guardian key
CUT = 300  # the client's cut of an error body


def pieces(secret: str, n: int = 8) -> list[str]:
    """Every n-character piece of `secret`."""
    return [secret[i:i + n] for i in range(len(secret) - n + 1)]


def leaked(text: str, secret: str) -> list[str]:
    return [p for p in pieces(secret) if p in text]


def straddle(make, secret: str, kept: int, limit: int) -> str:
    """`make(pad)` for the pad that puts exactly `kept` characters of `secret` before character
    `limit` of the text (where a cut-then-redact client cut)."""
    pad = limit - kept - make(0).index(secret)
    assert pad >= 0
    text = make(pad)
    assert text.index(secret) + kept == limit
    return text


def echo_body(url: str, secret: str, kept: int, limit: int = CUT) -> str:
    """A JSON error body echoing the key and `url` (which holds it too), the first copy of the
    key straddling character `limit`."""
    return straddle(lambda pad: json.dumps({"message": "invalid request " + "x" * pad + f" for key {secret}",
                                            "url": url}), secret, kept, limit)


SPEC = SourceSpec(name="echoer", base_url="https://api.example.test/v1", max_retries=2, backoff_base_s=0.01,
                  api_key_param="api-key")


@pytest.mark.parametrize("status", [404, 500, 403, 418, 429])
@pytest.mark.parametrize("kept", [8, 12, 24, 35])
def test_a_key_echoed_across_the_cut_leaves_no_piece_in_logs_or_the_error(status, kept, caplog):
    calls = []

    def echo(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, text=echo_body(str(request.url), GUARDIAN_KEY, kept))

    lines: list[str] = []
    client = SourceClient(SPEC, transport=httpx.MockTransport(echo), api_key=GUARDIAN_KEY, sleep=lambda s: None,
                          log=lines.append)
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        client.get("/search", {"q": "bitcoin"})
    assert calls and calls[0].url.params["api-key"] == GUARDIAN_KEY  # the key was sent ...
    message = str(err.value)
    assert f"HTTP {status}" in message and "invalid request" in message  # ... the provider's words are kept ...
    assert len(calls) == (3 if status in (500, 429) else 1) and len(lines) == len(calls) - 1
    records = [r.getMessage() for r in caplog.records]
    for text in [message, err.value.url, *lines, *records]:
        assert leaked(text, GUARDIAN_KEY) == [], text  # ... and no 8-character piece of the key


def test_a_parse_error_quoting_the_body_leaves_no_piece_of_the_key():
    """`fetch_json` quotes 120 characters of a body of the wrong type."""
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=straddle(lambda pad: json.dumps(["x" * pad, str(request.url)]),
                                                 GUARDIAN_KEY, 20, 120))

    client = SourceClient(SPEC, transport=httpx.MockTransport(echo), api_key=GUARDIAN_KEY)
    with pytest.raises(SourceParseError) as err:
        fetch_json(client, "/search", subject="bitcoin", expect=dict)
    assert "expected a JSON object, got a JSON array" in str(err.value)
    assert leaked(str(err.value), GUARDIAN_KEY) == [], str(err.value)


def test_redact_then_cut_and_redact_leave_no_prefix_or_suffix_of_a_key():
    text = "error: " + "y" * 280 + GUARDIAN_KEY + " trailing words"
    for limit in range(287, 287 + len(GUARDIAN_KEY) + 1):
        out = source_client.redact_then_cut(text, [GUARDIAN_KEY], limit)
        assert leaked(out, GUARDIAN_KEY) == [] and len(out) <= limit, (limit, out)
    # what someone else's cut left of a key, raw or percent-encoded, at either end
    encoded = GUARDIAN_KEY.replace("-", "%2D")
    for fragment in (GUARDIAN_KEY[:8], GUARDIAN_KEY[:30], GUARDIAN_KEY[-8:], encoded[:20], encoded[-14:]):
        assert leaked(redact(f"before {fragment} after", [GUARDIAN_KEY]).replace("%2D", "-"), GUARDIAN_KEY) == []
    # a 17 MB body is not redacted in full before the cut: it costs what a short one does
    started = time.perf_counter()
    assert source_client.redact_then_cut("z" * 17_000_000 + GUARDIAN_KEY, [GUARDIAN_KEY], 300) == "z" * 300
    assert time.perf_counter() - started < 0.5


@pytest.mark.slow
def test_a_key_echoed_by_the_guardian_never_reaches_the_run_events_or_metadata(tmp_path, monkeypatch):
    """`news_articles` with the Guardian in live mode: a 503 (retried: its body goes to a log line)
    then a 403 (the source fails: its message goes to `broken_feeds`), both echoing the URL with
    the key across the cut. No event of the run and no metadata value holds a piece of the key."""
    from crypto_assets.assets.ingest.news import news_articles
    from crypto_assets.news.feeds import RssFeeds
    from crypto_assets.news.guardian import GuardianContent
    from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource

    monkeypatch.setenv("GUARDIAN_API_KEY", GUARDIAN_KEY)
    calls = []

    def echo(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        status = 503 if len(calls) == 1 else 403
        return httpx.Response(status, headers={"Retry-After": "0"},
                              text=echo_body(str(request.url), GUARDIAN_KEY, 24))

    class EchoingGuardian(GuardianContent):  # the real resource, answered by a scripted provider
        def live_transport(self):
            return httpx.MockTransport(echo)

    rss_replay = tmp_path / "replay"
    (rss_replay / "rss").mkdir(parents=True)
    (rss_replay / "rss" / "catalog.yaml").write_text("routes: []\n")  # every feed: a replay 404
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [news_articles], partition_key="2023-03-13-10:00", instance=instance, raise_on_error=False,
            resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                       "rss": RssFeeds(mode="replay", replay_dir=str(rss_replay)),
                       "guardian": EchoingGuardian(mode="live")})
        records = instance.get_records_for_run(result.run_id).records
        everything = "\n".join(str(r.event_log_entry) for r in records)
    assert result.success and len(calls) == 2 and calls[0].url.params["api-key"] == GUARDIAN_KEY
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    broken = metadata["broken_feeds"].value["guardian"]
    assert broken.startswith("failed: guardian: HTTP 403") and "invalid request" in broken
    assert "HTTP 503" in everything and "retry 1/3" in everything  # the retry line is in the event log
    assert leaked(everything, GUARDIAN_KEY) == []
    assert leaked(json.dumps({k: str(v.value) for k, v in metadata.items()}), GUARDIAN_KEY) == []


def test_a_guardian_error_message_quoting_the_key_is_redacted(monkeypatch):
    """A 200 whose JSON says `status: error` with a message quoting the key: the problem that
    goes to `broken_feeds` keeps the message, not the key."""
    from crypto_assets.news.guardian import GuardianContent

    monkeypatch.setenv("GUARDIAN_API_KEY", GUARDIAN_KEY)

    class ErrorGuardian(GuardianContent):
        def live_transport(self):
            return httpx.MockTransport(lambda request: httpx.Response(200, json={"response": {
                "status": "error", "message": f"Invalid authentication credentials (api-key {GUARDIAN_KEY})"}}))

    source = ErrorGuardian(mode="live")
    result = source.search_window(datetime(2023, 3, 13, 10, tzinfo=timezone.utc),
                                  datetime(2023, 3, 13, 11, tzinfo=timezone.utc))
    assert result.status == "failed" and "Invalid authentication credentials" in result.problem
    assert leaked(result.problem, GUARDIAN_KEY) == [], result.problem


# -- the API's query-string redaction -------------------------------------------------------

API_KEY = "tr4d1ng-k3y-0123456789abcdef"
SPELLINGS = [
    f"?api_key='{API_KEY}'", f'?api_key="{API_KEY}"', f"?api_key[]={API_KEY}", f"?api_key.={API_KEY}",
    f"?api_key%00={API_KEY}", f"?Api_Key[0]={API_KEY}", f"?api%5Fkey%5B%5D={API_KEY}",
    f"?%27api_key%27={API_KEY}", f"?api%255Fkey={API_KEY}", f"?x=1%26api_key={API_KEY}", f"?api_key%3D{API_KEY}",
]
PLAIN = [f"?API_KEY={API_KEY}", f"?symbols=BTC&token={API_KEY}&x=1"]  # redacted before too: the server test's controls


@pytest.mark.parametrize("query", SPELLINGS)
def test_every_spelling_of_a_key_parameter_is_redacted(query):
    for line in (f'127.0.0.1:5000 - "GET /api/v1/symbols{query} HTTP/1.1" 200',
                 f'127.0.0.1:5000 - "WebSocket /ws/prices{query}" [accepted]'):
        out = redact_query(line)
        assert leaked(out, API_KEY) == [], out
        assert "***" in out and out.split("?")[0] == line.split("?")[0]
    # the log line's own closing quote stays where it was
    assert redact_query(f'"WebSocket /ws/prices{query}" [accepted]').endswith('" [accepted]')


def test_redaction_keeps_quotes_and_other_parameters():
    assert redact_query(f"/x?api_key='{API_KEY}'&symbols=BTC") == "/x?api_key='***'&symbols=BTC"
    assert redact_query(f'"WebSocket /ws?symbols=BTC&api_key="{API_KEY}"" [accepted]') == \
        '"WebSocket /ws?symbols=BTC&api_key="***"" [accepted]'
    assert redact_query("/x?monkey=1&keyword=2&api_key=") == "/x?monkey=1&keyword=2&api_key="


def _raw_request(base: str, target: str, key: str, websocket: bool) -> bytes:
    """Send `target` byte for byte (no client normalises it) and return the response head."""
    host, port = base.split(":")
    head = [f"GET {target} HTTP/1.1", f"Host: {base}", f"X-API-Key: {key}"]
    if websocket:
        head += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                 "Sec-WebSocket-Version: 13"]
    else:
        head += ["Connection: close"]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.slow
def test_the_real_server_log_holds_no_piece_of_a_key_in_any_spelling(server):  # noqa: F811
    base, proc, log_path = server
    key = KEYS["trading"]
    queries = [q.replace(API_KEY, key) for q in SPELLINGS + PLAIN if "%3D" not in q]
    for query in queries:
        assert _raw_request(base, f"/api/v1/symbols{query}", key, websocket=False).startswith(b"HTTP/1.1 200")
        status = _raw_request(base, f"/ws/prices?symbols=BTC&{query[1:]}", key, websocket=True)
        assert status.startswith(b"HTTP/1.1 101"), status  # accepted (the key came in the header too)
    time.sleep(0.5)  # let the access lines flush
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)
    log = log_path.read_text()
    assert log.count("[accepted]") >= len(queries) and log.count("GET /api/v1/symbols?") >= len(queries), log
    assert leaked(log, key) == [], log


@pytest.mark.parametrize("kept", [8, 20, 35])
def test_a_run_failure_alert_quoting_a_key_across_its_cut_leaves_no_piece(kept):
    """The alert of a failed run quotes the failure's first line, cut to 300 characters: the key is
    blanked before the cut, so a key straddling it leaves nothing behind (webhook and log alike)."""
    from crypto_assets.alerts.messages import run_failure_alert, slack_payload

    source_client.register_secret(GUARDIAN_KEY)
    message = straddle(lambda pad: "x" * pad + f"guardian: HTTP 500 for /search?api-key={GUARDIAN_KEY}&q=btc",
                       GUARDIAN_KEY, kept, 300)
    alert = run_failure_alert("ingest", "r1", message, datetime.now(timezone.utc))
    assert leaked(json.dumps(alert.as_dict()), GUARDIAN_KEY) == []
    assert leaked(json.dumps(slack_payload(alert)), GUARDIAN_KEY) == []
