"""The data API's own Prometheus metrics, served at `GET /metrics` (no key: scrape it in-cluster,
do not route it through a public ingress).

Each app has its own registry (tests build many apps in one process). With several uvicorn
workers each worker counts for itself and a scrape reaches one of them: run one worker per pod
and scale with replicas (k8s/api.yaml does).

- `crypto_api_requests_total{route, method, status}` and
  `crypto_api_request_duration_seconds{route, method, status}` (histogram): every HTTP request,
  by route template (`/api/v1/prices/current/{symbol}`, never the raw path, so symbols or
  junk paths cannot blow up the series count; no route: `unmatched`);
- `crypto_api_cache_lookups_total{endpoint, result}`: hit, miss (Redis up, not cached) or bypass
  (no Redis);
- `crypto_api_computations_total{endpoint}`: responses computed from the warehouse (a cache miss
  that was not joined to another request's computation); with single-flight recomputation, N
  concurrent requests for one expired entry add 1 here;
- `crypto_api_rate_limited_total{limit}`: 429 answers, `key` (a key over its tier's limit) or
  `auth_failure` (a client sending unknown keys);
- `crypto_api_websocket_clients` (gauge) and `crypto_api_websocket_connections_total{outcome}`
  (accepted / refused).
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"


class ApiMetrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["route", "method", "status"]
        self.requests = Counter("crypto_api_requests", "HTTP requests answered, by route template, method and "
                                "status", labels, registry=self.registry)
        self.latency = Histogram("crypto_api_request_duration_seconds", "Time from request to the end of the "
                                 "response, by route template, method and status", labels,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.cache = Counter("crypto_api_cache_lookups", "Response cache lookups by endpoint and result (hit, miss, "
                             "bypass = no Redis)", ["endpoint", "result"], registry=self.registry)
        self.computations = Counter("crypto_api_computations", "Responses computed from the warehouse (cache "
                                    "misses not joined to another request's computation), by endpoint",
                                    ["endpoint"], registry=self.registry)
        self._children: dict[tuple, tuple] = {}
        self.rate_limited = Counter("crypto_api_rate_limited", "Requests refused with 429 by a rate limit (key: the "
                                    "key's tier limit; auth_failure: unknown keys from one client)", ["limit"],
                                    registry=self.registry)
        self.ws_clients = Gauge("crypto_api_websocket_clients", "WebSocket clients subscribed to the price feed now",
                                registry=self.registry)
        self.ws_connections = Counter("crypto_api_websocket_connections", "WebSocket connections by outcome "
                                      "(accepted, refused)", ["outcome"], registry=self.registry)
        for limit in ("key", "auth_failure"):
            self.rate_limited.labels(limit)  # present at 0 from the start, so rate() and alerts see them
        for outcome in ("accepted", "refused"):
            self.ws_connections.labels(outcome)

    def watch_feed(self, feed) -> None:
        self.ws_clients.set_function(lambda: len(feed.subscribers))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


    def observe(self, labels: tuple[str, str, str], seconds: float) -> None:
        """Count and time one request (the label children are looked up once per label set)."""
        children = self._children.get(labels)
        if children is None:
            children = self._children[labels] = (self.requests.labels(*labels), self.latency.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by its route template, and adds
    `Server-Timing: app;dur=<ms>` (time from request to response start inside this process, for
    clients and the benchmark to tell server time from network/client time). One middleware for
    both: each layer costs every request (issue 23).
    """

    def __init__(self, app, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                took = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe((path, scope.get("method", ""), str(status["code"])), time.perf_counter() - started)
