"""FRED (St. Louis Fed) series observations with their vintage dates: resource and parser.

Each observation is stored once, as FIRST RELEASED: the value of its earliest vintage, and
`available_at` derived from that vintage's `realtime_start`. A value published on day D is
only known from D on; later revisions are not back-dated into the past (that would be
look-ahead). See docs/macro.md.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from crypto_assets.sources.catalog import HttpSource
from crypto_assets.sources.numbers import read_numbers
from crypto_assets.sources.parsing import JsonObject, fetch_json, parser
from crypto_assets.warehouse.store import to_utc

# FRED's dates are US dates; the vintage day ends at midnight in St. Louis (US Central). A
# value whose first vintage is day D is taken as known at the END of D there: conservative,
# since releases come out during D (08:30 ET for CPI and jobs, ~16:15 ET for H.15 rates).
VINTAGE_TIMEZONE = "America/Chicago"
LAST_VINTAGE = "9999-12-31"
OBSERVATION_COLUMNS = ["observation_date", "realtime_start", "raw_value", "value", "problem"]


class Fred(HttpSource):
    """FRED API. Requires FRED_API_KEY in live mode (free key at fred.stlouisfed.org)."""

    source_name = "fred"

    def observations(self, series_id: str, start: datetime, end: datetime) -> JsonObject:
        """All vintages of the observations dated in [start, end).

        realtime_start = the first observation date: no vintage older than an observation can
        contain it, so the earliest row per date is its first release.
        """
        first = to_utc(start).date()
        last = (to_utc(end) - timedelta(microseconds=1)).date()
        params = {
            "series_id": series_id,
            "file_type": "json",
            "observation_start": first.isoformat(),
            "observation_end": last.isoformat(),
            "realtime_start": first.isoformat(),
            "realtime_end": LAST_VINTAGE,
            "sort_order": "asc",
        }
        return fetch_json(self.client, "/series/observations", params, subject=f"series {series_id}")


@parser("observations")
def parse_observations(payload: dict) -> pd.DataFrame:
    """`/series/observations` JSON -> one row per (observation date, vintage).

    "." is FRED's "no value" marker: the row keeps NaN and the problem "missing value ('.')".
    """
    rows = (payload or {}).get("observations") or []
    frame = pd.DataFrame(
        {
            "observation_date": pd.to_datetime([r.get("date") for r in rows], errors="coerce").date
            if rows else [],
            "realtime_start": pd.to_datetime([r.get("realtime_start") for r in rows], errors="coerce").date
            if rows else [],
            "raw_value": pd.Series([r.get("value") for r in rows], dtype=object),
        }
    )
    frame["value"], frame["problem"] = read_numbers(frame["raw_value"])
    bad_date = frame.observation_date.isna() | frame.realtime_start.isna()
    frame.loc[bad_date, "problem"] = "unreadable date"
    return frame[OBSERVATION_COLUMNS]


def vintage_available_at(realtime_start: date) -> pd.Timestamp:
    """End of the vintage day in St. Louis, as UTC."""
    day_end = pd.Timestamp(realtime_start) + timedelta(days=1)
    return day_end.tz_localize(VINTAGE_TIMEZONE).tz_convert("UTC")


def first_releases(observations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(first released value per observation date, dates that never got a value).

    A date whose early vintages say "." and a later one a number is released by that later
    vintage. A date with no numeric value in any vintage is returned as a reject (its
    earliest row), so it is counted and quarantined, never stored as 0.
    """
    obs = observations.sort_values(["observation_date", "realtime_start"], kind="stable")
    usable = obs[obs.problem == ""]
    first = usable.drop_duplicates("observation_date", keep="first").copy()
    first["available_at"] = pd.to_datetime([vintage_available_at(d) for d in first.realtime_start], utc=True)
    never = obs[~obs.observation_date.isin(first.observation_date)].drop_duplicates("observation_date", keep="first")
    return first.reset_index(drop=True), never.reset_index(drop=True)
