"""The acceptance corpus: a hand-written valid fleet and the bad trees derived from it.

``positive/base`` is a small valid fleet written as a user would keep it. Each folder
under ``negative/`` holds only the files that differ from it, and ``expected.yaml``:

```yaml
delete: [policies/artifact.yaml]   # optional: files of the base removed in this case
exit: 1                            # optional, default 1
diagnostics:                       # every diagnostic the case yields, no more, no less
  - {code: MP010, file: tenants/acme-legal.yaml, line: 5, col: 1,
     message: "unknown key 'failure_polcy'",   # optional: substring of the message
     hint: "did you mean 'failure_policy'?",   # optional: substring of the hint
     severity: error}                          # optional, default error
```
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
BASE = HERE / "positive" / "base"
NEGATIVE = HERE / "negative"
NOW = "2026-03-25T12:00:00Z"
"""The time the corpus is evaluated at (sunset and retirement depend on it)."""


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    expected: dict[str, Any]

    @property
    def exit(self) -> int:
        return int(self.expected.get("exit", 1))

    @property
    def diagnostics(self) -> list[dict[str, Any]]:
        return list(self.expected["diagnostics"])

    def overlay_files(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*")
                      if p.is_file() and p.name != "expected.yaml")

    def materialize(self, root: Path) -> Path:
        """The base fleet with this case's files laid over it, under ``root``."""
        shutil.copytree(BASE, root)
        for rel in self.expected.get("delete", []):
            (root / rel).unlink()
        for src in self.overlay_files():
            dest = root / src.relative_to(self.folder)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        return root


def cases() -> list[Case]:
    found = []
    for folder in sorted(NEGATIVE.iterdir()):
        expected = folder / "expected.yaml"
        if expected.is_file():
            found.append(Case(folder.name, folder, yaml.safe_load(expected.read_text())))
    return found
