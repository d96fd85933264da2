"""``modelpin bets run`` and ``modelpin bets capture``.

``run`` validates the fleet, plans the targets (refusing a judge that is the pin or the
candidate), checks every provider and key before the first call, runs, and only then
writes: one signed evidence envelope per target, ``results.json`` and ``report.md``, each
atomically. The journal under ``<out>/journal/`` makes a killed run resumable: run the
same command again. Exit status: 0 every target ran; 1 a target could not run or missed
a suite's per-kind requirement, or the fleet is invalid; 2 usage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    default_repo,
    emit_diagnostics,
    load,
    parse_time,
    repo_option,
    warn,
)
from modelpin.diagnostics import has_errors
from modelpin.load.document import did_you_mean

EVALUATOR_KEY_ENV = "MODELPIN_EVALUATOR_KEY"


@click.group()
def bets() -> None:
    """Behavioural equivalence test suites: run them, capture golden cases."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _evaluator_keys(key_files: tuple[Path, ...], unsigned: bool) -> list[Any]:
    from modelpin.cli.keys import read_private_key

    if unsigned:
        if key_files:
            raise CommandError("--unsigned and --key exclude each other")
        return []
    keys = []
    for path in key_files:
        try:
            keys.append(read_private_key(path.read_bytes(), str(path)).key)
        except OSError as exc:
            raise CommandError(f"cannot read --key {path}: {exc.strerror}",
                               exit_code=EXIT_INVALID) from None
    env = os.environ.get(EVALUATOR_KEY_ENV, "").strip()
    if not keys and env:
        text = env.replace("\\n", "\n") if "\n" not in env else env
        keys.append(read_private_key(text.encode("utf-8"), f"${EVALUATOR_KEY_ENV}").key)
    if not keys:
        raise CommandError(
            "no evaluator key to sign the evidence with", exit_code=EXIT_INVALID,
            hint=f"pass --key FILE or set {EVALUATOR_KEY_ENV} (an Ed25519 PEM key listed in "
            "policies/evaluators.yaml); --unsigned writes bare JSON results instead")
    return keys


def _providers_from(path: Path) -> Any:
    """A providers file given on the command line, validated like the one in the repo."""
    from pydantic import ValidationError

    from modelpin.diagnostics import render_text
    from modelpin.load.document import parse
    from modelpin.load.validation import diagnostics_for
    from modelpin.model.providers import ProvidersPolicy

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read --providers {path}: {exc.strerror}") from None
    doc = parse(str(path), raw)
    problems = list(doc.diagnostics)
    policy = None
    if doc.data is not None:
        try:
            policy = ProvidersPolicy.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(diagnostics_for(doc, exc, ProvidersPolicy))
    if problems or policy is None:
        lines = doc.lines
        click.echo(render_text(problems, lambda _p: lines), nl=False)
        raise CommandError(f"--providers {path} is invalid", exit_code=EXIT_INVALID)
    return policy


def _check_trusted(keys: list[Any], evaluators: Any) -> None:
    """Evidence signed by keys the fleet does not trust would never count: refuse early.
    With evaluator keys configured, unsigned evidence does not count either."""
    if evaluators is None or not evaluators.keys:
        return
    from modelpin import attestation, signing

    trusted = attestation.trusted_keys(evaluators)
    if not keys:
        raise CommandError("policies/evaluators.yaml lists evaluator keys: unsigned evidence "
                           "would not count", exit_code=EXIT_INVALID,
                           hint="sign with an evaluator key (--key FILE)")
    for key in keys:
        keyid = signing.keyid_of(key.public_key())
        if keyid not in trusted:
            raise CommandError(f"the evaluator key {keyid[:16]}… is not in "
                               "policies/evaluators.yaml: its evidence would not count",
                               exit_code=EXIT_INVALID,
                               hint="use a listed evaluator key, or add its public key there")
    distinct = {signing.keyid_of(k.public_key()) for k in keys}
    if len(distinct) < evaluators.threshold:
        raise CommandError(f"policies/evaluators.yaml requires {evaluators.threshold} "
                           f"signatures, {len(distinct)} key(s) given", exit_code=EXIT_INVALID,
                           hint="pass --key once per evaluator")


def _progress(total: int) -> tuple[Callable[[], None] | None, Callable[[], None]]:
    """A rich progress bar on an interactive stderr: (advance, stop)."""
    if not sys.stderr.isatty() or total == 0:
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True)
    task = progress.add_task("BETS cases", total=total)
    progress.start()
    return (lambda: progress.advance(task)), progress.stop


@bets.command("run")
@repo_option
@click.option("--tenant", "tenant_ids", multiple=True, metavar="T",
              help="Run this tenant (repeatable).")
@click.option("--all", "all_tenants", is_flag=True, help="Run every tenant.")
@click.option("--candidate", default=None, metavar="V",
              help="Judge chat aliases against model version V (with --all: those pinned to "
              "a model of V's provider); default: each alias's rollout candidate.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default: <repo>/dist/bets).")
@click.option("--key", "key_files", multiple=True, type=click.Path(dir_okay=False,
              path_type=Path), help=f"Evaluator private key (PEM); else ${EVALUATOR_KEY_ENV}.")
@click.option("--unsigned", is_flag=True, help="Write bare JSON results, unsigned.")
@click.option("--now", "now_text", default=None, metavar="TIME",
              help="run_at of the evidence (RFC 3339). Default: when the run first started.")
@click.option("--providers", "providers_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Use this providers file instead of policies/providers.yaml "
              "(e.g. staging endpoints).")
@click.option("--workers", type=click.IntRange(1, 4096), default=None,
              help="Cases in flight at once (default: twice the providers' concurrency).")
def run_command(repo: Path | None, tenant_ids: tuple[str, ...], all_tenants: bool,
                candidate: str | None, out: Path | None, key_files: tuple[Path, ...],
                unsigned: bool, now_text: str | None, providers_file: Path | None,
                workers: int | None) -> int:
    """Run the tenants' BETS suites against pin and candidate; write signed evidence."""
    from modelpin.bets.plan import JudgeRefused, plan_targets

    if all_tenants == bool(tenant_ids):
        raise CommandError("give --tenant T (one or more) or --all")
    root = repo if repo is not None else default_repo()
    clock = parse_time(now_text) if now_text else datetime.now(UTC).replace(microsecond=0)
    result, root = load(root, None, clock.isoformat())
    if has_errors(result.diagnostics) or result.fleet is None:
        emit_diagnostics(result.diagnostics, "text", result.source_lines, {})
        raise CommandError("the fleet is invalid; fix it before running BETS",
                           exit_code=EXIT_INVALID)
    fleet = result.fleet
    del result
    if providers_file is not None:
        fleet = dataclasses.replace(fleet, providers=_providers_from(providers_file))
    for tid in tenant_ids:
        if tid not in fleet.tenants:
            raise CommandError(f"unknown tenant '{tid}'",
                               hint=did_you_mean(tid, sorted(fleet.tenants)))
    if candidate is not None and candidate not in fleet.models:
        raise CommandError(f"--candidate {candidate} is not a model version of the fleet",
                           hint=did_you_mean(candidate, sorted(fleet.models)))
    chosen = sorted(fleet.tenants) if all_tenants else list(dict.fromkeys(tenant_ids))
    try:
        targets, skipped = plan_targets(fleet, chosen, candidate, clock.date(),
                                        affected_only=all_tenants)
    except JudgeRefused as exc:
        raise CommandError(f"refusing to run: {exc}", exit_code=EXIT_INVALID,
                           hint="set the suite's 'judge' to another chat model version") from None
    for skip in skipped:
        if skip.problem:
            warn(f"{skip.tenant}/{skip.alias} not run: {skip.reason}")
    if not targets:
        click.echo("nothing to run")
        return EXIT_INVALID if any(s.problem for s in skipped) else EXIT_OK
    keys = _evaluator_keys(key_files, unsigned)
    _check_trusted(keys, fleet.evaluators)
    out_dir = out if out is not None else root / "dist" / "bets"
    from modelpin.bets.session import RunRefused, RunSession

    try:
        session = RunSession(fleet, root, targets, out_dir, now_text is not None, clock, workers)
        results, run_at, stats = session.execute(_progress)
    except RunRefused as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID, hint=exc.hint) from None
    from modelpin.bets.report import (
        evidence_path,
        evidence_predicate,
        markdown_report,
        result_document,
    )

    _same_suites(root, targets)
    signed = bool(keys)
    for r in results:
        predicate = evidence_predicate(r, run_at)
        if signed:
            from modelpin import attestation

            data = attestation.sign(predicate, keys)
        else:
            data = (json.dumps(predicate, indent=2, sort_keys=True) + "\n").encode()
        write_atomic(out_dir / evidence_path(r, signed), data)
    document = result_document(results, skipped, run_at, stats, signed)
    write_atomic(out_dir / "results.json",
                 (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
    write_atomic(out_dir / "report.md", markdown_report(results, skipped, run_at).encode())
    failed = False
    for r in results:
        t = r.target
        unmet = r.unmet_requirements()
        failed = failed or bool(unmet)
        click.echo(f"{t.tenant}/{t.alias}: {t.baseline} -> {t.candidate}: {r.passed}/{r.cases} "
                   f"passed{'; unmet: ' + '; '.join(unmet) if unmet else ''}")
    click.echo(f"calls: {stats['paid']} made, {stats['reused']} from the journal; wrote "
               f"{len(results)} evidence file(s), results.json and report.md to {out_dir}")
    return EXIT_INVALID if failed or any(s.problem for s in skipped) else EXIT_OK



def _same_suites(root: Path, targets: list[Any]) -> None:
    """The evidence records the digest of each suite as it was loaded; a suite file
    edited while the run read it would make that a lie: refuse, write nothing."""
    from modelpin.load.suite_digest import folder_sha256

    for suite_id, digest in sorted({(t.suite.id, t.suite_sha256) for t in targets
                                    if t.suite_sha256 is not None}):
        try:
            now = folder_sha256(root / "bets" / suite_id)
        except OSError as exc:
            now = f"unreadable ({exc.strerror})"
        if now != digest:
            raise CommandError(f"bets/{suite_id}/ changed during the run: the evidence could "
                               "not say which cases it ran; nothing written",
                               exit_code=EXIT_INVALID, hint="run again on an unchanging tree")


@bets.command("capture")
@repo_option
@click.argument("exchanges", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--suite", "suite_id", required=True, metavar="SUITE",
              help="Append to bets/SUITE/ (suite.yaml and cases.jsonl must exist).")
@click.option("--sample", "size", type=click.IntRange(1), default=None, metavar="N",
              help="Keep a random sample of N new cases (default: all).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the sample: the same seed draws the same cases.")
@click.option("--skip-invalid", is_flag=True,
              help="Report unusable exchanges as warnings instead of refusing the file.")
def capture_command(repo: Path | None, exchanges: Path, suite_id: str, size: int | None,
                    seed: int, skip_invalid: bool) -> int:
    """Turn recorded production exchanges (JSONL) into golden cases; bump the suite version."""
    from modelpin.bets.capture import (
        Captured,
        bump_version,
        case_prompt_hash,
        parse_exchanges,
        sample,
    )
    from modelpin.bets.runner import read_cases
    from modelpin.load.layout import suite_paths

    root = repo if repo is not None else default_repo()
    suite_rel, cases_rel = suite_paths(suite_id)
    suite_file, cases_file = root / suite_rel, root / cases_rel
    if not suite_file.is_file() or not cases_file.is_file():
        raise CommandError(f"no suite '{suite_id}': {suite_rel} and {cases_rel} must exist",
                           hint="create suite.yaml and a cases.jsonl with at least one case")
    try:
        existing = {case_prompt_hash(c) for c in read_cases(cases_file)}
    except (OSError, ValueError) as exc:
        raise CommandError(f"{cases_rel} is not valid: {exc}", exit_code=EXIT_INVALID,
                           hint="run `modelpin validate` first") from None
    seen = set(existing)
    problems: list[str] = []
    duplicates = 0

    def fresh() -> Any:
        nonlocal duplicates
        try:
            with open(exchanges, encoding="utf-8") as fh:
                for item in parse_exchanges(fh):
                    if len(item) == 2:
                        line, error = item
                        problems.append(f"{exchanges}:{line}:{error.col}: {error}")
                        continue
                    line, digest, case = item
                    if digest in seen:
                        duplicates += 1
                        continue
                    seen.add(digest)
                    yield Captured(line, digest, case)
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {exchanges}: {exc}", exit_code=EXIT_INVALID
                               ) from None

    chosen = sample(fresh(), size, seed)
    for problem in problems:
        click.echo(f"{problem}", err=True)
    if problems and not skip_invalid:
        raise CommandError(f"{len(problems)} exchange(s) cannot become cases; nothing written",
                           exit_code=EXIT_INVALID,
                           hint="fix or drop them, or pass --skip-invalid")
    if not chosen:
        click.echo(f"no new case ({duplicates} duplicate(s)); {suite_rel} unchanged")
        return EXIT_OK
    try:
        suite_text, version = bump_version(suite_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CommandError(f"{suite_rel}: {exc}", exit_code=EXIT_INVALID) from None
    added = "".join(json.dumps(c.case.model_dump(mode="json", exclude_none=True,
                                                 exclude_defaults=True) | {"id": c.case.id},
                               ensure_ascii=False) + "\n" for c in chosen)
    body = cases_file.read_bytes()
    if body and not body.endswith(b"\n"):
        body += b"\n"
    write_atomic(cases_file, body + added.encode("utf-8"))
    write_atomic(suite_file, suite_text.encode("utf-8"))
    tenants = _tenants_of(root, suite_id)
    click.echo(f"added {len(chosen)} case(s) to {cases_rel} ({duplicates} duplicate(s), "
               f"{len(problems)} skipped); {suite_id} is now version {version}")
    if tenants:
        click.echo(f"set bets_suite: {{id: {suite_id}, version: {version}}} in: "
                   f"{', '.join(tenants)}")
    return EXIT_OK


def _tenants_of(root: Path, suite_id: str) -> list[str]:
    """Tenant files naming ``suite_id`` (by text: the fleet need not load here)."""
    out = []
    folder = root / "tenants"
    if folder.is_dir():
        for path in sorted(folder.glob("*.yaml")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if f"id: {suite_id}" in text and "bets_suite" in text:
                out.append(f"tenants/{path.name}")
    return out
