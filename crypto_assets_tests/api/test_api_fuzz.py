"""Property: no combination of path and query parameters makes the API answer 500."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto_assets.api import create_app
from crypto_assets_tests.api.api_support import REDIS_URL, headers, redis_prefix, seed
from crypto_assets_tests.api.api_support import settings as api_settings

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

ENDPOINTS = {
    "/api/v1/prices/current/{symbol}": [],
    "/api/v1/prices/historical/{symbol}": ["start", "end", "interval", "limit", "page_token"],
    "/api/v1/ohlcv/{symbol}": ["start", "end", "interval", "limit", "page_token"],
    "/api/v1/sentiment/{symbol}": ["window"],
    "/api/v1/news/latest": ["symbol", "limit"],
    "/api/v1/technical/{symbol}": ["interval", "limit"],
    "/api/v1/ml-features/{symbol}/current": [],
    "/api/v1/ml-features/bulk": ["symbols", "start", "end", "limit", "page_token", "columns"],
}

plausible = st.sampled_from([
    "BTC", "eth", "WBTC", "DOGE", "BTC,ETH", "", "0", "-1", "1", "5000", "5001", "1h", "5min", "4D", "1d", "raw",
    "24h", "7d", "8d", "0h", "2025-01-01", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00+14:00", "1970-01-01",
    "0001-01-01", "9999-12-31T23:59:59", "2262-04-12", "nan", "inf", "1e309", "eyJxIjoiIn0", "close,open",
    "symbol", "%", "_", "' OR 1=1 --", "BTC|ETH",
])
value = st.one_of(plausible, st.text(max_size=40), st.integers(-10**12, 10**12).map(str),
                  st.datetimes().map(lambda d: d.isoformat()))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'warehouse.sqlite'}"
    seed(url)
    with redis_prefix() as prefix, TestClient(create_app(api_settings(url, REDIS_URL, prefix))) as c:
        yield c


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_parameters_cause_a_server_error(client, data):
    template = data.draw(st.sampled_from(sorted(ENDPOINTS)))
    path = template.replace("{symbol}", quote(data.draw(value, label="symbol"), safe=""))
    names = data.draw(st.lists(st.sampled_from(ENDPOINTS[template]), unique=True)) if ENDPOINTS[template] else []
    params = {name: data.draw(value, label=name) for name in names}
    response = client.get(path, params=params, headers=headers("admin"))
    assert response.status_code < 500, (path, params, response.text)
    assert response.headers["content-type"].startswith("application/json")
