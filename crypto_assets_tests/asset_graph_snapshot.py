"""The asset graph as one reviewed text file, so that every change to it is a visible diff.

Per asset: key, group, deps, partitions, backfill policy, automation condition (its label),
freshness policy, checks and pools. Rendered in a fresh process with none of the project's
`CRYPTO_*` settings, because some policies follow the environment (an LLM turns on narratives'
automation, CRYPTO_BACKFILL_HOURS_PER_RUN sizes backfill runs).

    .venv/bin/python -m crypto_assets_tests.asset_graph_snapshot --write   # after a reviewed change
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "data" / "asset_graph_snapshot.txt"


def _window(delta) -> str:
    seconds = int(delta.days * 86400 + delta.seconds)  # a SerializableTimeDelta
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else f"{seconds // 3600}h"


def render() -> str:
    """The snapshot text of the project's graph (in this process: see `render_clean`)."""
    import warnings

    warnings.filterwarnings("ignore")
    from crypto_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    lines = []
    for node in sorted(graph.asset_nodes, key=lambda n: n.key.to_user_string()):
        partitions = node.partitions_def
        condition = node.automation_condition
        policy = node.freshness_policy_or_from_metadata
        lines += [
            f"{node.key.to_user_string()}:",
            f"  group: {node.group_name}",
            f"  deps: {', '.join(sorted(k.to_user_string() for k in node.parent_keys)) or '-'}",
            f"  partitions: {type(partitions).__name__ if partitions else '-'}"
            + (f" from {partitions.start:%Y-%m-%d}" if hasattr(partitions, "start") else ""),
            f"  backfill: {node.backfill_policy or '-'}",
            f"  automation: {condition.get_label() if condition else '-'}",
            f"  freshness: {f'warn {_window(policy.warn_window)}, fail {_window(policy.fail_window)}' if policy else '-'}",
            f"  checks: {', '.join(sorted(k.name for k in node.check_keys)) or '-'}",
            f"  pools: {', '.join(sorted(getattr(node, 'pools', None) or [])) or '-'}",
        ]
    return "\n".join(lines) + "\n"


def render_clean() -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTO_")}
    done = subprocess.run([sys.executable, "-c", "from crypto_assets_tests.asset_graph_snapshot import render; "
                           "print(render(), end='')"], capture_output=True, text=True, env=env, timeout=120,
                          cwd=Path(__file__).resolve().parents[1], check=True)
    return done.stdout


if __name__ == "__main__":
    if "--write" in sys.argv:
        SNAPSHOT.write_text(render_clean())
        print(f"wrote {SNAPSHOT}")
    else:
        print(render_clean(), end="")
