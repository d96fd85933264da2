"""YAML edits change exactly the fields they mean to; everything else stays byte-equal."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from modelpin.bot.yaml_edit import (
    YamlEditError,
    apply_advance,
    apply_pause,
    apply_promotion,
    apply_rollback,
)

TENANT = (Path(__file__).parent / "tenants" / "acme-legal.yaml").read_text()
NOW = datetime(2026, 3, 21, 10, 0, tzinfo=UTC)


def changed(old: str, new: str) -> tuple[list[str], list[str]]:
    """(removed lines, added lines) of a unified diff."""
    diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0))
    removed = [d[1:] for d in diff if d.startswith("-") and not d.startswith("---")]
    added = [d[1:] for d in diff if d.startswith("+") and not d.startswith("+++")]
    return removed, added


def rollout_of(text: str) -> dict:
    return yaml.safe_load(text)["aliases"]["primary-reasoning"]["rollout"]


def test_advance_changes_percent_and_since_only() -> None:
    new = apply_advance(TENANT, "primary-reasoning", 25, NOW)
    removed, added = changed(TENANT, new)
    assert removed == [
        "      percent: 5                  # a step of the group's ladder",
        "      since: 2026-03-20T10:00:00Z # when this stage was entered",
    ]
    assert added == [
        "      percent: 25                 # a step of the group's ladder",
        "      since: 2026-03-21T10:00:00Z # when this stage was entered",
    ]
    r = rollout_of(new)
    assert (r["stage"], r["percent"], r["since"]) == ("canary", 25, NOW)


def test_fractional_percent_is_kept() -> None:
    new = apply_advance(TENANT, "primary-reasoning", 0.5, NOW)
    assert rollout_of(new)["percent"] == 0.5


def test_rollback_changes_stage_since_reason_and_drops_percent() -> None:
    new = apply_rollback(TENANT, "primary-reasoning", "tool_call_failure_rate: 4.5% vs 1%", NOW)
    removed, added = changed(TENANT, new)
    assert len(removed) == 4 and len(added) == 3
    assert [a.split(":")[0].strip() for a in added] == ["stage", "since", "reason"]
    r = rollout_of(new)
    assert r["stage"] == "rolled-back"
    assert "percent" not in r
    assert r["reason"] == "tool_call_failure_rate: 4.5% vs 1%"
    assert "# required for paused and rolled-back" in new  # comments kept
    assert "# embeddings are pinned with the same rigor" in new


def test_pause_keeps_percent() -> None:
    new = apply_pause(TENANT, "primary-reasoning", "similarity drift", NOW)
    removed, added = changed(TENANT, new)
    assert len(removed) == len(added) == 3
    assert rollout_of(new)["percent"] == 5
    resumed = apply_advance(new, "primary-reasoning", 5, NOW)
    assert rollout_of(resumed)["stage"] == "canary"
    assert rollout_of(resumed)["reason"] is None
    # resuming at the same time gives back the original lines except `since`
    removed, added = changed(TENANT, resumed)
    assert [a.split(":")[0].strip() for a in added] == ["since"]


def test_promotion_sets_pin_and_removes_rollout() -> None:
    new = apply_promotion(TENANT, "primary-reasoning")
    removed, added = changed(TENANT, new)
    assert added == ["    pin: gpt-5-2026-03-14"]
    assert removed[0] == "    pin: gpt-5-2026-01-10"
    assert removed[1] == "    rollout:"
    assert all(line.startswith("      ") for line in removed[2:])
    assert len(removed) == 10  # pin + the 9 lines of the rollout block, nothing else
    data = yaml.safe_load(new)
    assert "rollout" not in data["aliases"]["primary-reasoning"]
    assert data["aliases"]["embedder"]["pin"] == "text-embedding-4-2026-02-01"
    assert "# embeddings are pinned with the same rigor" in new


def test_shadow_to_first_step_inserts_percent_after_stage() -> None:
    shadow = TENANT.replace(
        "      stage: canary               # shadow | canary | paused | rolled-back\n"
        "      percent: 5                  # a step of the group's ladder\n",
        "      stage: shadow\n",
    )
    new = apply_advance(shadow, "primary-reasoning", 1, NOW)
    removed, added = changed(shadow, new)
    assert added == [
        "      stage: canary",
        "      percent: 1",
        "      since: 2026-03-21T10:00:00Z # when this stage was entered",
    ]
    assert len(removed) == 2
    assert list(rollout_of(new))[:4] == ["candidate", "stage", "percent", "since"]


def test_same_edit_twice_is_a_no_op() -> None:
    once = apply_advance(TENANT, "primary-reasoning", 25, NOW)
    assert apply_advance(once, "primary-reasoning", 25, NOW) == once


def test_two_space_sequences_round_trip_untouched() -> None:
    compact = TENANT.replace("        - {percent: 5", "      - {percent: 5")
    new = apply_advance(compact, "primary-reasoning", 25, NOW)
    removed, _ = changed(compact, new)
    assert len(removed) == 2


def test_unknown_alias_or_missing_rollout_is_an_error() -> None:
    with pytest.raises(YamlEditError, match="not found"):
        apply_advance(TENANT, "nope", 25, NOW)
    with pytest.raises(YamlEditError, match="no rollout"):
        apply_rollback(TENANT, "embedder", "x", NOW)
