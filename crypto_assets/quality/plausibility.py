"""Plausibility of a price relative to the symbol's recent prices.

A finite number can still be impossible: a provider glitch of 1e300, or a value 100x the
previous one (a unit or decimal error). Such a price must not reach `price_observations`, the
bars resampled from it, or the API. The rule, per symbol, in time order:

1. **Absolute cap.** A price above MAX_PLAUSIBLE_USD is rejected whatever the history. No
   crypto asset has traded near it (BTC's all-time high is ~1.1e5 USD); a value above it is a
   broken number, not a rally.
2. **Jump bound.** The reference is the symbol's last accepted price: the latest stored one
   from the warehouse (within the REFERENCE_LOOKBACK before the window), then the batch's own
   accepted points in time order. A price more than JUMP_FACTOR times above or below its
   reference is rejected, and does not become the reference. Why 10x: real one-step moves of
   listed coins stay far inside it (a -50 % crash, a +80 % spike, even the -90 % hours of LUNA
   in May 2022 land, and so does the next price of a continuing crash, since the reference
   follows each accepted price without lag), while the errors that produce impossible prices
   are a factor 100 or more (a unit or decimal slip, cents for dollars) or absurd (1e300).
   A median of the last few prices would resist one bad reference better but lags a crash:
   after a -90 % hour, the next lower price would be judged against the pre-crash level.
3. **No history.** When the warehouse has nothing for the symbol in the lookback, the batch's
   own median (of the numbers that passed the cap) seeds the reference: one outlier in a
   backfilled range is caught without history. A lone point with no history is judged by the
   cap only.

The lookback is bounded (24 h) so that the rule heals itself: if a genuine > 10x re-pricing
(a redenomination, a remapped coin id) is quarantined, the reference ages out after a day and
the new level is accepted; meanwhile the quarantine-share check fails and shows it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MAX_PLAUSIBLE_USD = 1e9
JUMP_FACTOR = 10.0
REFERENCE_POINTS = 1  # the last accepted price (see 2. above: a median would lag)
REFERENCE_LOOKBACK = pd.Timedelta(hours=24)

ABOVE_CAP = f"implausible price: above {MAX_PLAUSIBLE_USD:.0e} USD"


JUMP = f"implausible price: more than {JUMP_FACTOR:g}x above or below the symbol's last accepted price"


def implausible_prices(new: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per row of `new`: `reason` ('' when plausible) and `reference_usd` (the price it was
    judged against; NaN when there was none).

    `new` and `history` have `symbol`, `observed_at`, `price_usd` (finite, positive: the numeric
    checks come first). `history` holds accepted prices before the batch, in any order.
    """
    reasons = pd.Series("", index=new.index, dtype=object)
    references = pd.Series(np.nan, index=new.index, dtype="float64")
    prices = pd.to_numeric(new["price_usd"], errors="coerce").astype("float64")
    reasons[prices > MAX_PLAUSIBLE_USD] = ABOVE_CAP
    stored: dict[str, list[float]] = {}
    if history is not None and len(history):
        ordered = history.sort_values("observed_at")
        for symbol, part in ordered.groupby("symbol", sort=False):
            values = pd.to_numeric(part["price_usd"], errors="coerce").to_numpy(dtype="float64")
            stored[symbol] = [v for v in values if math.isfinite(v) and 0 < v <= MAX_PLAUSIBLE_USD]

    order = new.assign(_price=prices, _capped=reasons != "").sort_values(["symbol", "observed_at"], kind="stable")
    for symbol, part in order.groupby("symbol", sort=False):
        accepted = stored.get(symbol, [])[-REFERENCE_POINTS:]
        if not accepted:
            seed = part.loc[~part._capped, "_price"]
            accepted = [float(seed.median())] if len(seed) > 1 else []
        for index, price, capped in zip(part.index, part._price, part._capped):
            if capped:
                continue
            if accepted:
                reference = float(np.median(accepted[-REFERENCE_POINTS:]))
                references[index] = reference
                if price > reference * JUMP_FACTOR or price * JUMP_FACTOR < reference:
                    reasons[index] = JUMP
                    continue
            accepted.append(float(price))
    return pd.DataFrame({"reason": reasons, "reference_usd": references})
