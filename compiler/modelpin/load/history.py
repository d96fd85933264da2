"""What the gate reads from the *published* history of the base (SPEC 2.1 rules 6, 7).

Only the first-parent history counts (``git log --first-parent``): the commits the base
branch itself moved through. Commits of a merged side branch never were the published
state, so a pin or a rollback seen only there is not history. Git is read here, in the
shell; the rollout engine gets plain values. Rollbacks have one reader,
``rollback_events``: the gate's records and the lifecycle's regrouping reduce it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from modelpin.model.fleet import Fleet

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when present: history reads many old file versions."""

HISTORY_DEPTH = 200
"""Commits of a tenant file searched for earlier pins (the revert rule)."""


ROLLBACK_LINES = r"rolled-back|[\\*]"
"""A changed line that may make a stage ``rolled-back`` (git extended regex): the plain
text, or a line YAML could spell it on without that text: a double-quoted escape
(``"rolled\x2dback"``) or an alias of an anchor set in an earlier commit (``*stage``).
A superset is safe: a matching commit is only read and parsed."""


def _blobs(repo: Path, pairs: list[str]) -> Iterator[bytes | None]:
    """The contents of ``<commit>:<path>`` objects, in order (None when missing)."""
    if not pairs:
        return
    request = "".join(f"{p}\n" for p in pairs).encode()
    proc = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], input=request,
                          capture_output=True, check=False)
    out, pos = proc.stdout, 0
    for _ in pairs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) < 3:  # "<object> missing": the file did not exist then
            pos = end + 1
            yield None
            continue
        size = int(header[2])
        yield out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1


def _aliases(body: bytes | None) -> tuple[str | None, Mapping[str, Any]]:
    if body is None:
        return None, {}
    try:
        doc = yaml.load(body, Loader=_LOADER)  # a safe loader (C or Python)
    except yaml.YAMLError:
        return None, {}
    if not isinstance(doc, dict):
        return None, {}
    aliases = doc.get("aliases")
    tenant = doc.get("id")
    return (tenant if isinstance(tenant, str) else None,
            aliases if isinstance(aliases, dict) else {})


StageKey = tuple[object, object, object]
"""(stage, candidate, percent) of an alias's rollout: what "the same stage" means."""


def stage_key(alias: object) -> StageKey | None:
    """The stage an alias (a raw YAML mapping) is in, or None when it has no rollout."""
    rollout = alias.get("rollout") if isinstance(alias, dict) else None
    if not isinstance(rollout, dict):
        return None
    percent = rollout.get("percent")
    if isinstance(percent, (int, float)) and not isinstance(percent, bool):
        percent = float(percent)
    return rollout.get("stage"), rollout.get("candidate"), percent


def stages_published(repo: Path, rev: str,
                     wanted: Mapping[tuple[str, str], StageKey]) -> dict[tuple[str, str], datetime]:
    """When each (tenant file, alias) entered the stage it has at ``rev``, as published:
    the commit time of the oldest first-parent commit of an unbroken run, ending at
    ``rev``, in which the alias is in that stage (SPEC 2.1 rules 5, 6).

    A ``since`` is written by the change's author and may be as old as the base commit,
    which on a quiet repository is days before the change merges; the merge into main
    is when the stage really began. Capped at ``HISTORY_DEPTH`` commits: beyond that the
    oldest commit seen is the answer (later, so never a shorter clock)."""
    if not wanted:
        return {}
    paths = sorted({path for path, _ in wanted})
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--first-parent", f"-{HISTORY_DEPTH}",
         "--format=%x00%H %ct %P", "--name-only", rev, "--", *paths],
        capture_output=True, text=True, check=False,
    )
    if log.returncode != 0:
        return {}
    pairs: list[str] = []
    times: list[tuple[int | None, str]] = []
    for record in log.stdout.split("\0")[1:]:
        lines = record.strip().splitlines()
        if not lines:
            continue
        commit, stamp, *parents = lines[0].split()
        for name in lines[1:]:
            if name in paths:
                pairs.append(f"{commit}:{name}")
                # The repository's first commit imports the fleet as it already was: its
                # stages were entered before, at their ``since``, not published by it.
                times.append((int(stamp) if parents else None, name))
    found: dict[tuple[str, str], int | None] = {}
    broken: set[tuple[str, str]] = set()
    for (when, path), body in zip(times, _blobs(repo, pairs), strict=True):
        aliases = _aliases(body)[1]
        for (where, name), key in wanted.items():
            if where != path or (where, name) in broken:
                continue
            if stage_key(aliases.get(name)) == key:
                found[(where, name)] = when
            else:
                broken.add((where, name))
    return {key: datetime.fromtimestamp(when, tz=UTC)
            for key, when in found.items() if when is not None}


def pin_history(repo: Path, rev: str, path: str) -> dict[str, set[str]]:
    """Per alias, every pin ``path`` had in the first-parent history of ``rev`` (newest
    first, capped at ``HISTORY_DEPTH`` commits)."""
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--first-parent", f"-{HISTORY_DEPTH}", "--format=%H",
         rev, "--", path],
        capture_output=True, text=True, check=False,
    )
    commits = log.stdout.split()
    if log.returncode != 0 or not commits:
        return {}
    pins: dict[str, set[str]] = {}
    for body in _blobs(repo, [f"{c}:{path}" for c in commits]):
        for name, alias in _aliases(body)[1].items():
            if isinstance(alias, dict) and isinstance(alias.get("pin"), str):
                pins.setdefault(str(name), set()).add(alias["pin"])
    return pins


RollbackSeen = dict[tuple[str, str], dict[str, bool]]
"""(tenant, alias) -> candidate -> whether any rolled-back version of the file already
listed the candidate in ``cleared_rollbacks`` (a clearance older than the rollback)."""


@dataclass(frozen=True)
class RollbackEvent:
    """An alias seen ``rolled-back`` from ``candidate`` in one published version of a
    tenant file: the file as first-parent commit ``commit`` left it."""

    tenant: str
    """The file's ``id``."""
    alias: str
    candidate: str
    committed_at: datetime
    commit: str
    path: str
    cleared: bool
    """This version already lists the candidate in the alias's ``cleared_rollbacks``."""
    landed: bool
    """The rollback landed with this commit: the file's version before it (its first
    parent's, under its old name if the commit renamed it) did not have the alias
    rolled back. Later versions that still have it (read because another line that may
    spell a rollback changed) are not landings."""


def rollback_history(repo: Path, rev: str, folder: str = "tenants") -> RollbackSeen:
    """Every rollback in the first-parent history of ``rev`` (``rollback_events``), by
    tenant, alias and candidate. ``rev`` may be a range ``A..B`` (the first-parent
    commits after ``A``)."""
    return scan_rollbacks(repo, rev, folder) or {}


def scan_rollbacks(repo: Path, rev: str, folder: str = "tenants") -> RollbackSeen | None:
    """``rollback_history``, or None when git could not be read."""
    events = rollback_events(repo, rev, folder)
    return None if events is None else rollbacks_seen(events)


def rollbacks_seen(events: Iterable[RollbackEvent]) -> RollbackSeen:
    """The rollbacks on record before clearances: which candidates each alias was rolled
    back from, and whether a rolled-back version already carried the clearance."""
    seen: RollbackSeen = {}
    for event in events:
        entry = seen.setdefault((event.tenant, event.alias), {})
        entry[event.candidate] = entry.get(event.candidate, False) or event.cleared
    return seen


_MAY_ROLL_BACK = re.compile(ROLLBACK_LINES.encode())
"""A file version without this text has no alias rolled back (``ROLLBACK_LINES``): it
is not parsed."""


def _rolled_back_in(body: bytes | None) -> dict[str, tuple[str, bool]]:
    """``_rolled_back`` of a file version (nothing for a missing or unreadable one)."""
    if body is None or not _MAY_ROLL_BACK.search(body):
        return {}
    return _rolled_back(_aliases(body)[1])


def _rolled_back(aliases: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """alias -> (candidate, cleared) for every alias of a file version that is rolled back."""
    out: dict[str, tuple[str, bool]] = {}
    for name, alias in aliases.items():
        if not isinstance(alias, dict) or not isinstance(alias.get("rollout"), dict):
            continue
        rollout = alias["rollout"]
        candidate = rollout.get("candidate")
        if rollout.get("stage") != "rolled-back" or not isinstance(candidate, str):
            continue
        cleared = alias.get("cleared_rollbacks")
        out[str(name)] = (candidate, isinstance(cleared, list) and candidate in cleared)
    return out


def rollback_events(repo: Path, rev: str, folder: str = "tenants"
                    ) -> list[RollbackEvent] | None:
    """Every alias seen rolled back in the first-parent history of ``rev``, oldest
    first; None when git could not be read. The one reader of rollbacks from git: the
    gate's records (``rollback_history``) and the lifecycle's regrouping (when each
    rollback landed) are reductions of it.

    One ``git log -G`` walk finds the commits whose diff (against the first parent, for
    a merge) adds or removes a line that may spell a rollback (``ROLLBACK_LINES``) and
    names the blobs of the tenant files they changed, before and after (``--raw``);
    only those are read, with one ``git cat-file --batch``. A later version of a file
    is compared with the one read before it (no commit in between changed such a line,
    so none changed a rollback); the first version read of each file is compared with
    its first parent's (the blob ``--raw`` names). ``rev`` may be a range ``A..B``."""
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--first-parent", "--diff-merges=first-parent",
         "--format=%x00%H %ct", "--raw", "--no-abbrev", f"-G{ROLLBACK_LINES}", rev, "--",
         folder],
        capture_output=True, text=True, check=False,
    )
    if log.returncode != 0:
        return None
    versions: list[tuple[str, int, str, str, str | None, str | None]] = []
    """(commit, time, path, its path in the first parent, blob, the first parent's blob
    when this is the first version read of the path), oldest first."""
    seen_paths: set[str] = set()
    for record in reversed(log.stdout.split("\0")[1:]):
        lines = record.strip().splitlines()
        if not lines:
            continue
        commit, ct = lines[0].split()
        for line in lines[1:]:
            # :<old mode> <new mode> <old blob> <new blob> <status>\t<path>[\t<new path>]
            meta, _, names = line.partition("\t")
            fields, paths = meta.split(), names.split("\t")
            if not line.startswith(":") or len(fields) != 5:
                continue
            blob, parent = (None if not b.strip("0") else b for b in (fields[3], fields[2]))
            path, old = paths[-1], paths[0]
            versions.append((commit, int(ct), path, old, blob,
                             None if path in seen_paths else parent))
            seen_paths.add(path)
    wanted = sorted({b for v in versions for b in v[4:] if b is not None})
    blobs = dict(zip(wanted, _blobs(repo, wanted), strict=True))
    before: dict[str, dict[str, tuple[str, bool]]] = {}
    """Per path: the rolled-back aliases of its version read last."""
    events: list[RollbackEvent] = []
    for commit, stamp, path, old, blob, parent in versions:
        body = blobs.get(blob) if blob is not None else None
        parent_body = blobs.get(parent) if parent is not None else None
        if old != path:
            before.pop(old, None)  # renamed away: a file made there later is another
        if body is None:  # the commit deleted the file
            before[path] = {}
            continue
        tenant, aliases = _aliases(body) if _MAY_ROLL_BACK.search(body) else ("", {})
        rolled = _rolled_back(aliases)
        prior = before.get(path)
        if prior is None:  # the first version read: compare with the first parent's
            prior = _rolled_back_in(parent_body) if rolled or tenant is None else {}
        if tenant is None:  # unreadable in this commit: what was rolled back still is
            before[path] = prior
            continue
        when = datetime.fromtimestamp(stamp, tz=UTC)
        events += [RollbackEvent(tenant, name, candidate, when, commit, path, cleared,
                                 name not in prior)
                   for name, (candidate, cleared) in rolled.items()]
        before[path] = rolled
    return events


def open_records(seen: RollbackSeen, base: Fleet) -> dict[tuple[str, str], set[str]]:
    """The rollbacks still on record: every one seen, unless the base's alias lists the
    candidate in ``cleared_rollbacks`` and that clearance is newer than every rollback of
    it (no rolled-back version of the file already carried it)."""
    records: dict[tuple[str, str], set[str]] = {}
    for (tenant_id, alias_name), candidates in seen.items():
        tenant = base.tenants.get(tenant_id)
        alias = tenant.aliases.get(alias_name) if tenant else None
        cleared = set(alias.cleared_rollbacks) if alias else set()
        for candidate, stale in candidates.items():
            if candidate in cleared and not stale:
                continue
            records.setdefault((tenant_id, alias_name), set()).add(candidate)
    return records


def records_at(repo: Path, rev: str, fleet: Fleet,
               seen: RollbackSeen | None = None) -> dict[tuple[str, str], set[str]]:
    """The rollbacks on record for ``fleet`` read at ``rev``: what every judge of a
    rollout (check, explain, the bot, the guard, lifecycle) passes to ``FleetContext``.
    Outside a git repository there is no published history: no records. ``seen``: the
    history already read (``explain``: ``history_cache``)."""
    return open_records(rollback_history(repo, rev) if seen is None else seen, fleet)


def stages_entered(repo: Path, rev: str, fleet: Fleet,
                   only: Iterable[tuple[str, str]] | None = None
                   ) -> dict[tuple[str, str], datetime]:
    """Per (tenant, alias) in flight in ``fleet`` (as read at ``rev``; or only those of
    ``only``): when its current stage was published on the first-parent history of
    ``rev`` (``stages_published``). What every judge of a rollout (check, explain, the
    bot) passes to ``FleetContext.entered``: the soak and shadow clocks start at the later
    of it and ``since`` (``transitions.clock_start``). Outside a git repository, or for a
    stage the repository's first commit already had: absent (the clock runs from since)."""
    pairs = list(only) if only is not None else [
        (tid, name) for tid, t in fleet.tenants.items() for name in t.aliases]
    wanted: dict[tuple[str, str], StageKey] = {}
    owner: dict[tuple[str, str], tuple[str, str]] = {}
    for tid, name in pairs:
        tenant = fleet.tenants.get(tid)
        alias = tenant.aliases.get(name) if tenant else None
        rollout = alias.rollout if alias else None
        if rollout is None or rollout.stage == "rolled-back":
            continue
        percent = None if rollout.percent is None else float(rollout.percent)
        key = (fleet.tenant_path(tid), name)
        wanted[key] = (rollout.stage, rollout.candidate, percent)
        owner[key] = (tid, name)
    return {owner[key]: at for key, at in stages_published(repo, rev, wanted).items()}


def paths_in_history(repo: Path, rev: str, paths: Iterable[str]) -> set[str]:
    """Which of ``paths`` (files absent at ``rev``, e.g. a tenant file a change adds)
    existed in the first-parent history of ``rev``: one ``git log`` for all of them."""
    wanted = sorted(set(paths))
    if not wanted:
        return set()
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--first-parent", "--format=", "--name-only", rev,
         "--", *wanted],
        capture_output=True, text=True, check=False,
    )
    if log.returncode != 0:
        return set()
    return {line for line in log.stdout.splitlines() if line in wanted}
