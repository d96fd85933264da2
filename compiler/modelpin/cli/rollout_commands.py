"""``modelpin explain``, ``check`` and ``plan``: the rollout engine on one or two trees.

``check`` and ``plan`` read the base and head commits straight from git (no checkout),
load both with one parse cache (unchanged files are parsed once), judge only the
changed tenants, and map each reason's model path to ``file:line:col`` in the head.
The revert rule needs history: the pins a tenant file had in the base's history are
read here (``git log``), never in the pure engine.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click

from modelpin import attestation
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    cache_directory,
    cache_options,
    default_repo,
    emit_diagnostics,
    format_option,
    judgement_now,
    judgement_now_option,
    repo_option,
    warn,
    without_gc,
)
from modelpin.diagnostics import Diagnostic, error, has_errors
from modelpin.load.document import did_you_mean
from modelpin.load.fleet import LoadResult, ParseCache, load_fleet
from modelpin.load.history import paths_in_history, pin_history, records_at, stages_entered
from modelpin.load.history_cache import remembered_rollback_history
from modelpin.load.snapshot import load_cached
from modelpin.load.tree import DirectoryTree, GitTree, SourceTree, TreeError
from modelpin.model.fleet import Fleet
from modelpin.model.tenant import format_time
from modelpin.rollout import gates
from modelpin.rollout.change import Change, changed_tenants, judge_tenant
from modelpin.rollout.plan import build_plan, plan_json, render_markdown
from modelpin.rollout.reason import Reason
from modelpin.rollout.shown import ShownChanges, show_changes
from modelpin.rollout.state import AliasState
from modelpin.rollout.transitions import (
    FleetContext,
    TransitionOption,
    allowed_transitions,
    clock_start,
)


def _git_tree(repo: Path, rev: str) -> GitTree:
    try:
        return GitTree(repo, rev)
    except TreeError as exc:
        raise CommandError(str(exc)) from None


def _fleet_or_fail(result: LoadResult, what: str) -> Fleet:
    if result.fleet is None or has_errors(result.diagnostics):
        raise CommandError(
            f"{what} is not a valid fleet; run `modelpin validate` on it", exit_code=EXIT_INVALID
        )
    return result.fleet


def _require_descent(root: Path, base: GitTree, head: GitTree, base_rev: str,
                     head_rev: str) -> None:
    """SPEC 2.1 rule 5: the head descends from the base, or nothing is judged (exit 2)."""
    proc = subprocess.run(
        ["git", "-C", str(root), "merge-base", "--is-ancestor", base.commit, head.commit],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode == 0:
        return
    if proc.returncode == 1:
        raise CommandError(
            f"head {head_rev} ({head.commit[:12]}) does not descend from base {base_rev} "
            f"({base.commit[:12]}): the change would be judged against a base it does not "
            "build on",
            hint=f"rebase the branch on {base_rev}, or merge {base_rev} into it",
        )
    raise CommandError(f"cannot tell whether {head_rev} descends from {base_rev}: "
                       f"{proc.stderr.strip()}")


def is_shallow(root: Path) -> bool:
    """Whether ``root`` is a shallow clone (``git clone --depth N``, CI's default checkout)."""
    proc = subprocess.run(["git", "-C", str(root), "rev-parse", "--is-shallow-repository"],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "true"


SHALLOW_HINT = ("fetch the whole history: `git fetch --unshallow`, or in GitHub Actions "
                "`actions/checkout` with `fetch-depth: 0`")


def _refuse_shallow(root: Path) -> None:
    """SPEC 2.1 rules 5-7 read the base's published history (earlier pins, rollbacks on
    record, when a stage was published). A shallow clone cuts it off, and what is cut off
    would read as "never happened": a rollback on record forgotten, a stage's clock
    started at its author-written ``since``. The gate refuses to judge without it."""
    if is_shallow(root):
        raise CommandError(
            f"{root} is a shallow clone: the history check reads (first-parent pins, "
            "rollbacks on record, when each stage was published) is missing, so nothing "
            "is judged",
            hint=SHALLOW_HINT,
        )


@dataclass
class _Judged:
    base: FleetContext
    head: FleetContext
    base_result: LoadResult
    head_result: LoadResult
    changes: list[Change]
    now: datetime
    base_tree: GitTree
    head_tree: GitTree
    shown: ShownChanges

    def locate(self, tenant: str, reason: Reason) -> str:
        return ":".join(str(p) for p in self.position(tenant, reason))

    def position(self, tenant: str, reason: Reason) -> tuple[str, int, int]:
        if reason.file is not None:  # about another file (evidence): a path inside it
            for result in (self.head_result, self.base_result):
                doc = result.documents.get(reason.file)
                if doc is not None:
                    line, col = doc.position(reason.path)
                    return reason.file, line, col
            return reason.file, 1, 1
        sides = [(self.head, self.head_result), (self.base, self.base_result)]
        found = self.head.fleet.tenants.get(tenant)
        at = reason.path
        deleted = found is not None and len(at) >= 2 and at[0] == "aliases" and (
            at[1] not in found.aliases)
        if deleted:
            sides.reverse()  # a deleted alias: its line in the base
        for ctx, result in sides:
            if tenant in ctx.fleet.tenants:
                path = ctx.fleet.tenant_path(tenant)
                doc = result.documents.get(path)
                line, col = doc.position(at, key=deleted and len(at) == 2) if doc else (1, 1)
                return path, line, col
        return f"tenants/{tenant}.yaml", 1, 1

    def diagnostics(self) -> list[Diagnostic]:
        out = []
        for change in self.changes:
            where = change.tenant + (f"/{change.alias}" if change.alias else "")
            for reason in change.reasons:
                path, line, col = self.position(change.tenant, reason)
                out.append(error(reason.code, f"{where}: {reason.message}", path, line, col,
                                 hint=reason.hint))
        # Time-caused problems of the head (a pin whose model has since retired) are loud
        # warnings: they never block a change that did not introduce them (2.1 rule 9).
        out += [d for d in self.head_result.diagnostics if d.severity == "warning"
                and d.code == "MP030"]
        for item in self.shown.violations:  # invariants broken by a rule change (rule 2)
            doc = self.head_result.documents.get(item.file) or \
                self.base_result.documents.get(item.file)  # a removed file: the base's line
            line, col = doc.position(item.path) if doc else (1, 1)
            out.append(error(item.code, item.message, item.file, line, col, hint=item.hint))
        return out

    def source_lines(self, path: str) -> list[str] | None:
        return self.head_result.source_lines(path) or self.base_result.source_lines(path)


def _judge(repo: Path | None, base_rev: str, head_rev: str, now_text: str | None,
           fmt: str = "text") -> _Judged:
    root = repo if repo is not None else default_repo()
    _refuse_shallow(root)
    base_tree = _git_tree(root, base_rev)
    head_tree = _git_tree(root, head_rev)
    _require_descent(root, base_tree, head_tree, base_rev, head_rev)
    now = judgement_now(now_text)
    cache: ParseCache = {}
    base_result = load_fleet(base_tree, base_tree.commit_time, cache=cache)
    head_result = load_fleet(head_tree, now, cache=cache)
    if has_errors(head_result.diagnostics) or head_result.fleet is None:
        rendered = fmt if fmt in ("json", "github") else "text"
        emit_diagnostics(head_result.diagnostics, rendered, head_result.source_lines,
                         {"head": head_tree.commit, "valid": False})
        raise CommandError(f"head {head_rev} is not a valid fleet", exit_code=EXIT_INVALID)
    base_fleet = _fleet_or_fail(base_result, f"base {base_rev}")
    records = records_at(root, base_tree.commit, base_fleet)
    changed = changed_tenants(base_fleet, head_result.fleet)
    # When each base stage the change moves was published (the clocks' start, rule 5).
    entered = stages_entered(root, base_tree.commit, base_fleet,
                             _moved(base_fleet, head_result.fleet, changed))
    base = FleetContext.build(base_fleet, records, entered)
    # Evidence and approvals count only as the BASE's trust lists say (SPEC 2.1 rules 3, 4).
    head = FleetContext.build(attestation.authenticate_fleet(head_result.fleet, base_fleet),
                              records, entered)
    changes: list[Change] = []
    returning = paths_in_history(root, base_tree.commit, [
        head.fleet.tenant_path(t) for t in changed
        if t not in base.fleet.tenants and t in head.fleet.tenants])
    for tenant_id in changed:
        history = _history_for(root, base_tree, base, head, tenant_id, returning)
        changes += judge_tenant(base, head, tenant_id, base_time=base_tree.commit_time,
                                now=now, previous_pins=history)
    # Evidence added or changed by the change but not counted: a violation on its file,
    # even when no transition uses it (once: a transition may have said it already).
    said = {(r.file, r.code, r.message) for c in changes for r in c.reasons if r.file}
    changes += [
        Change(key[0], None, None, None, None, (reason,))
        for key, reason in gates.evidence_change_reasons(base_fleet, head.fleet, now)
        if (reason.file, reason.code, reason.message) not in said
    ]
    shown = show_changes(base, head, now, base_signals=base_result.signals,
                         head_signals=head_result.signals)
    return _Judged(base, head, base_result, head_result, changes, now, base_tree, head_tree,
                   shown)


def _moved(base: Fleet, head: Fleet, changed: list[str]) -> list[tuple[str, str]]:
    """The (tenant, alias) pairs of changed tenants whose alias the change edits."""
    out = []
    for tenant_id in changed:
        old, new = base.tenants.get(tenant_id), head.tenants.get(tenant_id)
        if old is not None and new is not None:
            out += [(tenant_id, name) for name, alias in old.aliases.items()
                    if new.aliases.get(name) != alias]
    return out


def _history_for(
    root: Path, base_tree: GitTree, base: FleetContext, head: FleetContext, tenant_id: str,
    returning: set[str],
) -> Mapping[str, Collection[str]]:
    """Earlier pins, read only where a pin changes without a rollout: a repin (the pins
    before the base pin) and an alias the base does not have (every pin that name had:
    a re-added alias or tenant takes its traffic back). ``returning``: the paths of new
    tenant files that existed before (``paths_in_history``)."""
    old, new = base.fleet.tenants.get(tenant_id), head.fleet.tenants.get(tenant_id)
    if new is None:
        return {}
    if old is None:
        path = head.fleet.tenant_path(tenant_id)
        return pin_history(root, base_tree.commit, path) if path in returning else {}
    repinned = [
        name for name, alias in new.aliases.items()
        if name in old.aliases and old.aliases[name].pin != alias.pin
        and old.aliases[name].rollout is None and alias.rollout is None
    ]
    added = [name for name in new.aliases if name not in old.aliases]
    if not repinned and not added:
        return {}
    history = pin_history(root, base_tree.commit, base.fleet.tenant_path(tenant_id))
    out = {name: history.get(name, set()) - {old.aliases[name].pin} for name in repinned}
    out.update({name: history[name] for name in added if name in history})
    return out


@click.command()
@repo_option
@click.option("--base", "base_rev", required=True, metavar="REF", help="The base revision.")
@click.option("--head", "head_rev", default="HEAD", show_default=True, metavar="REF")
@judgement_now_option
@format_option("text", "github", "json")
@without_gc
def check(repo: Path | None, base_rev: str, head_rev: str, now_text: str | None,
          fmt: str) -> int:
    """Judge every tenant change between two commits as a stage transition."""
    judged = _judge(repo, base_rev, head_rev, now_text, fmt)
    diagnostics = judged.diagnostics()
    violations = sum(1 for d in diagnostics if d.severity == "error")
    tenants = {c.tenant for c in judged.changes}
    summary: dict[str, object] = {
        "base": judged.base_tree.commit, "head": judged.head_tree.commit,
        "now": format_time(judged.now), "changes": len(judged.changes),
        "tenants": len(tenants), "violations": violations,
    }
    if fmt == "json":
        summary["shown"] = judged.shown.to_json()
    emit_diagnostics(diagnostics, fmt, judged.source_lines, summary)
    if fmt == "text":
        for item in judged.shown.shown:
            click.echo(f"changed: {item.file}: {item.message}")
        for effect in judged.shown.effects:
            click.echo(f"effect: {effect.message}")
    if fmt != "json":
        verdict = "violations" if violations else "ok"
        click.echo(f"{verdict}: {len(judged.changes)} change(s) in {len(tenants)} tenant(s), "
                   f"{violations} violation(s)", err=fmt == "github")
    return EXIT_INVALID if violations else EXIT_OK


@click.command()
@repo_option
@click.option("--base", "base_rev", required=True, metavar="REF", help="The base revision.")
@click.option("--head", "head_rev", default="HEAD", show_default=True, metavar="REF")
@judgement_now_option
@format_option("markdown", "json")
@without_gc
def plan(repo: Path | None, base_rev: str, head_rev: str, now_text: str | None,
         fmt: str) -> int:
    """The pull-request comment: changes, blast radius, warnings, violations.

    Exits 0 once the plan is rendered, violations or not: ``check`` is the gate.
    """
    judged = _judge(repo, base_rev, head_rev, now_text)
    result = build_plan(judged.base, judged.head, judged.changes, now=judged.now,
                        base_label=base_rev, head_label=head_rev, shown=judged.shown)
    if fmt == "json":
        click.echo(json.dumps(plan_json(result, judged.locate), indent=2, sort_keys=True))
    else:
        click.echo(render_markdown(result, judged.locate), nl=False)
    return EXIT_OK


@click.command()
@click.argument("tenant")
@click.argument("alias", required=False)
@repo_option
@click.option("--rev", default=None, metavar="REF", help="Explain this git revision.")
@judgement_now_option
@cache_options
@format_option("text", "json")
@without_gc
def explain(tenant: str, alias: str | None, repo: Path | None, rev: str | None,
            now_text: str | None, cache_dir: Path | None, no_cache: bool, fmt: str) -> int:
    """A tenant's current state, evidence, and allowed and blocked next transitions."""
    root = repo if repo is not None else default_repo()
    tree: SourceTree
    try:
        tree = GitTree(root, rev) if rev else DirectoryTree(root)
    except TreeError as exc:
        raise CommandError(str(exc)) from None
    now = judgement_now(now_text)
    directory = cache_directory(root, cache_dir, no_cache)
    if isinstance(tree, DirectoryTree) and directory is not None:
        # The work tree: parse only what changed since the last run (load/snapshot.py).
        loaded = load_cached(tree, now, directory, warn)
        result = loaded.result
        try:
            loaded.cache.save(directory, {(p, loaded.tree.blob_id(p))
                                          for p in loaded.tree.files()})
        except (OSError, ValueError, TypeError) as exc:  # a cache never fails a command
            warn(f"cannot write the compile cache to {directory}: "
                 f"{getattr(exc, 'strerror', None) or exc}")
    else:
        result = load_fleet(tree, now)
    if result.fleet is None or has_errors(result.diagnostics):
        emit_diagnostics(result.diagnostics, "text", result.source_lines, {})
        return EXIT_INVALID
    found = result.fleet.tenants.get(tenant)
    if found is None:
        guess = did_you_mean(tenant, sorted(result.fleet.tenants))
        raise CommandError(f"unknown tenant {tenant!r}", hint=guess)
    history_rev = rev or ("HEAD" if (root / ".git").exists() else None)
    if history_rev and is_shallow(root):
        warn(f"{root} is a shallow clone: rollbacks on record and when stages were "
             "published may be missing, so a transition shown allowed may be refused by "
             f"check ({SHALLOW_HINT})")
    seen = (remembered_rollback_history(root, history_rev, directory)
            if history_rev and directory is not None else None)
    records = records_at(root, history_rev, result.fleet, seen) if history_rev else {}
    entered = stages_entered(root, history_rev, result.fleet,
                             [(tenant, name) for name in found.aliases]) if history_rev else {}
    ctx = FleetContext.build(result.fleet, records, entered)
    if alias is not None and alias not in found.aliases:
        raise CommandError(f"tenant {tenant} has no alias {alias!r}",
                           hint=f"aliases: {', '.join(sorted(found.aliases))}")
    history: dict[str, set[str]] = {}
    if history_rev:
        history = pin_history(root, history_rev, ctx.fleet.tenant_path(tenant))
    names = [alias] if alias else sorted(found.aliases)
    report = []
    for name in names:
        state = AliasState.of(found.aliases[name])
        group = ctx.fleet.policy.groups[found.group]
        evidence = None
        if state.candidate and state.in_flight:
            evidence = gates.evidence_gate(ctx.fleet, found, name, state.pin, state.candidate,
                                           group, now, ())
        options = allowed_transitions(ctx, tenant, name, now,
                                      previous_pins=history.get(name, set()) - {state.pin})
        report.append((name, state, evidence, options,
                       clock_start(state.since, ctx.entered.get((tenant, name)))))
    if fmt == "json":
        click.echo(json.dumps(_explain_json(tenant, found.group, now, report), indent=2))
        return EXIT_OK
    click.echo(f"tenant {tenant} (group {found.group}{', frozen' if found.freeze else ''}) "
               f"at {format_time(now)}")
    for name, state, evidence, options, _ in report:
        click.echo(f"\n{name}: {state.label()}")
        if state.since is not None:
            click.echo(f"  since {format_time(state.since)} "
                       f"({gates.format_span(now - state.since)} ago)")
            start = clock_start(state.since, ctx.entered.get((tenant, name)))
            if start is not None and start != state.since:
                click.echo(f"  published on main {format_time(start)} "
                           f"({gates.format_span(now - start)} ago): soak and shadow count "
                           "from here")
        if state.candidate and state.kind != "rolled-back":
            click.echo(f"  pin {state.pin}, candidate {state.candidate}")
        if evidence is not None:
            verdict = "passes" if evidence.passes else "does not pass"
            click.echo(f"  evidence: {evidence.summary()} — {verdict}")
            for reason in evidence.reasons:
                click.echo(f"    {reason.code} {reason.message}")
        click.echo("  next transitions:")
        for option in options:
            mark = "allowed" if option.allowed else "blocked"
            note = f" ({option.note})" if option.note else ""
            click.echo(f"    [{mark}] {option.kind} -> {option.target.label()}{note}")
            for reason in option.reasons:
                click.echo(f"        {reason.code} {reason.message}")
    return EXIT_OK


_Report = list[tuple[str, AliasState, gates.EvidenceCheck | None, list[TransitionOption],
                     datetime | None]]


def _explain_json(tenant: str, group: str, now: datetime, report: _Report) -> dict[str, object]:
    aliases = []
    for name, state, evidence, options, start in report:
        aliases.append({
            "alias": name,
            "state": {"stage": state.kind, "pin": state.pin, "candidate": state.candidate,
                      "percent": state.percent,
                      "since": format_time(state.since) if state.since else None,
                      "clock_from": format_time(start) if start else None},
            "evidence": None if evidence is None else {
                "summary": evidence.summary(), "passes": evidence.passes,
                "reasons": [{"code": r.code, "message": r.message} for r in evidence.reasons]},
            "transitions": [
                {"kind": o.kind, "target": o.target.label(), "allowed": o.allowed,
                 "note": o.note,
                 "reasons": [{"code": r.code, "message": r.message} for r in o.reasons]}
                for o in options
            ],
        })
    return {"tenant": tenant, "group": group, "now": format_time(now), "aliases": aliases}
