"""Yahoo chart and FRED observation parsers against real recorded payloads."""

import copy
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.fred import first_releases, parse_observations, vintage_available_at
from crypto_assets.sources.numbers import number_problem, read_numbers
from crypto_assets.sources.series_catalog import macro_series_catalog
from crypto_assets.sources.yahoo import parse_chart
from crypto_assets_tests.paths import DATA

DATA = DATA
REPLAY = RESOURCES_DIR / "replay"
CATALOG = {s.id: s for s in macro_series_catalog()}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


# -- catalog -------------------------------------------------------------------------------

def test_catalog_has_the_required_series():
    yahoo = {s.symbol for s in CATALOG.values() if s.provider == "yahoo"}
    fred = {s.symbol for s in CATALOG.values() if s.provider == "fred"}
    assert {"^VIX", "^GSPC", "DX-Y.NYB", "^TNX", "GC=F", "CL=F", "QQQ", "SPY", "TLT", "HYG", "GLD", "EEM"} <= yahoo
    assert {"DGS10", "DGS2", "DFF", "VIXCLS", "CPIAUCSL", "UNRATE", "DTWEXBGS"} <= fred
    assert all(s.timezone and s.close for s in CATALOG.values() if s.provider == "yahoo")


# -- numbers -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, problem",
    [(".", "missing value ('.')"), ("", "missing value (empty)"), (None, "missing value (null)"),
     (float("nan"), "missing value (null)"), ("n/a", "non-numeric value"), ("inf", "non-finite value"),
     ("4.25", ""), ("-37.63", ""), (0, ""), (1524.5, ""), (True, "non-numeric value")],
)
def test_number_problems(raw, problem):
    assert number_problem(raw) == problem


def test_missing_marker_is_nan_never_zero():
    values, problems = read_numbers(pd.Series([".", "0", "-37.63", None], dtype=object))
    assert values.isna().tolist() == [True, False, False, True]
    assert values[1] == 0.0 and values[2] == -37.63  # zero and negative are real values
    assert problems.tolist() == ["missing value ('.')", "", "", "missing value (null)"]


# -- Yahoo ---------------------------------------------------------------------------------

def test_gold_future_bar_date_value_and_close_time():
    bars = parse_chart(load(REPLAY / "yahoo" / "chart_GC_F_2020-01-01_2020-01-03.json"), CATALOG["GOLD"])
    assert len(bars) == 1
    bar = bars.iloc[0]
    # timestamp 1577941200 = 2020-01-02 05:00 UTC = midnight New York: trading date 2 Jan
    assert bar.observation_date == date(2020, 1, 2)
    assert bar.value == 1524.5  # the close, not adjclose/open
    # close 17:00 New York (EST, UTC-5) -> 22:00 UTC
    assert bar.available_at == pd.Timestamp("2020-01-02 22:00", tz="UTC")
    assert bar.problem == ""


def test_fx_bars_are_available_at_the_end_of_the_london_day():
    bars = parse_chart(load(REPLAY / "yahoo" / "chart_EURUSD_X_2020-01-01_2020-01-03.json"), CATALOG["EURUSD"])
    assert bars.observation_date.tolist() == [date(2020, 1, 1), date(2020, 1, 2), date(2020, 1, 3)]
    assert bars.available_at.tolist() == [pd.Timestamp(f"2020-01-0{d}", tz="UTC") for d in (2, 3, 4)]
    assert bars.value.iloc[2] == pytest.approx(1.1171437501907349)


def test_no_weekend_or_holiday_rows_and_nothing_filled():
    payload = load(DATA / "yahoo" / "chart_AAPL_2020-08-31_2020-11-07.json")
    bars = parse_chart(payload, CATALOG["SPY"])  # New York equity close rules
    stamps = payload["chart"]["result"][0]["timestamp"]
    assert len(bars) == len(stamps) == 49  # one row per bar Yahoo sent, none added
    days = pd.to_datetime(bars.observation_date)
    assert not days.dt.day_of_week.isin([5, 6]).any()  # no Saturday/Sunday rows
    assert date(2020, 9, 7) not in set(bars.observation_date)  # Labor Day: no row
    assert date(2020, 9, 4) in set(bars.observation_date) and date(2020, 9, 8) in set(bars.observation_date)
    closes = payload["chart"]["result"][0]["indicators"]["quote"][0]["close"]
    assert bars.value.tolist() == closes


def test_close_time_follows_daylight_saving():
    bars = parse_chart(load(DATA / "yahoo" / "chart_AAPL_2020-08-31_2020-11-07.json"), CATALOG["SPY"])
    by_day = dict(zip(bars.observation_date, bars.available_at))
    assert by_day[date(2020, 10, 30)] == pd.Timestamp("2020-10-30 20:15", tz="UTC")  # EDT, UTC-4
    assert by_day[date(2020, 11, 2)] == pd.Timestamp("2020-11-02 21:15", tz="UTC")  # EST, UTC-5


def test_trading_date_uses_the_exchange_timezone():
    bars = parse_chart(load(DATA / "yahoo" / "chart_WSU.DE_2023-08-04_2023-08-09.json"), CATALOG["SPY"])
    assert bars.observation_date.tolist() == [date(2023, 8, 4), date(2023, 8, 7), date(2023, 8, 8)]


def test_parser_agrees_with_yfinance():
    """yfinance's own chart parser is the reference for dates and closes."""
    from yfinance.utils import parse_quotes

    for path, sid in [(DATA / "yahoo" / "chart_AAPL_2020-08-31_2020-11-07.json", "SPY"),
                      (REPLAY / "yahoo" / "chart_GC_F_2020-01-01_2020-01-03.json", "GOLD"),
                      (REPLAY / "yahoo" / "chart_EURUSD_X_2020-01-01_2020-01-03.json", "EURUSD")]:
        payload = load(path)
        reference = parse_quotes(payload["chart"]["result"][0])
        ours = parse_chart(payload, CATALOG[sid])
        assert ours.value.tolist() == reference["Close"].tolist()
        assert ours.bar_time.dt.tz_localize(None).tolist() == reference.index.tolist()


def test_null_close_and_missing_timestamps_are_flagged_not_filled():
    payload = copy.deepcopy(load(REPLAY / "yahoo" / "chart_EURUSD_X_2020-01-01_2020-01-03.json"))
    payload["chart"]["result"][0]["indicators"]["quote"][0]["close"][1] = None
    bars = parse_chart(payload, CATALOG["EURUSD"])
    assert bars.problem.tolist() == ["", "missing value (null)", ""]
    assert pd.isna(bars.value.iloc[1])

    fake = parse_chart(load(DATA / "yahoo" / "chart_notimestamp_quotes_length.FAKE.json"), CATALOG["SPY"])
    assert fake.problem.tolist() == ["bar without timestamp"]


def test_empty_result_gives_no_rows():
    assert parse_chart({"chart": {"result": None, "error": {"code": "Not Found"}}}, CATALOG["VIX"]).empty


# -- FRED ----------------------------------------------------------------------------------

def test_fred_dot_is_missing_never_zero():
    obs = parse_observations(load(REPLAY / "fred" / "GDP_observations.json"))
    dots = obs[obs.raw_value == "."]
    assert len(dots) == 4 and dots.value.isna().all()
    assert (dots.problem == "missing value ('.')").all()
    released, never = first_releases(obs)
    assert set(never.observation_date) == {date(1946, 1, 1), date(1946, 4, 1), date(1946, 7, 1), date(1946, 10, 1)}
    assert not released.observation_date.isin(never.observation_date).any()
    assert (released.value != 0).all()


def test_fred_available_at_is_end_of_first_vintage_day():
    obs = parse_observations(load(REPLAY / "fred" / "CPILFESL_observations.json"))
    released, _ = first_releases(obs)
    sept = released[released.observation_date == date(2024, 9, 1)].iloc[0]
    assert sept.value == 320.767
    assert sept.realtime_start == date(2024, 10, 10)  # the day BLS published September CPI
    # end of 10 Oct 2024 in St. Louis (CDT, UTC-5) -> 11 Oct 05:00 UTC; never before the release
    assert sept.available_at == pd.Timestamp("2024-10-11 05:00", tz="UTC")
    assert sept.available_at > pd.Timestamp("2024-10-10 12:30", tz="UTC")  # 08:30 ET release
    assert vintage_available_at(date(2024, 12, 19)) == pd.Timestamp("2024-12-20 06:00", tz="UTC")  # CST


def test_fred_first_release_wins_over_later_revision():
    """Two real vintages of GDP: Q3 2024 was revised; the stored value is the first print."""
    early = parse_observations(load(REPLAY / "fred" / "GDP_observations.json"))
    late = parse_observations(load(DATA / "fred" / "GDP_observations_vintage_2024-12-19.json"))
    both = pd.concat([late, early], ignore_index=True)  # order must not matter
    released, _ = first_releases(both)
    q3 = released[released.observation_date == date(2024, 7, 1)].iloc[0]
    assert q3.value == 29349.924 and q3.realtime_start == date(2024, 10, 30)
    assert 29374.914 in set(late.value)  # the revision is there, and not used


def test_fred_value_arriving_after_a_dot_vintage_is_released_then():
    payload = {"observations": [
        {"realtime_start": "2024-01-02", "realtime_end": "2024-01-02", "date": "2024-01-01", "value": "."},
        {"realtime_start": "2024-01-03", "realtime_end": "9999-12-31", "date": "2024-01-01", "value": "5.33"},
    ]}
    released, never = first_releases(parse_observations(payload))
    assert never.empty
    assert released.iloc[0].value == 5.33 and released.iloc[0].realtime_start == date(2024, 1, 3)


def test_weekly_fred_series_has_no_weekend_dates():
    obs = parse_observations(load(REPLAY / "fred" / "WGS10YR_observations.json"))
    days = pd.to_datetime(obs.observation_date)
    assert (days.dt.day_of_week == 4).all()  # week ending Friday


def test_weekend_bar_and_close_outside_its_range_are_flagged():
    """The real GC=F bar plus CONSTRUCTED bars (no real weekend recording is copyable): a Sunday
    bar repeating the last close outside its own range (as reported for CL=F/GC=F in issue 11),
    and weekday bars with the close just inside (float32 rounding), below and above the range."""
    payload = copy.deepcopy(load(REPLAY / "yahoo" / "chart_GC_F_2020-01-01_2020-01-03.json"))
    chart = payload["chart"]["result"][0]
    quote = chart["indicators"]["quote"][0]
    at = lambda day: int(pd.Timestamp(day, tz="America/New_York").timestamp())  # noqa: E731
    constructed = [(at("2020-01-05"), 1551.0, 1546.2, 1524.5),
                   (at("2020-01-06"), 1560.0, 1550.0, 1560.0000305175781),  # float32 of 1560.00003
                   (at("2020-01-07"), 1580.0, 1550.0, 1524.5),
                   (at("2020-01-08"), 1580.0, 1550.0, 1590.0),
                   (at("2020-01-09"), None, None, 1555.0)]  # no range given: not judged
    for stamp, high, low, close in constructed:
        chart["timestamp"].append(stamp)
        for key, value in (("high", high), ("low", low), ("close", close), ("open", close), ("volume", 1)):
            quote[key].append(value)
    bars = parse_chart(payload, CATALOG["GOLD"])
    assert bars.problem.tolist() == ["", "weekend bar (market closed; no weekend rows)", "",
                                     "close outside the bar's own high-low range",
                                     "close outside the bar's own high-low range", ""]
    assert bars.high.iloc[0] == pytest.approx(1528.699951171875) and bars.low.iloc[0] == 1518
