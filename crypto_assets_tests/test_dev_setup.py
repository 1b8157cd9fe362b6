"""What a new user meets first: `make dev` on the port they ask for, no pop-up in the UI."""

from __future__ import annotations

import pytest

import shutil
import subprocess
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]


def _dev_command(*args: str) -> str:
    # -n prints the recipe without running it; -o: take the install as done.
    out = subprocess.run(["make", "-n", "-o", ".venv/.installed", "dev", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return next(line for line in out.splitlines() if "dg dev -w" in line)


def test_make_dev_takes_the_port_as_a_variable():
    assert _dev_command().endswith("--port 3000")
    assert _dev_command("PORT=3300").endswith("--port 3300")


@pytest.mark.slow
def test_the_shipped_instance_turns_the_community_popup_off(tmp_path, monkeypatch):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert instance.nux_enabled is False
