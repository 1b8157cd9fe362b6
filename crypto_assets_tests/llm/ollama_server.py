"""A real HTTP server on 127.0.0.1 (a free port) that answers like Ollama from recorded bodies.

Tests queue answers per path; each request takes the next one (the last one repeats), and every
request body is kept so a test can check what the client sent. Streamed answers go out as HTTP/1.1
chunked transfer, one NDJSON line per chunk, as Ollama sends them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crypto_assets_tests.paths import DATA

DATA = DATA / "ollama"


def recorded(name: str) -> bytes:
    return (DATA / name).read_bytes()


def chat_body_with_content(content: str) -> bytes:
    """The RECORDED non-streaming /api/chat envelope with `message.content` replaced by `content`
    (constructed by the test: the recording's own content is a placeholder)."""
    body = json.loads(recorded("chat_response.json"))
    body["message"]["content"] = content
    return json.dumps(body).encode()


@dataclass
class Answer:
    body: bytes
    status: int = 200
    stream: bool = False
    headers: dict = field(default_factory=dict)
    cut_after_lines: int | None = None  # streaming: stop (close) after this many lines


class OllamaServer:
    def __init__(self):
        self.answers: dict[str, list[Answer]] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _answer(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.requests.append((method, self.path, json.loads(raw) if raw else None))
                queue = server.answers.get(self.path)
                if not queue:
                    self.send_response(404)
                    body = b'{"error":"not found"}'
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                answer = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                if answer.stream:
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    lines = answer.body.decode().splitlines()
                    for i, line in enumerate(lines):
                        if answer.cut_after_lines is not None and i >= answer.cut_after_lines:
                            self.close_connection = True
                            return  # the connection drops mid-stream
                        data = (line + "\n").encode()
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, path: str, *answers: Answer) -> None:
        self.answers[path] = list(answers)

    def chat_requests(self) -> list[dict]:
        return [body for method, path, body in self.requests if path == "/api/chat"]

    def __enter__(self) -> OllamaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
