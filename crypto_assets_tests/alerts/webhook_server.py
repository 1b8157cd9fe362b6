"""A webhook receiver on 127.0.0.1 (free port, background thread) for the alert tests."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class WebhookServer:
    def __init__(self):
        self.status = 200
        self.attempts = 0
        self.bodies: list[dict] = []  # JSON bodies of the accepted (2xx) posts
        self.content_types: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.attempts += 1
                if server.status < 300:
                    server.bodies.append(json.loads(raw))  # fails loudly on invalid JSON
                    server.content_types.append(self.headers.get("Content-Type", ""))
                self.send_response(server.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook_server():
    with WebhookServer() as server:
        yield server
