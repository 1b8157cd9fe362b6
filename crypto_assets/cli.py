"""`crypto-assets` command line: demo, health, warehouse schema, MySQL instance upkeep, API, metrics."""

from __future__ import annotations

import argparse
import os
import sys


def _shown_url(url: str) -> str:
    from crypto_assets.warehouse.store import redact_url

    try:
        return redact_url(url)
    except Exception:  # does not parse: show none of it (it may hold a password)
        return "<the URL given, which is not a valid SQLAlchemy URL>"


def _reason(exc: BaseException, url: str) -> str:
    """One line saying why, without the password (drivers' texts sometimes quote the URL)."""
    import sqlalchemy as sa

    cause = getattr(exc, "orig", None) or exc
    if isinstance(exc, sa.exc.ArgumentError) and not isinstance(exc, sa.exc.NoSuchModuleError):
        return "not a valid SQLAlchemy URL (dialect+driver://user:password@host:port/database)"
    text = " ".join(str(cause).split()) or type(cause).__name__
    text = text.replace(url, _shown_url(url))
    try:
        password = sa.engine.make_url(url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return f"{type(cause).__name__}: {text[:300]}"


def _warehouse_command(args) -> int:
    import sqlalchemy as sa

    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse import check
    from crypto_assets.warehouse.factory import open_warehouse
    from crypto_assets.warehouse.store import (
        WAREHOUSE_URL_ENV,
        WarehouseDamaged,
        default_warehouse_url,
        embedded_url,
    )

    if args.source:
        if args.action != "migrate":
            print("crypto-assets warehouse: --from goes with migrate", file=sys.stderr)
            return 2
        return _copy_command(args.source, args.url or os.environ.get(WAREHOUSE_URL_ENV) or embedded_url())
    if (args.table is not None) != (args.action == "repair") or (args.version is not None and args.action != "repair"):
        print("crypto-assets warehouse: TABLE and --version go with repair (repair needs TABLE)", file=sys.stderr)
        return 2
    if args.deep and args.action not in ("check", "repair"):
        print("crypto-assets warehouse: --deep goes with check or repair", file=sys.stderr)
        return 2
    url = args.url or default_warehouse_url()
    if args.action == "optimize":
        return _optimize_command(url)
    bad = 0
    try:
        if args.action == "check":
            return check.main_check(url, deep=args.deep)
        warehouse = open_warehouse(url)
        if args.action == "repair":
            tables = all_tables()
            if args.table not in tables:
                print(f"crypto-assets warehouse repair: no table {args.table!r}; declared: {', '.join(tables)}",
                      file=sys.stderr)
                return 2
            return check.repair(warehouse, tables[args.table], version=args.version, deep=args.deep)
        for spec in all_tables().values():
            try:
                for line in warehouse.migrate(spec):
                    print(line)
                diff = warehouse.schema_diff(spec)
            except WarehouseDamaged as exc:
                print(f"table {spec.name}: DAMAGED, not migrated: {exc.problem}")
                bad += 1
                continue
            if not diff.ok:
                print(diff.describe())
            bad += not diff.ok
    except (sa.exc.SQLAlchemyError, OSError, ImportError, ValueError) as exc:
        print(f"crypto-assets warehouse {args.action}: cannot use the warehouse at {_shown_url(url)}: "
              f"{_reason(exc, url)}", file=sys.stderr)
        return 2
    return 1 if bad else 0


def _optimize_command(url: str) -> int:
    """`warehouse optimize`: compact small files, checkpoint the log, delete unreferenced files (Delta)."""
    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.factory import open_warehouse
    from crypto_assets.warehouse.store import WarehouseDamaged

    warehouse = open_warehouse(url)
    if warehouse.dialect != "delta":
        print(f"{_shown_url(url)}: a SQL warehouse needs no compaction; nothing done")
        return 0
    damaged = 0
    for spec in all_tables().values():
        try:
            r = warehouse.optimize(spec)
        except WarehouseDamaged as exc:
            print(f"{spec.name}: DAMAGED, not optimized: {exc.problem} (`crypto-assets warehouse repair {spec.name}`)")
            damaged += 1
            continue
        print(f"{spec.name}: " + (r["skipped"] if "skipped" in r else
                                  f"{r['files_before']} -> {r['files_after']} files, {r['files_deleted']} old files deleted"))
    return 1 if damaged else 0


def _copy_command(source_url: str, target_url: str) -> int:
    """`warehouse migrate --from SOURCE`: copy every table into the target (default: the embedded one)."""
    import sqlalchemy as sa

    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.factory import open_warehouse
    from crypto_assets.warehouse.migrate import copy_warehouse
    from crypto_assets.warehouse.store import SchemaMismatchError

    print(f"copying {_shown_url(source_url)} -> {_shown_url(target_url)}")
    try:
        results = copy_warehouse(open_warehouse(source_url), open_warehouse(target_url), all_tables())
    except (sa.exc.SQLAlchemyError, OSError, ImportError, ValueError, RuntimeError, SchemaMismatchError) as exc:
        url = source_url if source_url in str(exc) else target_url
        print(f"crypto-assets warehouse migrate: {_reason(exc, url)}", file=sys.stderr)
        return 2
    print(f"done: {sum(r['rows_written'] for r in results)} rows in {len(results)} tables; "
          "the source was not changed")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="crypto-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="materialize the whole graph offline (replay) into the embedded warehouse")
    wh = sub.add_parser("warehouse", help="warehouse schema and integrity: check it (--deep: read every data file), "
                                          "migrate it (additive), copy another warehouse into it, compact it, or "
                                          "repair a damaged table (docs/storage.md)")
    wh.add_argument("action", choices=["check", "migrate", "optimize", "repair"])
    wh.add_argument("table", nargs="?", help="repair: the damaged table")
    wh.add_argument("--deep", action="store_true",
                    help="check/repair: also read every data file whole (slower; finds files damaged inside)")
    wh.add_argument("--version", type=int, metavar="N",
                    help="repair: afterwards restore the table's version N (Delta history; a new commit)")
    wh.add_argument("--url", help="warehouse URL: delta:///path, delta+s3://bucket/prefix, mysql+pymysql://... "
                                  "(default CRYPTO_WAREHOUSE_URL or the embedded Delta Lake warehouse)")
    wh.add_argument("--from", dest="source", metavar="URL",
                    help="migrate: copy every table of this warehouse (e.g. sqlite:///old/warehouse.sqlite) into "
                         "--url, month by month; lossless, repeatable, the source is only read")
    sub.add_parser("health", help="health score table per dataset; exit code 1 below 60 (see --help)")
    inst = sub.add_parser("instance", help="Dagster instance upkeep")
    inst.add_argument("action", choices=["widen-mysql"])
    sub.add_parser("api", add_help=False,  # its own parser (crypto_assets/api/server.py) answers --help
                   help="serve the data API (needs the `api` extra); --new-key TIER mints a key")
    sub.add_parser("metrics", add_help=False,  # its own parser answers --help
                   help="serve Prometheus metrics of the instance and warehouse (--port; needs the `api` extra)")
    args, rest = parser.parse_known_args(argv)

    if args.command == "demo":
        from crypto_assets.demo import run_demo

        return run_demo()
    if args.command == "warehouse":
        return _warehouse_command(args)
    if args.command == "health":
        from crypto_assets.health import main as health_main

        return health_main(rest)
    if args.command == "instance":
        from crypto_assets.deploy.mysql_instance import main as widen_main

        return widen_main(rest)
    if args.command == "api":
        try:
            from crypto_assets.api.server import serve
        except ImportError as exc:  # the API is an optional extra
            print(f"crypto-assets api needs the api extra (pip install 'crypto-assets[api]'): {exc}", file=sys.stderr)
            return 2
        return serve(rest)
    if args.command == "metrics":
        try:
            from crypto_assets.metrics.server import main as metrics_main
        except ImportError as exc:  # prometheus-client comes with the api extra
            print(f"crypto-assets metrics needs the api extra (pip install 'crypto-assets[api]'): {exc}", file=sys.stderr)
            return 2
        return metrics_main(rest)
    return 2


if __name__ == "__main__":
    sys.exit(main())
