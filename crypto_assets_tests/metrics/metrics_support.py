"""A replay scenario for the metrics tests: real runs of the project's assets into a temp instance.

Runs, in a Dagster instance in `home` (usable as DAGSTER_HOME) and a SQLite warehouse there:
1. coin_universe;
2. price_observations + ohlcv_bars over three recorded hours (BTC, 15 May 2021), through a
   CoinGecko whose first request answers HTTP 429 (Retry-After: 0), then the recordings;
3. price_observations for the next hour through a CoinGecko that answers HTTP 500 every time,
   so the step fails with the client's SourceError after its retries.
The HTTP server is scripted (httpx transport), nothing of the project is: the client, the assets,
the checks and the warehouse are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx

from crypto_assets.sources.catalog import source_spec
from crypto_assets.sources.coingecko import CoinGecko
from crypto_assets.sources.replay import replay_transport
from crypto_assets_tests.graph_helpers import ProjectGraph

HOURS = ("2021-05-15-10:00", "2021-05-15-12:00")
FAILED_HOUR = "2021-05-15-13:00"


class _Scripted(httpx.BaseTransport):
    """Answers the first `fail_first` requests (all when None) with `status`, the rest from `inner`."""

    def __init__(self, inner: httpx.BaseTransport, status: int, fail_first: int | None):
        self.inner, self.status, self.fail_first, self.calls = inner, status, fail_first, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.fail_first is None or self.calls <= self.fail_first:
            headers = {"Retry-After": "0"} if self.status == 429 else {}
            return httpx.Response(self.status, headers=headers, text="scripted failure", request=request)
        return self.inner.handle_request(request)


class ScriptedCoinGecko(CoinGecko):
    """CoinGecko in replay mode whose transport answers `status` first (see `_Scripted`)."""

    status: int = 429
    fail_first: int | None = 1

    def make_client(self, log=None, **kwargs):
        spec = source_spec(self.source_name)
        inner = replay_transport(spec.name, spec.base_url, self.replay_dir)
        return super().make_client(log=log, transport=_Scripted(inner, self.status, self.fail_first),
                                   sleep=lambda _s: None, **kwargs)


@dataclass
class Scenario:
    home: Path
    warehouse_url: str
    graph: ProjectGraph
    ok_run: dg.ExecuteInProcessResult
    failed_run: dg.ExecuteInProcessResult


def build_scenario(home: Path) -> Scenario:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    url = f"sqlite:///{home / 'warehouse.sqlite'}"
    graph = ProjectGraph(url)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        graph.materialize(instance, ["coin_universe"])
        graph.resources["coingecko"] = ScriptedCoinGecko(mode="replay", status=429, fail_first=1)
        ok = graph.materialize(instance, ["price_observations", "ohlcv_bars"], range_=HOURS)
        graph.resources["coingecko"] = ScriptedCoinGecko(mode="replay", status=500, fail_first=None)
        failed = graph.materialize(instance, ["price_observations"], partition=FAILED_HOUR, raise_on_error=False)
    assert ok.success and not failed.success
    return Scenario(home, url, graph, ok, failed)
