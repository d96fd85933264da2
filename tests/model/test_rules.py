"""Field rules of the config models that a user meets directly."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelpin.model.evidence import Evidence
from modelpin.model.model_version import ModelVersion
from modelpin.model.policies import RolloutGroup
from modelpin.model.tenant import Rollout

GROUP: dict[str, Any] = {"soak": "24h", "bets": {"min_pass_rate": 0.9, "min_cases": 10}}


@pytest.mark.parametrize("ladder", [[0.07, 0.29, 100], [0.01, 1.1, 33.33, 100], [100]])
def test_ladders_at_hundredth_resolution_are_valid(ladder: list[float]) -> None:
    # 0.07 * 100 is 7.000000000000001 in floats: the rule must not see a finer step.
    assert RolloutGroup.model_validate({**GROUP, "ladder": ladder}).ladder == ladder


@pytest.mark.parametrize("ladder", [[0.005, 100], [1.001, 100], [12.345, 100]])
def test_ladder_steps_finer_than_a_hundredth_are_refused(ladder: list[float]) -> None:
    with pytest.raises(ValidationError, match=r"finer than 0\.01"):
        RolloutGroup.model_validate({**GROUP, "ladder": ladder})


def test_canary_percent_at_hundredth_resolution_is_valid() -> None:
    rollout = Rollout.model_validate({"candidate": "m-1", "stage": "canary", "percent": 0.29,
                                      "since": "2026-03-20T10:00:00Z"})
    assert rollout.percent == 0.29


def _error(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    [err] = info.value.errors(include_url=False)
    return dict(err)


@pytest.mark.parametrize(("data", "at"), [
    ({"stage": "shadow", "percent": 5}, ("percent",)),
    ({"stage": "canary"}, ("stage",)),
    ({"stage": "paused", "percent": 5}, ("stage",)),
    ({"stage": "rolled-back", "reason": "  "}, ("stage",)),
])
def test_cross_field_rules_name_the_value_that_breaks_them(
        data: dict[str, Any], at: tuple[str, ...]) -> None:
    err = _error(Rollout, {"candidate": "m-1", "since": "2026-03-20T10:00:00Z", **data})
    assert err["type"] == "rule"
    assert tuple(err["ctx"]["at"]) == at


def test_passed_over_cases_points_at_passed() -> None:
    err = _error(Evidence, {"tenant": "t", "alias": "a", "baseline": "m-1", "candidate": "m-2",
                            "suite": {"id": "s", "version": 1}, "judge": "j-1",
                            "run_at": "2026-03-20T10:00:00Z", "cases": 5, "passed": 6})
    assert (err["type"], tuple(err["ctx"]["at"])) == ("rule", ("passed",))
    assert err["msg"] == "'passed' (6) exceeds 'cases' (5)"


def test_floating_model_id_message_names_the_id() -> None:
    err = _error(ModelVersion, {"id": "gpt-5-latest", "provider": "openai", "kind": "chat",
                                "released": "2026-01-01"})
    assert err["type"] == "floating_version"
    assert err["msg"].startswith("'gpt-5-latest' is a floating alias")
