"""A config tree -> a validated ``Fleet``, or every diagnostic found along the way.

Collect, then judge: every file is parsed and validated on its own, then every
reference across files is checked. Nothing stops at the first bad file. The caller
supplies ``now`` (retirement and sunset checks); nothing here reads the clock.
"""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from modelpin import attestation
from modelpin.diagnostics import Diagnostic, error
from modelpin.load.bets_references import check_bets
from modelpin.load.document import Document, parse, parse_json
from modelpin.load.jsonl import parse_jsonl
from modelpin.load.layout import (
    ARTIFACT,
    COMPATIBILITY,
    REQUIRED,
    ROLLOUT_GROUPS,
    SIGNALS,
    is_folder_readme,
    is_json_lines,
    model_for,
    stem,
    unexpected,
)
from modelpin.load.references import CrossCheck
from modelpin.load.suite_digest import suite_sources
from modelpin.load.tree import COMMITTED_CACHE, Refused, SourceTree, blob_id_of
from modelpin.load.validation import diagnostics_for
from modelpin.model.evidence import Evidence, EvidenceEnvelope
from modelpin.model.fleet import Fleet
from modelpin.model.model_version import ModelVersion
from modelpin.model.signals import SignalsPolicy
from modelpin.model.tenant import Tenant

__all__ = ["ARTIFACT", "COMPATIBILITY", "ROLLOUT_GROUPS", "SIGNALS", "LoadResult", "ParseCache",
           "load_fleet"]

ParseCache = dict[tuple[str, str], tuple[Document, BaseModel | None, list[Diagnostic]]]
"""(path, blob id) -> the file's document, validated model and its own diagnostics."""


@dataclass
class LoadResult:
    fleet: Fleet | None
    diagnostics: list[Diagnostic]
    documents: dict[str, Document]
    signals: SignalsPolicy | None = None
    stats: dict[str, int] = field(default_factory=dict)

    def source_lines(self, path: str) -> list[str] | None:
        doc = self.documents.get(path)
        lines = doc.lines if doc else None
        return list(lines) if lines is not None else None


def _load_file(
    tree: SourceTree, path: str, model: type[BaseModel], cache: ParseCache | None
) -> tuple[Document, BaseModel | None, list[Diagnostic]]:
    key: tuple[str, str] | None = None
    blob = getattr(tree, "blob_id", None)
    if cache is not None and callable(blob):
        # The tree knows the content hash without reading (git, a stat index): a hit
        # costs no read at all.
        key = (path, blob(path))
        hit = cache.get(key)
        if hit is not None:
            return hit
    raw = tree.read(path)
    if cache is not None and key is None:
        key = (path, blob_id_of(raw))
        hit = cache.get(key)
        if hit is not None:
            return hit
    if is_json_lines(path):
        doc = parse_jsonl(path, raw)
    elif path.endswith(".json"):
        doc = parse_json(path, raw)
    else:
        doc = parse(path, raw)
    own: list[Diagnostic] = list(doc.diagnostics)
    value: BaseModel | None = None
    if doc.data is not None:
        try:
            value = model.model_validate(doc.data)
        except ValidationError as exc:
            own.extend(diagnostics_for(doc, exc, model))
    if value is not None and model in (ModelVersion, Tenant):
        name = stem(path)
        if getattr(value, "id", None) != name:
            line, col = doc.position(("id",))
            own.append(
                error("MP013", f"id '{getattr(value, 'id', '')}' does not match the file name",
                      path, line, col, hint=f"rename the file or set 'id: {name}'")
            )
            value = None
    if value is not None and model is Tenant:
        own.extend(_check_tools(doc, value))  # type: ignore[arg-type]
    result = (doc, value, own)
    if cache is not None and key is not None:
        cache[key] = result
    return result


_SchemaProblem = tuple[str, tuple[str | int, ...]]
_schema_verdicts: dict[str, _SchemaProblem | None] = {}


MAX_TOOL_SCHEMA_DEPTH = 60
"""A tool schema sits 4 levels deep in the routing table, and routers refuse a table
nested deeper than 64 levels (``modelpin.router.strict_json.MAX_DEPTH``)."""


def _too_deep(schema: Any) -> tuple[str | int, ...] | None:
    """Where ``schema`` first nests deeper than ``MAX_TOOL_SCHEMA_DEPTH``, or None
    (iterative: no recursion on untrusted nesting)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(schema, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_TOOL_SCHEMA_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend((v, (*path, k)) for k, v in value.items()
                         if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value)
                         if isinstance(v, (dict, list)))
    return None


def _schema_problem(schema: dict[str, Any]) -> _SchemaProblem | None:
    """Why ``schema`` is not a valid JSON Schema and where in it, or None (memoised)."""
    deep = _too_deep(schema)
    if deep is not None:
        return (f"nests deeper than {MAX_TOOL_SCHEMA_DEPTH} levels (routers refuse a table "
                "nested deeper than 64)", deep)
    key = json.dumps(schema, sort_keys=True, default=str)
    if key not in _schema_verdicts:
        import jsonschema  # here, not at import: a snapshot hit (explain) never needs it

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
            _schema_verdicts[key] = None
        except jsonschema.SchemaError as exc:
            _schema_verdicts[key] = (exc.message, tuple(exc.path))
    return _schema_verdicts[key]


def _check_tools(doc: Document, tenant: Tenant) -> list[Diagnostic]:
    out = []
    for name, schema in tenant.tools.items():
        problem = _schema_problem(schema)
        if problem:
            message, where = problem
            line, col = doc.position(("tools", name, *where))
            inside = "".join(f"/{p}" for p in where)
            out.append(error("MP033", f"tool '{name}' schema{' at ' + inside if inside else ''}: "
                             f"{message}", doc.path, line, col,
                             hint="tools map a tool name to the JSON Schema of its arguments"))
    return out


def _refusal(item: Refused) -> Diagnostic:
    if item.path.startswith(COMMITTED_CACHE):
        return error("MP009", f"{item.what}: modelpin never reads a cache from the "
                     "repository", item.path,
                     hint=f"remove {COMMITTED_CACHE}/ from the repository; caches live in "
                     "$XDG_CACHE_HOME/modelpin (see README: caches)")
    return error("MP009", f"{item.what} in a config folder: config folders hold regular "
                 "files only; it was not read", item.path,
                 hint="commit the file itself (modelpin never follows links, submodules "
                 "or special files: what is judged must be what is published)")


def load_fleet(
    tree: SourceTree,
    now: datetime,
    *,
    cache: ParseCache | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Read, validate and cross-reference every config file of ``tree``."""
    diagnostics: list[Diagnostic] = []
    documents: dict[str, Document] = {}
    values: dict[str, BaseModel] = {}
    gc_was_enabled = gc.isenabled()
    # Millions of small long-lived objects: generational GC passes over them are pure
    # cost (a quarter of the time at 100,000 tenants). Off until the cross-check is done.
    gc.disable()
    try:
        paths = tree.files()
        for item in tree.refused():
            diagnostics.append(_refusal(item))
        total = len(paths)
        for i, path in enumerate(paths):
            model = model_for(path)
            if model is None:
                if not is_folder_readme(path):
                    message, hint = unexpected(path)
                    diagnostics.append(error("MP007", message, path, hint=hint))
                continue
            doc, value, own = _load_file(tree, path, model, cache)
            documents[path] = doc
            diagnostics.extend(own)
            if value is not None:
                values[path] = value
            if progress is not None and i % 500 == 0:
                progress(i, total)
        if progress is not None:
            progress(total, total)
        for required in REQUIRED:
            if required not in documents:
                diagnostics.append(error("MP008", f"required file {required} is missing",
                                         required,
                                         hint="see README: the config repository layout"))
        checker = CrossCheck(values, documents, diagnostics, now)
        fleet = checker.run()
        suites, providers, bets_diagnostics = check_bets(values, documents, now.date())
        diagnostics.extend(bets_diagnostics)
        if fleet is not None:
            fleet = dataclasses.replace(fleet, suites=suites, providers=providers,
                                        suite_sources=suite_sources(tree, values, suites))
        if fleet is not None:
            fleet = attestation.authenticate_fleet(fleet, fleet)
    finally:
        if gc_was_enabled:
            gc.enable()
    signals = values.get(SIGNALS)
    diagnostics.sort()
    has_error = any(d.severity == "error" for d in diagnostics)
    tenants = [v for v in values.values() if isinstance(v, Tenant)]
    stats = {
        "files": len(documents),
        "tenants": len(tenants),
        "aliases": sum(len(t.aliases) for t in tenants),
        "models": sum(1 for v in values.values() if isinstance(v, ModelVersion)),
        "evidence": sum(1 for v in values.values()
                        if isinstance(v, Evidence | EvidenceEnvelope)),
    }
    return LoadResult(
        fleet=None if has_error else fleet,
        diagnostics=diagnostics,
        documents=documents,
        signals=signals if isinstance(signals, SignalsPolicy) else None,
        stats=stats,
    )
