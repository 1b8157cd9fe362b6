"""The price plausibility rule (quality/plausibility.py) on CONSTRUCTED price paths: each path
is written out below to exercise one part of the rule; the asset-level tests in
test_prices_assets.py run it on the real BTC recording through Dagster."""

from __future__ import annotations

import pandas as pd
import pytest

from crypto_assets.quality.plausibility import ABOVE_CAP, JUMP, implausible_prices


def frame(prices, symbol="BTC", start="2021-05-14 00:00"):
    times = pd.date_range(start, periods=len(prices), freq="h", tz="UTC")
    return pd.DataFrame({"symbol": symbol, "observed_at": times, "price_usd": prices})


HISTORY = frame([100.0, 101.0, 99.0], start="2021-05-13 21:00")


@pytest.mark.parametrize(
    ("prices", "rejected"),
    [
        ([100, 50, 52, 55], []),                 # -50 % crash lands
        ([100, 180, 110, 100], []),              # +80 % spike lands
        ([100, 10.5, 9, 8], []),                 # a -90 % hour lands (LUNA, May 2022), and what follows
        ([100, 70, 49, 34, 24, 17, 12, 8.2, 5.8, 4.0], []),  # -30 % every hour for 9 hours
        ([100, 10_000, 101], [1]),               # a 100x one-bar jump, then back
        ([100, 1.0, 100], [1]),                  # 1/100
        ([100, 1e300, 99], [1]),                 # finite but absurd
        ([100, 1_500, 1_600, 1_700, 1_800], [1, 2, 3, 4]),  # a level 15x up stays out (heals via the lookback)
    ],
)
def test_rule_on_constructed_paths_after_stored_history(prices, rejected):
    new = frame([float(p) for p in prices])
    reasons = implausible_prices(new, HISTORY).reason
    assert list(reasons[reasons != ""].index) == rejected


def test_reasons_and_references():
    judged = implausible_prices(frame([100.0, 1e300, 5_000.0]), HISTORY)
    assert judged.reason.tolist() == ["", ABOVE_CAP, JUMP]
    assert judged.reference_usd.iloc[2] == 100.0  # the last accepted price (the 1e300 was not)


def test_without_history_the_batch_median_is_the_reference():
    judged = implausible_prices(frame([100.0, 101.0, 10_000.0, 99.0, 100.5]))
    assert judged.reason.tolist() == ["", "", JUMP, "", ""]
    # A lone point without history: only the absolute cap applies.
    assert implausible_prices(frame([12_345.0])).reason.tolist() == [""]
    assert implausible_prices(frame([2e9])).reason.tolist() == [ABOVE_CAP]


def test_symbols_are_judged_separately():
    new = pd.concat([frame([100.0, 101.0]), frame([0.5, 0.51], symbol="DOGE")], ignore_index=True)
    assert (implausible_prices(new, HISTORY).reason == "").all()
