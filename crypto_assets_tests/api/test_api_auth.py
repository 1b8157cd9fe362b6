"""API keys: tiers enforced per endpoint, 401/403, keys from env or file as hashes, rate limits (429)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from crypto_assets.api import create_app
from crypto_assets.api.auth import KeyRing
from crypto_assets.api.settings import ApiKey, ApiSettings, ConfigError, hash_key
from crypto_assets_tests.api.api_support import KEYS, REDIS_URL, free_port, headers, redis_prefix, seed, settings

TIER_OF_ENDPOINT = {
    "/api/v1/prices/current/BTC": "readonly",
    "/api/v1/prices/historical/BTC": "readonly",
    "/api/v1/ohlcv/BTC": "readonly",
    "/api/v1/sentiment/BTC": "readonly",
    "/api/v1/news/latest": "readonly",
    "/api/v1/technical/BTC": "readonly",
    "/api/v1/health": "readonly",
    "/api/v1/symbols": "readonly",
    "/api/v1/fear-greed": "readonly",
    "/api/v1/ml-features/BTC/current": "trading",
    "/api/v1/ml-features/bulk?symbols=BTC": "trading",
}
RANK = {"readonly": 0, "trading": 1, "admin": 2}


@pytest.fixture
def client(sqlite_url):
    seed(sqlite_url)
    with redis_prefix() as prefix, TestClient(create_app(settings(sqlite_url, REDIS_URL, prefix))) as c:
        yield c


def test_each_endpoint_enforces_its_tier(client):
    for path, needed in TIER_OF_ENDPOINT.items():
        missing = client.get(path)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "ApiKey", path
        assert client.get(path, headers={"X-API-Key": "not-a-key"}).status_code == 401, path
        for tier in KEYS:
            status = client.get(path, headers=headers(tier)).status_code
            if RANK[tier] >= RANK[needed]:
                assert status == 200, (path, tier)
            else:
                assert status == 403, (path, tier)
    invalidate = "/api/v1/admin/cache/invalidate"
    assert client.post(invalidate, headers=headers("trading")).status_code == 403
    done = client.post(invalidate, params={"dataset": "price_observations"}, headers=headers("admin"))
    assert done.status_code == 200 and done.json()["invalidated"] == ["price_observations"]


def test_public_endpoints_need_no_key(client):
    for path in ("/health", "/ready", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path
    spec = client.get("/openapi.json").json()
    assert "/api/v1/ml-features/bulk" in spec["paths"]
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_keys_are_configured_as_hashes_from_env_or_file(tmp_path):
    digest = hash_key("s3cret")
    key_file = tmp_path / "keys"
    key_file.write_text(f"# api keys\nadmin:{hash_key('boss')}\n")
    loaded = ApiSettings.from_env({"CRYPTO_API_KEYS": f"readonly:{digest}", "CRYPTO_API_KEYS_FILE": str(key_file)})
    ring = KeyRing(loaded.api_keys)
    assert ring.identify("s3cret").tier == "readonly"
    assert ring.identify("boss").tier == "admin"
    assert ring.identify("S3CRET") is None and ring.identify("") is None
    with pytest.raises(ConfigError, match="CRYPTO_API_KEYS"):
        ApiSettings.from_env({"CRYPTO_API_KEYS": "readonly:s3cret"})  # a raw key, not a hash
    with pytest.raises(ConfigError, match="CRYPTO_API_KEYS"):
        ApiSettings.from_env({"CRYPTO_API_KEYS": f"superuser:{digest}"})
    with pytest.raises(ConfigError, match="CRYPTO_API_KEYS_FILE"):
        ApiSettings.from_env({"CRYPTO_API_KEYS_FILE": str(tmp_path / "absent")})


def test_no_configured_keys_means_everything_protected_answers_401(sqlite_url):
    with TestClient(create_app(ApiSettings(warehouse_url=sqlite_url))) as c:
        assert c.get("/api/v1/symbols", headers={"X-API-Key": "anything"}).status_code == 401
        assert c.get("/health").status_code == 200


def _limited(url, redis_url, prefix, **extra):
    return settings(url, redis_url, prefix, rate_limits={"readonly": "3/minute", "trading": "1000/minute",
                                                         "admin": "1000/minute"}, **extra)


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis", "redis-down"])
def test_rate_limit_per_key_answers_429_with_retry_after(sqlite_url, redis_up):
    seed(sqlite_url)
    redis_url = REDIS_URL if redis_up else f"redis://127.0.0.1:{free_port()}/0"
    with redis_prefix() as prefix, TestClient(create_app(_limited(sqlite_url, redis_url, prefix))) as c:
        codes = [c.get("/api/v1/symbols", headers=headers("readonly")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        blocked = c.get("/api/v1/symbols", headers=headers("readonly"))
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert c.get("/api/v1/symbols", headers=headers("trading")).status_code == 200  # other key, other bucket
        if redis_up:  # the limit lives in Redis: a second API process shares it
            with TestClient(create_app(_limited(sqlite_url, redis_url, prefix))) as other:
                assert other.get("/api/v1/symbols", headers=headers("readonly")).status_code == 429


def test_unknown_keys_are_rate_limited_per_client(sqlite_url):
    with redis_prefix() as prefix, TestClient(create_app(
            settings(sqlite_url, REDIS_URL, prefix, auth_failure_limit="5/minute"))) as c:
        codes = [c.get("/api/v1/symbols", headers={"X-API-Key": f"guess-{i}"}).status_code for i in range(7)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]


def test_key_lookup_compares_hashes_and_keeps_the_first_match():
    keys = tuple(ApiKey("readonly", hash_key(f"k{i}")) for i in range(3))
    ring = KeyRing(keys + (ApiKey("admin", hash_key("k0")),))  # a duplicate entry: the first one wins
    assert ring.identify("k0").tier == "readonly"
    assert ring.identify("k2").key_id == hash_key("k2")[:12]


def test_importing_the_package_does_not_import_fastapi():
    code = ("import sys, crypto_assets, crypto_assets.api.pubsub, crypto_assets.api.settings; "
            "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_new_key_command_prints_a_key_whose_entry_authenticates(capsys):
    from crypto_assets.cli import main  # the `crypto-assets` entry point: `crypto-assets api --new-key trading`

    assert main(["api", "--new-key", "trading"]) == 0
    out = capsys.readouterr().out
    key = out.split("key (give it to the client; it is not stored anywhere): ")[1].split()[0]
    entry = out.split("entry (add to CRYPTO_API_KEYS or CRYPTO_API_KEYS_FILE): ")[1].split()[0]
    ring = KeyRing(ApiSettings.from_env({"CRYPTO_API_KEYS": entry}).api_keys)
    assert ring.identify(key).tier == "trading"
    assert key not in entry
