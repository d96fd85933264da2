"""Cross-file checks of BETS suites and providers.

A suite is a pair of files in ``bets/<suite>/``: ``suite.yaml`` (whose ``id`` is the
folder's name) and ``cases.jsonl`` (case ids unique). Its workload is a workload of the
compatibility matrix; its judge an exact chat model version of the fleet that is not
retired or blocked. A tenant whose ``bets_suite`` names a suite of this repository at
another version is warned: evidence a run writes would not match the tenant. A tenant
naming a suite the repository does not hold is fine (evidence may come from elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import date

from pydantic import BaseModel

from modelpin.diagnostics import Diagnostic, error, warning
from modelpin.load.document import Document, did_you_mean
from modelpin.load.layout import CASES_FILE, PROVIDERS, SUITE_FILE, suite_paths
from modelpin.model.bets import Suite, SuiteCases
from modelpin.model.compatibility import Compatibility
from modelpin.model.model_version import ModelVersion
from modelpin.model.providers import ProvidersPolicy
from modelpin.model.tenant import Tenant

Position = Callable[[str, tuple[str | int, ...]], tuple[int, int]]


def check_bets(
    values: Mapping[str, BaseModel],
    documents: Mapping[str, Document],
    today: date,
) -> tuple[dict[str, Suite], ProvidersPolicy | None, list[Diagnostic]]:
    """(valid suites by id, the providers policy, diagnostics)."""
    out: list[Diagnostic] = []

    def at(path: str, loc: tuple[str | int, ...]) -> tuple[int, int]:
        doc = documents.get(path)
        return doc.position(loc) if doc else (1, 1)

    folders = sorted({p.split("/")[1] for p in documents if p.startswith("bets/")
                      and p.count("/") == 2})
    models = {v.id: v for v in values.values() if isinstance(v, ModelVersion)}
    compat = next((v for v in values.values() if isinstance(v, Compatibility)), None)
    suites: dict[str, Suite] = {}
    for folder in folders:
        suite_path, cases_path = suite_paths(folder)
        for present, missing in ((suite_path, cases_path), (cases_path, suite_path)):
            if present in documents and missing not in documents:
                out.append(error("MP060", f"{missing} is missing", present, hint=(
                    f"a BETS suite is bets/<suite>/{SUITE_FILE} with bets/<suite>/{CASES_FILE}")))
        suite = values.get(suite_path)
        cases = values.get(cases_path)
        ok = isinstance(suite, Suite) and isinstance(cases, SuiteCases)
        if isinstance(suite, Suite):
            ok = _check_suite(suite, suite_path, folder, models, documents.keys(), compat,
                              today, at, out) and ok
        if isinstance(cases, SuiteCases):
            ok = _check_cases(cases, cases_path, at, out) and ok
        if ok and isinstance(suite, Suite):
            suites[suite.id] = suite
    for path, tenant in values.items():
        if isinstance(tenant, Tenant) and tenant.bets_suite is not None:
            held = suites.get(tenant.bets_suite.id)
            if held is not None and held.version != tenant.bets_suite.version:
                line, col = at(path, ("bets_suite", "version"))
                out.append(warning(
                    "MP062", f"suite '{held.id}' is at version {held.version}, the tenant names "
                    f"version {tenant.bets_suite.version}", path, line, col,
                    hint="evidence must be for the tenant's suite version: update 'bets_suite' "
                    "in the same change as the suite (check shows it), or run the named version"))
    providers = values.get(PROVIDERS)
    return suites, providers if isinstance(providers, ProvidersPolicy) else None, out


def _check_suite(suite: Suite, path: str, folder: str, models: Mapping[str, ModelVersion],
                 known_files: Collection[str], compat: Compatibility | None, today: date,
                 position: Position, out: list[Diagnostic]) -> bool:
    ok = True
    if suite.id != folder:
        line, col = position(path, ("id",))
        out.append(error("MP013", f"id '{suite.id}' does not match the folder name", path, line,
                         col, hint=f"rename the folder or set 'id: {folder}'"))
        ok = False
    if compat is not None and suite.workload not in compat.workloads:
        line, col = position(path, ("workload",))
        out.append(error("MP021", f"unknown workload '{suite.workload}'", path, line, col,
                         did_you_mean(suite.workload, compat.workloads)
                         or f"workloads: {', '.join(compat.workloads)}"))
        ok = False
    judge = models.get(suite.judge)
    line, col = position(path, ("judge",))
    if judge is None and f"model_versions/{suite.judge}.yaml" in known_files:
        ok = False  # its own file is invalid and already reported
    elif judge is None:
        out.append(error("MP022", f"judge '{suite.judge}' is not a known model version", path,
                         line, col, did_you_mean(suite.judge, sorted(models))
                         or "the judge is an exact model version of the fleet"))
        ok = False
    elif judge.kind != "chat":
        out.append(error("MP061", f"judge '{suite.judge}' is a {judge.kind} model", path, line,
                         col, hint="the judge answers in text: use a chat model version"))
        ok = False
    elif judge.blocked or judge.retired(today):
        why = "blocked" if judge.blocked else f"retired on {judge.retires_on}"
        out.append(error("MP061", f"judge '{suite.judge}' is {why}", path, line, col,
                         hint="pin the judge to a version the provider still serves"))
        ok = False
    return ok


def _check_cases(cases: SuiteCases, path: str, position: Position,
                 out: list[Diagnostic]) -> bool:
    seen: dict[str, int] = {}
    ok = True
    for i, case in enumerate(cases.cases):
        if case.id in seen:
            line, col = position(path, ("cases", i, "id"))
            first, _ = position(path, ("cases", seen[case.id], "id"))
            out.append(error("MP063", f"case id '{case.id}' is used again (first on line "
                             f"{first})", path, line, col,
                             hint="case ids are unique within a suite: evidence names them"))
            ok = False
        seen.setdefault(case.id, i)
    return ok
