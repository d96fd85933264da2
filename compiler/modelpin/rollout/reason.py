"""Why a transition is blocked: a stable code, a sentence with the numbers, a field."""

from __future__ import annotations

from dataclasses import dataclass

ModelPath = tuple[str | int, ...]
"""Path of a field inside a tenant file, e.g. ``("aliases", "primary", "rollout", "percent")``."""


@dataclass(frozen=True)
class Reason:
    """One blocking reason. ``code`` is an ``MP1xx`` code of ``modelpin.diagnostics``.

    ``path`` names the field of the tenant file the reason is about (the changed field
    when judging a change), so a caller holding the document can report a position;
    with ``file`` set, a field of that file instead.
    """

    code: str
    message: str
    path: ModelPath = ()
    hint: str | None = None
    file: str | None = None
    """The repo path of the file the reason is about when it is not the tenant's own
    (an evidence file); ``path`` is then a path inside that file."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def alias_path(alias: str, *rest: str | int) -> ModelPath:
    return ("aliases", alias, *rest)


def rollout_path(alias: str, *rest: str | int) -> ModelPath:
    return ("aliases", alias, "rollout", *rest)
