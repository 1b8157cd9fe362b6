"""Issue 19, item 8: one LLM call is bounded in size and in time, whatever the server does.

A real HTTP server on 127.0.0.1 (a free port) answers /api/chat like a broken Ollama: with a
50 MB answer (plain or streamed), or dripping one byte at a time (each byte well within the
per-read timeout, so only a deadline for the whole call can end it). The client must stop past
its size cap with an error naming the cap, and return at its deadline (plus a small slack) with
an error naming the deadline.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crypto_assets.llm.ollama import MAX_RESPONSE_BYTES, TOTAL_TIMEOUT_S, LLMError, LLMResource, OllamaClient

MB = 2**20
HUGE = 50 * MB
CAP = 1 * MB
SLACK_S = 1.0  # a loaded 2-core machine; the deadlines tested are 2 s


class Misbehaving:
    """A loopback HTTP server whose /api/chat misbehaves as `mode` says; it counts what it sent."""

    def __init__(self, mode: str, drip_every_s: float = 0.3):
        self.mode, self.drip_every_s = mode, drip_every_s
        self.sent = 0
        self.stopped = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                try:
                    owner.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what it should do

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _chunk(self, handler, data: bytes) -> None:
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        handler.wfile.flush()
        self.sent += len(data)

    def answer(self, handler) -> None:
        handler.send_response(200)
        kind = "application/x-ndjson" if self.mode == "huge_stream" else "application/json"
        handler.send_header("Content-Type", kind)
        if self.mode == "huge_plain":  # one JSON document of 50 MB, with its length announced
            head = b'{"model":"m","message":{"role":"assistant","content":"'
            tail = b'"},"done":true,"done_reason":"stop"}'
            handler.send_header("Content-Length", str(len(head) + HUGE + len(tail)))
            handler.end_headers()
            handler.wfile.write(head)
            block = b"a" * MB
            for _ in range(HUGE // MB):
                if self.stopped.is_set():
                    return
                handler.wfile.write(block)
                self.sent += MB
            handler.wfile.write(tail)
            return
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        if self.mode == "huge_stream":  # NDJSON chunks of 64 KB of content each, 50 MB in all
            line = json.dumps({"model": "m", "message": {"role": "assistant", "content": "b" * 65536},
                               "done": False}).encode() + b"\n"
            for _ in range(HUGE // len(line) + 1):
                if self.stopped.is_set():
                    return
                self._chunk(handler, line)
            self._chunk(handler, b'{"model":"m","message":{"role":"assistant","content":""},"done":true}\n')
        else:  # drip: a valid answer, one byte at a time, each well within the read timeout
            body = json.dumps({"model": "m", "message": {"role": "assistant", "content": "x" * 200},
                               "done": True}).encode()
            for byte in body:
                if self.stopped.is_set():
                    return
                self._chunk(handler, bytes([byte]))
                time.sleep(self.drip_every_s)
        handler.wfile.write(b"0\r\n\r\n")

    def __enter__(self) -> Misbehaving:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _client(url: str, **kwargs) -> OllamaClient:
    return OllamaClient(url, "m", http_retries=0, sleep=lambda s: None, **kwargs)


@pytest.mark.parametrize("mode,stream", [("huge_plain", False), ("huge_stream", True)])
def test_an_answer_over_the_size_cap_is_cut_off_with_an_error_naming_the_cap(mode, stream):
    with Misbehaving(mode) as server, _client(server.url, max_response_bytes=CAP) as client:
        started = time.monotonic()
        with pytest.raises(LLMError) as err:
            client.chat([{"role": "user", "content": "hi"}], stream=stream)
        elapsed = time.monotonic() - started
    message = str(err.value)
    assert f"cap of {CAP} bytes" in message and "max_response_bytes" in message, message
    read = int(message.split("stopped reading after ")[1].split(" bytes")[0])
    assert CAP < read < CAP + 2 * MB  # it stopped right past the cap, not at 50 MB
    assert elapsed < 10


def test_the_default_cap_and_deadline_are_finite_and_reach_the_resource():
    assert MAX_RESPONSE_BYTES == 16 * MB and TOTAL_TIMEOUT_S == 600
    llm = LLMResource(url="http://127.0.0.1:9", model="m", max_response_bytes=CAP, total_timeout_s=5)
    with llm.client() as client:
        assert client.max_response_bytes == CAP and client.total_timeout_s == 5


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_a_dripping_answer_ends_at_the_deadline_with_an_error_naming_it(stream):
    deadline = 2.0
    with Misbehaving("drip", drip_every_s=0.3) as server, \
            _client(server.url, timeout_s=5, total_timeout_s=deadline) as client:
        started = time.monotonic()
        with pytest.raises(LLMError) as err:
            client.chat([{"role": "user", "content": "hi"}], stream=stream)
        elapsed = time.monotonic() - started
    assert "deadline of 2 s" in str(err.value) and "total_timeout_s" in str(err.value), str(err.value)
    assert 0 < server.sent < 50  # it was still dripping: a few bytes in 2 s, of ~300
    assert deadline - 0.1 <= elapsed <= deadline + SLACK_S, elapsed


@pytest.mark.slow
def test_a_read_blocked_at_the_deadline_is_cut_off_not_left_to_its_read_timeout():
    """One byte every 1.5 s with a 30 s read timeout: the deadline (2 s) falls while the client
    waits for the next byte; it returns then, not at the next byte (3 s) or the read timeout."""
    with Misbehaving("drip", drip_every_s=1.5) as server, \
            _client(server.url, timeout_s=30, total_timeout_s=2.0) as client:
        started = time.monotonic()
        with pytest.raises(LLMError, match="deadline"):
            client.chat([{"role": "user", "content": "hi"}])
        elapsed = time.monotonic() - started
    assert elapsed <= 2.0 + 0.5, elapsed
