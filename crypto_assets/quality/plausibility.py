"""Plausibility of a price relative to the symbol's recent prices (CoinGecko observations and
exchange candles: one rule, `implausible_prices`).

A finite number can still be impossible: a provider glitch of 1e300, a value 100x the previous
one (a unit or decimal error), or a walk of smaller steps (x9, x81, x729, ...) that never makes
one big jump. Such a price must not reach `price_observations`, `exchange_candles`, the bars made
of them, or the API. The rule, per series (a coin; for candles a coin and interval, all exchanges
together), in time order:

1. **Absolute cap.** A price above MAX_PLAUSIBLE_USD is rejected whatever the history. No
   crypto asset has traded near it (BTC's all-time high is ~1.1e5 USD); a value above it is a
   broken number, not a rally.
2. **Step bound.** A price more than JUMP_FACTOR (10x) above or below the series' last accepted
   price (the latest accepted one before it; several at one time, e.g. the exchanges' closes of
   one hour: their median) is rejected. Real one-step moves stay far inside it (-50 %, +80 %,
   the -90 % hours of LUNA in May 2022); the errors that produce impossible prices are a factor
   100 or more (a unit or decimal slip, cents for dollars) or absurd (1e300).
3. **Level bound (the robust reference).** A price more than RISE_FACTOR (5x) above, or more
   than FALL_FACTOR (20x) below, the MEDIAN of the series' accepted prices of the last
   REFERENCE_LOOKBACK (24 h: the warehouse's stored ones before the batch, then the batch's own
   accepted ones) is rejected. One bad price that passed (at most 5x off) is one value of the
   window, so it never becomes the reference: real prices after it keep landing. A staircase of
   steps under 10x is judged against the median, not against its own last step: x9 is already
   more than 5x above it, and every later step is further away, so none of it lands.
   Why 5x up: no listed coin's price rises to 5x its own median of the past day (a +80 % day
   is exceptional); a wrong price (another coin's, a decimal slip, a glitch walk) is off by far
   more. Why 20x down: real collapses are faster than rallies. A -90 % hour followed by further
   losses, or -30 % every hour for nine hours (-96 %, 10.4x below the window's median) land;
   only a fall to under 1/20 of the past day's median is held back.
4. **No history.** When a point has no accepted price in its window, the median of the batch's
   own prices within REFERENCE_LOOKBACK around it (those under the cap; at least
   MIN_SEED_POINTS of them) is both references: one outlier in a backfilled range is caught
   without history. With fewer points (a lone point, two points that disagree: which is right
   cannot be told), only the cap applies.

Prices of one instant are judged against the same window (they do not judge each other), so the
outcome does not depend on the order in which exchanges answered. A rejected price never joins the
window. The window is bounded (24 h) so that the rule heals itself: if a genuine re-pricing beyond
the bounds (a redenomination, a remapped coin id, a collapse beyond -95 % in a day) is quarantined,
the old prices age out within a day and the new level is accepted; meanwhile the quarantine-share
check fails and shows it.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence

import numpy as np
import pandas as pd

MAX_PLAUSIBLE_USD = 1e9
JUMP_FACTOR = 10.0  # step bound: against the last accepted price
RISE_FACTOR = 5.0  # level bound above the window's median
FALL_FACTOR = 20.0  # level bound below the window's median
REFERENCE_LOOKBACK = pd.Timedelta(hours=24)  # the window of accepted prices (the median's)
MIN_SEED_POINTS = 3  # batch points needed to seed a reference when the window is empty

ABOVE_CAP = f"implausible price: above {MAX_PLAUSIBLE_USD:.0e} USD"


JUMP = f"implausible price: more than {JUMP_FACTOR:g}x above or below the symbol's last accepted price"
LEVEL = (f"implausible price: more than {RISE_FACTOR:g}x above or {FALL_FACTOR:g}x below the median of the "
         f"symbol's accepted prices over the last {REFERENCE_LOOKBACK.total_seconds() / 3600:g} h")


def implausible_prices(new: pd.DataFrame, history: pd.DataFrame | None = None, *,
                       keys: Sequence[str] = ("symbol",), time: str = "observed_at", price: str = "price_usd",
                       judged: Sequence[str] | None = None) -> pd.DataFrame:
    """Per row of `new`: `reason` ('' when plausible) and `reference_usd` (the price it was
    judged against; NaN when there was none).

    `new` and `history` have the `keys` columns (one series per key), `time` and `price`
    (finite, positive: the numeric checks come first). `history` holds accepted prices before
    the batch, in any order. `judged`: the columns of `new` that must all be plausible (default
    `price` alone; a candle: open, high, low and close); `price` is what joins the reference once
    the row is accepted (a candle's close).
    """
    reasons = pd.Series("", index=new.index, dtype=object)
    references = pd.Series(np.nan, index=new.index, dtype="float64")
    if new.empty:
        return pd.DataFrame({"reason": reasons, "reference_usd": references})
    keys = list(keys)
    values = new[list(judged or [price])].apply(pd.to_numeric, errors="coerce").astype("float64")
    high, low = values.max(axis=1), values.min(axis=1)
    capped = (high > MAX_PLAUSIBLE_USD).to_numpy()
    reasons[capped] = ABOVE_CAP
    stored: dict = {}
    if history is not None and len(history):
        past = history[[*keys, time]].assign(_p=pd.to_numeric(history[price], errors="coerce").astype("float64"))
        past = past[np.isfinite(past._p) & (past._p > 0) & (past._p <= MAX_PLAUSIBLE_USD)
                    & pd.to_datetime(past[time], utc=True).notna()]
        past = past.assign(_t=_ns(past[time])).sort_values("_t", kind="stable")
        stored = {key: (part._t.to_numpy(), part._p.to_numpy()) for key, part in past.groupby(keys, sort=False)}
    frame = new[keys].assign(_hi=high.to_numpy(), _lo=low.to_numpy(), _capped=capped,
                             _v=pd.to_numeric(new[price], errors="coerce").astype("float64").to_numpy())
    dated = pd.to_datetime(new[time], utc=True).notna().to_numpy()  # undated rows are not judged here
    frame = frame[dated].assign(_t=_ns(new.loc[dated, time]))
    out_reasons: dict = {}
    out_refs: dict = {}
    for key, part in frame.groupby(keys, sort=False):
        _judge_series(part.sort_values("_t", kind="stable"), stored.get(key), out_reasons, out_refs)
    if out_reasons:
        reasons[list(out_reasons)] = list(out_reasons.values())
    if out_refs:
        references[list(out_refs)] = list(out_refs.values())
    return pd.DataFrame({"reason": reasons, "reference_usd": references})


def _ns(times: pd.Series) -> pd.Series:
    """Times (none missing) as int64 nanoseconds since the epoch, UTC."""
    return pd.to_datetime(times, utc=True).dt.as_unit("ns").astype("int64")


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2.0


def _judge_series(part: pd.DataFrame, stored, reasons: dict, references: dict) -> None:
    """The rule (module docstring) over one series in time order; writes rejected rows' reasons
    and every judged row's reference into `reasons` / `references` (by index)."""
    lookback = REFERENCE_LOOKBACK.value
    index = part.index.tolist()
    t = part._t.tolist()
    hi, lo, v, capped = part._hi.tolist(), part._lo.tolist(), part._v.tolist(), part._capped.tolist()
    candidate = ~part._capped.to_numpy() & np.isfinite(part._v.to_numpy()) & (part._v.to_numpy() > 0)
    seed_t = part._t.to_numpy()[candidate].astype("int64")
    seed_v = part._v.to_numpy()[candidate]
    past_t, past_v = stored if stored is not None else ((), ())
    past_t, past_v = list(past_t), list(past_v)
    window_t: deque = deque()  # accepted prices, in time order, and the same values sorted
    window_v: deque = deque()
    ordered: list[float] = []

    def accept(when: int, value: float) -> None:
        window_t.append(when)
        window_v.append(value)
        insort(ordered, value)

    n, i, j = len(t), 0, 0
    while i < n:
        now = t[i]
        k = i
        while k < n and t[k] == now:
            k += 1
        while j < len(past_t) and past_t[j] < now:  # stored prices before this instant
            accept(int(past_t[j]), float(past_v[j]))
            j += 1
        while window_t and window_t[0] < now - lookback:
            window_t.popleft()
            del ordered[bisect_left(ordered, window_v.popleft())]
        if ordered:
            median = _median(ordered)
            last, newest = window_v[-1], window_t[-1]
            if len(window_t) > 1 and window_t[-2] == newest:  # several prices at the newest instant
                x, latest = len(window_t) - 1, []
                while x >= 0 and window_t[x] == newest:
                    latest.append(window_v[x])
                    x -= 1
                last = _median(sorted(latest))
        else:
            lo_at, hi_at = np.searchsorted(seed_t, now - lookback, "left"), np.searchsorted(seed_t, now + lookback,
                                                                                              "right")
            median = float(np.median(seed_v[lo_at:hi_at])) if hi_at - lo_at >= MIN_SEED_POINTS else None
            last = median
        accepted = []
        for m in range(i, k):
            if capped[m]:
                continue
            if median is None:
                accepted.append(v[m])
                continue
            if hi[m] > last * JUMP_FACTOR or lo[m] * JUMP_FACTOR < last:
                reasons[index[m]], references[index[m]] = JUMP, last
                continue
            references[index[m]] = median
            if hi[m] > median * RISE_FACTOR or lo[m] * FALL_FACTOR < median:
                reasons[index[m]] = LEVEL
                continue
            accepted.append(v[m])
        for value in accepted:  # prices of one instant join the window together, after all were judged
            if value == value and value > 0:
                accept(now, value)
        i = k
