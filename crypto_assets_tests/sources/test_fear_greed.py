"""`fear_greed_index`: the Alternative.me /fng/ parser and the asset.

NO RECORDING of the API exists here (none with a licence allowing redistribution was found). The
payloads below are CONSTRUCTED in the shape Alternative.me's API documentation shows
(https://alternative.me/crypto/fear-and-greed-index/#api: `name`, `data[]` of {value,
value_classification, timestamp, time_until_update}, `metadata.error`); their numbers are made up
for the test and are not real index values. They are served from a temporary replay folder, never
from resources/replay, where the asset finds no recording and stays empty with the reason."""

import json
from datetime import date, datetime, timezone

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.ingest.fear_greed import fear_greed_index
from crypto_assets.sources.fear_greed import AlternativeMe, limit_for, parse_fear_greed
from crypto_assets.sources.parsing import SourceParseError
from crypto_assets.tables.intelligence import FEAR_GREED_INDEX
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse

DAY = 86400
D1 = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp())  # 2024-03-01 00:00 UTC


def constructed(points, error=None) -> dict:
    """A CONSTRUCTED /fng/ body in the documented shape (newest first, strings as the API sends them)."""
    data = [{"value": str(v), "value_classification": c, "timestamp": str(t)} for v, c, t in points]
    if data:
        data[0]["time_until_update"] = "3600"
    return {"name": "Fear and Greed Index", "data": data, "metadata": {"error": error}}


GOOD = [(72, "Greed", D1 + 2 * DAY), (45, "Neutral", D1 + DAY), (20, "Extreme Fear", D1)]


def test_parser_reads_values_classifications_and_publication_times():
    frame = parse_fear_greed(constructed(GOOD))
    assert (frame.problem == "").all()
    assert list(frame.date) == [date(2024, 3, 3), date(2024, 3, 2), date(2024, 3, 1)]
    assert list(frame.value) == [72, 45, 20] and list(frame.classification) == ["Greed", "Neutral", "Extreme Fear"]
    # available_at is the point's own timestamp: the start of its day, when Alternative.me publishes it
    assert list(frame.available_at) == [pd.Timestamp(D1 + k * DAY, unit="s", tz="UTC") for k in (2, 1, 0)]


def test_parser_flags_bad_points_and_never_guesses():
    frame = parse_fear_greed(constructed([
        (50, "Neutral", D1 + 3 * DAY), ("n/a", "Neutral", D1 + 2 * DAY), (101, "Extreme Greed", D1 + DAY),
        (30, "Scared", D1), (40, "Fear", "yesterday"), (41, "Fear", D1 + 3 * DAY + 60),
    ]), answered_at=datetime(2024, 3, 4, 12, tzinfo=timezone.utc))
    assert list(frame.problem) == ["duplicate date", "value is not a number", "value outside 0-100 or not whole",
                                   "unknown classification", "unreadable timestamp", "duplicate date"]
    future = parse_fear_greed(constructed(GOOD), answered_at=datetime(2024, 3, 2, 12, tzinfo=timezone.utc))
    assert list(future.problem) == ["stamped after the response", "", ""]


def test_parser_refuses_an_error_body_and_a_wrong_shape():
    with pytest.raises(ValueError, match="rate limited"):
        parse_fear_greed(constructed([], error="rate limited"))
    with pytest.raises(KeyError):
        parse_fear_greed({"name": "Fear and Greed Index"})


def test_limit_reaches_back_to_the_first_day_asked():
    now = datetime(2024, 3, 10, 8, tzinfo=timezone.utc)
    assert limit_for(datetime(2024, 3, 10, tzinfo=timezone.utc), now) == 2
    assert limit_for(datetime(2024, 3, 1, tzinfo=timezone.utc), now) == 11


def _replay(tmp_path, body) -> str:
    folder = tmp_path / "replay" / "alternative_me"
    folder.mkdir(parents=True)
    (folder / "constructed_fng.json").write_text(json.dumps(body))
    (folder / "catalog.yaml").write_text("routes:\n  - path: /fng/\n    file: constructed_fng.json\n")
    return str(tmp_path / "replay")


def _materialize(url, source, partition_key):
    return dg.materialize(
        [fear_greed_index],
        resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                   "alternative_me": source},
        instance=dg.DagsterInstance.ephemeral(), partition_key=partition_key)


def test_asset_stores_the_days_of_its_partition_and_quarantines_bad_points(tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    body = constructed([*GOOD, ("oops", "Fear", D1 - DAY)])
    source = AlternativeMe(mode="replay", replay_dir=_replay(tmp_path, body))
    result = _materialize(url, source, "2024-03-02")
    assert result.success
    wh = open_warehouse(url)
    rows = wh.read(FEAR_GREED_INDEX)
    assert list(rows.date) == [date(2024, 3, 2)] and list(rows.value) == [45]
    assert rows.source.tolist() == ["replay:alternative_me"]
    assert pd.Timestamp(rows.available_at.iloc[0]) == pd.Timestamp("2024-03-02", tz="UTC")
    meta = result.asset_materializations_for_node("fear_greed_index")[0].metadata
    assert meta["rows"].value == 1 and meta["empty_reason"].value == "" and meta["requests_made"].value == 1

    assert _materialize(url, source, "2024-02-29").success  # the malformed point's day
    assert wh.read(FEAR_GREED_INDEX, "2024-02-29", "2024-03-01").empty
    quarantined = wh.read(QUARANTINE, columns=["asset", "reason"])
    assert quarantined[quarantined.asset == "fear_greed_index"].reason.tolist() == ["value is not a number"]

    assert _materialize(url, source, "2024-03-02").success  # idempotent
    assert len(wh.read(FEAR_GREED_INDEX)) == 1


def test_replay_serves_the_real_recording_and_days_outside_it_are_empty(tmp_path):
    """The project's replay: a real Alternative.me answer of Apr-Jun 2021 (resources/replay/alternative_me)."""
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    result = _materialize(url, AlternativeMe(mode="replay"), "2021-05-14")
    assert result.success
    rows = open_warehouse(url).read(FEAR_GREED_INDEX)
    assert [(r.date, r.value, r.classification) for r in rows.itertuples()] == [(date(2021, 5, 14), 26.0, "Fear")]
    assert rows.available_at.iloc[0] == pd.Timestamp("2021-05-14", tz="UTC")
    # A day the recording does not cover: the fetch succeeded, no point is in the window, and it says so.
    result = _materialize(url, AlternativeMe(mode="replay"), "2024-03-02")
    meta = result.asset_materializations_for_node("fear_greed_index")[0].metadata
    assert meta["rows"].value == 0 and "no point" in meta["empty_reason"].value
    assert len(open_warehouse(url).read(FEAR_GREED_INDEX)) == 1  # 2021-05-14 untouched


def test_a_failed_fetch_keeps_the_stored_days(tmp_path):
    """Invariant 12: the one source failing (an unreadable body) replaces nothing."""
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    assert _materialize(url, AlternativeMe(mode="replay"), "2021-05-14").success
    before = open_warehouse(url).read(FEAR_GREED_INDEX)
    folder = tmp_path / "broken" / "alternative_me"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text('{"name": "Fear and Greed Index", "data": [{"value": "2')  # truncated
    (folder / "catalog.yaml").write_text("routes:\n  - path: /fng/\n    file: broken.json\n")
    result = dg.materialize(
        [fear_greed_index], resources={"io_manager": WarehouseIOManager(url=url),
                                       "warehouse": WarehouseResource(url=url),
                                       "alternative_me": AlternativeMe(mode="replay",
                                                                       replay_dir=str(tmp_path / "broken"))},
        instance=dg.DagsterInstance.ephemeral(), partition_key="2021-05-14", raise_on_error=False)
    assert not result.success  # nothing could be read: an error, never "no data"
    pd.testing.assert_frame_equal(open_warehouse(url).read(FEAR_GREED_INDEX), before)


def test_an_unreachable_api_fails_the_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    folder = tmp_path / "replay" / "alternative_me"
    folder.mkdir(parents=True)
    (folder / "down.json").write_text("{}")
    (folder / "catalog.yaml").write_text("routes:\n  - path: /fng/\n    file: down.json\n    status: 503\n")
    source = AlternativeMe(mode="replay", replay_dir=str(tmp_path / "replay"))
    result = dg.materialize(
        [fear_greed_index], resources={"io_manager": WarehouseIOManager(url=url),
                                       "warehouse": WarehouseResource(url=url), "alternative_me": source},
        instance=dg.DagsterInstance.ephemeral(), partition_key="2024-03-02", raise_on_error=False)
    assert not result.success


def test_a_malformed_body_names_the_source(tmp_path):
    source = AlternativeMe(mode="replay", replay_dir=_replay(tmp_path, {"name": "x", "data": "nope",
                                                                       "metadata": {"error": None}}))
    with pytest.raises(SourceParseError, match="alternative_me"):
        parse_fear_greed(source.fear_greed(3))


def test_quarantine_share_check_judges_the_rejected_points(tmp_path):
    """Every point of the day malformed: the quarantine_share check (WARN) fails for that run."""
    from crypto_assets.checks.data_checks import make_checks

    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    source = AlternativeMe(mode="replay", replay_dir=_replay(tmp_path, constructed([("oops", "Fear", D1)])))
    result = dg.materialize(
        [fear_greed_index, *make_checks(fear_greed_index)],
        resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                   "alternative_me": source},
        instance=dg.DagsterInstance.ephemeral(), partition_key="2024-03-01")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["quarantine_share"].passed and checks["quarantine_share"].metadata["rejected"].value == 1
    assert not checks["has_rows"].passed
