"""`crypto-assets health`: print the health table of the code location; exit 1 below 60 (critical).

Reads the Dagster instance from DAGSTER_HOME (the same one `make dev` and the daemons use).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from crypto_assets.health.score import CRITICAL_BELOW, health_report
from crypto_assets.health.states import datasets_in

DEFAULT_DEFINITIONS = "crypto_assets.definitions:defs"


def load_definitions(target: str):
    """The Definitions named by "module:attribute" (attribute defaults to `defs`; a function is called)."""
    module_name, _, attribute = target.partition(":")
    defs = getattr(importlib.import_module(module_name), attribute or "defs")
    return defs() if callable(defs) and not hasattr(defs, "resolve_asset_graph") else defs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crypto-assets health", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--fail-below", type=float, default=CRITICAL_BELOW,
                        help=f"exit 1 when the score is below this (default {CRITICAL_BELOW:.0f}: critical)")
    parser.add_argument("--definitions", default=DEFAULT_DEFINITIONS,
                        help=f"module:attribute of the Definitions to score (default {DEFAULT_DEFINITIONS})")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    if not os.environ.get("DAGSTER_HOME"):
        print("crypto-assets health: DAGSTER_HOME is not set; it must point at the Dagster instance "
              "(the folder with dagster.yaml that `make dev` uses)", file=sys.stderr)
        return 2
    import dagster as dg

    datasets = datasets_in(load_definitions(args.definitions).resolve_asset_graph())
    with dg.DagsterInstance.get() as instance:
        report = health_report(instance, datasets)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.to_text())
    return 1 if report.score < args.fail_below else 0


if __name__ == "__main__":
    sys.exit(main())
