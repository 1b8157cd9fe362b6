"""Public on-chain data: blockchain.com charts and DefiLlama chain TVL (resources, parsers).

Both providers publish one value per UTC day stamped at 00:00 UTC of that day. A day's value
is only complete once the day has closed, so it is available at the next midnight UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from crypto_assets.sources.catalog import HttpSource
from crypto_assets.sources.numbers import read_numbers
from crypto_assets.sources.parsing import JsonArray, JsonObject, fetch_json, parser
from crypto_assets.warehouse.store import to_utc

POINT_COLUMNS = ["date", "raw_value", "value", "unit", "available_at", "problem"]


class BlockchainCom(HttpSource):
    """Blockchain.com charts API (no key): https://www.blockchain.com/explorer/api/charts_api"""

    source_name = "blockchain_com"

    def chart(self, name: str, start: datetime, end: datetime) -> JsonObject:
        """Daily points of chart `name` from `start` (UTC day) to `end`, unsampled."""
        first = to_utc(start).date()
        days = max(1, (to_utc(end).date() - first).days + 1)
        params = {"start": first.isoformat(), "timespan": f"{days}days", "format": "json", "sampled": "false"}
        return fetch_json(self.client, f"/charts/{name}", params, subject=f"chart {name}")


class DefiLlama(HttpSource):
    """DefiLlama TVL API (no key): https://defillama.com/docs/api"""

    source_name = "defillama"

    def chain_tvl(self, chain: str) -> JsonArray:
        """The whole daily TVL history of `chain` (the endpoint takes no date range)."""
        return fetch_json(self.client, f"/v2/historicalChainTvl/{chain}", subject=f"chain {chain}", expect=list)


def _points(stamps: list, raws: list, unit: str | None) -> pd.DataFrame:
    frame = pd.DataFrame({
        "time": pd.to_datetime(pd.to_numeric(pd.Series(stamps, dtype=object), errors="coerce"), unit="s", utc=True),
        "raw_value": pd.Series(raws, dtype=object),
    })
    frame["value"], frame["problem"] = read_numbers(frame["raw_value"])
    frame.loc[frame.time.isna(), "problem"] = "unreadable timestamp"
    # A point not at midnight UTC is not a UTC-day value (older API versions stamped rolling
    # 24h windows): reject rather than guess its day.
    off_midnight = frame.time.notna() & (frame.time != frame.time.dt.floor("D"))
    frame.loc[off_midnight & (frame.problem == ""), "problem"] = "timestamp not at 00:00 UTC"
    frame["date"] = frame.time.dt.floor("D").dt.tz_localize(None).dt.date
    frame["available_at"] = frame.time.dt.floor("D") + timedelta(days=1)
    frame["unit"] = unit
    dupes = frame.date.notna() & frame.duplicated("date", keep=False)
    frame.loc[dupes & (frame.problem == ""), "problem"] = "duplicate date"
    return frame[POINT_COLUMNS]


@parser("the chart")
def parse_blockchain_chart(payload: dict, expected_unit: str) -> pd.DataFrame:
    """`/charts/<name>?format=json` -> one row per day.

    `{"status":"ok","name":..,"unit":..,"period":"day","values":[{"x": epoch s, "y": value}]}`.
    When the payload states a unit that does not contain `expected_unit`, every point is
    rejected ("unit changed") instead of mixing scales in one column.
    """
    values = (payload or {}).get("values") or []
    unit = (payload or {}).get("unit")
    frame = _points([v.get("x") if isinstance(v, dict) else None for v in values],
                    [v.get("y") if isinstance(v, dict) else None for v in values], unit or expected_unit)
    period = (payload or {}).get("period")
    if period not in (None, "day"):
        frame.loc[frame.problem == "", "problem"] = f"not a daily chart (period {period!r})"
    if unit and expected_unit.lower() not in unit.lower():
        frame.loc[frame.problem == "", "problem"] = f"unit changed: expected {expected_unit!r}, got {unit!r}"
    return frame


@parser("the TVL history")
def parse_chain_tvl(payload: list, unit: str = "USD") -> pd.DataFrame:
    """`/v2/historicalChainTvl/<chain>` -> one row per day: `[{"date": epoch s, "tvl": usd}]`."""
    points = payload if isinstance(payload, list) else []
    return _points([p.get("date") if isinstance(p, dict) else None for p in points],
                   [p.get("tvl") if isinstance(p, dict) else None for p in points], unit)
