"""Binance funding of an archive-routed derivatives window that reaches into the current month.

The public data archive publishes funding settlements in MONTHLY files only (no daily fundingRate
file exists: crypto_assets_tests/data/binance_archive/SOURCES.md), so the days of the current month
(and the previous month while its file is not published) come from Binance's REST funding history,
asked for exactly that part of the window; open interest keeps coming from the archive's daily
metrics files.

Data: the May 2021 funding file is Binance's REAL BTCUSDT file recorded for replay
(resources/replay/binance_archive, see its ATTRIBUTION.md). The REST answers are CONSTRUCTED in the
layout Binance documents for GET /fapi/v1/exchangeInfo and GET /fapi/v1/fundingRate: June 2021
rates are made up (no recording of them exists), and the May 2021 REST answer of the lag test repeats
the recorded archive file's rates. The metrics files are CONSTRUCTED in the archive's layout.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile

import httpx
import pandas as pd

from crypto_assets.assets.ingest.derivatives import collect, row_sources
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sources.binance_archive import (
    BASE_URL,
    funding_path,
    funding_rest_from,
    metrics_path,
    plan_periods,
)
from crypto_assets.sources.derivatives import load_derivatives_catalog
from crypto_assets.sources.exchanges import Exchanges
from crypto_assets.sources.replay import replay_transport
from crypto_assets_tests.sources.test_binance_archive import Served, _files, _metrics

UTC = "UTC"
RECORDED = RESOURCES_DIR / "replay" / "binance_archive"
MAY = funding_path("BTCUSDT", "2021-05")
BINANCE_ONLY = dataclasses.replace(load_derivatives_catalog(), exchanges=("binance",))
NO_SLEEP = {"sleep": lambda _s: None}

# CONSTRUCTED: GET /fapi/v1/exchangeInfo with the one USD-M perpetual the tests ask for.
EXCHANGE_INFO = {"timezone": "UTC", "serverTime": 1622592000000, "rateLimits": [], "exchangeFilters": [], "assets": [],
                 "symbols": [{"symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL",
                              "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
                              "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": 2,
                              "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
                              "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0,
                              "triggerProtect": "0.0500", "filters": [], "orderTypes": ["LIMIT"],
                              "timeInForce": ["GTC"]}]}


def _real_may() -> pd.DataFrame:
    """The recorded May 2021 settlements: settlement hour (calc_time rounded) and rate."""
    with zipfile.ZipFile(RECORDED / "BTCUSDT-fundingRate-2021-05.zip") as z:
        raw = pd.read_csv(io.BytesIO(z.read("BTCUSDT-fundingRate-2021-05.csv")))
    return pd.DataFrame({"settled_at": pd.to_datetime(raw.calc_time, unit="ms", utc=True).dt.round("h"),
                         "rate": raw.last_funding_rate})


def _june(days: int) -> list[tuple[pd.Timestamp, float]]:
    """CONSTRUCTED settlements (00, 08, 16 UTC) from 1 June 2021 on."""
    times = pd.date_range("2021-06-01", periods=3 * days, freq="8h", tz=UTC)
    return [(t, round(0.0001 + 0.00001 * i, 8)) for i, t in enumerate(times)]


class Rest:
    """A scripted Binance USD-M REST host: exchangeInfo, and fundingRate answered from `settlements`
    as Binance does (from startTime on, at most `limit`); anything else 404."""

    def __init__(self, settlements: list[tuple[pd.Timestamp, float]]):
        self.settlements, self.seen = settlements, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url)
        if request.url.path == "/fapi/v1/exchangeInfo":
            return httpx.Response(200, json=EXCHANGE_INFO)
        if request.url.path == "/fapi/v1/fundingRate":
            since, limit = int(request.url.params["startTime"]), int(request.url.params.get("limit", 100))
            rows = [{"symbol": "BTCUSDT", "fundingTime": int(t.timestamp() * 1000), "fundingRate": f"{r:.8f}",
                     "markPrice": "36000.00000000"} for t, r in self.settlements if t.timestamp() * 1000 >= since]
            return httpx.Response(200, json=rows[:limit])
        return httpx.Response(404, json={"code": -1121, "msg": "Invalid symbol."})

    def paths(self) -> list[str]:
        return [u.path for u in self.seen]


def _metrics_files(days) -> dict[str, bytes]:
    """CONSTRUCTED metrics files, one per day; the day's last open interest is 1000 + day of month."""
    files = {}
    for day in days:
        files.update(_files(metrics_path("BTCUSDT", f"{day:%Y-%m-%d}"),
                            _metrics(f"{day:%Y-%m-%d}", [500.0, 1000.0 + day.day])))
    return files


def _collect(start, end, now, archive_files, rest, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    served = Served(archive_files)
    frame, meta = collect(Exchanges(mode="live"), ["BTC"], start, end, now=now, catalog=BINANCE_ONLY,
                          client_kwargs={"binance": {"transport": httpx.MockTransport(rest), **NO_SLEEP},
                                         "binance_archive": {"transport": httpx.MockTransport(served), **NO_SLEEP}})
    return frame, meta, served


def _funding(frame) -> pd.DataFrame:
    return frame[frame.kind == "funding_history"].sort_values("observed_at").reset_index(drop=True)


def test_current_month_funding_comes_from_rest_and_past_months_from_the_monthly_file(tmp_path, monkeypatch):
    """A live window from 3 May to 3 June 2021, run on 3 June: May's settlements from the monthly file,
    1-2 June's from the REST funding history asked from 1 June on, no daily fundingRate file requested
    and no gap reported; open interest of every day, June's included, from the daily metrics files."""
    now = pd.Timestamp("2021-06-03 10:00", tz=UTC)
    start, end = pd.Timestamp("2021-05-03", tz=UTC), pd.Timestamp("2021-06-03", tz=UTC)
    days = pd.date_range(start, end - pd.Timedelta(days=1), freq="D", tz=UTC)
    files = {**_metrics_files(days), MAY: (RECORDED / "BTCUSDT-fundingRate-2021-05.zip").read_bytes(),
             f"{MAY}.CHECKSUM": (RECORDED / "BTCUSDT-fundingRate-2021-05.zip.CHECKSUM").read_bytes()}
    june = _june(3)  # 1-3 June: the REST answer also holds 3 June, after the window
    rest = Rest(june)
    frame, meta, served = _collect(start, end, now, files, rest, tmp_path, monkeypatch)

    frame = frame.assign(source=row_sources(frame, meta, Exchanges(mode="live")))
    funding = _funding(frame)
    may = _real_may()
    may = may[may.settled_at >= start]
    assert len(may) == 87  # 3-31 May, 00/08/16 UTC
    inside = [(t, r) for t, r in june if t < end]
    assert list(funding.observed_at) == list(may.settled_at) + [t for t, _ in inside]
    assert list(funding.funding_rate) == list(may.rate) + [r for _, r in inside]
    assert list(funding.source) == ["binance_archive"] * 87 + ["binance"] * 6
    assert meta["run_archive"]["funding_history_rows"] == {"archive": 87, "rest": 6}
    assert meta["run_funding_from_rest"] == {"BTC": ["2021-06-01T00:00:00+00:00", "2021-06-03T00:00:00+00:00"]}

    # No daily fundingRate file is asked for, nothing is a gap, nothing failed.
    assert not any("/daily/fundingRate/" in p for p in served.seen)
    assert [p for p in served.seen if "fundingRate" in p] == [f"{MAY}.CHECKSUM", MAY]
    assert meta["run_archive_gaps"] == [] and "run_archive_gaps_taken_from_rest" not in meta
    assert "run_failures" not in meta or not meta["run_failures"]
    # REST: the funding history from 1 June on, and nothing else of the history (no open-interest history).
    funding_requests = [u for u in rest.seen if u.path == "/fapi/v1/fundingRate"]
    assert [int(u.params["startTime"]) for u in funding_requests] == [1622505600000]  # 2021-06-01 00:00 UTC
    assert sorted(set(rest.paths())) == ["/fapi/v1/exchangeInfo", "/fapi/v1/fundingRate"]

    # Open interest of the current month's days still comes from the daily metrics files.
    oi = frame[frame.kind == "open_interest_daily"].sort_values("observed_at")
    assert len(oi) == len(days) == 31
    june_oi = oi[oi.observed_at >= pd.Timestamp("2021-06-01", tz=UTC)]
    assert list(june_oi.open_interest) == [1001.0, 1002.0]
    assert list(june_oi.available_at) == [pd.Timestamp("2021-06-02", tz=UTC), pd.Timestamp("2021-06-03", tz=UTC)]
    assert (oi.source == "binance_archive").all()
    assert metrics_path("BTCUSDT", "2021-06-02") in served.seen


def test_the_previous_month_whose_file_is_not_published_yet_is_taken_from_rest(tmp_path, monkeypatch):
    """Run on 2 June, before May's monthly file is published (its checksum answers 404): May's
    settlements are asked from REST with June's, the missing file is no gap but listed as taken from REST."""
    now = pd.Timestamp("2021-06-02 10:00", tz=UTC)
    start, end = pd.Timestamp("2021-05-01", tz=UTC), pd.Timestamp("2021-06-02", tz=UTC)
    days = pd.date_range(start, end - pd.Timedelta(days=1), freq="D", tz=UTC)
    may = _real_may()
    rest = Rest(list(zip(may.settled_at, may.rate)) + _june(2))
    frame, meta, served = _collect(start, end, now, _metrics_files(days), rest, tmp_path, monkeypatch)

    funding = _funding(frame)
    assert len(funding) == 93 + 3  # all of May and 1 June
    assert list(funding.funding_rate[:93]) == list(may.rate)
    assert set(row_sources(funding, meta, Exchanges(mode="live"))) == {"binance"}
    assert meta["run_funding_from_rest"] == {"BTC": ["2021-05-01T00:00:00+00:00", "2021-06-02T00:00:00+00:00"]}
    assert meta["run_archive_gaps_taken_from_rest"] == ["BTCUSDT-fundingRate-2021-05.zip"]
    assert meta["run_archive_gaps"] == []
    assert [p for p in served.seen if "fundingRate" in p] == [f"{MAY}.CHECKSUM"]  # the monthly file only
    assert len(frame[frame.kind == "open_interest_daily"]) == 32


def test_in_replay_the_current_months_funding_is_not_asked_from_daily_files(tmp_path, monkeypatch):
    """Replay of the recorded files with `now` on 2 June 2021 and a window 31 May - 2 June: 31 May from the
    recorded May file; 1 June is listed as not covered (no REST history is replayed), not as a gap, and no
    daily fundingRate file is requested."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    inner, seen = replay_transport("binance_archive", BASE_URL), []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return inner.handle_request(request)

    start, end = pd.Timestamp("2021-05-31", tz=UTC), pd.Timestamp("2021-06-02", tz=UTC)
    frame, meta = collect(Exchanges(mode="replay"), ["BTC"], start, end, now=pd.Timestamp("2021-06-02 10:00", tz=UTC),
                          catalog=BINANCE_ONLY,
                          client_kwargs={"binance_archive": {"transport": httpx.MockTransport(recording)}})
    funding = _funding(frame)
    assert list(funding.observed_at) == list(pd.date_range("2021-05-31", periods=3, freq="8h", tz=UTC))
    assert not any("/daily/fundingRate/" in p for p in seen)
    assert not any("fundingRate" in g for g in meta["run_archive_gaps"])
    assert meta["run_funding_not_covered"] == {"BTC": ["2021-06-01T00:00:00+00:00", "2021-06-02T00:00:00+00:00"]}
    assert "run_funding_from_rest" not in meta


def test_the_funding_plan_is_monthly_only_and_the_rest_part_starts_where_it_stops():
    now = "2021-06-03 10:00"
    assert plan_periods("2021-05-03", "2021-06-03", now, daily=False) == ["2021-05"]
    assert plan_periods("2021-06-01", "2021-06-03", now, daily=False) == []
    assert plan_periods("2021-05-03", "2021-06-03", now) == ["2021-05", "2021-06-01", "2021-06-02"]  # klines, metrics
    june = pd.Timestamp("2021-06-01", tz=UTC)
    assert funding_rest_from("2021-05-03", "2021-06-03", now) == june
    assert funding_rest_from("2021-06-02", "2021-06-03", now) == pd.Timestamp("2021-06-02", tz=UTC)
    assert funding_rest_from("2021-05-03", "2021-06-01", now) is None  # the monthly file covers it all
    # The previous month's file not published yet: the part starts with it (or with the window).
    assert funding_rest_from("2021-05-03", "2021-06-01", now, ["2021-05"]) == pd.Timestamp("2021-05-03", tz=UTC)
    assert funding_rest_from("2021-04-20", "2021-06-03", now, ["2021-05"]) == pd.Timestamp("2021-05-01", tz=UTC)
    # An older month missing is a gap of the archive (coin not listed then), not a part for REST.
    assert funding_rest_from("2021-04-20", "2021-05-10", now, ["2021-04"]) is None
