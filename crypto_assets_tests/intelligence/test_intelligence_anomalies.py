"""`market_anomalies`: robust z-scores on known series (price jump, volume spike, exchange divergence,
news spike) with their evidence, no look-ahead (a property), partition-local = global, and the asset
with its `anomalies_found` check (WARN when anomalies exist, what the alert sensor reports).

All inputs are SYNTHETIC (crypto_assets_tests/intelligence/intelligence_data.py), labelled so."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto_assets.assets.enrich.intelligence import market_anomalies
from crypto_assets.checks.data_checks import make_checks
from crypto_assets.intelligence import params as ip
from crypto_assets.intelligence.anomalies import compute_anomalies
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.intelligence import MARKET_ANOMALIES
from crypto_assets.tables.news import NEWS_ARTICLES
from crypto_assets.tables.prices import EXCHANGE_CANDLES, OHLCV_BARS
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets_tests.intelligence.intelligence_data import INGESTED, SOURCE, from_log_returns, walk

HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2024-01-01", tz="UTC")
W = ip.ANOMALY_WINDOW_HOURS


def _returns(n, seed, sd=0.002):
    return np.random.default_rng(seed).normal(0.0, sd, n)


def _robust(values):
    med = np.median(values)
    return med, 1.4826 * np.median(np.abs(values - med))


def test_a_price_jump_is_scored_against_the_hours_before_it_with_its_evidence():
    r = _returns(300, 1)
    r[250] = 0.05  # +5 % in one hour
    frame = compute_anomalies(from_log_returns("X", r), T0, T0 + 300 * HOUR)
    price = frame[frame.kind == "price_jump"].set_index("bar_start")
    row = price.loc[T0 + 250 * HOUR]
    base, scale = _robust(r[250 - W:250])  # the 168 returns before the hour, the hour itself excluded
    assert row.baseline == pytest.approx(base, abs=1e-12) and row.scale == pytest.approx(scale, rel=1e-9)
    assert row.z == pytest.approx((0.05 - base) / scale, rel=1e-9) and row.z > 20
    assert row.is_anomaly and row.direction == "up" and row.window_points == W and row.window_hours == W
    evidence = json.loads(row.evidence)
    assert evidence["close"] / evidence["previous_close"] == pytest.approx(np.exp(0.05))
    assert price.is_anomaly.sum() == 1  # the jump moves the next window's MAD very little
    assert pd.isna(price.loc[T0 + 251 * HOUR].evidence)
    # the first hours have no baseline (fewer than 80 % of 168 points): no z, never an anomaly
    early = price[price.index < T0 + 130 * HOUR]
    assert early.z.isna().all() and not early.is_anomaly.any()


def test_a_volume_spike_and_a_crash_are_flagged_in_their_direction():
    n = 300
    volume = np.exp(np.random.default_rng(2).normal(10, 0.3, n))
    volume[200], volume[260] = volume[200] * 200, volume[260] / 500
    frame = compute_anomalies(from_log_returns("X", _returns(n, 3), volume=volume), T0, T0 + n * HOUR)
    spikes = frame[(frame.kind == "volume_spike") & frame.is_anomaly].set_index("bar_start")
    assert list(spikes.index) == [T0 + 200 * HOUR, T0 + 260 * HOUR]
    assert list(spikes.direction) == ["up", "down"]
    assert json.loads(spikes.iloc[0].evidence)["volume"] == pytest.approx(volume[200])


def _candles(closes: dict, hours: int) -> pd.DataFrame:
    rows = []
    for exchange, values in closes.items():
        for h in range(hours):
            rows.append({"exchange": exchange, "symbol": "X", "bar_start": T0 + h * HOUR, "interval": "1h",
                         "close": values[h]})
    return pd.DataFrame(rows)


def test_exchange_divergence_needs_two_exchanges_a_high_z_and_a_visible_spread():
    n = 250
    base = 100 * np.exp(np.cumsum(_returns(n, 4)))
    noise = np.random.default_rng(5).normal(0, 0.0002, n)
    other = base * (1 + noise)
    other[220] = base[220] * 1.03  # 3 % apart for one hour
    other[230] = base[230] * 1.004  # z is high but 0.4 % is below the visible-spread floor
    bars = from_log_returns("X", np.diff(np.log(np.concatenate([[100.0], base]))))
    frame = compute_anomalies(bars, T0, T0 + n * HOUR, candles=_candles({"binance": base, "kraken": other}, n))
    div = frame[frame.kind == "exchange_divergence"].set_index("bar_start")
    assert len(div) == n
    flagged = div[div.is_anomaly]
    assert list(flagged.index) == [T0 + 220 * HOUR]
    assert div.loc[T0 + 230 * HOUR].z >= ip.ANOMALY_Z and not div.loc[T0 + 230 * HOUR].is_anomaly
    evidence = json.loads(flagged.iloc[0].evidence)["closes"]
    assert evidence == {"binance": pytest.approx(base[220]), "kraken": pytest.approx(base[220] * 1.03)}
    one = compute_anomalies(bars, T0, T0 + n * HOUR, candles=_candles({"binance": base}, n))
    assert (one.kind != "exchange_divergence").all()  # a single exchange is no divergence


def test_a_news_burst_is_a_market_wide_spike_and_quiet_hours_count_as_zero():
    rng = np.random.default_rng(6)
    counts = rng.poisson(2, 250)
    counts[240] = 40
    published = [T0 + h * HOUR + pd.Timedelta(minutes=int(m)) for h, c in enumerate(counts)
                 for m in rng.integers(0, 60, c)]
    news = pd.DataFrame({"published_at": pd.to_datetime(published, utc=True)})
    frame = compute_anomalies(pd.DataFrame(), T0, T0 + 250 * HOUR, news=news)
    spikes = frame[frame.is_anomaly]
    assert list(spikes.kind) == ["news_spike"] and list(spikes.symbol) == [ip.MARKET]
    assert spikes.iloc[0].bar_start == T0 + 240 * HOUR and spikes.iloc[0].value == 40
    assert (frame.scale.dropna() >= ip.NEWS_MIN_SCALE).all() and frame.scale.notna().sum() > 100
    assert set(frame.value[frame.bar_start < T0 + 240 * HOUR]) <= set(range(20))
    # no news table rows at all: no news scores (missing data is not "zero articles")
    assert (compute_anomalies(from_log_returns("X", _returns(10, 7)), T0, T0 + 10 * HOUR).kind != "news_spike").all()


# -- no look-ahead and partition-local = global ----------------------------------------------

SPAN = 260


def _inputs(seed):
    bars = walk(3, SPAN, start=str(T0), seed=seed)
    rng = np.random.default_rng(seed)
    one = bars[bars.symbol == bars.symbol.iloc[0]]
    candles = pd.concat([one.assign(exchange=e, close=one.close * (1 + rng.normal(0, 0.001, len(one))))
                         for e in ("binance", "okx")], ignore_index=True)[["exchange", "symbol", "bar_start",
                                                                             "interval", "close"]]
    minutes = np.sort(rng.integers(0, SPAN * 60, 600))
    news = pd.DataFrame({"published_at": T0 + pd.to_timedelta(minutes, unit="min")})
    return bars, candles, news


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut_hours=st.integers(140, SPAN - 1))
def test_inputs_known_after_t_never_change_anomalies_at_or_before_t(seed, cut_hours):
    bars, candles, news = _inputs(seed)
    cut = T0 + cut_hours * HOUR
    end = T0 + (SPAN + 30) * HOUR
    before = compute_anomalies(bars, T0, end, candles=candles, news=news)
    rng = np.random.default_rng(seed + 1)
    late_bars = bars.copy()
    late = (late_bars.bar_end > cut).to_numpy()
    for col in ("close", "volume"):
        late_bars.loc[late, col] = late_bars.loc[late, col].to_numpy() * rng.uniform(0.2, 5, late.sum())
    late_bars = pd.concat([late_bars, walk(2, 30, start=str(T0 + SPAN * HOUR), seed=seed + 2)], ignore_index=True)
    late_candles = candles.copy()
    late_c = (late_candles.bar_start + HOUR > cut).to_numpy()
    late_candles.loc[late_c, "close"] = late_candles.loc[late_c, "close"] * 1.5
    burst = pd.DataFrame({"published_at": [cut + pd.Timedelta(seconds=s) for s in range(1, 300, 3)]})
    after = compute_anomalies(late_bars, T0, end, candles=late_candles, news=pd.concat([news, burst]))
    a = before[before.asof_time <= cut].reset_index(drop=True)
    b = after[after.asof_time <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not before[before.asof_time > cut].reset_index(drop=True).equals(
        after[after.asof_time > cut].reset_index(drop=True).iloc[:len(before[before.asof_time > cut])])


def test_each_partition_with_its_lookback_equals_the_full_history():
    bars, candles, news = _inputs(8)
    starts = [T0 + h * HOUR for h in (170, 200, 259)]
    full = compute_anomalies(bars, T0, T0 + SPAN * HOUR, candles=candles, news=news)
    full = full[full.bar_start.isin(starts)].reset_index(drop=True)
    parts = []
    for s in starts:
        lo = s - ip.ANOMALY_LOOKBACK_HOURS * HOUR
        parts.append(compute_anomalies(
            bars[(bars.bar_start >= lo) & (bars.bar_start < s + HOUR)], s, s + HOUR,
            candles=candles[(candles.bar_start >= lo) & (candles.bar_start < s + HOUR)],
            news=news[(news.published_at >= lo) & (news.published_at < s + HOUR)]))
    local = pd.concat(parts, ignore_index=True)
    assert len(local) == len(full) and full.z.notna().sum() > 10
    assert set(full.kind) == {"price_jump", "volume_spike", "exchange_divergence", "news_spike"}
    pd.testing.assert_frame_equal(local, full, check_exact=True)


# -- the asset and its check -----------------------------------------------------------------

SPECS = [dg.AssetSpec(name, partitions_def=HOURLY) for name in ("ohlcv_bars", "exchange_candles", "news_articles")]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('wh') / 'warehouse.sqlite'}"
    wh = open_warehouse(url)
    start = pd.Timestamp("2021-05-01", tz="UTC")
    r = _returns(240, 9)
    r[220] = -0.08  # a crash at 2021-05-10 04:00
    volume = np.exp(np.random.default_rng(10).normal(8, 0.2, 240))
    bars = from_log_returns("BTC", r, start=str(start), volume=volume)
    wh.replace_window(OHLCV_BARS, bars, "2021-05-01", "2021-05-11")
    candles = pd.concat([bars.assign(exchange=e, market="BTC/USDT", quote="USDT",
                                     close=bars.close * (1 + np.random.default_rng(k).normal(0, 1e-4, len(bars))))
                         for k, e in enumerate(("binance", "kraken"))], ignore_index=True)
    wh.replace_window(EXCHANGE_CANDLES, candles.reindex(columns=EXCHANGE_CANDLES.column_names), "2021-05-01",
                      "2021-05-11")
    published = start + pd.to_timedelta(np.arange(0, 240 * 60, 30), unit="min")
    news = pd.DataFrame({"article_id": [f"a{i}" for i in range(len(published))], "published_at": published,
                         "title": "synthetic", "source": SOURCE, "ingested_at": INGESTED})
    wh.replace_window(NEWS_ARTICLES, news.reindex(columns=NEWS_ARTICLES.column_names), "2021-05-01", "2021-05-11")
    return url, wh


def _materialize(url, partition_key):
    return dg.materialize(
        [market_anomalies, *make_checks(market_anomalies), *SPECS], selection=dg.AssetSelection.assets(
            market_anomalies) | dg.AssetSelection.checks_for_assets(market_anomalies),
        resources={"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url)},
        instance=dg.DagsterInstance.ephemeral(), partition_key=partition_key)


@pytest.mark.slow
def test_asset_scores_every_kind_and_its_check_warns_only_when_anomalies_exist(warehouse):
    url, wh = warehouse
    quiet = _materialize(url, "2021-05-10-02:00")
    assert quiet.success
    rows = wh.read(MARKET_ANOMALIES, "2021-05-10 02:00", "2021-05-10 03:00")
    assert set(rows.kind) == {"price_jump", "volume_spike", "exchange_divergence", "news_spike"}
    assert not rows.is_anomaly.any() and rows.z.notna().all() and (rows.source == "computed").all()
    (check,) = [c for c in quiet.get_asset_check_evaluations() if c.check_name == "anomalies_found"]
    assert check.passed

    crash = _materialize(url, "2021-05-10-04:00")
    assert crash.success  # a WARN check never fails the run
    rows = wh.read(MARKET_ANOMALIES, "2021-05-10 04:00", "2021-05-10 05:00")
    found = rows[rows.is_anomaly]
    assert list(found.kind) == ["price_jump"] and found.iloc[0].direction == "down"
    (check,) = [c for c in crash.get_asset_check_evaluations() if c.check_name == "anomalies_found"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["anomalies"].value == 1 and "BTC price_jump" in check.description
    meta = crash.asset_materializations_for_node("market_anomalies")[0].metadata
    assert meta["anomalies"].value == 1 and meta["inputs_read"].value["exchange_candles"] > 0

    assert _materialize(url, "2021-05-10-04:00").success  # idempotent
    again = wh.read(MARKET_ANOMALIES, "2021-05-10 04:00", "2021-05-10 05:00")
    pd.testing.assert_frame_equal(rows.drop(columns="ingested_at"), again.drop(columns="ingested_at"))


def test_optional_inputs_are_lineage_only():
    deps = {d.asset_key.to_user_string(): d for d in market_anomalies.specs_by_key[market_anomalies.key].deps}
    assert set(deps) == {"ohlcv_bars", "exchange_candles", "news_articles"}
    assert all(c.description for c in MARKET_ANOMALIES.columns)
