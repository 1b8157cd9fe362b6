"""`macro_series` materialized in replay mode through Dagster and the warehouse IO manager."""

import json
import shutil
from datetime import date

import dagster as dg
import pandas as pd
import pytest
import yaml

from crypto_assets.assets.ingest.daily import trailing_day_range
from crypto_assets.assets.ingest.macro import macro_series
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.client import MissingCredentialsError
from crypto_assets.sources.fred import Fred
from crypto_assets.sources.yahoo import YahooFinance
from crypto_assets.tables.macro import MACRO_SERIES
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource, get_warehouse

RANGE = {"dagster/asset_partition_range_start": "2020-01-01", "dagster/asset_partition_range_end": "2020-01-03"}


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"


def resources(url, replay_dir=None, fred_mode="replay"):
    return {
        "io_manager": WarehouseIOManager(url=url),
        "warehouse": WarehouseResource(url=url),
        "yahoo": YahooFinance(mode="replay", replay_dir=replay_dir),
        "fred": Fred(mode=fred_mode, replay_dir=replay_dir),
    }


def run(url, *, replay_dir=None, partition_key=None, tags=None):
    result = dg.materialize([macro_series], resources=resources(url, replay_dir), partition_key=partition_key,
                            tags=tags, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return result.asset_materializations_for_node("macro_series")[0].metadata


def table(url) -> pd.DataFrame:
    return get_warehouse(url).read(MACRO_SERIES)


def test_replay_range_lands_real_observations_once(url):
    meta = run(url, tags=RANGE)
    first = table(url)
    assert set(zip(first.series_id, first.observation_date)) == {
        ("EURUSD", date(2020, 1, 1)), ("EURUSD", date(2020, 1, 2)), ("EURUSD", date(2020, 1, 3)),
        ("GOLD", date(2020, 1, 2)),
        ("CPILFESL", date(2020, 1, 1)), ("GDP", date(2020, 1, 1)), ("WGS10YR", date(2020, 1, 3)),
    }
    gold = first[first.series_id == "GOLD"].iloc[0]
    assert gold.value == 1524.5 and gold.provider == "yahoo" and gold.source == "replay:yahoo"
    assert gold.available_at == pd.Timestamp("2020-01-02 22:00", tz="UTC")
    cpi = first[first.series_id == "CPILFESL"].iloc[0]
    assert cpi.available_at == pd.Timestamp("2024-10-11 05:00", tz="UTC") and cpi.source == "replay:fred"
    assert (first.available_at.dt.tz is not None) and (first.ingested_at.dt.tz is not None)

    assert meta["run_rows_written"].value == 7  # the ranged run's total; "rows" is per partition
    missing = meta["series_missing"].value
    assert "VIX" in missing and "404" in missing["VIX"] and "DGS10" in missing
    assert set(meta["series_covered"].value) == {"EURUSD", "GOLD", "CPILFESL", "GDP", "WGS10YR"}

    run(url, tags=RANGE)  # idempotent: same rows, not duplicated
    second = table(url)
    cols = [c for c in MACRO_SERIES.column_names if c != "ingested_at"]
    pd.testing.assert_frame_equal(first[cols], second[cols])


def test_day_partitions_replace_only_their_own_day(url):
    run(url, partition_key="2020-01-03")
    run(url, partition_key="2020-01-02")
    run(url, partition_key="2020-01-02")
    rows = table(url)
    assert sorted(set(rows.observation_date)) == [date(2020, 1, 2), date(2020, 1, 3)]
    assert len(rows) == 4  # EURUSD x2, GOLD, WGS10YR
    window = get_warehouse(url).read(MACRO_SERIES, "2020-01-02", "2020-01-03")
    assert set(window.observation_date) == {date(2020, 1, 2)}


def _copy_replay(tmp_path) -> str:
    folder = tmp_path / "replay"
    for source in ("yahoo", "fred"):
        shutil.copytree(RESOURCES_DIR / "replay" / source, folder / source)
    return str(folder)


def test_fred_dot_is_quarantined_and_the_rest_lands(url, tmp_path):
    replay_dir = _copy_replay(tmp_path)
    path = tmp_path / "replay" / "fred" / "CPILFESL_observations.json"
    payload = json.loads(path.read_text())
    for obs in payload["observations"]:
        if obs["date"] == "2020-01-01":
            obs["value"] = "."  # test input: the recorded value replaced by FRED's missing marker
    path.write_text(json.dumps(payload))

    for _ in range(2):
        meta = run(url, replay_dir=replay_dir, tags=RANGE)
    rows = table(url)
    assert "CPILFESL" not in set(rows.series_id)
    assert {"GDP", "GOLD", "EURUSD", "WGS10YR"} <= set(rows.series_id)
    quarantine = get_warehouse(url).read(QUARANTINE, filters={"asset": ["macro_series"]})
    assert quarantine.reason.tolist() == ["missing value ('.')"]  # once, though the run was repeated
    assert quarantine.record_key.tolist() == ["CPILFESL|2020-01-01"]
    assert quarantine.partition_start.tolist() == [pd.Timestamp("2020-01-01", tz="UTC")]
    assert meta["rows_quarantined"].value == 1
    assert meta["series_missing"].value["CPILFESL"] == "no observation in the window"


def test_value_not_final_when_answered_is_not_stored(url, tmp_path):
    replay_dir = _copy_replay(tmp_path)
    catalog_path = tmp_path / "replay" / "yahoo" / "catalog.yaml"
    catalog = yaml.safe_load(catalog_path.read_text())
    for route in catalog["routes"]:
        # as if Yahoo had answered at 23:00 UTC on 2 Jan 2020: gold's day closed at 22:00 UTC,
        # the London FX day only closes at midnight
        route["headers"]["Date"] = "Thu, 02 Jan 2020 23:00:00 GMT"
    catalog_path.write_text(yaml.safe_dump(catalog))
    meta = run(url, replay_dir=replay_dir, partition_key="2020-01-02")
    rows = table(url)
    assert set(rows.series_id) == {"GOLD"}  # EURUSD's 2 Jan bar was still moving: not stored
    assert meta["rows_not_final_dropped"].value == 1


def _add_constructed_gold_bars(tmp_path, bars) -> str:
    """The real GC=F recording plus CONSTRUCTED bars appended (timestamp, open, high, low, close).

    No real recording of a Yahoo weekend bar is copyable; the shape (a Sunday bar for a future
    whose close repeats the last session's close and lies outside its own high-low range) is the
    one reported for CL=F/GC=F in issue 11.
    """
    replay_dir = _copy_replay(tmp_path)
    path = tmp_path / "replay" / "yahoo" / "chart_GC_F_2020-01-01_2020-01-03.json"
    payload = json.loads(path.read_text())
    chart = payload["chart"]["result"][0]
    quote = chart["indicators"]["quote"][0]
    for stamp, o, h, l, c in bars:  # noqa: E741
        chart["timestamp"].append(stamp)
        for key, value in zip(("open", "high", "low", "close", "volume"), (o, h, l, c, 10)):
            quote[key].append(value)
        chart["indicators"]["adjclose"][0]["adjclose"].append(c)
    path.write_text(json.dumps(payload))
    return replay_dir


def test_weekend_and_out_of_range_bars_are_quarantined_not_stored(url, tmp_path):
    sunday = int(pd.Timestamp("2020-01-05 00:00", tz="America/New_York").timestamp())
    monday = int(pd.Timestamp("2020-01-06 00:00", tz="America/New_York").timestamp())
    replay_dir = _add_constructed_gold_bars(tmp_path, [
        (sunday, 1549.0, 1551.0, 1546.2, 1524.5),   # Sunday, close = the last real close, outside its range
        (monday, 1552.0, 1580.0, 1550.0, 1524.5),   # a weekday bar whose close is outside its range
    ])
    tags = {"dagster/asset_partition_range_start": "2020-01-01", "dagster/asset_partition_range_end": "2020-01-06"}
    instance = dg.DagsterInstance.ephemeral()
    for _ in range(2):  # idempotent quarantine too
        result = dg.materialize([macro_series], resources=resources(url, replay_dir), tags=tags, instance=instance)
        assert result.success
    rows = table(url)
    gold = rows[rows.series_id == "GOLD"]
    assert gold.observation_date.tolist() == [date(2020, 1, 2)]  # only the real Thursday bar
    assert not rows.available_at.dt.tz_convert("America/New_York").dt.day_of_week.isin([5, 6]).any()
    assert not pd.to_datetime(rows.observation_date).dt.day_of_week.isin([5, 6]).any()

    quarantine = get_warehouse(url).read(QUARANTINE, filters={"asset": ["macro_series"]})
    by_key = dict(zip(quarantine.record_key, quarantine.reason))
    assert by_key == {"GOLD|2020-01-05": "weekend bar (market closed; no weekend rows)",
                      "GOLD|2020-01-06": "close outside the bar's own high-low range"}
    record = json.loads(quarantine.set_index("record_key").record["GOLD|2020-01-06"])
    assert record["high"] == 1580.0 and record["low"] == 1550.0 and record["raw_value"] == 1524.5
    reasons = set()
    for materialization in result.asset_materializations_for_node("macro_series"):
        reasons |= set(materialization.metadata["quarantine_by_reason"].value)
    assert reasons == {"weekend bar (market closed; no weekend rows)", "close outside the bar's own high-low range"}


def test_live_mode_without_fred_key_fails_at_setup(url, monkeypatch):
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    with pytest.raises(dg.DagsterResourceFunctionError, match="ResourceDefinition fred") as failure:
        dg.materialize([macro_series], resources=resources(url, fred_mode="live"), partition_key="2020-01-02",
                       instance=dg.DagsterInstance.ephemeral())
    cause = failure.value.__cause__
    assert isinstance(cause, MissingCredentialsError) and "FRED_API_KEY" in str(cause)
    assert table(url).empty  # nothing was fetched or written


def test_trailing_range_is_the_last_days():
    assert trailing_day_range(pd.Timestamp("2024-03-10 06:15", tz="UTC"), 3) == ("2024-03-07", "2024-03-09")


@pytest.mark.slow
def test_daily_schedules_request_their_trailing_days_as_one_ranged_run():
    from datetime import datetime, timezone

    from crypto_assets.assets.ingest.macro import SCHEDULES as MACRO_SCHEDULES
    from crypto_assets.assets.ingest.onchain import SCHEDULES as ONCHAIN_SCHEDULES

    now = datetime(2024, 3, 10, 6, 15, tzinfo=timezone.utc)  # DAILY's last partition is the day before
    expected = {"macro_series_trailing_62d": "2024-01-08", "onchain_metrics_trailing_7d": "2024-03-03"}
    for schedule in (*MACRO_SCHEDULES, *ONCHAIN_SCHEDULES):
        with dg.instance_for_test() as instance:
            context = dg.build_schedule_context(instance=instance, scheduled_execution_time=now)
            (request,) = schedule.evaluate_tick(context).run_requests
        assert request.tags["dagster/asset_partition_range_start"] == expected[schedule.name]
        assert request.tags["dagster/asset_partition_range_end"] == "2024-03-09"

