"""The validated, cross-referenced fleet: what the loader hands to the rollout engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from modelpin.model.bets import Suite, SuiteSource
from modelpin.model.compatibility import Compatibility
from modelpin.model.evidence import Authenticity, Evidence, EvidenceSource
from modelpin.model.model_version import ModelVersion
from modelpin.model.policies import ArtifactPolicy, RolloutPolicy
from modelpin.model.providers import ProvidersPolicy
from modelpin.model.tenant import Tenant
from modelpin.model.trust import ApprovalVerdict, Approvers, Evaluators

EvidenceKey = tuple[str, str, str]
"""(tenant, alias, candidate): where an evidence file lives."""

ApprovalKey = tuple[str, str, int]
"""(tenant, alias, index in the rollout's approvals list)."""


@dataclass(frozen=True)
class Fleet:
    """Every config file of one tree, validated and with every reference resolved.

    ``paths`` maps a logical name (``tenant:<id>``, ``model:<id>``, ``evidence:<t>/<a>/<c>``,
    ``policy:rollout-groups``, ``policy:artifact``, ``compatibility``) to its repo path,
    so later layers can point diagnostics at files without reading them.
    """

    policy: RolloutPolicy
    artifact: ArtifactPolicy
    compatibility: Compatibility
    models: Mapping[str, ModelVersion]
    tenants: Mapping[str, Tenant]
    evidence: Mapping[EvidenceKey, Evidence] = field(default_factory=dict)
    paths: Mapping[str, str] = field(default_factory=dict)
    suites: Mapping[str, Suite] = field(default_factory=dict)
    suite_sources: Mapping[str, SuiteSource] = field(default_factory=dict)
    """Per suite id, the digests of its files (``bets/<suite>/``): what evidence binds to.
    A rule: judged by the base (``transitions.under_base_rules``)."""
    providers: ProvidersPolicy | None = None
    evaluators: Evaluators | None = None
    """``policies/evaluators.yaml`` (None: the file is absent: no evaluator keys)."""
    approvers: Approvers | None = None
    """``policies/approvers.yaml`` (None: absent: no approver keys)."""
    evidence_sources: Mapping[EvidenceKey, EvidenceSource] = field(default_factory=dict)
    evidence_trust: Mapping[EvidenceKey, Authenticity] = field(default_factory=dict)
    """Whether each piece of evidence counts, judged by a trust list: the fleet's own
    after loading; the BASE's after ``attestation.authenticate_fleet(head, base)``."""
    approval_verdicts: Mapping[ApprovalKey, ApprovalVerdict] = field(default_factory=dict)
    """Who signed each recorded approval, judged like ``evidence_trust``."""

    def tenant_path(self, tenant_id: str) -> str:
        return self.paths.get(f"tenant:{tenant_id}", f"tenants/{tenant_id}.yaml")
