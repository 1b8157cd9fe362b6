"""Derivatives requests against their exchanges' published per-endpoint limits, and a block (Bybit's
403 from a refused region) treated as a block: the exchange is asked nothing more that run."""

from __future__ import annotations

import dataclasses

import httpx
import pandas as pd
import pytest

from crypto_assets.assets.ingest.derivatives import failed_metric_fetches
from crypto_assets.sources.derivatives import SwapMarket, fetch_metrics, load_derivatives_catalog, open_derivatives
from crypto_assets.sources.exchanges import Exchanges, request_plan, source_spec
from crypto_assets_tests.sources.test_exchanges import most_in_a_window, request_starts

CATALOG = load_derivatives_catalog()


def _spec(name: str):
    return dataclasses.replace(source_spec(name), min_interval_s=CATALOG.min_interval_s[name],
                               published_limit=CATALOG.published_limit[name])


@pytest.mark.parametrize("name", CATALOG.exchanges)
def test_derivatives_spacing_is_planned_against_the_strictest_endpoints_published_limit(name):
    """Binance's /fapi/v1/fundingRate (500 / 5 min) and OKX's funding-rate-history (10 / 2 s) are
    stricter than their candle endpoints: the derivatives client's spacing stays within them, at
    80-100 % of the limit, and the client it opens uses exactly that spacing and limit."""
    limit = CATALOG.published_limit[name]
    assert limit["requests"] > 0 and limit["per_s"] > 0 and limit["source"]
    plan = request_plan(_spec(name))
    assert plan["within_limit"] and plan["max_requests_in_a_published_window"] <= limit["requests"], plan
    assert 0.8 <= plan["share_of_limit"] <= 1.0, plan
    client = open_derivatives(Exchanges(mode="replay"), name, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert client.client.spec.published_limit == limit
    assert client.client.spec.min_interval_s == CATALOG.min_interval_s[name]


@pytest.mark.parametrize("name", ["binance", "okx"])
def test_the_derivatives_client_never_puts_more_than_the_limit_in_a_window(name):
    """The SourceClient itself on a virtual clock: request starts per published window."""
    spec = _spec(name)
    allowed, window = int(spec.published_limit["requests"]), float(spec.published_limit["per_s"])
    in_window = most_in_a_window(request_starts(spec, 2 * allowed + 5, "/fapi/v1/fundingRate"), window)
    assert in_window.max() <= allowed


def test_a_403_block_stops_the_exchange_for_the_run():
    """Bybit answers 403 to a refused region: after the first refusal nothing more is asked, the
    exchange is reported stopped, and every (symbol, kind) keeps what is stored."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(403, text="The Amazon CloudFront distribution is configured to block access from your "
                                        "country.")

    client = open_derivatives(Exchanges(mode="replay"), "bybit", transport=httpx.MockTransport(handler))
    client.markets()  # replay: the recorded market list, no request
    markets = {s: SwapMarket("bybit", s, f"{s}/USDT:USDT", "USDT", 1.0) for s in ("BTC", "ETH")}
    t = pd.Timestamp("2024-11-04 14:00", tz="UTC")
    result = fetch_metrics(client, markets, t, t + pd.Timedelta(hours=1), snapshot=True, history=False)
    assert result.rows == [] and result.attempted == 1 and len(seen) == 1  # one refusal, then silence
    assert result.stopped and "403" in result.stopped
    assert len(result.failures) == 4 and sum("not asked" in r for r in result.failures.values()) == 3
    out = {"bybit": {"rows": [], "failures": result.failures, "error": result.stopped, "attempted": 1}}
    keys = {tuple(sorted(f.key.items())) for f in failed_metric_fetches(out)}
    assert len(keys) == 4 and all(dict(k)["exchange"] == "bybit" for k in keys)
