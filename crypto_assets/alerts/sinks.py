"""Where alerts go: a JSON line through Python logging (always) and a webhook (when configured).

`CRYPTO_ALERT_WEBHOOK_URL`: a Slack incoming-webhook URL, or anything that accepts the same JSON
(`{"text": ..., "blocks": [...]}`). It is a secret (Slack's URL embeds a token): it is read from
the environment only, and never appears in logs or error messages.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import httpx

from crypto_assets.alerts.messages import CRITICAL, RESOLVED, Alert, slack_payload

WEBHOOK_ENV = "CRYPTO_ALERT_WEBHOOK_URL"
LOGGER_NAME = "crypto_assets.alerts"
_LOG_LEVELS = {CRITICAL: logging.ERROR, RESOLVED: logging.INFO}


class AlertDeliveryError(RuntimeError):
    """A sink could not deliver; the message names the sink, never its URL."""


def alert_logger() -> logging.Logger:
    """The alerts logger; if nobody configured logging, it writes bare JSON lines to stderr."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger


class LogSink:
    name = "log"

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or alert_logger()

    def send(self, alert: Alert) -> None:
        line = json.dumps({"event": "crypto_assets.alert", **alert.as_dict()}, sort_keys=True, default=str)
        self.logger.log(_LOG_LEVELS.get(alert.level, logging.WARNING), line)

    def close(self) -> None:
        pass


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None):
        self._url = url
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def __repr__(self) -> str:  # keep the URL (a secret) out of reprs and tracebacks
        return "WebhookSink(url=<from CRYPTO_ALERT_WEBHOOK_URL>)"

    def send(self, alert: Alert) -> None:
        try:
            response = self._client.post(self._url, json=slack_payload(alert))
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(f"webhook: {type(exc).__name__} while posting the alert") from None
        if response.status_code >= 300:
            raise AlertDeliveryError(f"webhook: HTTP {response.status_code} {response.reason_phrase}")

    def close(self) -> None:
        self._client.close()


def sinks_from_env(environ: Mapping[str, str] | None = None) -> list:
    """The log sink, plus the webhook when CRYPTO_ALERT_WEBHOOK_URL is set."""
    environ = os.environ if environ is None else environ
    sinks: list = [LogSink()]
    if environ.get(WEBHOOK_ENV, "").strip():
        sinks.append(WebhookSink(environ[WEBHOOK_ENV].strip()))
    return sinks


@contextmanager
def configured_sinks(environ: Mapping[str, str] | None = None) -> Iterator[list]:
    sinks = sinks_from_env(environ)
    try:
        yield sinks
    finally:
        for sink in sinks:
            sink.close()


def deliver(alerts: Sequence[Alert], sinks: Sequence) -> tuple[list[Alert], list[str]]:
    """Send every alert to every sink. Returns (alerts some sink failed to deliver, error messages)."""
    failed, errors = [], []
    for alert in alerts:
        ok = True
        for sink in sinks:
            try:
                sink.send(alert)
            except AlertDeliveryError as exc:
                ok = False
                errors.append(f"{alert.subject}: {exc}")
        if not ok:
            failed.append(alert)
    return failed, errors
