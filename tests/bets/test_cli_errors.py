"""Every refusal of ``bets run`` happens before the first call, with a message and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bets.conftest import Bets
from tests.bets.fleet import KEY_ENV

CLEAN = "gpt-5-2026-03-14"


def _no_calls(bets: Bets) -> None:
    assert bets.server.stats()["requests"] == 0
    assert not (bets.root / "out").exists()


@pytest.mark.parametrize("args", [(), ("--all", "--tenant", "t-tools")],
                         ids=["neither", "both"])
def test_tenant_or_all_is_required(bets: Bets, args: tuple[str, ...]) -> None:
    code, _out, err = bets.run(*args, "--unsigned")
    assert code == 2
    assert "give --tenant T (one or more) or --all" in err
    _no_calls(bets)


def test_unknown_tenant_is_a_usage_error_with_a_suggestion(bets: Bets) -> None:
    code, _out, err = bets.run("--tenant", "t-tool", "--unsigned")
    assert code == 2
    assert "unknown tenant 't-tool'" in err and "did you mean 't-tools'" in err


def test_unknown_candidate_is_a_usage_error(bets: Bets) -> None:
    code, _out, err = bets.run("--all", "--candidate", "gpt-6-2027-01-01", "--unsigned")
    assert code == 2
    assert "not a model version of the fleet" in err


def test_missing_api_key_variable_is_refused(bets: Bets, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.delenv(KEY_ENV)
    code, _out, err = bets.run("--all", "--candidate", CLEAN, "--unsigned")
    assert code == 1
    assert f"API key variable(s) not set: {KEY_ENV} (fake)" in err
    _no_calls(bets)


def test_missing_providers_file_is_refused(bets: Bets) -> None:
    (bets.root / "policies/providers.yaml").unlink()
    code, _out, err = bets.run("--all", "--candidate", CLEAN, "--unsigned")
    assert code == 1
    assert "policies/providers.yaml is missing" in err
    _no_calls(bets)


def test_provider_not_listed_is_refused(bets: Bets) -> None:
    model = bets.root / f"model_versions/{CLEAN}.yaml"
    model.write_text(model.read_text().replace("provider: fake", "provider: other"))
    code, _out, err = bets.run("--tenant", "t-tools", "--candidate", CLEAN, "--unsigned")
    assert code == 1
    assert "provider(s) other are not in policies/providers.yaml" in err
    _no_calls(bets)


def test_no_evaluator_key_is_refused(bets: Bets) -> None:
    code, _out, err = bets.run("--all", "--candidate", CLEAN)
    assert code == 1
    assert "no evaluator key" in err and "MODELPIN_EVALUATOR_KEY" in err
    _no_calls(bets)


def test_a_bad_key_file_is_refused(bets: Bets) -> None:
    bad = bets.root / "bad.pem"
    bad.write_text("not a key")
    code, _out, err = bets.run("--all", "--candidate", CLEAN, "--key", str(bad))
    assert code == 2
    assert "bad.pem" in err
    _no_calls(bets)


def test_the_key_may_come_from_the_environment(bets: Bets, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.setenv("MODELPIN_EVALUATOR_KEY", bets.key_file.read_text())
    code, _out, err = bets.run("--tenant", "t-tools", "--candidate", CLEAN)
    assert code == 0, err
    assert (bets.root / "out/evidence/t-tools/primary" / f"{CLEAN}.dsse.json").is_file()


def test_an_invalid_fleet_is_not_run(bets: Bets) -> None:
    cases = bets.root / "bets/tools/cases.jsonl"
    cases.write_text(cases.read_text() + '{"id": "t-999", "messages": []}\n')
    code, out, err = bets.run("--all", "--candidate", CLEAN, "--unsigned")
    assert code == 1
    assert "bets/tools/cases.jsonl:5:" in out
    assert "the fleet is invalid" in err
    _no_calls(bets)


def test_nothing_in_flight_is_nothing_to_run(bets: Bets) -> None:
    code, out, _err = bets.run("--all", "--unsigned")
    assert code == 0
    assert "nothing to run" in out
    _no_calls(bets)


def test_the_rollout_candidate_is_run_without_candidate_flag(bets: Bets) -> None:
    tenant = bets.root / "tenants/t-tools.yaml"
    tenant.write_text(tenant.read_text() + "    rollout: {candidate: gpt-5-renamed-2026-03-16, "
                      "stage: shadow, since: 2026-03-20T10:00:00Z}\n")
    code, out, err = bets.run("--all", "--unsigned")
    assert code == 0, err
    assert "t-tools/primary: gpt-5-2026-01-10 -> gpt-5-renamed-2026-03-16: 0/4 passed" in out
    assert [t["tenant"] for t in bets.results()["targets"]] == ["t-tools"]


def test_all_with_a_candidate_runs_only_aliases_on_its_provider(bets: Bets) -> None:
    tenant = bets.root / "tenants/t-labels.yaml"
    other = bets.root / "model_versions/other-model-2026-01-01.yaml"
    other.write_text("id: other-model-2026-01-01\nprovider: other\nkind: chat\n"
                     "released: 2026-01-01\n")
    tenant.write_text(tenant.read_text().replace("pin: gpt-5-2026-01-10",
                                                 "pin: other-model-2026-01-01"))
    code, out, err = bets.run("--all", "--candidate", CLEAN, "--unsigned")
    assert code == 0, err
    assert [t["tenant"] for t in bets.results()["targets"]] == ["t-extract", "t-tools"]
    assert "t-labels" not in out


def test_a_providers_file_overrides_the_repository_one(bets: Bets, tmp_path: Path) -> None:
    policy = bets.root / "policies/providers.yaml"
    override = tmp_path / "staging.yaml"
    override.write_text(policy.read_text())
    policy.write_text(policy.read_text().replace(bets.server.base_url,
                                                 "http://127.0.0.1:9/v1"))
    code, _out, err = bets.run("--tenant", "t-tools", "--candidate", CLEAN, "--unsigned",
                               "--providers", str(override))
    assert code == 0, err
    assert bets.target("t-tools")["passed"] == 4


def test_an_invalid_providers_file_is_refused_with_its_position(bets: Bets, tmp_path: Path
                                                                ) -> None:
    override = tmp_path / "staging.yaml"
    override.write_text("providers:\n  fake: {base_url: ftp://x, api_key_env: K, "
                        "requests_per_minute: 1, tokens_per_minute: 1, concurrency: 1}\n")
    code, out, err = bets.run("--tenant", "t-tools", "--candidate", CLEAN, "--unsigned",
                              "--providers", str(override))
    assert code == 1
    assert "staging.yaml:2:20: error[MP012]" in out and "not an http(s) URL" in out
    assert "--providers" in err
    _no_calls(bets)


def _evaluators(bets: Bets, *public_keys: str, threshold: int = 1) -> None:
    body = "".join(f"  - {{name: eval-{i}, public_key: \"{k}\"}}\n"
                   for i, k in enumerate(public_keys))
    (bets.root / "policies/evaluators.yaml").write_text(
        f"threshold: {threshold}\nkeys:\n{body}")


def test_a_key_the_evaluators_list_does_not_hold_is_refused(bets: Bets) -> None:
    from modelpin import signing

    other = signing.public_key_b64(signing.generate_private_key().public_key())
    _evaluators(bets, other)
    code, _out, err = bets.run("--all", "--candidate", CLEAN, "--key", str(bets.key_file))
    assert code == 1
    assert "is not in policies/evaluators.yaml" in err
    code, _out, err = bets.run("--all", "--candidate", CLEAN, "--unsigned")
    assert code == 1
    assert "unsigned evidence would not count" in err
    _no_calls(bets)


def test_a_listed_key_signs(bets: Bets) -> None:
    from modelpin import signing

    _evaluators(bets, signing.public_key_b64(bets.public_key))
    code, _out, err = bets.run("--tenant", "t-tools", "--candidate", CLEAN,
                               "--key", str(bets.key_file))
    assert code == 0, err
