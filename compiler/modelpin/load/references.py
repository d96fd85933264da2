"""Every check that needs more than one file: references, the group DAG, sunsets.

Names that exist even when their own file failed validation still resolve, so one
broken file is reported once, not again at every reference to it.
"""


from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from modelpin import attestation
from modelpin.diagnostics import Diagnostic, error, warning
from modelpin.load.document import Document, did_you_mean
from modelpin.load.layout import (
    APPROVERS,
    ARTIFACT,
    COMPATIBILITY,
    EVALUATORS,
    ROLLOUT_GROUPS,
    SIGNED_EVIDENCE_SUFFIX,
    stem,
)
from modelpin.model.compatibility import Compatibility
from modelpin.model.evidence import Evidence, EvidenceEnvelope, EvidenceSource
from modelpin.model.fleet import EvidenceKey, Fleet
from modelpin.model.model_version import ModelVersion, floating_reason
from modelpin.model.policies import ArtifactPolicy, RolloutPolicy
from modelpin.model.tenant import Tenant
from modelpin.model.trust import Approvers, Evaluators
from modelpin.rollout.dag import GroupCycleError, GroupGraph


class CrossCheck:
    """Every check that needs more than one file."""

    def __init__(
        self,
        values: Mapping[str, BaseModel],
        documents: Mapping[str, Document],
        diagnostics: list[Diagnostic],
        now: datetime,
    ) -> None:
        self.values = values
        self.documents = documents
        self.out = diagnostics
        self.now = now
        self.today = now.date()

    def _at(self, path: str, loc: tuple[str | int, ...], *, key: bool = False) -> tuple[int, int]:
        doc = self.documents.get(path)
        return doc.position(loc, key=key) if doc else (1, 1)

    def _error(self, code: str, msg: str, path: str, loc: tuple[str | int, ...],
               hint: str | None = None, *, key: bool = False) -> None:
        line, col = self._at(path, loc, key=key)
        self.out.append(error(code, msg, path, line, col, hint))

    def _raw(self, path: str, key: str) -> Any:
        doc = self.documents.get(path)
        data = doc.data if doc is not None else None
        return data.get(key) if isinstance(data, dict) else None

    def run(self) -> Fleet | None:
        policy = self.values.get(ROLLOUT_GROUPS)
        artifact = self.values.get(ARTIFACT) or ArtifactPolicy()
        compat = self.values.get(COMPATIBILITY)
        models = {v.id: v for v in self.values.values() if isinstance(v, ModelVersion)}
        model_paths = {v.id: p for p, v in self.values.items() if isinstance(v, ModelVersion)}
        tenants = {v.id: v for v in self.values.values() if isinstance(v, Tenant)}
        tenant_paths = {v.id: p for p, v in self.values.items() if isinstance(v, Tenant)}
        self.models = models
        # Names that exist even when their file failed validation: a broken file must
        # not make every reference to it look dangling as well.
        raw_groups = self._raw(ROLLOUT_GROUPS, "groups")
        self.group_names = sorted(raw_groups) if isinstance(raw_groups, dict) else []
        raw_workloads = self._raw(COMPATIBILITY, "workloads")
        self.workloads = (
            [w for w in raw_workloads if isinstance(w, str)]
            if isinstance(raw_workloads, list) else None
        )
        self.tenant_files = {
            stem(p) for p in self.documents if p.startswith("tenants/") and p.count("/") == 1
        }
        self.model_files = {
            stem(p) for p in self.documents
            if p.startswith("model_versions/") and p != COMPATIBILITY
        }
        self._check_successors(models, model_paths)
        if isinstance(policy, RolloutPolicy):
            self._check_groups(policy)
        if isinstance(compat, Compatibility):
            self._check_compatibility(compat, models)
        for tid, tenant in tenants.items():
            self._check_tenant(tenant, tenant_paths[tid], policy, compat, models)
        self._check_sunset(tenants, tenant_paths, models, model_paths, policy)
        evidence, sources = self._check_evidence(tenants, models)
        if not (isinstance(policy, RolloutPolicy) and isinstance(compat, Compatibility)):
            return None
        if not isinstance(artifact, ArtifactPolicy):
            return None
        paths = {f"tenant:{k}": v for k, v in tenant_paths.items()}
        paths.update({f"model:{k}": v for k, v in model_paths.items()})
        paths.update({"evidence:{}/{}/{}".format(*k): v.path for k, v in sources.items()})
        evaluators = self.values.get(EVALUATORS)
        approvers = self.values.get(APPROVERS)
        return Fleet(policy=policy, artifact=artifact, compatibility=compat, models=models,
                     tenants=tenants, evidence=evidence, paths=paths,
                     evaluators=evaluators if isinstance(evaluators, Evaluators) else None,
                     approvers=approvers if isinstance(approvers, Approvers) else None,
                     evidence_sources=sources)

    def _check_successors(self, models: Mapping[str, ModelVersion],
                          model_paths: Mapping[str, str]) -> None:
        known = sorted(models)
        for mid, model in models.items():
            ref = model.successor
            if ref is None:
                continue
            target = models.get(ref)
            if target is None and ref not in self.model_files:
                self._error("MP022", f"unknown model version '{ref}' as successor of {mid}",
                            model_paths[mid], ("successor",), did_you_mean(ref, known))
            elif target is not None and target.kind != model.kind:
                self._error("MP022", f"successor '{ref}' is a {target.kind} model, {mid} a "
                            f"{model.kind} model", model_paths[mid], ("successor",),
                            "a successor serves the same kind of alias")

    def _check_groups(self, policy: RolloutPolicy) -> None:
        names = sorted(policy.groups)
        for name, group in policy.groups.items():
            for i, upstream in enumerate(group.after):
                if upstream not in policy.groups:
                    self._error("MP020", f"group '{name}' comes after unknown group '{upstream}'",
                                ROLLOUT_GROUPS, ("groups", name, "after", i),
                                did_you_mean(upstream, names))
        try:
            GroupGraph.build(policy.groups)
        except GroupCycleError as exc:
            first = exc.cycle[0]
            self._error("MP026", str(exc), ROLLOUT_GROUPS, ("groups", first, "after"),
                        "remove one 'after' edge of the cycle")

    def _check_compatibility(self, compat: Compatibility, models: Mapping[str, Any]) -> None:
        seen: dict[tuple[str, str], int] = {}
        known = sorted(models)
        workloads = set(compat.workloads)
        for i, upgrade in enumerate(compat.upgrades):
            for field_name, ref in (("from", upgrade.from_), ("to", upgrade.to)):
                if ref not in models and ref not in self.model_files:
                    self._error("MP022", f"unknown model version '{ref}'", COMPATIBILITY,
                                ("upgrades", i, field_name), did_you_mean(ref, known))
            pair = (upgrade.from_, upgrade.to)
            if pair in seen:
                self._error("MP027", f"upgrade {pair[0]} -> {pair[1]} is listed twice "
                            f"(first as entry {seen[pair] + 1})", COMPATIBILITY, ("upgrades", i),
                            "merge the verdicts into one entry")
            seen.setdefault(pair, i)
            for workload in upgrade.verdicts:
                if workload not in workloads:
                    self._error("MP028", f"unknown workload '{workload}'", COMPATIBILITY,
                                ("upgrades", i, "verdicts", workload),
                                did_you_mean(workload, sorted(workloads))
                                or f"workloads: {', '.join(compat.workloads)}", key=True)

    def _check_version(self, ref: str, path: str, loc: tuple[str | int, ...], kind: str,
                       role: str) -> None:
        model = self.models.get(ref)
        if model is None and ref in self.model_files:
            return  # its own file is invalid and already reported
        if model is None and floating_reason(ref):
            self._error("MP014", f"{role} '{ref}' is a floating alias, not an exact version: "
                        f"{floating_reason(ref)}", path, loc,
                        "pin an exact provider version, e.g. gpt-5-2026-03-14")
            return
        if model is None:
            self._error("MP022", f"{role} '{ref}' is not a known model version", path, loc,
                        did_you_mean(ref, sorted(self.models))
                        or "add model_versions/<id>.yaml for it")
            return
        if model.kind != kind:
            self._error("MP023", f"{role} '{ref}' is a {model.kind} model, the alias is {kind}",
                        path, loc, "an alias's kind must match its model versions' kind")
        if model.blocked:
            self._error("MP031", f"{role} '{ref}' is blocked: {model.blocked_reason}", path, loc,
                        "move to another version; blocked versions may not serve")
        elif model.retired(self.today):
            # Time made this invalid, not a change (SPEC 2.1 rule 9): a loud warning, so
            # the rest of the fleet still compiles and rollbacks still publish. `check`
            # makes it an error when a change introduces it.
            line, col = self._at(path, loc)
            self.out.append(warning(
                "MP030", f"RETIRED: {role} '{ref}' retired on {model.retires_on}; the "
                "provider no longer serves it", path, line, col,
                "move this alias to a supported version (start a rollout of its successor)"))

    def _check_tenant(self, tenant: Tenant, path: str, policy: BaseModel | None,
                      compat: BaseModel | None, models: Mapping[str, ModelVersion]) -> None:
        group = policy.groups.get(tenant.group) if isinstance(policy, RolloutPolicy) else None
        if self.group_names and tenant.group not in self.group_names:
            self._error("MP020", f"unknown rollout group '{tenant.group}'", path, ("group",),
                        did_you_mean(tenant.group, self.group_names)
                        or f"groups: {', '.join(self.group_names)}")
        if self.workloads is not None and tenant.workload not in self.workloads:
            self._error("MP021", f"unknown workload '{tenant.workload}'", path, ("workload",),
                        did_you_mean(tenant.workload, self.workloads)
                        or f"workloads: {', '.join(self.workloads)}")
        for name, alias in tenant.aliases.items():
            base = ("aliases", name)
            self._check_version(alias.pin, path, (*base, "pin"), alias.kind, "pin")
            rollout = alias.rollout
            if rollout is None:
                continue
            self._check_version(rollout.candidate, path, (*base, "rollout", "candidate"),
                                alias.kind, "candidate")
            if group is not None and rollout.percent is not None and (
                rollout.percent not in group.ladder
            ):
                steps = ", ".join(f"{s:g}" for s in group.ladder)
                self._error("MP025", f"percent {rollout.percent:g} is not a step of group "
                            f"'{tenant.group}' ladder [{steps}]", path,
                            (*base, "rollout", "percent"), f"use one of: {steps}")
            if group is not None and group.approval != "manual" and rollout.approvals:
                line, col = self._at(path, (*base, "rollout", "approvals"))
                self.out.append(warning("MP035", f"group '{tenant.group}' needs no manual "
                                        "approval; the approvals are ignored", path, line, col))

    def _check_sunset(self, tenants: Mapping[str, Tenant], tenant_paths: Mapping[str, str],
                      models: Mapping[str, ModelVersion], model_paths: Mapping[str, str],
                      policy: BaseModel | None) -> None:
        days = policy.sunset_warning_days if isinstance(policy, RolloutPolicy) else 60
        users: dict[str, list[str]] = {}
        for tid in sorted(tenants):
            for name, alias in tenants[tid].aliases.items():
                users.setdefault(alias.pin, []).append(f"{tid}/{name}")
        for mid, pinned_by in users.items():
            model = models.get(mid)
            if model is None or model.retires_on is None or model.retired(self.today):
                continue
            left = (model.retires_on - self.today).days
            if left <= days:
                line, col = self._at(model_paths[mid], ("retires_on",))
                self.out.append(warning(
                    "MP032",
                    f"{mid} retires on {model.retires_on} (in {left} days); pinned by "
                    f"{len(pinned_by)} alias(es): {', '.join(pinned_by)}",
                    model_paths[mid], line, col,
                    hint="start rollouts to a successor for every tenant listed"))

    def _check_evidence(
        self, tenants: Mapping[str, Tenant], models: Mapping[str, ModelVersion]
    ) -> tuple[dict[EvidenceKey, Evidence], dict[EvidenceKey, EvidenceSource]]:
        found: dict[EvidenceKey, Evidence] = {}
        sources: dict[EvidenceKey, EvidenceSource] = {}
        for path, value in sorted(self.values.items()):
            if isinstance(value, EvidenceEnvelope):
                opened = self._open_envelope(path)
                if opened is None:
                    continue
                value = opened
            if not isinstance(value, Evidence):
                continue
            _, t_dir, a_dir, c_file = path.split("/")
            signed = path.endswith(SIGNED_EVIDENCE_SUFFIX)

            def at(name: str, signed: bool = signed) -> tuple[str, ...]:
                # A signed result sits base64-encoded in the envelope's payload.
                return ("payload",) if signed else (name,)

            expect = {"tenant": t_dir, "alias": a_dir, "candidate": stem(c_file)}
            bad = False
            for field_name, want in expect.items():
                if getattr(value, field_name) != want:
                    self._error("MP034", f"'{field_name}' is '{getattr(value, field_name)}' but "
                                f"the path says '{want}'", path, at(field_name),
                                "evidence lives at evidence/<tenant>/<alias>/<candidate>.dsse.json")
                    bad = True
            tenant = tenants.get(value.tenant)
            if tenant is None and value.tenant in self.tenant_files:
                bad = True  # the tenant file is invalid and already reported
            elif tenant is None:
                self._error("MP024", f"evidence for unknown tenant '{value.tenant}'", path,
                            at("tenant"), did_you_mean(value.tenant, sorted(tenants)))
                bad = True
            elif value.alias not in tenant.aliases:
                self._error("MP024", f"tenant '{value.tenant}' has no alias '{value.alias}'",
                            path, at("alias"), did_you_mean(value.alias, sorted(tenant.aliases)))
                bad = True
            for field_name in ("baseline", "candidate"):
                ref = getattr(value, field_name)
                if ref not in models and ref not in self.model_files:
                    self._error("MP022", f"{field_name} '{ref}' is not a known model version",
                                path, at(field_name), did_you_mean(ref, sorted(models)))
                    bad = True
            key = (value.tenant, value.alias, value.candidate)
            if not bad and key in sources:
                self._error("MP041", f"evidence for {'/'.join(key)} is also given by "
                            f"{sources[key].path}", path, (),
                            "keep one: the signed .dsse.json; delete the unsigned .json")
                bad = True
            if not bad:
                found[key] = value
                sources[key] = self._source(path)
        return found, sources

    def _open_envelope(self, path: str) -> Evidence | None:
        """The BETS result inside a signed evidence file (its signatures are judged
        later, against a trust list); a malformed statement is reported on the file."""
        doc = self.documents[path]
        raw = (doc.text or "").encode("utf-8")
        try:
            return attestation.read(raw).evidence
        except attestation.PredicateError as exc:
            for _, message in exc.problems:
                self._error("MP012", f"predicate {message}", path, ("payload",),
                            "the BETS result inside the envelope breaks a field rule; fix "
                            "the result and sign it again (`modelpin attest`)")
        except attestation.AttestationError as exc:
            self._error("MP040", str(exc), path, exc.where[:1] or ("payload",), exc.hint)
        return None

    def _source(self, path: str) -> EvidenceSource:
        doc = self.documents.get(path)
        raw = (doc.text if doc is not None and doc.text is not None else "").encode("utf-8")
        signed = path.endswith(SIGNED_EVIDENCE_SUFFIX)
        return EvidenceSource(path, hashlib.sha256(raw).hexdigest(), raw if signed else None)

