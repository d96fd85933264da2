"""``modelpin validate`` and ``modelpin schema``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from pydantic import BaseModel

from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    default_repo,
    emit_diagnostics,
    format_option,
    load,
    now_option,
    repo_option,
    summary_line,
)
from modelpin.diagnostics import has_errors
from modelpin.model.bets import Case, Suite
from modelpin.model.compatibility import Compatibility
from modelpin.model.evidence import Evidence, EvidenceEnvelope
from modelpin.model.model_version import ModelVersion
from modelpin.model.policies import ArtifactPolicy, RolloutPolicy
from modelpin.model.providers import ProvidersPolicy
from modelpin.model.signals import SignalsPolicy
from modelpin.model.tenant import Tenant
from modelpin.model.trust import Approvers, Evaluators

SCHEMAS: dict[str, type[BaseModel]] = {
    "rollout-groups": RolloutPolicy,
    "artifact": ArtifactPolicy,
    "signals": SignalsPolicy,
    "compatibility": Compatibility,
    "model-version": ModelVersion,
    "tenant": Tenant,
    "evidence": Evidence,
    "evidence-envelope": EvidenceEnvelope,
    "evaluators": Evaluators,
    "approvers": Approvers,
    "providers": ProvidersPolicy,
    "bets-suite": Suite,
    "bets-case": Case,  # one line of cases.jsonl
}


@click.command()
@repo_option
@click.option("--rev", default=None, help="Validate this git revision instead of the files.")
@now_option
@format_option("text", "github", "json")
def validate(repo: Path | None, rev: str | None, now_text: str | None, fmt: str) -> int:
    """Validate every config file and every reference between them."""
    result, _root = load(repo, rev, now_text)
    summary: dict[str, object] = {**result.stats, "valid": not has_errors(result.diagnostics)}
    emit_diagnostics(result.diagnostics, fmt, result.source_lines, summary)
    if fmt != "json":
        verdict = "invalid" if has_errors(result.diagnostics) else "valid"
        click.echo(f"{verdict}: {summary_line(result.stats, result.diagnostics)}",
                   err=fmt == "github")
    return EXIT_INVALID if has_errors(result.diagnostics) else EXIT_OK


def schema_documents() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name, model in SCHEMAS.items():
        doc = model.model_json_schema(by_alias=True)
        doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        doc["$id"] = f"https://modelpin.dev/schemas/{name}.schema.json"
        out[name] = doc
    return out


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to write <kind>.schema.json files to (default: <repo>/schemas).")
@repo_option
def schema(out: Path | None, repo: Path | None) -> int:
    """Write JSON Schemas of every config file type (for editors and CI)."""
    target = out if out is not None else (repo or default_repo()) / "schemas"
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, doc in schema_documents().items():
            path = target / f"{name}.schema.json"
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)
    except OSError as exc:
        raise CommandError(f"cannot write schemas to {target}: {exc.strerror}",
                           exit_code=EXIT_INVALID) from None
    click.echo(f"wrote {len(SCHEMAS)} schemas to {target}")
    return EXIT_OK
