"""Prometheus metrics after real replay runs: the exporter's values, then a real Prometheus server.

The scenario (crypto_assets_tests/metrics/metrics_support.py) runs the project's price assets in replay
mode into a temp instance and warehouse: one run meets a 429 then succeeds, one fails on HTTP 500.
1. In process, with a fixed clock: every value equals what the instance, the warehouse and
   `crypto_assets.freshness` / `crypto_assets.health` say.
2. End to end: `crypto-assets metrics` (a subprocess on the temp DAGSTER_HOME) and the data API
   (uvicorn) are scraped by a real `prometheus` on loopback, and the values are read back through
   Prometheus' HTTP API.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import httpx
import pandas as pd
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.exposition import generate_latest

from crypto_assets.freshness import evaluate
from crypto_assets.health import datasets_in, health_report
from crypto_assets.metrics.exporter import collector_for
from crypto_assets.paths import PROJECT_ROOT
from crypto_assets.sources.catalog import source_spec
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.api import api_support
from crypto_assets_tests.metrics.metrics_support import HOURS, build_scenario

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=timezone.utc)


def require_binary(name: str) -> str:
    """The binary's path; in CI a missing one fails the test (.ci/run installs it), elsewhere it skips."""
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` is not installed (Debian package `prometheus`; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return build_scenario(tmp_path_factory.mktemp("metrics") / "home")


def samples(registry) -> dict[tuple[str, frozenset], float]:
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found, name, **labels):
    return found[(name, frozenset(labels.items()))]


def ok_run_metadata(scenario, asset):
    return {m.materialization.partition: m.materialization.metadata
            for m in scenario.ok_run.get_asset_materialization_events()
            if m.materialization.asset_key.to_user_string() == asset}


@pytest.mark.slow
def test_exporter_values_equal_what_instance_warehouse_and_health_say(scenario):
    warehouse = open_warehouse(scenario.warehouse_url)
    datasets = datasets_in(scenario.graph.defs.resolve_asset_graph())
    with dg.DagsterInstance.from_config(str(scenario.home)) as instance:
        collector = collector_for(scenario.graph.defs, instance, warehouse, clock=lambda: NOW,
                                  lookback=timedelta(days=36500))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        found = samples(registry)
        report = health_report(instance, datasets, now=NOW, warehouse=warehouse)
        records = instance.get_run_records(dg.RunsFilter(run_ids=[scenario.ok_run.run_id, scenario.failed_run.run_id]))
    assert value(found, "crypto_exporter_collect_success", part="datasets") == 1
    assert value(found, "crypto_exporter_collect_success", part="runs") == 1

    # Data time: the newest observed_at in the warehouse, whatever ran when.
    newest = pd.Timestamp(warehouse.read(_prices_spec(), columns=["observed_at"]).observed_at.max()).to_pydatetime()
    assert newest.tzinfo is not None
    assert value(found, "crypto_dataset_data_age_seconds", dataset="price_observations") == \
        pytest.approx((NOW - newest).total_seconds())
    policy = next(d.freshness_policy for d in datasets if d.name == "price_observations")
    measured = evaluate(warehouse, "price_observations", policy, NOW)
    assert value(found, "crypto_dataset_newest_data_timestamp_seconds", dataset="price_observations") == \
        pytest.approx(measured.data_time.timestamp())
    assert value(found, "crypto_dataset_freshness_warn_after_seconds", dataset="price_observations") == 2 * 3600
    assert value(found, "crypto_dataset_freshness_fail_after_seconds", dataset="price_observations") == 4 * 3600
    assert value(found, "crypto_dataset_freshness_state", dataset="price_observations", state="FAIL") == 1
    assert value(found, "crypto_dataset_freshness_state", dataset="price_observations", state="PASS") == 0
    # Never built: no data age, state UNKNOWN.
    assert ("crypto_dataset_data_age_seconds", frozenset({("dataset", "ml_features")})) not in found
    assert value(found, "crypto_dataset_freshness_state", dataset="ml_features", state="UNKNOWN") == 1

    # Health: the definition's numbers, per dataset and overall.
    assert value(found, "crypto_platform_health_score") == report.score
    for row in report.datasets:
        if row.not_configured:  # an optional source nobody set up: listed, not scored
            assert ("crypto_dataset_health_score", frozenset({("dataset", row.asset)})) not in found
            assert value(found, "crypto_dataset_freshness_state", dataset=row.asset, state="NOT_CONFIGURED") == 1
            continue
        assert value(found, "crypto_dataset_health_score", dataset=row.asset) == row.score
        assert value(found, "crypto_dataset_checks_never_run", dataset=row.asset) == len(row.never_run_checks)
        failing = value(found, "crypto_dataset_failing_checks", dataset=row.asset, severity="ERROR") + \
            value(found, "crypto_dataset_failing_checks", dataset=row.asset, severity="WARN")
        assert failing == len(row.failing_checks)
    assert report.score < 60  # data of 2021: stale

    # Rows of the newest partition (the failed hour after it wrote nothing).
    prices = ok_run_metadata(scenario, "price_observations")
    assert value(found, "crypto_dataset_newest_partition_rows", dataset="price_observations") == \
        prices[HOURS[1]]["dagster/row_count"].value
    assert value(found, "crypto_dataset_newest_partition_start_timestamp_seconds", dataset="price_observations") == \
        pd.Timestamp("2021-05-15 12:00", tz="UTC").timestamp()
    assert value(found, "crypto_dataset_rows_written_total", dataset="price_observations") == \
        sum(m["dagster/row_count"].value for m in prices.values())

    # Sources: requests from the run's metadata, one 429 retried, four 500s retried then a failure.
    requests = prices[HOURS[1]]["requests_made"].value
    assert requests > 1
    assert value(found, "crypto_source_requests_total", source="coingecko") == requests
    assert value(found, "crypto_source_retries_total", source="coingecko", reason="429") == 1
    assert value(found, "crypto_source_retries_total", source="coingecko", reason="500") == 4
    assert value(found, "crypto_source_rate_limited_responses_total", source="coingecko") == 1
    assert value(found, "crypto_source_errors_total", source="coingecko") == 1
    assert value(found, "crypto_source_errors_total", source="yahoo") == 0
    budget = source_spec("coingecko").max_requests_per_run
    assert value(found, "crypto_source_request_budget_per_run", source="coingecko") == budget
    assert value(found, "crypto_source_request_budget_remaining", source="coingecko") == budget - requests

    # Runs: outcome and duration by job and by asset.
    durations = {r.dagster_run.run_id: r.end_time - r.start_time for r in records}
    job = scenario.ok_run.dagster_run.job_name
    assert value(found, "crypto_run_duration_seconds_count", job=job, status="FAILURE") == 1
    assert value(found, "crypto_run_duration_seconds_sum", job=job, status="FAILURE") == \
        pytest.approx(durations[scenario.failed_run.run_id])
    assert value(found, "crypto_run_duration_seconds_count", job=job, status="SUCCESS") == 2  # + coin_universe
    assert value(found, "crypto_asset_run_duration_seconds_count", dataset="ohlcv_bars", status="SUCCESS") == 1
    assert value(found, "crypto_asset_run_duration_seconds_count", dataset="price_observations", status="FAILURE") == 1
    assert value(found, "crypto_asset_run_duration_seconds_sum", dataset="ohlcv_bars", status="SUCCESS") == \
        pytest.approx(durations[scenario.ok_run.run_id])


@pytest.mark.slow
def test_runs_are_counted_once_across_scrapes(scenario):
    with dg.DagsterInstance.from_config(str(scenario.home)) as instance:
        collector = collector_for(scenario.graph.defs, instance, open_warehouse(scenario.warehouse_url),
                                  lookback=timedelta(days=36500))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        first, second = samples(registry), samples(registry)
    for name, labels in [("crypto_source_requests_total", {"source": "coingecko"}),
                         ("crypto_source_errors_total", {"source": "coingecko"})]:
        assert value(first, name, **labels) == value(second, name, **labels) > 0


def _prices_spec():
    from crypto_assets.tables import table

    return table("price_observations")


# --- a real Prometheus ---------------------------------------------------------------------------


@contextlib.contextmanager
def process(args, env=None, log=None):
    proc = subprocess.Popen(args, env=env, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_for(url: str, proc, deadline: float, what: str) -> None:
    while True:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"{what} did not answer {url} in time"
        time.sleep(0.2)


def query(base: str, expr: str) -> list[dict]:
    body = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(base: str, selector: str, agg: str = "") -> float:
    """The latest scraped value of `selector` (summed with `agg`, e.g. "sum"): exactly one series.

    `last_over_time` reads the last sample even after a slow scrape of this loaded machine timed out
    (a failed scrape marks every series of the target stale for instant queries)."""
    expr = f"{agg}(last_over_time({selector}[5m]))"
    deadline = time.monotonic() + 10
    while True:
        result = query(base, expr)
        if len(result) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def nonempty(base: str, expr: str) -> list[dict]:
    deadline = time.monotonic() + 10
    while not (result := query(base, expr)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return result


@pytest.mark.slow
def test_prometheus_scrapes_exporter_and_api(scenario, tmp_path):
    prometheus = require_binary("prometheus")
    deadline = time.monotonic() + 50
    exporter_port, api_port, prom_port = (api_support.free_port() for _ in range(3))
    env = {**os.environ, "DAGSTER_HOME": str(scenario.home), "CRYPTO_WAREHOUSE_URL": scenario.warehouse_url,
           "CRYPTO_SOURCE_MODE": "replay", "PYTHONPATH": str(PROJECT_ROOT)}
    config = tmp_path / "prometheus.yml"
    config.write_text(textwrap.dedent(f"""\
        global:
          scrape_interval: 2s
          scrape_timeout: 2s
          evaluation_interval: 2s
        scrape_configs:
          - job_name: crypto-assets-exporter
            static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
          - job_name: crypto-assets-api
            static_configs: [{{targets: ["127.0.0.1:{api_port}"]}}]
        """))
    ro, tr = api_support.headers("readonly"), api_support.headers("trading")
    exporter_log = open(tmp_path / "exporter.log", "wb")
    with contextlib.ExitStack() as stack:
        prefix = stack.enter_context(api_support.redis_prefix())
        settings = api_support.settings(scenario.warehouse_url, api_support.REDIS_URL, prefix,
                                        rate_limits={"readonly": "3/minute", "trading": "1000/minute",
                                                     "admin": "1000/minute"})
        from crypto_assets.api import create_app

        api_host = stack.enter_context(api_support.live_server(create_app(settings), api_port))
        exporter = stack.enter_context(process(
            [sys.executable, "-m", "crypto_assets.cli", "metrics", "--host", "127.0.0.1", "--port",
             str(exporter_port), "--min-interval", "1", "--lookback-hours", str(24 * 365 * 20)], env=env,
            log=exporter_log))
        prom = stack.enter_context(process(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"]))
        base = f"http://127.0.0.1:{prom_port}"

        # API traffic: a miss, two cache hits, then the key's limit (3/minute) answers 429.
        statuses = [httpx.get(f"http://{api_host}/api/v1/prices/current/btc", headers=ro, timeout=10).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        ws = stack.enter_context(_websocket(f"ws://{api_host}/ws/prices", tr))
        assert ws.recv(timeout=10)  # hello: the client is subscribed

        wait_for(f"http://127.0.0.1:{exporter_port}/ready", exporter, deadline, "crypto-assets metrics")
        wait_for(f"{base}/-/ready", prom, deadline, "prometheus")
        while not (query(base, 'up{job="crypto-assets-exporter"} == 1') and query(base, 'up{job="crypto-assets-api"} == 1')
                   and query(base, "crypto_api_websocket_clients == 1")):
            assert time.monotonic() < deadline, f"targets not scraped: {query(base, 'up')}"
            time.sleep(0.3)

        # Exporter values, read back through Prometheus.
        prices = ok_run_metadata(scenario, "price_observations")
        newest = pd.Timestamp(open_warehouse(scenario.warehouse_url).read(_prices_spec(), columns=["observed_at"])
                              .observed_at.max()).timestamp()
        started = time.time()
        assert scalar(base, 'crypto_dataset_newest_data_timestamp_seconds{dataset="price_observations"}') == \
            pytest.approx(newest)
        age = scalar(base, 'crypto_dataset_data_age_seconds{dataset="price_observations"}')
        assert started - 60 - newest <= age <= time.time() - newest  # measured at a scrape, on data time
        assert scalar(base, 'crypto_dataset_freshness_state{dataset="price_observations",state="FAIL"}') == 1
        assert scalar(base, 'crypto_dataset_newest_partition_rows{dataset="price_observations"}') == \
            prices[HOURS[1]]["dagster/row_count"].value
        with dg.DagsterInstance.from_config(str(scenario.home)) as instance:
            from crypto_assets.definitions import defs

            report = health_report(instance, datasets_in(defs.resolve_asset_graph()),
                                   warehouse=open_warehouse(scenario.warehouse_url))
        assert scalar(base, "crypto_platform_health_score") == report.score
        assert scalar(base, 'crypto_source_requests_total{source="coingecko"}') == \
            prices[HOURS[1]]["requests_made"].value
        assert scalar(base, 'crypto_source_rate_limited_responses_total{source="coingecko"}') == 1
        assert scalar(base, 'crypto_source_errors_total{source="coingecko"}') == 1
        assert scalar(base, 'crypto_run_duration_seconds_count{status="FAILURE"}', "sum") == 1
        assert scalar(base, 'crypto_run_duration_seconds_count{status="SUCCESS"}', "sum") == 2

        # API values.
        route = "/api/v1/prices/current/{symbol}"
        assert scalar(base, f'crypto_api_requests_total{{route="{route}",status="200"}}') == 3
        assert scalar(base, f'crypto_api_requests_total{{route="{route}",status="429"}}') == 1
        assert scalar(base, f'crypto_api_request_duration_seconds_count{{route="{route}",status="200"}}') == 3
        assert scalar(base, 'crypto_api_cache_lookups_total{endpoint="prices_current",result="hit"}') == 2
        assert scalar(base, 'crypto_api_cache_lookups_total{endpoint="prices_current",result="miss"}') == 1
        assert scalar(base, 'crypto_api_rate_limited_total{limit="key"}') == 1
        assert scalar(base, "crypto_api_websocket_clients") == 1

        # Every dashboard panel and alert expression is valid PromQL over these series; the
        # panels on values present after this scenario return data.
        dashboard = json.loads((PROJECT_ROOT / "k8s/monitoring/grafana-dashboard.json").read_text())
        panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard["panels"]}
        for title, exprs in panels.items():
            for expr in exprs:
                query(base, expr)  # asserts status success
        for title in ("Platform health", "Health by dataset", "Freshness lag (data time) by dataset",
                      "Rows in the newest partition", "WebSocket clients"):
            assert nonempty(base, panels[title][0]), title
        rules = yaml.safe_load((PROJECT_ROOT / "k8s/monitoring/prometheus-rules.yaml").read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                query(base, rule["expr"])
        fail = nonempty(base, 'crypto_dataset_data_age_seconds >= crypto_dataset_freshness_fail_after_seconds')
        assert "price_observations" in {r["metric"]["dataset"] for r in fail}  # 2021 data: past the fail window
        assert time.monotonic() < deadline
    exporter_log.close()


@contextlib.contextmanager
def _websocket(url, headers):
    from websockets.sync.client import connect

    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        yield ws
