"""Scale benchmark: the WHOLE asset graph backfilled in replay mode for N days x 320 symbols
(hourly bars), on the embedded warehouse (Delta) and MariaDB/MySQL, plus the Dagster UI's
asset-graph GraphQL latency. Results go to benchmarks/results.json["scale"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py                     # the full default
    PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py --days 1,7 --skip-mysql --skip-ui  # quick

Options: --days 1,7,30 (embedded sizes) --embedded delta|sqlite --mysql-days 1,7 --symbols 320
--news-per-hour 40 --social-per-hour 20 --ui-days 7 --ui-requests 20 --window-end YYYY-MM-DD
--skip-mysql --skip-ui --keep --record KEY (results.json key, default scale: a quick check need
not replace the full run's numbers) --instances sqlite,mysql,postgres,postgres_batched (the Dagster
instance storages the --days sizes run on, benchmarks/scale/instance.py; default sqlite). MySQL uses CRYPTO_TEST_MYSQL_URL, else
mysql+pymysql://root@127.0.0.1:3306/test: a scratch database crypto_bench_<random> is created on
that server per size and dropped afterwards (only the warehouse is MySQL; the Dagster instance
stays SQLite); when the server cannot be reached the MySQL part says "skipped".

Every window is the N closed days before --window-end (default: yesterday 00:00 UTC), i.e. a
backfill of recent history, in the chunks CRYPTO_BACKFILL_HOURS_PER_RUN sets (default 168 h).
Inputs are SYNTHETIC replay payloads for every source, each chunk served only its own range
(benchmarks/scale/data.py); nothing is seeded into the warehouse: every asset, ingestion included,
runs its production code through Dagster, each size in a process of its own, timed inside
(benchmarks/scale/backfill.py). Sentiment is scored by VADER (HF_HUB_OFFLINE=1: the transformer
models are not loaded). The UI part (benchmarks/scale/ui.py) queries the --ui-days size's
instance. The code location's load time is measured by benchmarks/bench_warehouse.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import measured  # noqa: E402
from benchmarks.scale.backfill import CHILD_TIMING_METHOD, run_size, scaling, summarize  # noqa: E402
from benchmarks.scale.data import SYNTHETIC_NOTE  # noqa: E402
from benchmarks.scale.instance import DESCRIBE, KINDS  # noqa: E402
from benchmarks.scale.ui import TARGET_UI_S, bench_ui  # noqa: E402
from crypto_assets.warehouse.scratch import scratch_database  # noqa: E402

# Every window ENDS at the same hour: midnight UTC one day ago, so it is a backfill of the
# most recent closed days (what a new deployment backfills first). START = END - N days.
YESTERDAY = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
TARGET_30D_S = 600
TARGET_YEAR_S = 1800
TARGET_PEAK_MB = 3072
DEFAULT_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"


def year_vs_goal(size: dict, instance: str) -> dict:
    """The 365-day size against the goal (30 min, 3 GB peak); a size stopped by its timeout is
    reported with how far it got and the rate it ran at."""
    if "wall_s" in size:
        return {"instance_storage": instance, "wall_s": size["wall_s"], "goal_s": TARGET_YEAR_S,
                "peak_rss_mb": size["peak_rss_mb"], "goal_peak_rss_mb": TARGET_PEAK_MB, "success": size["success"],
                "meets_goal": size["success"] and size["wall_s"] <= TARGET_YEAR_S
                and size["peak_rss_mb"] <= TARGET_PEAK_MB}
    progress = size.get("progress_when_stopped", {})
    per_day = progress.get("seconds_per_day")
    return {"instance_storage": instance, "meets_goal": False, "goal_s": TARGET_YEAR_S,
            "stopped_after_s": size.get("timed_out_after_s"), "days_done": progress.get("days_done"),
            "seconds_per_day_so_far": per_day,
            "projected_year_s": round(per_day * 365) if per_day else None,
            "peak_rss_mb_so_far": progress.get("peak_rss_mb"), "failed_runs": progress.get("failed_runs")}


def compare_instances(results: dict, embedded: str, kinds: list[str]) -> dict:
    """Per size: each instance storage's wall time and event-write time, side by side."""
    out: dict = {}
    for kind in kinds:
        key = embedded if kind == "sqlite" else f"{embedded}_instance_{kind}"
        for days, size in results[key]["detail"].items():
            if "wall_s" not in size:
                out.setdefault(str(days), {})[kind] = {"success": False}
                continue
            where = size["where_time_goes_s"]
            writes = (where["dagster_outside_steps_of_which_event_writes"] + where["asset_steps"]["dagster_event_write"]
                      + where["check_steps"]["dagster_event_write"])
            out.setdefault(str(days), {})[kind] = {
                "wall_s": size["wall_s"], "event_writes_s": round(writes, 1), "events": size["events_written"],
                "ms_per_event": round(1000 * writes / size["events_written"], 2) if size["events_written"] else None,
                "success": size["success"]}
    return out


def parse_days(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()}) if text else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", default="1,7,30", help="sizes in days on the embedded warehouse, comma-separated")
    parser.add_argument("--embedded", default="delta", choices=["delta", "sqlite"],
                        help="embedded warehouse for --days: delta (the default) or sqlite (earlier versions)")
    parser.add_argument("--mysql-days", default="1,7", help="MySQL sizes in days ('' = none)")
    parser.add_argument("--symbols", type=int, default=320)
    parser.add_argument("--news-per-hour", type=float, default=40.0)
    parser.add_argument("--social-per-hour", type=float, default=20.0)
    parser.add_argument("--ui-days", type=int, default=7, help="size whose instance the UI benchmark uses")
    parser.add_argument("--ui-requests", type=int, default=20)
    parser.add_argument("--size-timeout", type=int, default=1800, help="seconds per size before giving up")
    parser.add_argument("--skip-mysql", action="store_true")
    parser.add_argument("--skip-ui", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (instances, warehouses)")
    parser.add_argument("--window-end", default=YESTERDAY.strftime("%Y-%m-%d"),
                        help="UTC day the windows end at (exclusive); default yesterday")
    parser.add_argument("--record", default="scale", help="results.json key the numbers go to")
    parser.add_argument("--instances", default="sqlite",
                        help=f"Dagster instance storages the --days sizes run on, comma-separated: {', '.join(KINDS)}")
    args = parser.parse_args()
    end = datetime.strptime(args.window_end, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    from crypto_assets.assets.common import BACKFILL_HOURS_ENV, backfill_hours_per_run

    started = time.perf_counter()
    embedded_days, mysql_days = parse_days(args.days), [] if args.skip_mysql else parse_days(args.mysql_days)
    with measured(args.record) as results:
        chunk = backfill_hours_per_run()
        results.update({
            "input": SYNTHETIC_NOTE,
            "window": f"the N days before {end:%Y-%m-%d %H:%M} UTC (most recent closed days), hourly partitions, "
                      + (f"in backfill chunks of {chunk} h ({BACKFILL_HOURS_ENV}, BackfillPolicy.multi_run)" if chunk
                         else "one chunk for the whole range (BackfillPolicy.single_run)")
                      + ": per chunk one daily, one hourly and one features run",
            "symbols": args.symbols, "bars": "hourly (one CoinGecko point per coin and hour -> 1h bars)",
            "news_per_hour": args.news_per_hour, "social_per_hour": args.social_per_hour,
            "sentiment_model": "VADER (HF_HUB_OFFLINE=1; transformer models not loaded)",
            "how_run": "replay mode, every asset computed (none seeded): coin_universe; per chunk macro_series+"
                       "onchain_metrics (daily range); price_observations, ohlcv_bars, news_articles, social_posts, "
                       "sentiment_scores, technical_indicators (hourly range); ml_features (hourly range); with their "
                       "asset checks; dagster.materialize (in-process executor) on a DagsterInstance of the storage "
                       "--instances names (SQLite: repo dagster.yaml) in a fresh DAGSTER_HOME per size; each size "
                       "in a fresh process",
            "time_breakdown_method": CHILD_TIMING_METHOD,
            "options": vars(args),
            "targets": {"embedded_30d_wall_s": TARGET_30D_S, "ui_s": TARGET_UI_S},
        })
        workdir = Path(tempfile.mkdtemp(prefix="bench_scale_"))
        try:
            instances = [k.strip() for k in args.instances.split(",") if k.strip()]
            for kind in instances:
                if kind not in KINDS:
                    parser.error(f"--instances: {kind!r} is not one of {', '.join(KINDS)}")
            for kind in instances:
                sizes = {d: run_size(d, args.embedded, args, workdir, end, instance=kind) for d in embedded_days}
                # The SQLite instance keeps the key earlier runs used; the others name their storage.
                key = args.embedded if kind == "sqlite" else f"{args.embedded}_instance_{kind}"
                results[key] = {"instance_storage": DESCRIBE[kind], "sizes": {d: summarize(s) for d, s in sizes.items()},
                                "scaling": scaling(sizes), "detail": sizes}
            if len(instances) > 1:
                results["instance_storage_comparison"] = compare_instances(results, args.embedded, instances)
            if 365 in sizes:
                results["year_vs_goal"] = year_vs_goal(sizes[365], instances[-1])
            if 30 in sizes and "wall_s" in sizes[30]:
                wall = sizes[30]["wall_s"]
                results["embedded_30d_vs_target"] = {"wall_s": wall, "target_s": TARGET_30D_S,
                                                     "meets_target": wall <= TARGET_30D_S and sizes[30]["success"],
                                                     "process_s_incl_imports": sizes[30]["process_s"]}
            else:
                results["embedded_30d_vs_target"] = "not run at this size (pass --days ...,30)"

            if mysql_days:
                url = os.environ.get("CRYPTO_TEST_MYSQL_URL") or DEFAULT_MYSQL
                mysql_sizes = {}
                try:
                    for d in mysql_days:
                        with scratch_database(url, "crypto_bench") as db_url:
                            mysql_sizes[d] = run_size(d, "mysql", args, workdir, end,
                                                      mysql_url=db_url.render_as_string(hide_password=False))
                    results["mysql"] = {"server": url.split("@")[-1],
                                        "instance_storage": "SQLite (only the warehouse is MySQL)",
                                        "sizes": {d: summarize(s) for d, s in mysql_sizes.items()},
                                        "scaling": scaling(mysql_sizes), "detail": mysql_sizes}
                except Exception as exc:  # noqa: BLE001 - server down: report, do not fail the other numbers
                    results["mysql"] = f"skipped: {type(exc).__name__}: {str(exc)[:300]}"
            else:
                results["mysql"] = "skipped (--skip-mysql or --mysql-days '')"

            if not args.skip_ui and "sqlite" not in instances:
                # The other storages' scratch databases are dropped once their size has run.
                results["ui_graphql"] = "skipped: the UI benchmark reads a size's SQLite instance (--instances sqlite)"
            elif not args.skip_ui:
                ui_days = args.ui_days if args.ui_days in embedded_days else max(embedded_days, default=None)
                home = workdir / f"{args.embedded}_{ui_days}d" if ui_days else workdir / "ui_empty"
                if ui_days is None:
                    home.mkdir()
                    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
                print(f"[scale] UI GraphQL on the {ui_days}-day instance", flush=True)
                history = (f"the {args.embedded} {ui_days}-day backfill's instance (its runs and materializations)"
                           if ui_days else "an empty instance")
                try:
                    results["ui_graphql"] = bench_ui(home, args.ui_requests, history)
                except Exception as exc:  # noqa: BLE001
                    results["ui_graphql"] = f"failed: {type(exc).__name__}: {str(exc)[:500]}"
        finally:
            if args.keep:
                print(f"[scale] kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        results["benchmark_total_s"] = round(time.perf_counter() - started, 1)
        # JSON keys are strings: the sizes' day counts become "1", "7", ... as they will be on disk.
        results.update(json.loads(json.dumps(results, default=str)))
    short = {k: v for k, v in results.items()
             if k in ("embedded_30d_vs_target", "ui_graphql", "year_vs_goal", "instance_storage_comparison")}
    first = instances[0]
    short["scaling"] = results[args.embedded if first == "sqlite" else f"{args.embedded}_instance_{first}"]["scaling"]
    print(json.dumps(short, indent=1, default=str))


if __name__ == "__main__":
    main()
