"""Start the real Dagster stack (`dg dev`: webserver, daemon, code server) as `make dev` does,
on a temporary DAGSTER_HOME with the repository's dagster.yaml, in replay mode. Used by the
end-to-end test and the live-operation benchmark; it stops every process it starts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from crypto_assets_tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# `dg dev` started from a non-interactive parent inherits SIGINT/SIGTERM as ignored: reset them so
# the stack can be shut down gracefully.
_RESET_SIGNALS = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveStack:
    def __init__(self, home: Path, port: int, process: subprocess.Popen, log_path: Path):
        self.home, self.port, self.process, self.log_path = home, port, process, log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stopped(self) -> str | None:
        """None while `dg dev` runs, else its exit code and the tail of its log."""
        if self.process.poll() is None:
            return None
        return f"dg dev exited with {self.process.returncode}:\n{self.log()[-3000:]}"

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 120) -> None:
        wait_until(self.answers, timeout, f"the Dagster webserver at {self.url}", alive=self.stopped)


@contextmanager
def live_stack(tmp: Path, env: dict[str, str] | None = None, port: int | None = None):
    """`dg dev -w workspace.yaml` from a fresh DAGSTER_HOME under `tmp`, replay mode, a fresh warehouse."""
    home = tmp / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = port or free_port()
    full_env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRYPTO_SOURCE_MODE": "replay",
        "CRYPTO_WAREHOUSE_URL": f"delta://{tmp / 'warehouse'}",
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        **(env or {}),
    }
    log_path = tmp / "dg_dev.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _RESET_SIGNALS, str(BIN / "dg"), "dev", "-w", str(REPO / "workspace.yaml"),
             "-p", str(port), "-h", "127.0.0.1"],
            cwd=home, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    stack = LiveStack(home, port, process, log_path)
    try:
        stack.wait_ready()
        yield stack
    finally:
        stop(process)


def stop(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGINT (dg dev shuts its services down), then SIGKILL the whole process group if needed."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)
