"""The Dagster UI's asset-graph page, timed: dagster-webserver started on a backfill size's
instance (SQLite storage, the repo's dagster.yaml and workspace.yaml) and the page's own GraphQL
queries (taken from the installed webserver bundle, so they match this Dagster version) sent in
sequence over HTTP for all asset keys, warmed once."""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.scale.data import ROOT

TARGET_UI_S = 1.0


def ui_queries() -> tuple[dict, str]:
    """The asset graph page's own GraphQL documents, taken from the installed dagster-webserver
    bundle (so they match this Dagster version), each with its fragments."""
    import dagster_webserver

    chunks = Path(dagster_webserver.__file__).parent / "webapp" / "build" / "_next" / "static" / "chunks"
    defs: dict[str, str] = {}
    for f in chunks.rglob("*.js"):
        s = f.read_text(errors="ignore")
        if "LocationWorkspaceAssetsQuery" not in s and "AssetGraphLiveQuery" not in s and "fragment " not in s:
            continue
        for m in re.finditer(r"(?:query|fragment) (\w+)(?: on \w+)?[^{\"]*\{", s):
            if m.group(1) in defs:
                continue
            i, depth = m.end() - 1, 0
            for j in range(i, min(len(s), i + 100_000)):
                depth += {"{": 1, "}": -1}.get(s[j], 0)
                if depth == 0:
                    break
            defs[m.group(1)] = s[m.start():j + 1].replace("\\n", "\n")

    def document(name: str) -> str:
        out, todo, seen = [], [name], set()
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            out.append(defs[n])
            todo += re.findall(r"\.\.\.(\w+)", defs[n])
        return "\n".join(out)

    try:
        return {q: document(q) for q in ("LocationWorkspaceAssetsQuery", "AssetGraphLiveQuery",
                                         "AssetsFreshnessInfoQuery")}, "extracted from the dagster-webserver bundle"
    except KeyError:
        minimal = ("query AssetGraphMinimal { assetNodes { id assetKey { path } groupName description "
                   "partitionDefinition { description } dependencyKeys { path } dependedByKeys { path } } }")
        return {"AssetGraphMinimal": minimal}, "bundle queries not found: minimal assetNodes query"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_ui(home: Path, requests_n: int, history: str) -> dict:
    import httpx

    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("CRYPTO_RESOURCES_DIR", None)
    webserver = Path(sys.executable).parent / "dagster-webserver"
    log = open(home / "webserver.log", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(webserver), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    result: dict = {"instance": history}
    try:
        client = httpx.Client(base_url=base, timeout=60)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"webserver exited: {(home / 'webserver.log').read_text()[-2000:]}")
            try:
                if client.get("/server_info").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > 120:
                raise RuntimeError("webserver did not answer /server_info in 120 s")
            time.sleep(0.2)
        result["webserver_ready_s"] = round(time.perf_counter() - t0, 2)
        queries, source = ui_queries()
        result["queries_source"] = source
        location = "crypto_assets"

        def post(name: str, doc: str, variables: dict) -> tuple[float, dict]:
            t = time.perf_counter()
            r = client.post("/graphql", json={"query": doc, "variables": variables, "operationName": name})
            dt = time.perf_counter() - t
            r.raise_for_status()
            body = r.json()
            if body.get("errors"):
                raise RuntimeError(f"{name}: {body['errors'][:2]}")
            return dt, body["data"]

        # Wait for the code location to be loaded, then take the asset keys from the answer.
        while True:
            if "LocationWorkspaceAssetsQuery" not in queries:
                _, data = post("AssetGraphMinimal", queries["AssetGraphMinimal"], {})
                keys = [n["assetKey"] for n in data["assetNodes"]]
                break
            _, data = post("LocationWorkspaceAssetsQuery", queries["LocationWorkspaceAssetsQuery"], {"name": location})
            entry = data["workspaceLocationEntryOrError"]
            loc = entry.get("locationOrLoadError") or {}
            if entry.get("loadStatus") == "LOADED" and loc.get("repositories"):
                keys = [{"path": n["assetKey"]["path"]} for r in loc["repositories"] for n in r["assetNodes"]]
                break
            if loc.get("message"):
                raise RuntimeError(f"code location failed to load: {loc['message'][:500]}")
            if time.perf_counter() - t0 > 180:
                raise RuntimeError("code location not loaded in 180 s")
            time.sleep(0.3)
        result["location_loaded_s"] = round(time.perf_counter() - t0, 2)
        result["asset_nodes"] = len(keys)
        plan = {name: ({"name": location} if name == "LocationWorkspaceAssetsQuery"
                       else {} if name == "AssetGraphMinimal" else {"assetKeys": keys}) for name in queries}
        for name, variables in plan.items():  # warm once
            post(name, queries[name], variables)
        timings: dict[str, list[float]] = {name: [] for name in plan}
        page: list[float] = []
        for _ in range(requests_n):
            total = 0.0
            for name, variables in plan.items():
                dt, _ = post(name, queries[name], variables)
                timings[name].append(dt)
                total += dt
            page.append(total)

        def stats(xs: list[float]) -> dict:
            xs = sorted(xs)
            return {"p50_s": round(statistics.median(xs), 4),
                    "p95_s": round(xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))], 4),
                    "max_s": round(xs[-1], 4)}

        result["per_query"] = {name: stats(v) for name, v in timings.items()}
        result["asset_graph_page_all_queries"] = stats(page)
        result["requests"] = requests_n
        result["target_s"] = TARGET_UI_S
        result["meets_target"] = result["asset_graph_page_all_queries"]["p95_s"] <= TARGET_UI_S
        result["method"] = ("dagster-webserver started on the benchmark's instance (SQLite storage, repo dagster.yaml, "
                            "workspace.yaml); the asset graph page's queries sent in sequence over HTTP for all asset "
                            "keys (LocationWorkspaceAssetsQuery = graph definitions, AssetGraphLiveQuery = "
                            "materializations/partition stats/checks, AssetsFreshnessInfoQuery), warmed once; "
                            "'asset_graph_page_all_queries' = the sum of the three per repetition")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the webserver and its code server (same session)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        log.close()
    result["stopped_cleanly"] = proc.returncode is not None
    return result
