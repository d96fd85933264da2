"""What the gate reads from the *published* history of the base (SPEC 2.1 rules 6, 7).

Only the first-parent history counts (``git log --first-parent``): the commits the base
branch itself moved through. Commits of a merged side branch never were the published
state, so a pin or a rollback seen only there is not history. Git is read here, in the
shell; the rollout engine gets plain values.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from modelpin.model.fleet import Fleet

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when present: history reads many old file versions."""

HISTORY_DEPTH = 200
"""Commits of a tenant file searched for earlier pins (the revert rule)."""


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


def rollback_history(repo: Path, rev: str, folder: str = "tenants") -> RollbackSeen:
    """Every rollback in the first-parent history of ``rev``: the tenant file versions
    in which an alias is ``rolled-back``, found with ``git log -G`` (only commits whose
    diff adds or removes a ``rolled-back`` line are read)."""
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--first-parent", "--format=%H", "--name-only",
         "-Grolled-back", rev, "--", folder],
        capture_output=True, text=True, check=False,
    )
    if log.returncode != 0:
        return {}
    pairs: list[str] = []
    commit = ""
    for line in log.stdout.splitlines():
        if len(line) == 40 and all(c in "0123456789abcdef" for c in line):
            commit = line
        elif line.strip() and commit:
            pairs.append(f"{commit}:{line}")
    seen: RollbackSeen = {}
    for body in _blobs(repo, pairs):
        tenant, aliases = _aliases(body)
        if tenant is None:
            continue
        for name, alias in aliases.items():
            if not isinstance(alias, dict) or not isinstance(alias.get("rollout"), dict):
                continue
            rollout = alias["rollout"]
            candidate = rollout.get("candidate")
            if rollout.get("stage") != "rolled-back" or not isinstance(candidate, str):
                continue
            cleared = alias.get("cleared_rollbacks")
            stale = isinstance(cleared, list) and candidate in cleared
            entry = seen.setdefault((tenant, str(name)), {})
            entry[candidate] = entry.get(candidate, False) or stale
    return seen


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
