"""Page tokens are signed and what they say is validated like query parameters (issue 11, item 8):
a forged or edited token, or a signed one asking for what the query could not, answers 422, never
500 and never rows."""

from __future__ import annotations

import base64
import json
import logging

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from crypto_assets.api import create_app, paging
from crypto_assets.api.settings import ApiSettings, ConfigError
from crypto_assets_tests.api.api_support import headers, seed, settings

RO = headers("readonly")
TR = headers("trading")
SECRET = b"test-page-token-secret-0123456789abcdef"
PATH = "/api/v1/prices/historical/BTC"
PARAMS = {"limit": 2}


@pytest.fixture
def api(sqlite_url):
    seed(sqlite_url)
    with TestClient(create_app(settings(sqlite_url, None, "unused", token_secret=SECRET))) as client:
        yield client, sqlite_url


def _payload(token: str) -> dict:
    body = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _unsigned(payload: dict) -> str:
    """A token as the old unsigned format made them: base64 JSON anyone can write."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _signed(payload: dict, secret: bytes = SECRET) -> str:
    body = paging._b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{paging._b64(paging._mac(secret, body))}"


def _first_token(client) -> str:
    first = client.get(PATH, params=PARAMS, headers=RO)
    assert first.status_code == 200
    return first.json()["next_page_token"]


def test_following_the_tokens_still_pages_through(api):
    client, _ = api
    token, seen = _first_token(client), 2
    while token:
        page = client.get(PATH, params={**PARAMS, "page_token": token}, headers=RO)
        assert page.status_code == 200
        seen += page.json()["count"]
        token = page.json()["next_page_token"]
    full = client.get(PATH, params={"limit": 5000}, headers=RO).json()
    assert seen == full["count"] > 4


@pytest.mark.parametrize("change", [
    {"t": "-0001-01-01T00:00:00+00:00"},  # year -1: was a 500 (ValueError in to_utc)
    {"a": "1900-01-01T00:00:00+00:00", "t": "1900-01-01T00:00:00+00:00"},  # before 1970: was served with 200
    {"b": "2300-01-01T00:00:00+00:00"},  # after 2200: was served with 200
], ids=["year-minus-1", "start-1900", "end-2300"])
def test_forged_unsigned_tokens_are_refused(api, change):
    client, _ = api
    forged = _unsigned({**_payload(_first_token(client)), **change})
    r = client.get(PATH, params={**PARAMS, "page_token": forged}, headers=RO)
    assert r.status_code == 422 and "page_token is not valid" in r.json()["detail"]


def test_an_edited_or_foreign_token_is_refused(api):
    client, _ = api
    token = _first_token(client)
    body, _, signature = token.partition(".")
    edited = _signed({**_payload(token), "a": "2020-01-01T00:00:00+00:00"}).split(".")[0] + "." + signature
    foreign = _signed(_payload(token), secret=b"another-servers-secret-0123456789abcd")
    for bad in (edited, foreign, body, token[:-3], token + "x", "a.b", ".", "é.é"):
        r = client.get(PATH, params={**PARAMS, "page_token": bad}, headers=RO)
        assert r.status_code == 422, bad
    assert client.get(PATH, params={**PARAMS, "page_token": token}, headers=RO).status_code == 200


@pytest.mark.parametrize("change, reason", [
    ({"a": "1900-01-01T00:00:00+00:00", "t": "1900-01-01T00:00:00+00:00"}, "start must lie between"),
    ({"b": "2300-01-01T00:00:00+00:00"}, "end must lie between"),
    ({"t": "-0001-01-01T00:00:00+00:00"}, "not valid"),
    ({"a": "2030-01-02T00:00:00+00:00", "b": "2030-01-01T00:00:00+00:00"}, "must be before end"),
    ({"t": "2010-01-01T00:00:00+00:00"}, "outside its range"),
    ({"s": "btc; drop"}, "not a ticker"),
])
def test_a_signed_token_is_validated_like_the_query_parameters(api, change, reason):
    """Even a token the server signed (an older release, a leaked secret) cannot ask for more."""
    client, _ = api
    token = _signed({**_payload(_first_token(client)), **change})
    r = client.get(PATH, params={**PARAMS, "page_token": token}, headers=RO)
    assert r.status_code == 422 and reason in r.json()["detail"], r.json()


def test_bulk_tokens_are_signed_too(api):
    client, _ = api
    params = {"symbols": "BTC,ETH", "limit": 3}
    token = client.get("/api/v1/ml-features/bulk", params=params, headers=TR).json()["next_page_token"]
    assert token
    forged = _unsigned({**_payload(token), "a": "1900-01-01T00:00:00+00:00"})
    assert client.get("/api/v1/ml-features/bulk", params={**params, "page_token": forged},
                      headers=TR).status_code == 422
    assert client.get("/api/v1/ml-features/bulk", params={**params, "page_token": token}, headers=TR).status_code == 200


def test_processes_sharing_the_secret_accept_each_others_tokens_and_others_do_not(sqlite_url, caplog):
    seed(sqlite_url)
    with TestClient(create_app(settings(sqlite_url, None, "unused", token_secret=SECRET))) as one:
        token = _first_token(one)
    with TestClient(create_app(settings(sqlite_url, None, "unused", token_secret=SECRET))) as two:
        assert two.get(PATH, params={**PARAMS, "page_token": token}, headers=RO).status_code == 200
    with caplog.at_level(logging.WARNING, logger="crypto_assets.api.state"):
        random_secret = create_app(settings(sqlite_url, None, "unused"))
    assert any("CRYPTO_API_TOKEN_SECRET is not set" in r.getMessage() for r in caplog.records)
    with TestClient(random_secret) as three:
        assert three.get(PATH, params={**PARAMS, "page_token": token}, headers=RO).status_code == 422


def test_the_secret_comes_from_the_environment_and_must_be_long():
    loaded = ApiSettings.from_env({"CRYPTO_API_TOKEN_SECRET": "x" * 32})
    assert loaded.token_secret == b"x" * 32 and "xxxx" not in repr(loaded)
    assert ApiSettings.from_env({}).token_secret is None
    with pytest.raises(ConfigError, match="CRYPTO_API_TOKEN_SECRET must be at least 32"):
        ApiSettings.from_env({"CRYPTO_API_TOKEN_SECRET": "short"})


def test_decode_never_raises_anything_but_page_token_errors():
    query = paging.fingerprint(ep="x")
    good = paging.encode(query, paging.Position(*[pd.Timestamp("2025-01-01", tz="UTC")] * 1, None,
                                                pd.Timestamp("2025-01-01", tz="UTC"),
                                                pd.Timestamp("2025-01-02", tz="UTC")), SECRET)
    assert paging.decode(good, query, SECRET).symbol is None
    for payload in ({"q": query, "t": "+99999-01-01T00:00:00+00:00", "s": None, "a": "x", "b": "y"},
                    [1, 2], "text", {"q": query}, {"q": query, "t": 1e300, "a": None, "b": True}):
        with pytest.raises(paging.PageTokenError):
            paging.decode(_signed(payload), query, SECRET)
