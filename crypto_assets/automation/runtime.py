"""How runs execute, chosen for what the work costs.

- One process per run (`in_process_executor`): the steps of a run execute one after the other in
  the run's own process. Dagster's default multiprocess executor starts a Python process per step
  and imports the code location again in each (~2-3 s of CPU per step), which cost ~20x the work
  of an hourly partition. Per-source pools (`pool=`) are still honoured in-process. Parallelism
  comes from concurrent runs (`concurrency.runs` in dagster.yaml) and, on Kubernetes, run pods.
- Dagster flags APIs it may still change (BetaWarning, PreviewWarning) every time they are used:
  once per asset at every import, in every run and sensor process. The project pins Dagster
  exactly and tests these APIs, so the flags are noise that drowns real warnings; deprecations
  stay visible.
"""

from __future__ import annotations

import warnings

import dagster as dg

EXECUTOR = dg.in_process_executor


def quiet_dagster_stability_warnings() -> None:
    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
