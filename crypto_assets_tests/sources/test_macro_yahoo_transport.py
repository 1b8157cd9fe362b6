"""The live Yahoo transport (curl_cffi, Chrome fingerprint) under our client, on a local server.

Nothing leaves the machine: a throwaway HTTP server on 127.0.0.1 answers like Yahoo (gzip
JSON, then a 429 with Retry-After), so the header handling and the retry path are exercised
for real without the internet.
"""

import gzip
import http.server
import json
import threading

import pytest

from crypto_assets.sources.client import SourceClient, SourceError, SourceSpec
from crypto_assets.sources.yahoo import BrowserTLSTransport

BODY = {"chart": {"result": [{"meta": {"symbol": "GC=F"}, "timestamp": [1577941200]}], "error": None}}


class FakeYahoo(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802 (http.server API)
        FakeYahoo.seen.append((self.path, dict(self.headers)))
        if "period1=429" in self.path:
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        body = gzip.compress(json.dumps(BODY).encode())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeYahoo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    FakeYahoo.seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_gzip_json_comes_back_decoded_with_the_browser_user_agent(server):
    spec = SourceSpec(name="yahoo", base_url=server, max_retries=0)
    with SourceClient(spec, transport=BrowserTLSTransport()) as client:
        payload = client.get_json("/v8/finance/chart/GC=F", {"interval": "1d", "period1": 1})
    assert payload == BODY
    path, headers = FakeYahoo.seen[0]
    assert path.startswith("/v8/finance/chart/GC=F?") and "interval=1d" in path
    agent = {k.lower(): v for k, v in headers.items()}["user-agent"]
    assert "Chrome" in agent and "crypto-assets" not in agent  # the impersonated browser's own


def test_429_is_retried_then_reported_by_our_client(server):
    spec = SourceSpec(name="yahoo", base_url=server, max_retries=2, backoff_base_s=0)
    sleeps = []
    with SourceClient(spec, transport=BrowserTLSTransport(), sleep=sleeps.append) as client:
        with pytest.raises(SourceError, match="HTTP 429") as failure:
            client.get_json("/v8/finance/chart/GC=F", {"period1": 429})
    assert failure.value.source == "yahoo"
    assert len(FakeYahoo.seen) == 3 and client.retries_made == 2


def test_unreachable_host_is_a_transport_error_the_client_retries():
    spec = SourceSpec(name="yahoo", base_url="http://127.0.0.1:9", max_retries=1, backoff_base_s=0, timeout_s=2)
    with SourceClient(spec, transport=BrowserTLSTransport(), sleep=lambda s: None) as client:
        with pytest.raises(SourceError, match="failed after 2 attempts"):
            client.get_json("/v8/finance/chart/GC=F")
