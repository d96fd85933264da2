"""Facts the lifecycle reads from git: rollbacks that landed, when a model was last named.

Read from one revision's first-parent history (the remote's main), with one ``git log``
per question; a repository that is not git yields no history (nothing is proposed).
Rollbacks are read by :func:`modelpin.load.history.rollback_events`, the gate's reader.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from modelpin.load.history import RollbackEvent, rollback_events


def _git(repo: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)
    return proc.stdout if proc.returncode == 0 else None


def rollbacks(repo: Path, rev: str) -> dict[str, list[datetime]]:
    """Per tenant id: when each of its rollbacks landed on ``rev``'s first parents,
    newest first."""
    return landings(rollback_events(repo, rev) or [])


def landings(events: Iterable[RollbackEvent]) -> dict[str, list[datetime]]:
    """Per tenant id, newest first: when each rollback landed, from the events of
    ``load.history.rollback_events`` (oldest first; the one reader of rollbacks from
    git, which the gate's records reduce too)."""
    found: dict[str, list[datetime]] = {}
    for event in reversed(list(events)):  # oldest first -> newest first
        if event.landed:
            found.setdefault(event.tenant, []).append(event.committed_at)
    return found


def last_mentioned(repo: Path, rev: str, models: Mapping[str, str]
                   ) -> dict[str, datetime | None]:
    """Per model id (-> its file): the last commit that changed how often tenant files
    name it; for a model no tenant names today, when it stopped being used. A model no
    tenant ever named counts from the commit that added its file. None: git has neither.
    Models git cannot answer for are left out.
    """
    result: dict[str, datetime | None] = {}
    for mid, path in models.items():
        out = _git(repo, "log", "--first-parent", "-1", "--format=%ct", f"-S{mid}", rev,
                   "--", "tenants/")
        if out is None:
            continue
        if not out.strip():
            out = _git(repo, "log", "-1", "--format=%ct", "--diff-filter=A", rev, "--",
                       path) or ""
        result[mid] = datetime.fromtimestamp(int(out.split()[0]), tz=UTC) if out.strip() \
            else None
    return result


def pins_changed(repo: Path, rev: str, folder: str = "tenants") -> dict[str, datetime]:
    """Per tenant file path: the newest first-parent commit that changed a ``pin:`` line
    in it (any alias's: an upper bound on how long each pin has been unchanged)."""
    out = _git(repo, "log", "--first-parent", "--format=@@commit %ct", "--name-only",
               "-G^[[:space:]]*pin:", rev, "--", f"{folder}/")
    found: dict[str, datetime] = {}
    when: datetime | None = None
    for line in (out or "").splitlines():
        if line.startswith("@@commit "):
            when = datetime.fromtimestamp(int(line.split()[1]), tz=UTC)
        elif line.strip() and when is not None:
            found.setdefault(line.strip(), when)  # newest first
    return found
