"""The two GitOps health verdicts agree on sample Migrations: the Argo CD Lua check (lua5.4) and
kstatus, the library Flux waits with (the tests' kstatus tool)."""

from __future__ import annotations

import pytest
from conftest import argocd_health, flux_health


def cond(kind: str, status: str, gen: int | None, reason: str = "R") -> dict:
    c = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": f"{kind} {reason}",
        "lastTransitionTime": "2026-12-03T11:00:00Z",
    }
    if gen is not None:
        c["observedGeneration"] = gen
    return c


def migration(gen: int, status: dict | None) -> dict:
    obj = {
        "apiVersion": "datamigrate.ai/v1alpha1",
        "kind": "Migration",
        "metadata": {"name": "sales", "namespace": "data", "generation": gen},
        "spec": {"target": {"dialect": "duckdb"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


CASES = {
    "succeeded at the current generation": (
        migration(
            2,
            {
                "observedGeneration": 2,
                "phase": "Succeeded",
                "conditions": [
                    cond("Ready", "True", 2, "Succeeded"),
                    cond("Reconciling", "False", 2),
                    cond("Stalled", "False", 2),
                ],
            },
        ),
        "Healthy",
        "Current",
    ),
    "ready for an older generation": (
        migration(
            3,
            {
                "observedGeneration": 2,
                "phase": "Succeeded",
                "conditions": [cond("Ready", "True", 2, "Succeeded")],
            },
        ),
        "Progressing",
        "InProgress",
    ),
    "a step running": (
        migration(
            1,
            {
                "observedGeneration": 1,
                "phase": "Generating",
                "conditions": [
                    cond("Ready", "False", 1, "Generating"),
                    cond("Reconciling", "True", 1, "Generating"),
                ],
            },
        ),
        "Progressing",
        "InProgress",
    ),
    "stalled": (
        migration(
            4,
            {
                "observedGeneration": 4,
                "phase": "Failed",
                "conditions": [
                    cond("Ready", "False", 4, "RetriesExhausted"),
                    cond("Stalled", "True", 4, "RetriesExhausted"),
                ],
            },
        ),
        "Degraded",
        "Failed",
    ),
    # kstatus calls an object with no status at all Current: until the operator's first status
    # write, `wait: true` alone can pass. docs/gitops.md gives the healthCheckExprs that close it.
    "no status yet": (migration(1, None), "Progressing", "Current"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_should_agree_between_argo_cd_and_kstatus(name):
    obj, argo, flux = CASES[name]
    assert argocd_health(obj) == argo
    assert flux_health(obj) == flux
