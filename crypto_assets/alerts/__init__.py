"""Alerts: freshness and asset-check state changes and failed runs, sent to a JSON log line and,
when `CRYPTO_ALERT_WEBHOOK_URL` is set, a Slack-compatible webhook. See docs/operations.md."""

from crypto_assets.alerts.messages import Alert, slack_payload, transitions
from crypto_assets.alerts.sensors import SENSORS, asset_state_alert_sensor, run_failure_alert_sensor
from crypto_assets.alerts.sinks import WEBHOOK_ENV, LogSink, WebhookSink, sinks_from_env

__all__ = [
    "SENSORS", "WEBHOOK_ENV", "Alert", "LogSink", "WebhookSink", "asset_state_alert_sensor",
    "run_failure_alert_sensor", "sinks_from_env", "slack_payload", "transitions",
]
