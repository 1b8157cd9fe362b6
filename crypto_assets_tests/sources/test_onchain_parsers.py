"""On-chain parsers: the real blockchain.com recording, and the documented formats' edge cases."""

import json
from datetime import date

import pandas as pd

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.onchain import parse_blockchain_chart, parse_chain_tvl
from crypto_assets.sources.series_catalog import onchain_metrics_catalog

RECORDING = RESOURCES_DIR / "replay" / "blockchain_com" / "n-transactions_timespan-all_sampled.json"


def test_catalog_covers_hash_rate_transactions_addresses_and_tvl():
    metrics = {(m.chain, m.metric): m for m in onchain_metrics_catalog()}
    assert {("bitcoin", "tx_count"), ("bitcoin", "hash_rate"), ("bitcoin", "active_addresses")} <= set(metrics)
    assert any(m.provider == "defillama" for m in metrics.values())


def test_real_transactions_chart():
    payload = json.loads(RECORDING.read_text())
    points = parse_blockchain_chart(payload, "Transactions")
    assert len(points) == len(payload["values"]) == 1700
    assert (points.problem == "").all()
    assert (points.unit == "Transactions").all()
    last = points.iloc[-1]
    assert last.date == date(2023, 1, 1) and last.value == 187516.0
    # a day's value is usable once the UTC day has closed
    assert last.available_at == pd.Timestamp("2023-01-02", tz="UTC")
    assert (points.available_at == pd.to_datetime(points.date).dt.tz_localize("UTC") + pd.Timedelta(days=1)).all()
    # sampled=true: one point every third day; the days between are absent, not filled
    assert date(2022, 12, 27) not in set(points.date)


def test_unit_change_is_rejected_not_mixed():
    payload = json.loads(RECORDING.read_text())
    points = parse_blockchain_chart(payload, "TH/s")  # a payload in another unit than expected
    assert points.problem.str.startswith("unit changed").all()


def test_off_midnight_and_null_points_are_rejected():
    # shape of the older charts API (rolling 24h windows stamped at odd times, no unit)
    payload = {"values": [{"x": 1396527300, "y": 51769617.1}, {"x": 1672531200, "y": None},
                          {"x": 1672617600, "y": "abc"}, {"x": 1672704000, "y": 5.0}]}
    points = parse_blockchain_chart(payload, "Transactions")
    assert points.problem.tolist() == ["timestamp not at 00:00 UTC", "missing value (null)",
                                       "non-numeric value", ""]
    assert points.value.iloc[3] == 5.0


def test_duplicate_days_are_rejected():
    payload = {"values": [{"x": 1672531200, "y": 1.0}, {"x": 1672531200, "y": 2.0}]}
    assert parse_blockchain_chart(payload, "x").problem.tolist() == ["duplicate date"] * 2


def test_defillama_chain_tvl_documented_format():
    # Format of GET /v2/historicalChainTvl/{chain} per https://defillama.com/docs/api
    # (no recording with a permissive licence exists; this checks the parser's handling only).
    payload = [{"date": 1672531200, "tvl": 2.1e10}, {"date": "1672617600", "tvl": None}, {"date": None, "tvl": 1.0}]
    points = parse_chain_tvl(payload)
    assert points.problem.tolist() == ["", "missing value (null)", "unreadable timestamp"]
    assert points.iloc[0].date == date(2023, 1, 1) and points.iloc[0].unit == "USD"
    assert parse_chain_tvl({"message": "chain not found"}).empty
