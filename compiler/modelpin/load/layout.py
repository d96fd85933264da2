"""Where each config file lives, and which model reads it."""

from __future__ import annotations

from pydantic import BaseModel

from modelpin.model.bets import Suite, SuiteCases
from modelpin.model.compatibility import Compatibility
from modelpin.model.evidence import Evidence, EvidenceEnvelope
from modelpin.model.model_version import ModelVersion
from modelpin.model.policies import ArtifactPolicy, RolloutPolicy
from modelpin.model.providers import ProvidersPolicy
from modelpin.model.signals import SignalsPolicy
from modelpin.model.tenant import Tenant
from modelpin.model.trust import Approvers, Evaluators

ROLLOUT_GROUPS = "policies/rollout-groups.yaml"
ARTIFACT = "policies/artifact.yaml"
SIGNALS = "policies/signals.yaml"
EVALUATORS = "policies/evaluators.yaml"
APPROVERS = "policies/approvers.yaml"
SIGNED_EVIDENCE_SUFFIX = ".dsse.json"
PROVIDERS = "policies/providers.yaml"
COMPATIBILITY = "model_versions/compatibility.yaml"
SUITE_FILE = "suite.yaml"
CASES_FILE = "cases.jsonl"
REQUIRED = (ROLLOUT_GROUPS, COMPATIBILITY)
FOLDER_README = "README.md"
"""The one file a config folder may hold besides config: ``<folder>/README.md`` at the
folder's top (never read). Any other file, ``.md`` and ``.txt`` included, is an error:
a config folder holds nothing the gate does not judge."""


def is_folder_readme(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 2 and parts[1] == FOLDER_README


def model_for(path: str) -> type[BaseModel] | None:
    if "/." in path or path.startswith("."):
        return None  # hidden files and folders are never config
    if path == ROLLOUT_GROUPS:
        return RolloutPolicy
    if path == ARTIFACT:
        return ArtifactPolicy
    if path == SIGNALS:
        return SignalsPolicy
    if path == PROVIDERS:
        return ProvidersPolicy
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
    if parts[0] == "bets" and len(parts) == 3:
        kinds: dict[str, type[BaseModel]] = {SUITE_FILE: Suite, CASES_FILE: SuiteCases}
        return kinds.get(parts[2])
    return None


def evidence_path(tenant: str, alias: str, candidate: str, *, signed: bool = True) -> str:
    """Where the evidence of one rollout lives (signed: ``.dsse.json``)."""
    suffix = SIGNED_EVIDENCE_SUFFIX if signed else ".json"
    return f"evidence/{tenant}/{alias}/{candidate}{suffix}"


def is_json_lines(path: str) -> bool:
    """Files read one JSON object per line (``load.jsonl``), not as one YAML document."""
    return path.endswith(".jsonl")


def suite_paths(suite_id: str) -> tuple[str, str]:
    """(suite.yaml, cases.jsonl) of a BETS suite."""
    return f"bets/{suite_id}/{SUITE_FILE}", f"bets/{suite_id}/{CASES_FILE}"


def stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name.endswith(SIGNED_EVIDENCE_SUFFIX):
        return name[: -len(SIGNED_EVIDENCE_SUFFIX)]
    return name.rsplit(".", 1)[0]



def unexpected(path: str) -> tuple[str, str]:
    """(message, hint) for a file that is not part of the layout (an error: never
    silently skipped)."""
    if "/." in path:
        return ("hidden file or folder in a config folder",
                "config folders hold only config files: remove it (editor and tool "
                "files belong outside policies/, model_versions/, tenants/, evidence/)")
    return ("file is not part of the config layout",
            layout_hint(path) + f"; only <folder>/{FOLDER_README} may sit beside config")


def layout_hint(path: str) -> str:
    top = path.split("/", 1)[0]
    return {
        "tenants": "tenants are tenants/<id>.yaml",
        "model_versions": "model versions are model_versions/<id>.yaml",
        "evidence": "evidence is evidence/<tenant>/<alias>/<candidate>.dsse.json "
                    "(signed) or <candidate>.json (unsigned)",
        "policies": "policies are rollout-groups.yaml, artifact.yaml, signals.yaml, "
                    "providers.yaml, evaluators.yaml, approvers.yaml",
        "bets": "a BETS suite is bets/<suite>/suite.yaml and bets/<suite>/cases.jsonl",
    }.get(top, "")
