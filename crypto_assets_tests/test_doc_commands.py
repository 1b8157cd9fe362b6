"""Every command that README.md and docs/operations.md show in a fenced code block is a tested command.

The commands are read from the fenced blocks (```bash, ```sh or a bare ```; one command per logical
line, `\\` continuations joined, `# comments` dropped; ```python blocks are code and run as Python).
REGISTRY says how each one is tested:

- RUN: run through bash as documented, from the repository root, in replay mode with a temporary
  DAGSTER_HOME; exit code 0 and what the doc promises about its output are asserted.
- SERVER: started the same way on a free loopback port, probed over HTTP (200 on a documented URL,
  plus what the doc says the page holds), then stopped (its whole process group; also on failure).
- PYTHON: the block is executed by the venv's Python against the same replay warehouse.
- COVERED: tested by another test file (named), checked here with `make -n` only.
- NOT_RUNNABLE: cannot run here, with the reason (checked with `make -n` where it is a make target).

A command in the docs that REGISTRY does not know fails the suite (a new doc command must be
classified), and so does a REGISTRY entry that no doc shows any more.

The warehouse is the quick replay build of test_notebook_explore.py (coin_universe, prices, bars,
indicators over the demo hours, ~10 s) under the temporary DAGSTER_HOME, with the repository's
dagster.yaml copied there as the Makefile does; `make demo` itself (~60 s) is test_demo.py's.
Placeholders (`<key>`, `<sha256>`, `...`, the fixed ports, `$PWD/.dagster_home`, `.prometheus`) are
replaced by values made here; the text run is the documented line with its blank space collapsed.
`make` runs with `-o .venv/.installed`, so it does not reinstall. As root (CI, containers) JupyterLab
starts only with `--allow-root`, which the Makefile's `notebook` target passes there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
DOCS = ("README.md", "docs/operations.md")
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}

RUN, SERVER, PYTHON, COVERED, NOT_RUNNABLE = "run", "server", "python", "covered elsewhere", "not runnable here"


# ---------------------------------------------------------------------------------------------
# Reading the docs


def _strip_comment(line: str) -> str:
    """`line` without a shell comment (a `#` at the start or after blank space, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def normalise(command: str) -> str:
    return " ".join(command.split())


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block; indented fences (inside list items) included."""
    blocks, lang, body, indent = [], None, [], ""
    for line in text.splitlines():
        if lang is None:
            m = re.match(r"^(\s*)```\s*([\w+-]*)\s*$", line)
            if m:
                indent, lang, body = m[1], m[2].lower(), []
        elif re.match(r"^\s*```\s*$", line):
            blocks.append((lang, "\n".join(body)))
            lang = None
        else:
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
    assert lang is None, "a fenced block is not closed"
    return blocks


def shell_commands(body: str) -> list[str]:
    """One command per logical line: `\\` continuations joined, comments and blank lines dropped."""
    commands, pending = [], ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = _strip_comment(pending + line)
        pending = ""
        if logical.strip():
            commands.append(normalise(logical))
    if pending.strip():
        commands.append(normalise(_strip_comment(pending)))
    return commands


def documented() -> dict[str, set[str]]:
    """Each documented command (normalised) or Python block (stripped) -> the docs showing it."""
    found: dict[str, set[str]] = {}
    for doc in DOCS:
        for lang, body in fenced_blocks((ROOT / doc).read_text()):
            if lang in SHELL_LANGS:
                items = shell_commands(body)
            elif lang == "python":
                items = [body.strip()]
            else:  # json, text: output and payload samples, not commands
                continue
            for item in items:
                found.setdefault(item, set()).add(doc)
    return found


# ---------------------------------------------------------------------------------------------
# Running commands


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def substitute(text: str, pairs: dict[str, str]) -> str:
    for old, new in pairs.items():
        assert old in text, f"placeholder {old!r} is not in {text!r}: update the registry entry"
        text = text.replace(old, new)
    return text


def make_with_installed_as_done(text: str) -> str:
    """`make X` -> `make -o .venv/.installed X` (the venv is installed; make would reinstall it
    whenever pyproject.toml is newer)."""
    return re.sub(r"(^|\s)make(\s)", r"\1make -o .venv/.installed\2", text, count=1)


@dataclasses.dataclass
class Stack:
    home: Path
    tmp: Path
    env: dict[str, str]
    url: str
    key: str = ""
    key_hash: str = ""
    new_key_output: str = ""
    redis_prefix: str = ""
    serving: set[int] = dataclasses.field(default_factory=set)  # process groups of servers now running

    def run(self, text: str, timeout: float = 120, **env) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["bash", "-c", text], cwd=ROOT, env={**self.env, **env}, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout, start_new_session=True)
        finally:  # also after a timeout, which kills only bash itself
            self.sweep()

    def ours(self) -> list[int]:
        """Processes still running with this test's DAGSTER_HOME: only ones this module started."""
        marker = f"DAGSTER_HOME={self.home}\0".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
        return pids

    def sweep(self) -> list[int]:
        """SIGKILL whatever this module started and left running (e.g. runs a daemon launched), except
        the servers that are up now."""
        left = [pid for pid in self.ours() if _pgid(pid) not in self.serving]
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return left

    @contextlib.contextmanager
    def served(self, text: str, stop_signal: int = signal.SIGTERM, grace_s: float = 8, **env):
        log = self.tmp / f"server-{uuid.uuid4().hex[:8]}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", "-c", text], cwd=ROOT, env={**self.env, **env}, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        server = Server(proc, log, text)
        self.serving.add(proc.pid)
        try:
            yield server
        finally:
            self.serving.discard(proc.pid)
            server.stop(stop_signal, grace_s)
            self.sweep()
        end = time.monotonic() + 5
        while self.ours() and time.monotonic() < end:
            time.sleep(0.2)
        assert not self.ours(), f"processes of {text!r} survived SIGKILL"


@dataclasses.dataclass
class Server:
    proc: subprocess.Popen
    log: Path
    text: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, url: str, deadline_s: float = 90, headers: dict | None = None, post: dict | None = None,
                 ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200) -> httpx.Response:
        """GET `url` (POST `post` as JSON) until `ok` (by default HTTP 200); fail with the server's log
        when it exits or the deadline passes."""
        end, last = time.monotonic() + deadline_s, None
        with httpx.Client(timeout=10, trust_env=False) as client:
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    pytest.fail(f"{self.text!r} exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
                with contextlib.suppress(httpx.TransportError, ValueError, KeyError, TypeError):
                    last = (client.post(url, json=post, headers=headers) if post is not None
                            else client.get(url, headers=headers))
                    if ok(last):  # a body not (yet) of the expected shape counts as not ready
                        return last
                time.sleep(0.5)
        pytest.fail(f"{url} not answering as expected within {deadline_s}s (last: "
                    f"{last and (last.status_code, last.text[:300])}); {self.text!r} said:\n{self.output()[-4000:]}")

    def stop(self, first: int, grace_s: float) -> None:
        for sig, wait_s in ((first, grace_s), (signal.SIGKILL, 5)):
            if self.proc.poll() is None or _group_alive(self.proc.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, sig)
                end = time.monotonic() + wait_s
                while time.monotonic() < end and (self.proc.poll() is None or _group_alive(self.proc.pid)):
                    time.sleep(0.2)
        self.proc.wait(timeout=5)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------
# The shared replay warehouse and instance


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from crypto_assets_tests.test_notebook_explore import build_demo_warehouse

    tmp = tmp_path_factory.mktemp("doc_commands")
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")  # the Makefile's $(DAGSTER_HOME)/dagster.yaml rule
    url = f"delta://{home / 'warehouse'}"  # the embedded default under DAGSTER_HOME
    build_demo_warehouse(url)

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CRYPTO_", "REDIS_URL", "JUPYTER_", "DAGSTER_", "PYTEST_"))}
    jupyter_config = tmp / "jupyter_config"
    jupyter_config.mkdir()
    redis_prefix = f"crypto-api-doc-test-{uuid.uuid4().hex[:10]}"
    env.update({
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "CRYPTO_SOURCE_MODE": "replay",
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MPLCONFIGDIR": str(tmp / "mpl"),
        "JUPYTER_CONFIG_DIR": str(jupyter_config),
        "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter_runtime"),
        "JUPYTER_DATA_DIR": str(tmp / "jupyter_data"),
        "BROWSER": "true",  # JupyterLab opens no browser
        "CRYPTO_API_REDIS_PREFIX": redis_prefix,  # its own keys on the shared Redis, deleted afterwards
        "PYTHONUNBUFFERED": "1",
    })
    s = Stack(home=home, tmp=tmp, env=env, url=url, redis_prefix=redis_prefix)

    # The key the API commands use comes from the documented key command itself.
    done = s.run(NEW_KEY, timeout=60)
    s.new_key_output = done.stdout + done.stderr
    assert done.returncode == 0, s.new_key_output
    s.key = re.search(r"^key \(.*\): (\S+)$", done.stdout, re.M)[1]
    s.key_hash = re.search(r"^entry \(.*\): readonly:([0-9a-f]{64})$", done.stdout, re.M)[1]
    try:
        yield s
    finally:
        s.sweep()
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
            keys = list(client.scan_iter(match=f"{redis_prefix}*", count=1000))
            if keys:
                client.delete(*keys)


def _latest_btc_price(url: str) -> float:
    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.factory import open_warehouse

    prices = open_warehouse(url).read(all_tables()["price_observations"])
    btc = prices[prices.symbol == "BTC"].sort_values("observed_at")
    assert len(btc) > 0
    return float(btc.price_usd.iloc[-1])


def _dry_run(target: str, home: Path) -> str:
    done = subprocess.run(["make", "-n", "-o", ".venv/.installed", target], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "DAGSTER_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    return done.stdout


# ---------------------------------------------------------------------------------------------
# How each documented command is tested

NEW_KEY = "crypto-assets api --new-key readonly"
README_API = "CRYPTO_API_KEYS='readonly:<sha256>' REDIS_URL=redis://127.0.0.1:6379/0 crypto-assets api --port 8000"
README_CURL = "curl -H 'X-API-Key: <key>' localhost:8000/api/v1/prices/current/BTC"
LAUNCH = ('CRYPTO_BACKFILL_HOURS_PER_RUN=0 dg launch -m crypto_assets.definitions --assets '
          'price_observations,ohlcv_bars,technical_indicators,ml_features '
          '--partition-range "2026-11-01-00:00...2026-11-02-23:00"')
LOAD_BLOCK = ('from crypto_assets import load\n'
              'df = load("price_observations", start="2021-05-14", end="2021-05-16", symbols=["BTC"])')
OPS_METRICS = "DAGSTER_HOME=$PWD/.dagster_home .venv/bin/crypto-assets metrics --port 9464"
OPS_API = "CRYPTO_API_KEYS=... .venv/bin/crypto-assets api --port 8000"
OPS_PROMETHEUS = ("prometheus --config.file=k8s/monitoring/local/prometheus.yml --storage.tsdb.path=.prometheus "
                  "--web.listen-address=127.0.0.1:9090")
# The metrics check in the prose after the block (run as the exporter's probe).
METRICS_CURL = "curl -s 127.0.0.1:9464/metrics | grep crypto_dataset_data_age"


def check_make_demo(s: Stack, text: str) -> None:
    recipe = _dry_run("demo", s.tmp / "fresh_home")
    assert f"cp dagster.yaml {s.tmp / 'fresh_home'}/dagster.yaml" in recipe, recipe
    assert ".venv/bin/crypto-assets demo" in recipe, recipe


def check_make_test(s: Stack, text: str) -> None:
    assert ".venv/bin/python -m pytest -q -n 2 --dist loadfile" in _dry_run("test", s.home)


def check_make_test_fast(s: Stack, text: str) -> None:
    assert ".venv/bin/python -m pytest -q -n 2 --dist loadfile -m 'not slow'" in _dry_run("test-fast", s.home)


def check_new_key(s: Stack, text: str) -> None:
    # "prints a key once, and the tier:sha256 entry to configure"
    assert text == NEW_KEY
    assert s.key.startswith("ca_") and len(s.key) > 30, s.new_key_output
    assert hashlib.sha256(s.key.encode()).hexdigest() == s.key_hash, s.new_key_output


def check_launch(s: Stack, text: str) -> None:
    import dagster as dg

    done = s.run(text, timeout=240)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    hours = [t.strftime("%Y-%m-%d-%H:%M") for t in pd.date_range("2026-11-01 00:00", "2026-11-02 23:00", freq="h")]
    with dg.DagsterInstance.from_config(str(s.home)) as instance:
        runs = [r for r in instance.get_runs()
                if r.tags.get("dagster/asset_partition_range_start") == hours[0]
                and r.tags.get("dagster/asset_partition_range_end") == hours[-1]]
        assert len(runs) == 1, "the CLI launches one run for the whole range"
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        for asset in ("price_observations", "ohlcv_bars", "technical_indicators", "ml_features"):
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=500).records
            mine = [r for r in records if r.run_id == runs[0].run_id]
            # each partition's materialization carries its own dagster/row_count
            assert sorted(r.partition_key for r in mine) == hours, asset
            assert all("dagster/row_count" in r.asset_materialization.metadata for r in mine), asset


def check_load_block(s: Stack, code: str) -> None:
    epilogue = (
        "\nimport json\nimport pandas\n"
        "t = df['observed_at']\n"
        "print(json.dumps({'dataframe': isinstance(df, pandas.DataFrame), 'rows': len(df),\n"
        "                  'symbols': sorted(set(df['symbol'])), 'tz': str(t.dt.tz),\n"
        "                  'min': t.min().isoformat(), 'max': t.max().isoformat()}))\n")
    done = subprocess.run([str(VENV_BIN / "python"), "-c", code + epilogue], cwd=ROOT, env=s.env,
                          capture_output=True, text=True, timeout=120)
    s.sweep()
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    from crypto_assets.tables import all_tables
    from crypto_assets.warehouse.factory import open_warehouse

    stored = open_warehouse(s.url).read(all_tables()["price_observations"])
    times = pd.to_datetime(stored.observed_at, utc=True)
    expected = stored[(stored.symbol == "BTC") & (times >= pd.Timestamp("2021-05-14", tz="UTC"))
                      & (times < pd.Timestamp("2021-05-16", tz="UTC"))]
    assert got["dataframe"] and got["tz"] == "UTC", got
    assert got["rows"] == len(expected) > 0 and got["symbols"] == ["BTC"], got
    assert "2021-05-14" <= got["min"] <= got["max"] < "2021-05-16", got


def check_readme_api(s: Stack, text: str) -> None:
    port = free_port()
    served = substitute(text, {"<sha256>": s.key_hash, "--port 8000": f"--port {port}"})
    curl = substitute(README_CURL, {"<key>": s.key, "localhost:8000": f"localhost:{port}"})
    with s.served(served) as server:
        server.wait_for(f"http://127.0.0.1:{port}/health")
        done = s.run(curl, timeout=30)  # the README's next line, as documented
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body["symbol"] == "BTC" and body["observation"]["price_usd"] == pytest.approx(_latest_btc_price(s.url))
        # with REDIS_URL the API is ready (not degraded) and the repeated request is a cache hit
        ready = server.wait_for(f"http://127.0.0.1:{port}/ready").json()
        assert ready["status"] == "ready" and ready["redis"]["state"] == "ok", ready
        again = httpx.get(f"http://127.0.0.1:{port}/api/v1/prices/current/BTC", headers={"X-API-Key": s.key},
                          trust_env=False, timeout=10)
        assert again.status_code == 200 and again.headers.get("X-Cache") == "hit", dict(again.headers)
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/prices/current/BTC", trust_env=False,
                         timeout=10).status_code == 401  # keys are required


def check_make_dev(s: Stack, text: str) -> None:
    port = free_port()
    # Ctrl-C's signal; `dg dev` here keeps running long after it (see the registry entry), so SIGKILL follows soon.
    with s.served(make_with_installed_as_done(text), stop_signal=signal.SIGINT, grace_s=3, PORT=str(port)) as server:
        info = server.wait_for(f"http://127.0.0.1:{port}/server_info").json()
        import dagster

        assert info["dagster_version"] == dagster.__version__, info
        query = ("{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                 "locationOrLoadError { __typename } } } } }")
        loaded = server.wait_for(
            f"http://127.0.0.1:{port}/graphql", post={"query": query}, deadline_s=90,
            ok=lambda r: r.status_code == 200 and any(
                e["loadStatus"] == "LOADED" for e in r.json()["data"]["workspaceOrError"]["locationEntries"]))
        entries = loaded.json()["data"]["workspaceOrError"]["locationEntries"]
        assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
            ("crypto_assets", "RepositoryLocation")], entries


def check_make_notebook(s: Stack, text: str) -> None:
    port = free_port()
    with s.served(make_with_installed_as_done(text), NOTEBOOK_PORT=str(port)) as server:
        server.wait_for(f"http://127.0.0.1:{port}/api")
        token = None
        end = time.monotonic() + 30
        while token is None and time.monotonic() < end:
            m = re.search(rf"http://(?:127\.0\.0\.1|localhost):{port}/lab\?token=(\w+)", server.output())
            token = m and m[1]
            time.sleep(0.2)
        assert token, server.output()[-3000:]
        # JupyterLab serves the example notebook from its folder, and the Lab page for it
        nb = server.wait_for(f"http://127.0.0.1:{port}/api/contents/explore_features.ipynb?content=0&token={token}")
        assert nb.json()["type"] == "notebook", nb.text[:300]
        server.wait_for(f"http://127.0.0.1:{port}/lab/tree/explore_features.ipynb?token={token}")


def check_notebook_run(s: Stack, text: str) -> None:
    import nbformat

    done = s.run(make_with_installed_as_done(text), timeout=240)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    executed = nbformat.read(s.home / "explore_features.executed.ipynb", as_version=4)
    outputs = [out for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert all(cell.execution_count for cell in executed.cells if cell.cell_type == "code")  # top to bottom
    text_out = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert f"warehouse: {s.url}\n" in text_out, text_out  # the embedded warehouse under DAGSTER_HOME
    for table in ("price_observations", "ohlcv_bars", "technical_indicators"):
        assert re.search(rf"^{table}: [1-9]\d* rows", text_out, re.M), text_out
    assert any(out.output_type == "display_data" and "image/png" in out.data for out in outputs)


def check_ops_metrics(s: Stack, text: str) -> None:
    port = free_port()
    served = substitute(text, {"$PWD/.dagster_home": str(s.home), "--port 9464": f"--port {port}"})
    with s.served(served) as server:
        server.wait_for(f"http://127.0.0.1:{port}/health")
        done = s.run(substitute(METRICS_CURL, {"127.0.0.1:9464": f"127.0.0.1:{port}"}), timeout=60)
        assert done.returncode == 0, done.stderr
        server.wait_for(f"http://127.0.0.1:{port}/ready", deadline_s=30)  # that scrape's collection read every part
        ages = dict(re.findall(r'^crypto_dataset_data_age_seconds\{dataset="(\w+)"\} (\S+)$', done.stdout, re.M))
        # the demo window's newest price is about the age of its recording (since May 2021)
        assert float(ages["price_observations"]) > (pd.Timestamp.now(tz="UTC") - pd.Timestamp(
            "2021-05-16", tz="UTC")).total_seconds(), done.stdout


def check_ops_api(s: Stack, text: str) -> None:
    port = free_port()
    served = substitute(text, {"CRYPTO_API_KEYS=...": f"CRYPTO_API_KEYS='readonly:{s.key_hash}'",
                               "--port 8000": f"--port {port}"})
    with s.served(served) as server:
        server.wait_for(f"http://127.0.0.1:{port}/health")
        ready = server.wait_for(f"http://127.0.0.1:{port}/ready").json()
        assert ready["status"] == "degraded", ready  # no REDIS_URL: it serves, and says so
        price = httpx.get(f"http://127.0.0.1:{port}/api/v1/prices/current/BTC", headers={"X-API-Key": s.key},
                          trust_env=False, timeout=10)
        assert price.status_code == 200 and price.json()["symbol"] == "BTC", price.text[:300]
        # the scrape target of the local Prometheus config: its own /metrics, no key
        metrics = server.wait_for(f"http://127.0.0.1:{port}/metrics").text
        assert re.search(r'^crypto_api_requests_total\{[^}]*route="/api/v1/prices/current/\{symbol\}"', metrics,
                         re.M), metrics[:2000]


def check_ops_prometheus(s: Stack, text: str) -> None:
    port = free_port()
    served = substitute(text, {"--storage.tsdb.path=.prometheus": f"--storage.tsdb.path={s.tmp / 'prometheus'}",
                               "127.0.0.1:9090": f"127.0.0.1:{port}"})
    with s.served(served) as server:
        server.wait_for(f"http://127.0.0.1:{port}/-/ready", deadline_s=60)
        rules = server.wait_for(f"http://127.0.0.1:{port}/api/v1/rules").json()
        names = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
        # the alerts the doc's table lists are loaded
        assert {"CryptoDatasetFreshnessWarn", "CryptoDatasetFreshnessFail", "CryptoHealthWarning",
                "CryptoHealthCritical", "CryptoSourceErrorRatioHigh", "CryptoSourceRequestBudgetLow",
                "CryptoApiLatencyP99High", "CryptoMetricsExporterFailing"} <= names, names
        # the two scrape targets of the local config: the exporter and the API on their documented ports
        documented = {"http://127.0.0.1:9464/metrics", "http://127.0.0.1:8000/metrics"}
        server.wait_for(f"http://127.0.0.1:{port}/api/v1/targets", deadline_s=30, ok=lambda r: r.status_code == 200
                        and {t["scrapeUrl"] for t in r.json()["data"]["activeTargets"]} == documented)


@dataclasses.dataclass(frozen=True)
class Entry:
    how: str
    what: str  # what is asserted, or why it cannot run here
    check: Callable[[Stack, str], None] | None = None
    run_by: str | None = None  # another entry whose check runs this command as documented


REGISTRY: dict[str, Entry] = {
    "make demo": Entry(
        COVERED, "test_demo.py runs build_demo, the steps `crypto-assets demo` runs (~60 s here); this file builds "
                 "a smaller replay warehouse instead and checks with `make -n` that the target copies dagster.yaml "
                 "into DAGSTER_HOME and runs `.venv/bin/crypto-assets demo`", check_make_demo),
    "make test": Entry(
        NOT_RUNNABLE, "runs the whole suite, this file included: it would recurse (and takes far longer than this "
                      "file's budget); `make -n` checks it runs `.venv/bin/python -m pytest -q -n 2 --dist loadfile`",
        check_make_test),
    "make test-fast": Entry(
        NOT_RUNNABLE, "runs the suite without its `slow` tests, this file included: it would recurse; `make -n` "
                      "checks it runs `.venv/bin/python -m pytest -q -n 2 --dist loadfile -m 'not slow'`",
        check_make_test_fast),
    LAUNCH: Entry(
        RUN, "exit 0; one SUCCESS run for the whole range; each of the 4 assets has one materialization per hour "
             "of the 48, each with dagster/row_count (replay has no recording then: 0 rows)", check_launch),
    LOAD_BLOCK: Entry(
        PYTHON, "a pandas DataFrame of exactly the warehouse's BTC rows of 14-15 May 2021, UTC-aware",
        check_load_block),
    NEW_KEY: Entry(
        RUN, "exit 0; prints a key and the `readonly:<sha256>` entry whose hash is the key's SHA-256", check_new_key),
    README_API: Entry(
        SERVER, "serves on a free port; the README's curl line gets 200 with BTC's latest stored price; /ready is "
                "`ready` with Redis ok; the repeated request is a Redis cache hit; no key -> 401", check_readme_api),
    README_CURL: Entry(RUN, "exit 0 and the JSON current price of BTC (run by the API entry above)",
                       run_by=README_API),
    "make notebook": Entry(
        SERVER, "JupyterLab on NOTEBOOK_PORT (free port): /api 200, the notebook served (contents API and Lab page, "
                "with the token it prints)", check_make_notebook),
    "make notebook-run": Entry(
        RUN, "exit 0; $DAGSTER_HOME/explore_features.executed.ipynb with every cell run, no error, rows of the three "
             "tables and one PNG figure", check_notebook_run),
    "make dev": Entry(
        SERVER, "the Dagster UI on PORT (free port): /server_info 200, the crypto_assets code location LOADED; stopped "
                "with SIGINT like Ctrl-C, then SIGKILL after 3 s (its processes outlive a Ctrl-C by over a minute "
                "here), with the runs its daemon launched", check_make_dev),
    OPS_METRICS: Entry(
        SERVER, "serves on a free port for the temp DAGSTER_HOME: /health and /ready 200; the prose's `curl ... | grep "
                "crypto_dataset_data_age` exits 0 with the price dataset's data age", check_ops_metrics),
    OPS_API: Entry(
        SERVER, "with `...` = a readonly key entry, serves on a free port: /ready 200 `degraded` (no Redis), a keyed "
                "price request 200, and its own /metrics counts it by route template", check_ops_api),
    OPS_PROMETHEUS: Entry(
        SERVER, "on a free loopback port with its storage in a temp folder: /-/ready 200, the 8 alert rules the doc "
                "lists loaded, and the two scrape targets 127.0.0.1:9464 and :8000", check_ops_prometheus),
}


# ---------------------------------------------------------------------------------------------
# Tests


def test_every_documented_command_is_in_the_registry():
    unknown = {cmd: sorted(docs) for cmd, docs in documented().items() if cmd not in REGISTRY}
    assert not unknown, f"documented commands with no test: classify them in REGISTRY: {unknown}"


def test_every_registry_entry_is_still_documented():
    shown = documented()
    gone = [cmd for cmd in REGISTRY if cmd not in shown]
    assert not gone, f"REGISTRY entries that no doc shows any more: {gone}"
    for cmd, entry in REGISTRY.items():
        assert entry.what.strip() and entry.how in (RUN, SERVER, PYTHON, COVERED, NOT_RUNNABLE), cmd
        assert (entry.check is None) != (entry.run_by is None), cmd
        if entry.run_by:
            assert REGISTRY[entry.run_by].check is not None, cmd


def test_the_extractor_reads_continuations_comments_and_fences():
    body = "make demo   # a comment\nA='x # y' cmd --a \\\n  --b \"c\"   # note\n\n# whole-line comment\n"
    assert shell_commands(body) == ["make demo", "A='x # y' cmd --a --b \"c\""]
    text = "x\n  ```\n  make dev\n  ```\n```json\n{}\n```\n```python\nimport os\n```\n"
    assert fenced_blocks(text) == [("", "make dev"), ("json", "{}"), ("python", "import os")]


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c, e in REGISTRY.items() if e.check is not None],
                         ids=lambda c: re.sub(r"\W+", "-", c[:50]).strip("-"))
def test_documented_command(stack, command):
    REGISTRY[command].check(stack, command)
