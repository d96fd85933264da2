"""Facts the lifecycle reads from git: rollbacks that landed, when a model was last named.

Read from one revision's first-parent history (the remote's main), with one ``git log``
per question; a repository that is not git yields no history (nothing is proposed).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

_ROLLED_BACK = re.compile(r"^\+\s*stage:\s*['\"]?rolled-back['\"]?\s*(#.*)?$")


def _git(repo: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)
    return proc.stdout if proc.returncode == 0 else None


def rollbacks(repo: Path, rev: str) -> dict[str, list[datetime]]:
    """Per tenant id (file stem): when a commit on ``rev``'s first parents rolled it back."""
    out = _git(repo, "log", "--first-parent", "--diff-merges=first-parent", "-p",
               "--unified=0", "--format=@@commit %ct", "-G", "stage:.*rolled-back", rev,
               "--", "tenants/")
    found: dict[str, list[datetime]] = {}
    when: datetime | None = None
    tenant: str | None = None
    for line in (out or "").splitlines():
        if line.startswith("@@commit "):
            when = datetime.fromtimestamp(int(line.split()[1]), tz=UTC)
        elif line.startswith("+++ "):
            path = line[4:].removeprefix("b/")
            tenant = Path(path).stem if path.startswith("tenants/") else None
        elif tenant and when and _ROLLED_BACK.match(line):
            found.setdefault(tenant, []).append(when)
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
