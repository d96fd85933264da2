"""Where each config file lives, and which model reads it."""

from __future__ import annotations

from pydantic import BaseModel

from modelpin.model.compatibility import Compatibility
from modelpin.model.evidence import Evidence, EvidenceEnvelope
from modelpin.model.model_version import ModelVersion
from modelpin.model.policies import ArtifactPolicy, RolloutPolicy
from modelpin.model.signals import SignalsPolicy
from modelpin.model.tenant import Tenant
from modelpin.model.trust import Approvers, Evaluators

ROLLOUT_GROUPS = "policies/rollout-groups.yaml"
ARTIFACT = "policies/artifact.yaml"
SIGNALS = "policies/signals.yaml"
EVALUATORS = "policies/evaluators.yaml"
APPROVERS = "policies/approvers.yaml"
SIGNED_EVIDENCE_SUFFIX = ".dsse.json"
COMPATIBILITY = "model_versions/compatibility.yaml"
REQUIRED = (ROLLOUT_GROUPS, COMPATIBILITY)
IGNORED_SUFFIXES = (".md", ".txt")


def model_for(path: str) -> type[BaseModel] | None:
    if path == ROLLOUT_GROUPS:
        return RolloutPolicy
    if path == ARTIFACT:
        return ArtifactPolicy
    if path == SIGNALS:
        return SignalsPolicy
    if path == COMPATIBILITY:
        return Compatibility
    if path == EVALUATORS:
        return Evaluators
    if path == APPROVERS:
        return Approvers
    parts = path.split("/")
    if parts[0] == "model_versions" and len(parts) == 2 and path.endswith(".yaml"):
        return ModelVersion
    if parts[0] == "tenants" and len(parts) == 2 and path.endswith(".yaml"):
        return Tenant
    if parts[0] == "evidence" and len(parts) == 4 and path.endswith(SIGNED_EVIDENCE_SUFFIX):
        return EvidenceEnvelope
    if parts[0] == "evidence" and len(parts) == 4 and path.endswith(".json"):
        return Evidence
    return None


def evidence_path(tenant: str, alias: str, candidate: str, *, signed: bool = True) -> str:
    """Where the evidence of one rollout lives (signed: ``.dsse.json``)."""
    suffix = SIGNED_EVIDENCE_SUFFIX if signed else ".json"
    return f"evidence/{tenant}/{alias}/{candidate}{suffix}"


def stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name.endswith(SIGNED_EVIDENCE_SUFFIX):
        return name[: -len(SIGNED_EVIDENCE_SUFFIX)]
    return name.rsplit(".", 1)[0]



def layout_hint(path: str) -> str:
    top = path.split("/", 1)[0]
    return {
        "tenants": "tenants are tenants/<id>.yaml",
        "model_versions": "model versions are model_versions/<id>.yaml",
        "evidence": "evidence is evidence/<tenant>/<alias>/<candidate>.dsse.json "
                    "(signed) or <candidate>.json (unsigned)",
        "policies": "policies are rollout-groups.yaml, artifact.yaml, signals.yaml, "
                    "evaluators.yaml, approvers.yaml",
    }.get(top, "")
