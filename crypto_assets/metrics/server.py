"""`crypto-assets metrics`: serve the platform's Prometheus metrics over HTTP.

    DAGSTER_HOME=... crypto-assets metrics --host 0.0.0.0 --port 9464

`/metrics`: the exposition (read from the Dagster instance of DAGSTER_HOME and the configured
warehouse at scrape time, at most every `--min-interval` seconds); `/health`: the process answers;
`/ready`: 200 when the last collection read every part, else 503.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import timedelta
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import prometheus_client  # noqa: F401  (the api extra; `crypto-assets metrics` says so when missing)

DEFAULT_PORT = 9464


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *_args):  # one line per scrape would drown the logs
        pass


def make_app(registry, collector):
    """WSGI app: /metrics (exposition), /health (alive), /ready (last collection complete)."""
    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/health":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"alive\n"]
        if path == "/ready":
            parts = collector.last_success
            ready = bool(parts) and all(parts.values())
            start_response("200 OK" if ready else "503 Service Unavailable", [("Content-Type", "text/plain")])
            body = ", ".join(f"{k}={'ok' if v else 'failed'}" for k, v in sorted(parts.items())) or "no scrape yet"
            return [body.encode() + b"\n"]
        if path in ("/metrics", "/"):
            return metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: /metrics, /health, /ready\n"]

    return app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crypto-assets metrics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--definitions", default="crypto_assets.definitions:defs",
                        help="module:attribute of the Definitions whose datasets to export")
    parser.add_argument("--lookback-hours", type=float, default=24.0,
                        help="finished runs read at start (counters start from there; default 24)")
    parser.add_argument("--min-interval", type=float, default=10.0,
                        help="seconds a collection is reused for further scrapes (default 10)")
    return parser


def build(args, instance):
    """(registry, collector) for the parsed arguments and an open Dagster instance."""
    from prometheus_client import CollectorRegistry

    from crypto_assets.health.cli import load_definitions
    from crypto_assets.metrics.exporter import collector_for
    from crypto_assets.warehouse.resource import get_warehouse

    defs = load_definitions(args.definitions)
    collector = collector_for(defs, instance, get_warehouse(), lookback=timedelta(hours=args.lookback_hours),
                              min_interval_s=args.min_interval)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry, collector


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not os.environ.get("DAGSTER_HOME"):
        print("crypto-assets metrics: DAGSTER_HOME is not set; it must point at the Dagster instance "
              "(the folder with dagster.yaml that `make dev` uses)", file=sys.stderr)
        return 2
    import dagster as dg

    stop = threading.Event()
    # A SIGTERM (Kubernetes, the tests) ends the process cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with dg.DagsterInstance.get() as instance:
        registry, collector = build(args, instance)
        server = make_server(args.host, args.port, make_app(registry, collector),
                             server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
        thread.start()
        print(f"crypto-assets metrics: serving http://{args.host}:{server.server_port}/metrics", flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
