"""Alert rules and the webhook payload, without Dagster."""

import json
from datetime import datetime, timezone

from crypto_assets.alerts.messages import slack_payload, transitions
from crypto_assets.alerts.sensors import next_cursor

AT = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def test_only_changes_into_and_out_of_trouble_alert():
    previous = {"freshness": {"a": "PASS", "b": "WARN", "c": "FAIL", "d": "UNKNOWN", "e": "WARN"},
                "checks": {"a:x": "PASSED", "a:y": "FAILED_ERROR", "a:z": "FAILED_WARN"}}
    current = {"freshness": {"a": "WARN", "b": "WARN", "c": "PASS", "d": "PASS", "e": "FAIL", "f": "UNKNOWN"},
               "checks": {"a:x": "FAILED_WARN", "a:y": "FAILED_ERROR", "a:z": "PASSED", "a:new": "FAILED_ERROR"}}
    got = [(a.kind, a.subject, a.level) for a in transitions(previous, current, AT)]
    assert got == [
        ("freshness", "a", "warning"),  # PASS -> WARN
        ("freshness", "c", "resolved"),  # FAIL -> PASS
        ("freshness", "e", "critical"),  # WARN -> FAIL
        # b unchanged, d UNKNOWN -> PASS (first materialization) and f never materialized: silent
        ("check", "a:new", "critical"),  # first result is a failure
        ("check", "a:x", "warning"),
        ("check", "a:z", "resolved"),
    ]


def test_undelivered_alerts_keep_their_previous_state_in_the_cursor():
    previous = {"freshness": {"a": "PASS"}, "checks": {}}
    current = {"freshness": {"a": "FAIL", "b": "PASS"}, "checks": {"a:x": "FAILED_ERROR"}}
    undelivered = transitions(previous, current, AT)
    assert len(undelivered) == 2
    cursor = next_cursor(previous, current, undelivered)
    assert cursor == {"freshness": {"a": "PASS", "b": "PASS"}, "checks": {}}
    assert len(transitions(cursor, current, AT)) == 2  # so the next tick tries again


def test_webhook_payload_is_slack_compatible_json():
    (alert,) = transitions({}, {"checks": {"price_observations:symbol_coverage": "FAILED_ERROR"}}, AT,
                           {"price_observations:symbol_coverage": {"partition": "2021-05-15-10:00",
                                                                  "description": "3 of 12 symbols"}})
    payload = json.loads(json.dumps(slack_payload(alert)))
    assert payload["text"] == "[crypto-assets critical] check price_observations:symbol_coverage failed (ERROR)"
    assert [b["type"] for b in payload["blocks"]] == ["section", "section", "context"]
    assert payload["blocks"][0]["text"]["type"] == "mrkdwn"
    assert "*partition*: 2021-05-15-10:00" in payload["blocks"][1]["text"]["text"]
    assert all(len(b["text"]["text"]) <= 3000 for b in payload["blocks"] if "text" in b)  # Slack's limit
