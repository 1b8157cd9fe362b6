"""`/ready` tells anyone whether the API can serve, and only a key holder where it reads from
(issue 11, item 13): without a valid key, state words only; no host, user, database or error text."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from crypto_assets.api import create_app
from crypto_assets_tests.api.api_support import free_port, headers, seed, settings

RO = headers("readonly")
PUBLIC_SHAPE = {"status", "warehouse", "redis", "feed"}


def _words_only(body: dict) -> None:
    assert set(body) == PUBLIC_SHAPE
    assert body["warehouse"] == {"state": body["warehouse"]["state"]}
    assert body["redis"] == {"state": body["redis"]["state"]} and body["feed"] == {"mode": body["feed"]["mode"]}


def test_without_a_key_ready_shows_state_words_only(sqlite_url):
    seed(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    with TestClient(create_app(settings(sqlite_url, None, "unused"))) as client:
        for extra in ({}, {"X-API-Key": "not-a-key"}):
            public = client.get("/ready", headers=extra)
            assert public.status_code == 200
            body = public.json()
            _words_only(body)
            assert body == {"status": "degraded", "warehouse": {"state": "ok"}, "redis": {"state": "not_configured"},
                            "feed": {"mode": "polling"}}
            assert path not in public.text
        detailed = client.get("/ready", headers=RO).json()
        assert path in detailed["warehouse"]["url"] and "price_observations" in detailed["warehouse"]["datasets"]


@pytest.mark.parametrize("with_key", [False, True])
def test_an_unreachable_warehouse_shows_its_user_host_and_database_only_to_key_holders(with_key):
    url = f"mysql+pymysql://produser:hunter2pw@127.0.0.1:{free_port()}/proddb"  # nothing listens there
    with TestClient(create_app(settings(url, None, "unused"))) as client:
        r = client.get("/ready", headers=RO if with_key else {})
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable" and body["warehouse"]["state"] == "unavailable"
    text = json.dumps(body)
    assert "hunter2pw" not in text
    if with_key:
        assert "OperationalError" in body["warehouse"]["detail"]
    else:
        _words_only(body)
        for secret in ("produser", "proddb", "127.0.0.1", "OperationalError"):
            assert secret not in text
