"""Edits of a tenant file's text that keep comments, key order and layout.

Each function takes the file's text and returns the new text; a bot PR's diff then
shows only the fields that changed. ruamel.yaml's round trip keeps comments and order;
indentation is detected by trying the common layouts and keeping the one that
reproduces the original text, so untouched lines stay byte-identical.

Rollout fields (SPEC section 1): candidate, stage, percent, since, reason,
prompt_changes_ack, approvals. Times are written as ``2026-03-20T10:00:00Z``.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (2, 2, 2), (4, 4, 0))
_FIELD_ORDER = ("candidate", "stage", "percent", "since", "reason", "prompt_changes_ack")


class YamlEditError(Exception):
    """The tenant file does not have what the edit needs (alias, rollout)."""


class _Timestamp(str):
    """A UTC time written as a plain YAML timestamp, never quoted."""


def format_time(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _yaml(layout: tuple[int, int, int]) -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    mapping, sequence, offset = layout
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    y.representer.add_representer(
        _Timestamp, lambda rep, v: rep.represent_scalar("tag:yaml.org,2002:timestamp", str(v))
    )
    y.representer.add_representer(
        type(None), lambda rep, v: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


def _dump(y: YAML, data: Any) -> str:
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def _load(text: str) -> tuple[YAML, Any]:
    """Parse with the layout that round-trips ``text`` best (exactly, if any does)."""
    best: tuple[int, YAML, Any] | None = None
    for layout in _LAYOUTS:
        y = _yaml(layout)
        data = y.load(text)
        dumped = _dump(y, data)
        if dumped == text:
            return y, data
        distance = sum(a != b for a, b in zip(dumped.splitlines(), text.splitlines(), strict=False))
        if best is None or distance < best[0]:
            best = (distance, y, data)
    assert best is not None
    return best[1], best[2]


def _rollout(data: Any, alias: str) -> CommentedMap:
    alias_map = _alias(data, alias)
    rollout = alias_map.get("rollout")
    if not isinstance(rollout, CommentedMap):
        raise YamlEditError(f"alias {alias!r} has no rollout in flight")
    return rollout


def _alias(data: Any, alias: str) -> CommentedMap:
    aliases = data.get("aliases") if isinstance(data, CommentedMap) else None
    if not isinstance(aliases, CommentedMap) or not isinstance(aliases.get(alias), CommentedMap):
        raise YamlEditError(f"alias {alias!r} not found in the tenant file")
    return aliases[alias]  # type: ignore[no-any-return]


def _set(rollout: CommentedMap, key: str, value: Any) -> None:
    """Set ``key``, keeping its place; a new key goes where the SPEC order puts it."""
    if key in rollout:
        if rollout[key] != value:
            rollout[key] = value
        return
    rank = _FIELD_ORDER.index(key)
    position = 0
    for i, existing in enumerate(rollout):
        if existing in _FIELD_ORDER and _FIELD_ORDER.index(existing) < rank:
            position = i + 1
    rollout.insert(position, key, value)


def _same_time(current: Any, new: str) -> bool:
    if isinstance(current, datetime):
        aware = current if current.tzinfo else current.replace(tzinfo=UTC)
        return format_time(aware) == new
    return str(current) == new


def _set_time(rollout: CommentedMap, since: datetime) -> None:
    value = format_time(since)
    if "since" in rollout and _same_time(rollout["since"], value):
        return
    _set(rollout, "since", _Timestamp(value))


def _percent(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 2)


def apply_advance(text: str, alias: str, percent: float, since: datetime) -> str:
    """Enter canary(``percent``): from shadow, the previous step, or resuming a pause."""
    y, data = _load(text)
    rollout = _rollout(data, alias)
    _set(rollout, "stage", "canary")
    _set(rollout, "percent", _percent(percent))
    _set_time(rollout, since)
    if rollout.get("reason") is not None:
        _set(rollout, "reason", None)
    return _dump(y, data)


def apply_pause(text: str, alias: str, reason: str, since: datetime) -> str:
    """Hold the canary where it is (percent kept) with a reason."""
    y, data = _load(text)
    rollout = _rollout(data, alias)
    _set(rollout, "stage", "paused")
    _set_time(rollout, since)
    _set(rollout, "reason", reason)
    return _dump(y, data)


def apply_rollback(text: str, alias: str, reason: str, since: datetime) -> str:
    """Roll back: new sessions go to the pin; ``percent`` no longer applies and is removed."""
    y, data = _load(text)
    rollout = _rollout(data, alias)
    _set(rollout, "stage", "rolled-back")
    if "percent" in rollout:
        del rollout["percent"]
    _set_time(rollout, since)
    _set(rollout, "reason", reason)
    return _dump(y, data)


def apply_promotion(text: str, alias: str) -> str:
    """Canary 100 complete: ``pin`` becomes the candidate and the rollout is removed.

    The rollout block is cut from the text by its lines (ruamel would drop the comments
    and blank lines that trail it, which belong to whatever follows); ``pin`` is then
    set through the round trip like any other field.
    """
    _, data = _load(text)
    alias_map = _alias(data, alias)
    rollout = _rollout(data, alias)
    candidate = rollout.get("candidate")
    if not isinstance(candidate, str):
        raise YamlEditError(f"alias {alias!r}: the rollout has no candidate")
    line, col = alias_map.lc.key("rollout")
    lines = text.splitlines(keepends=True)
    end = line + 1
    last_content = line + 1
    while end < len(lines):
        stripped = lines[end].strip()
        indent = len(lines[end]) - len(lines[end].lstrip(" "))
        if stripped and not stripped.startswith("#"):
            if indent <= col:
                break
            last_content = end + 1
        end += 1
    cut = "".join(lines[:line] + lines[last_content:])
    y, data = _load(cut)
    _alias(data, alias)["pin"] = candidate
    return _dump(y, data)


def apply_start_shadow(text: str, alias: str, candidate: str, since: datetime) -> str:
    """Start a rollout of ``candidate`` in shadow on an alias that has none."""
    y, data = _load(text)
    alias_map = _alias(data, alias)
    if alias_map.get("rollout") is not None:
        raise YamlEditError(f"alias {alias!r} already has a rollout")
    rollout = CommentedMap()
    rollout["candidate"] = candidate
    rollout["stage"] = "shadow"
    rollout["since"] = _Timestamp(format_time(since))
    alias_map["rollout"] = rollout
    return _dump(y, data)


def apply_group(text: str, group: str) -> str:
    """Move the tenant to another rollout group (top-level ``group``)."""
    y, data = _load(text)
    if not isinstance(data, CommentedMap) or "group" not in data:
        raise YamlEditError("the tenant file has no 'group'")
    data["group"] = group
    return _dump(y, data)


def apply_approval(text: str, alias: str, entry: dict[str, Any]) -> str:
    """Append one approval (``percent``, ``by``, ``at``, ``sig``) to the rollout's
    ``approvals`` (created when absent); every other line stays as it was."""
    y, data = _load(text)
    rollout = _rollout(data, alias)
    row = CommentedMap()
    row["percent"] = _percent(entry["percent"])
    row["by"] = entry["by"]
    row["at"] = _Timestamp(entry["at"])
    if entry.get("sig") is not None:
        row["sig"] = entry["sig"]
    row.fa.set_flow_style()
    approvals = rollout.get("approvals")
    if approvals is None:
        from ruamel.yaml.comments import CommentedSeq

        approvals = CommentedSeq()
        rollout["approvals"] = approvals
    if not isinstance(approvals, list):
        raise YamlEditError(f"alias {alias!r}: rollout.approvals is not a list")
    approvals.append(row)
    return _dump(y, data)
