"""Alternative.me Crypto Fear & Greed Index (no key): https://alternative.me/crypto/fear-and-greed-index/

`GET /fng/?limit=N&format=json` answers the newest N daily points (limit=0: all since 2018-02-01):

    {"name": "Fear and Greed Index",
     "data": [{"value": "40", "value_classification": "Fear", "timestamp": "1551157200",
               "time_until_update": "68499"}, ...],
     "metadata": {"error": null}}

`value` (0-100) and `timestamp` (epoch seconds) are strings; `time_until_update` (seconds until the
next value) is given on the newest point only. When a value becomes known: a point is stamped with
the start of the UTC day it is for, and the newest point's `time_until_update` counts down to the
next day's stamp, i.e. each value is published at its own timestamp. So `available_at` =
`timestamp` (never earlier), and a point stamped after the response arrived is rejected.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from crypto_assets.sources.catalog import HttpSource
from crypto_assets.sources.parsing import JsonObject, fetch_json, parser
from crypto_assets.warehouse.store import to_utc

POINT_COLUMNS = ["date", "value", "classification", "available_at", "raw_value", "raw_timestamp", "problem"]
CLASSIFICATIONS = ("Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed")


class AlternativeMe(HttpSource):
    """Alternative.me's public API (the Fear & Greed index)."""

    source_name = "alternative_me"

    def fear_greed(self, limit: int) -> JsonObject:
        """The newest `limit` daily points (0: the whole history)."""
        return fetch_json(self.client, "/fng/", {"limit": str(int(limit)), "format": "json"},
                          subject="fear and greed index")


def limit_for(start, now: datetime) -> int:
    """Points to ask for so that the answer reaches back to `start` (the API counts back from today)."""
    days = (to_utc(now).date() - to_utc(start).date()).days
    return max(1, days + 2)


@parser("the fear and greed index")
def parse_fear_greed(payload: dict, answered_at: datetime | None = None) -> pd.DataFrame:
    """`/fng/` -> one row per day; rows with a `problem` are to be quarantined, never stored."""
    error = (payload.get("metadata") or {}).get("error")
    if error:
        raise ValueError(f"the API reported an error: {error}")
    data = payload["data"]
    if not isinstance(data, list):
        raise ValueError(f"`data` is {type(data).__name__}, not a list")
    points = [d if isinstance(d, dict) else {} for d in data]
    frame = pd.DataFrame({
        "raw_value": pd.Series([d.get("value") for d in points], dtype=object),
        "raw_timestamp": pd.Series([d.get("timestamp") for d in points], dtype=object),
        "classification": pd.Series([d.get("value_classification") for d in points], dtype=object),
    })
    value = pd.to_numeric(frame["raw_value"], errors="coerce")
    stamp = pd.to_datetime(pd.to_numeric(frame["raw_timestamp"], errors="coerce"), unit="s", utc=True)
    problem = pd.Series("", index=frame.index, dtype=object)
    problem[stamp.isna()] = "unreadable timestamp"
    problem[(problem == "") & value.isna()] = "value is not a number"
    problem[(problem == "") & ((value < 0) | (value > 100) | (value != value.round()))] = \
        "value outside 0-100 or not whole"
    problem[(problem == "") & ~frame["classification"].isin(CLASSIFICATIONS)] = "unknown classification"
    if answered_at is not None:
        problem[(problem == "") & (stamp > pd.Timestamp(to_utc(answered_at)))] = "stamped after the response"
    frame["date"] = stamp.dt.floor("D").dt.tz_localize(None).dt.date
    dupes = frame["date"].notna() & frame.duplicated("date", keep=False)
    problem[(problem == "") & dupes] = "duplicate date"
    frame["value"] = value.astype("Int64")
    frame["available_at"] = stamp
    frame["problem"] = problem
    return frame[POINT_COLUMNS]
