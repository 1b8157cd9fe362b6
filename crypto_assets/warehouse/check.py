"""`crypto-assets warehouse check [--deep]` and `crypto-assets warehouse repair TABLE`.

check: every table declared in code, one line each: damaged (the log or a referenced data file;
`--deep` reads every data file whole), mismatched with the code's schema, not created yet (optional
tables are not a failure), or ok. Exit 0: nothing wrong; 1: a table is damaged, mismatched, or a
required table is missing; 2: the warehouse cannot be used at all (nothing there, unreachable).
A check creates nothing: a mistyped `--url delta:///path` reports that no warehouse is there.

repair: see `DeltaWarehouse.repair` and docs/storage.md ("Damage and recovery").
"""

from __future__ import annotations

import calendar
import sys
import time
from collections.abc import Callable

from crypto_assets.warehouse.schema import TableSpec
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import Warehouse, WarehouseDamaged

DOCS = "docs/storage.md, 'Damage and recovery'"


def optional_tables() -> dict[str, str]:
    """Tables that may not exist yet without anything being wrong, and why.

    - the assets whose source a user may not have set up (`automation.policies.OPTIONAL_SOURCES`:
      Reddit credentials, a local LLM);
    - `llm_cache`, written only by the optional `news_narratives`;
    - `fear_greed_index`, whose asset writes no row while its source answers none (replay and the
      demo have no recording: assets/ingest/fear_greed.py); an optional input of ml_features.
    """
    from crypto_assets.automation.policies import OPTIONAL_SOURCES

    optional = dict(OPTIONAL_SOURCES)
    optional["llm_cache"] = f"written by news_narratives only, which {OPTIONAL_SOURCES.get('news_narratives', '')}"
    optional["fear_greed_index"] = ("its asset writes no row while Alternative.me answers none (replay and the demo "
                                    "have no recording)")
    return optional


def check(warehouse: Warehouse, tables: dict[str, TableSpec], *, deep: bool = False,
          echo: Callable[[str], None] = print) -> int:
    """Print one line per table; the exit code (see the module docstring)."""
    optional = optional_tables()
    damaged, bad = [], 0
    started = time.perf_counter()
    for spec in tables.values():
        try:
            problems = warehouse.damage(spec, deep=deep, footers=True)
            diff = None if problems else warehouse.schema_diff(spec)
        except WarehouseDamaged as exc:
            problems, diff = [exc.problem], None
        if problems:
            echo(f"table {spec.name}: DAMAGED: " + "; ".join(problems))
            damaged.append(spec.name)
        elif diff.missing_table and spec.name in optional:
            echo(f"table {spec.name}: not created yet (optional: {optional[spec.name]})")
        elif diff.missing_table:
            echo(f"table {spec.name}: does not exist (not created yet: materialize the {spec.name} asset)")
            bad += 1
        else:
            echo(diff.describe())
            bad += not diff.ok
    if deep:
        echo(f"deep check: every data file read whole in {time.perf_counter() - started:.1f} s")
    if damaged:
        echo(f"{len(damaged)} damaged table{'s' if len(damaged) > 1 else ''}: {', '.join(damaged)}. Reads of "
             f"{'them' if len(damaged) > 1 else 'it'} fail until repaired: `crypto-assets warehouse repair TABLE` "
             f"({DOCS})")
    return 1 if damaged or bad else 0


def rematerialize_hints(spec: TableSpec, parts: list[str], whole: bool) -> list[str]:
    """`dg launch` commands that rewrite the partitions covering the `_part` values `parts`."""
    prefix = "dg launch -m crypto_assets.definitions --assets"
    note = {"quarantine": "  (quarantine rows are written by the assets whose input was rejected: re-run those "
                          "for the same partitions)",
            "llm_cache": "  (a cache: news_narratives refills it when it runs)"}.get(spec.name)
    if spec.time_column is None:
        lines = [f"{prefix} {spec.name}"]
    elif not parts:
        lines = [f"every partition the table held: backfill {spec.name} in the UI (Materialize -> all partitions)"
                 if whole else "no partition lost rows"]
        return lines
    else:
        daily = spec.column(spec.time_column).kind == "date"  # `_part` is a month; the asset is daily
        lines = []
        for first, last in _runs(sorted(parts), monthly=daily):
            if daily:
                year, month = map(int, last.split("-"))
                span = f"{first}-01...{last}-{calendar.monthrange(year, month)[1]:02d}"
            else:
                span = f"{first}-00:00...{last}-23:00"
            lines.append(f'CRYPTO_BACKFILL_HOURS_PER_RUN=0 {prefix} {spec.name} --partition-range "{span}"')
    return lines + ([note] if note else [])


def _runs(values: list[str], *, monthly: bool) -> list[tuple[str, str]]:
    """Consecutive days ("2024-01-02") or months ("2024-01") as (first, last) pairs."""
    import pandas as pd

    freq = "MS" if monthly else "D"
    stamps = [pd.Timestamp(v + ("-01" if monthly else "")) for v in values]
    runs: list[list] = []
    for value, stamp in zip(values, stamps):
        if runs and runs[-1][2] + pd.tseries.frequencies.to_offset(freq) == stamp:
            runs[-1][1], runs[-1][2] = value, stamp
        else:
            runs.append([value, value, stamp])
    return [(first, last) for first, last, _ in runs]


def repair(warehouse: Warehouse, spec: TableSpec, *, version: int | None = None, deep: bool = False,
           echo: Callable[[str], None] = print) -> int:
    if warehouse.dialect != "delta":
        echo(f"{spec.name}: a SQL warehouse's storage is the database server's; restore it from the server's backups")
        return 2
    result = warehouse.repair(spec, version=version, deep=deep)
    for line in result["actions"]:
        echo(f"{spec.name}: {line}")
    if result["lost_versions"]:
        echo(f"{spec.name}: lost commit version(s): {', '.join(map(str, result['lost_versions']))}")
    if result["version"] is not None:
        echo(f"{spec.name}: the table now opens at version {result['version']}")
    if result["partitions"] or result["all"]:
        echo(f"{spec.name}: rows were lost; re-materialize them:")
        for line in rematerialize_hints(spec, result["partitions"], result["all"]):
            echo(f"  {line}")
    problems = warehouse.damage(spec, deep=deep, footers=True)
    if problems:
        echo(f"{spec.name}: still damaged: {'; '.join(problems)}")
        return 1
    return 0


def main_check(url: str, *, deep: bool, echo=print) -> int:
    """`warehouse check` on `url`; a Delta folder that does not exist is reported, never created."""
    from crypto_assets.tables import all_tables

    warehouse = open_warehouse(url)
    if warehouse.dialect == "delta" and not warehouse.exists():
        print(f"crypto-assets warehouse check: no warehouse at {warehouse.display_url}: the folder {warehouse.root} "
              "does not exist (nothing was created; check --url / CRYPTO_WAREHOUSE_URL / DAGSTER_HOME)",
              file=sys.stderr)
        return 2
    return check(warehouse, all_tables(), deep=deep, echo=echo)
