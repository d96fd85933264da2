"""Rollbacks seen in a commit's first-parent history, remembered per commit for ``explain``.

``history.rollback_history`` reads the whole first-parent history of a commit with
``git log -G`` (seconds on a large fleet). Its answer is a function of the commit id
alone: a commit names its parents, so its first-parent history never changes. The
answer is kept in ``rollback-history.json`` beside the compile cache (outside the work
tree, JSON, stamped with modelpin's code version: ``load/cache.py``), keyed by commit
id. For a commit not yet known, the nearest remembered first-parent ancestor's answer
is extended by scanning only the commits after it (``git log -G`` over a range reads
each commit exactly as the full scan does, and the scan's result is a union over
commits).

Only ``explain`` uses it: the gate (``check``, ``plan``), the bot, the guard and
lifecycle always read git, so no file on disk can change what they decide.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

from modelpin.load import plain
from modelpin.load.cache import stamp
from modelpin.load.history import RollbackSeen, rollback_history, scan_rollbacks

HISTORY_FILE = "rollback-history.json"
KEEP = 8
"""Commits remembered (the newest ones written)."""
ANCESTORS = 200
"""First-parent ancestors searched for a remembered answer."""


def _git(repo: Path, *args: str) -> list[str] | None:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)
    return proc.stdout.split() if proc.returncode == 0 else None


def _read(directory: Path) -> dict[str, RollbackSeen]:
    """Commit id -> rollbacks seen; empty for anything unexpected (never an error)."""
    try:
        doc = plain.loads((directory / HISTORY_FILE).read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if not (isinstance(doc, dict) and doc.get("stamp") == stamp()
            and isinstance(doc.get("commits"), dict)):
        return {}
    out: dict[str, RollbackSeen] = {}
    for commit, rows in doc["commits"].items():
        seen = _seen(rows)
        if seen is None:
            return {}
        out[str(commit)] = seen
    return out


def _seen(rows: Any) -> RollbackSeen | None:
    if not isinstance(rows, list):
        return None
    seen: RollbackSeen = {}
    for row in rows:
        if not (isinstance(row, list) and len(row) == 4
                and all(isinstance(x, str) for x in row[:3]) and isinstance(row[3], bool)):
            return None
        tenant, alias, candidate, stale = row
        entry = seen.setdefault((tenant, alias), {})
        entry[candidate] = entry.get(candidate, False) or stale
    return seen


def _rows(seen: RollbackSeen) -> list[list[Any]]:
    return [[tenant, alias, candidate, stale]
            for (tenant, alias), candidates in sorted(seen.items())
            for candidate, stale in sorted(candidates.items())]


def merge(older: RollbackSeen, newer: RollbackSeen) -> RollbackSeen:
    """The rollbacks of two disjoint runs of commits (``rollback_history`` of both)."""
    out: RollbackSeen = {key: dict(value) for key, value in older.items()}
    for key, candidates in newer.items():
        entry = out.setdefault(key, {})
        for candidate, stale in candidates.items():
            entry[candidate] = entry.get(candidate, False) or stale
    return out


def remembered_rollback_history(repo: Path, rev: str, directory: Path,
                                write: bool = True) -> RollbackSeen:
    """``rollback_history(repo, rev)``, read from or written to ``directory``."""
    resolved = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not resolved:
        return rollback_history(repo, rev)
    commit = resolved[0]
    known = _read(directory)
    if commit in known:
        return known[commit]
    chain = _git(repo, "rev-list", "--first-parent", f"-{ANCESTORS}", commit) or []
    ancestor = next((c for c in chain[1:] if c in known), None)
    scanned = scan_rollbacks(repo, commit if ancestor is None else f"{ancestor}..{commit}")
    if scanned is None:
        return rollback_history(repo, commit)  # git failed: nothing is remembered
    seen = scanned if ancestor is None else merge(known[ancestor], scanned)
    if write:
        kept = {c: known[c] for c in chain if c in known and c != commit}
        keep = dict(list({commit: seen, **kept}.items())[:KEEP])
        with contextlib.suppress(OSError, ValueError):  # a cache never fails a command
            plain.write_atomically(directory / HISTORY_FILE, plain.dumps(
                {"stamp": stamp(), "commits": {c: _rows(s) for c, s in keep.items()}}))
    return seen
