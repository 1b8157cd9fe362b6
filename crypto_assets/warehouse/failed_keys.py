"""Keys whose fetch failed in a run keep what is stored (invariant 12).

An ingest asset fetches per key (a coin, an exchange market, a macro series, an on-chain metric,
the Fear & Greed source). When some keys fail (a 404 for a coin, an unreadable answer, an exchange
that is down), the run's frame lacks their rows. Writing that frame over the window would erase
their stored history, so the asset marks the frame with the keys that failed, and the warehouse IO
manager replaces the window for every OTHER key only (`Warehouse.replace_window(keep=...)`, one
atomic commit) and names the failed keys in the materialization's metadata.

    return mark_failed(frame, [FailedFetch({"symbol": "BTC"}, "coingecko: HTTP 404 ...")])

A key is a {column: value} of primary-key columns. The empty key `{}` means "everything this asset
fetches" (a single-source asset whose source failed): then nothing is written at all.

When every key the run asked for failed, nothing was fetched: `raise_if_nothing_fetched` fails the
run instead of materializing an unchanged window as if it were new. A replay that has no recording
for a key (the replay transport's 404 "replay: no recording") is not a fault of the source: it keeps
what is stored like any failure, but does not fail the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

FAILED_FETCHES_ATTR = "crypto_assets.failed_fetches"  # DataFrame.attrs entry read by WarehouseIOManager
REPLAY_MISS_MARK = "replay: no recording"  # in the body of the replay transport's 404


@dataclass(frozen=True)
class FailedFetch:
    """One key whose fetch failed in this run, and why (an error text without secrets)."""

    key: dict = field(hash=False)
    reason: str = ""

    @property
    def label(self) -> str:
        return "|".join(str(v) for v in self.key.values()) or "all"

    @property
    def shown(self) -> str:
        """The reason as metadata and messages show it: secrets blanked BEFORE the cut."""
        from crypto_assets.sources.client import redact_then_cut

        return redact_then_cut(self.reason, None, 300)

    @property
    def replay_miss(self) -> bool:
        return REPLAY_MISS_MARK in self.reason


def mark_failed(frame: pd.DataFrame, failed: Iterable[FailedFetch]) -> pd.DataFrame:
    """`frame` marked with the keys whose fetch failed (the IO manager keeps their stored rows)."""
    failed = list(failed)
    if failed:
        frame.attrs[FAILED_FETCHES_ATTR] = failed
    return frame


def failed_fetches(frame) -> list[FailedFetch]:
    attrs = getattr(frame, "attrs", None) or {}
    return list(attrs.get(FAILED_FETCHES_ATTR) or [])


def raise_if_nothing_fetched(asset: str, expected: int, failed: Sequence[FailedFetch]) -> None:
    """Fail the run when every one of the `expected` keys failed and at least one failure is a real
    one (not a replay with no recording): nothing was fetched, nothing is written."""
    real = [f for f in failed if not f.replay_miss]
    if expected and len(failed) >= expected and real:
        import dagster as dg

        sample = "; ".join(f"{f.label}: {f.shown}" for f in real[:3])
        raise dg.Failure(
            f"{asset}: every one of the {expected} keys failed to fetch; nothing was written and the stored rows "
            f"are unchanged. First failures: {sample}",
            metadata={"keys_failed": dg.MetadataValue.json({f.label: f.shown for f in failed})},
        )


__all__ = ["FAILED_FETCHES_ATTR", "FailedFetch", "failed_fetches", "mark_failed", "raise_if_nothing_fetched"]
