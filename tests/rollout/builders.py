"""Fleets built in code for the pure engine: ``tests.fleetkit`` dicts, validated in memory.

The default scenario: pioneers ``p1`` and early ``e1`` have promoted ``V``; ``t1``
(standard) is pinned to ``A`` with passing BETS evidence for ``V``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from modelpin.model.compatibility import Compatibility
from modelpin.model.evidence import Evidence
from modelpin.model.fleet import Fleet
from modelpin.model.model_version import ModelVersion
from modelpin.model.policies import ArtifactPolicy, RolloutPolicy
from modelpin.model.tenant import Tenant
from tests.fleetkit import FleetSpec, evidence, promoted, tenant

A = "gpt-5-2026-01-10"
V = "gpt-5-2026-03-14"
JUDGE = "claude-4-20260201"
NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
BASE_TIME = NOW - timedelta(hours=2)


def ago(hours: float) -> str:
    return iso(NOW - timedelta(hours=hours))


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def shadow(since: str, **extra: Any) -> dict[str, Any]:
    return {"candidate": V, "stage": "shadow", "since": since, **extra}


def canary(percent: float, since: str, **extra: Any) -> dict[str, Any]:
    return {"candidate": V, "stage": "canary", "percent": percent, "since": since, **extra}


def paused(percent: float, since: str) -> dict[str, Any]:
    return {"candidate": V, "stage": "paused", "percent": percent, "since": since,
            "reason": "latency spike"}


def rolled_back(since: str) -> dict[str, Any]:
    return {"candidate": V, "stage": "rolled-back", "since": since, "reason": "regression"}


def scenario(rollout: dict[str, Any] | None = None, *, pin: str = A, group: str = "standard",
             **tenant_extra: Any) -> FleetSpec:
    spec = FleetSpec(tenants={})
    spec.add(promoted(tenant("p1", group="pioneers", pin=V)))
    spec.add(promoted(tenant("e1", group="early", pin=V)))
    spec.add(tenant("t1", group=group, pin=pin, rollout=copy.deepcopy(rollout), **tenant_extra))
    spec.evidence.append(evidence("t1", run_at=ago(24)))
    return spec


def build_fleet(spec: FleetSpec) -> Fleet:
    policy = RolloutPolicy.model_validate(
        {"groups": spec.groups, "evidence_max_age": "30d", **spec.policy_extra}
    )
    models = {mid: ModelVersion.model_validate({"id": mid, **m}) for mid, m in spec.models.items()}
    tenants = {tid: Tenant.model_validate(doc) for tid, doc in spec.tenants.items()}
    found = {}
    for doc in spec.evidence:
        ev = Evidence.model_validate(doc)
        found[(ev.tenant, ev.alias, ev.candidate)] = ev
    return Fleet(
        policy=policy,
        artifact=ArtifactPolicy(),
        compatibility=Compatibility.model_validate(spec.compatibility),
        models=models,
        tenants=tenants,
        evidence=found,
    )
