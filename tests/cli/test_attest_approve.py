"""``modelpin attest`` and ``modelpin approve`` through the CLI entry point."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from modelpin import attestation, signing
from modelpin.cli import main
from modelpin.load.fleet import load_fleet
from modelpin.load.tree import DirectoryTree
from modelpin.model.trust import Approvers
from tests.fleetkit import FleetSpec, evidence, suite, suite_digest, suite_files, tenant

NOW = "2026-03-25T12:00:00Z"


def _key(tmp: Path, name: str) -> tuple[Path, Any]:
    key = signing.generate_private_key()
    path = tmp / f"{name}.pem"
    path.write_bytes(signing.private_key_pem(key))
    return path, key


def _result(tmp: Path, **fields: Any) -> Path:
    path = tmp / "result.json"
    path.write_text(json.dumps({**evidence("t1"), **fields}, indent=2) + "\n")
    return path


def test_attest_writes_a_verifiable_envelope_at_the_conventional_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = FleetSpec().write(tmp_path / "repo")
    key_file, key = _key(tmp_path, "eval")
    assert main(["attest", str(_result(tmp_path)), "--key", str(key_file),
                 "--repo", str(repo)]) == 0
    out = repo / "evidence/t1/primary/gpt-5-2026-03-14.dsse.json"
    trusted = {signing.keyid_of(key.public_key()): key.public_key()}
    assert attestation.verify(out.read_bytes(), trusted, 1).tenant == "t1"
    assert not list(out.parent.glob("*.tmp"))


@pytest.mark.parametrize(("digest", "warning"), [
    (None, "records no suite_sha256"),
    ("0" * 64, "is not bets/t1-suite/ as it is here"),
    ("held", None),
], ids=["missing", "other-content", "matching"])
def test_attest_warns_when_the_result_is_not_bound_to_the_repository_suite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], digest: str | None,
        warning: str | None) -> None:
    """check refuses new evidence for a suite the repository holds unless it records that
    suite's digest (MP133): attest says so before signing (and still signs)."""
    spec = FleetSpec(suites={"t1-suite": suite("t1-suite")})
    repo = spec.write(tmp_path / "repo")
    held = suite_digest(suite_files(spec.suites["t1-suite"]))  # type: ignore[index]
    fields = {} if digest is None else {"suite_sha256": held if digest == "held" else digest}
    key_file, _ = _key(tmp_path, "eval")
    assert main(["attest", str(_result(tmp_path, **fields)), "--key", str(key_file),
                 "--repo", str(repo)]) == 0
    err = capsys.readouterr().err
    if warning is None:
        assert "suite_sha256" not in err, err
    else:
        assert warning in err and "MP133" in err, err


@pytest.mark.parametrize(("fields", "needle"), [
    ({"suite": {"id": "t1-suite", "version": "7"}}, "suite.version"),
    ({"cases": 600.0}, "cases"),
    ({"judge": "gpt-5-2026-03-14 "}, "judge"),
])
def test_attest_refuses_malformed_results_with_a_location(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: dict[str, Any],
        needle: str) -> None:
    key_file, _ = _key(tmp_path, "eval")
    result = _result(tmp_path, **fields)
    out = tmp_path / "out.dsse.json"
    assert main(["attest", str(result), "--key", str(key_file), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    field = needle.split(".")[-1]
    expected_line = next(i for i, row in enumerate(result.read_text().splitlines(), 1)
                         if f'"{field}"' in row)
    assert f"{result}:{expected_line}:" in text
    assert needle in text
    assert not out.exists()


def test_attest_refuses_invalid_json_and_duplicate_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file, _ = _key(tmp_path, "eval")
    bad = tmp_path / "bad.json"
    bad.write_text('{"tenant": "t1",\n "tenant": "t2"}\n')
    assert main(["attest", str(bad), "--key", str(key_file), "--out",
                 str(tmp_path / "o.json")]) == 1
    assert "MP004" in capsys.readouterr().out
    bad.write_text('{"tenant": "t1",\n  oops}\n')
    assert main(["attest", str(bad), "--key", str(key_file), "--out",
                 str(tmp_path / "o.json")]) == 1
    assert f"{bad}:2:" in capsys.readouterr().out


def test_attest_refuses_a_bad_key_file(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "k.pem"
    key_file.write_text("not a key")
    assert main(["attest", str(_result(tmp_path)), "--key", str(key_file), "--out",
                 str(tmp_path / "o.json")]) == 2
    assert "PEM" in capsys.readouterr().err


def _manual_repo(tmp: Path) -> tuple[Path, Path, Path]:
    approver_file, approver = _key(tmp, "approver")
    contact_file, contact = _key(tmp, "contact")
    spec = FleetSpec(tenants={})
    spec.add(tenant("t1", group="conservative", rollout={
        "candidate": "gpt-5-2026-03-14", "stage": "shadow", "since": "2026-03-20T00:00:00Z"},
        contacts=[{"name": "ops@t1.example",
                   "public_key": signing.public_key_b64(contact.public_key())}]))
    spec.approvers = {"keys": [{"name": "oncall@platform.example",
                                "public_key": signing.public_key_b64(approver.public_key())}]}
    repo = spec.write(tmp / "repo")
    text = (repo / "tenants/t1.yaml").read_text()
    (repo / "tenants/t1.yaml").write_text("# the tenant's file: comments stay\n" + text)
    return repo, approver_file, contact_file


def test_approve_appends_signed_entries_that_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, approver_file, contact_file = _manual_repo(tmp_path)
    for key_file in (approver_file, contact_file):
        assert main(["approve", "t1", "primary", "--percent", "1", "--key", str(key_file),
                     "--repo", str(repo), "--now", NOW]) == 0, capsys.readouterr()
    text = (repo / "tenants/t1.yaml").read_text()
    assert text.startswith("# the tenant's file: comments stay\n")
    result = load_fleet(DirectoryTree(repo), datetime.fromisoformat("2026-03-25T12:00:00+00:00"))
    assert result.fleet is not None, result.diagnostics
    verdicts = result.fleet.approval_verdicts
    assert [v.state for v in verdicts.values()] == ["signed", "signed"]
    assert [sorted(v.roles) for v in verdicts.values()] == [["approver"], ["contact"]]
    rollout = result.fleet.tenants["t1"].aliases["primary"].rollout
    assert rollout is not None
    assert [a.by for a in rollout.approvals] == ["oncall@platform.example", "ops@t1.example"]


def test_approve_refuses_a_step_off_the_ladder_and_an_unknown_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, approver_file, _ = _manual_repo(tmp_path)
    before = (repo / "tenants/t1.yaml").read_text()
    assert main(["approve", "t1", "primary", "--percent", "3", "--key", str(approver_file),
                 "--repo", str(repo), "--now", NOW]) == 2
    assert "not a step" in capsys.readouterr().err
    stranger, _ = _key(tmp_path, "stranger")
    assert main(["approve", "t1", "primary", "--percent", "1", "--key", str(stranger),
                 "--repo", str(repo), "--now", NOW]) == 2
    assert "neither an approver" in capsys.readouterr().err
    assert (repo / "tenants/t1.yaml").read_text() == before


def test_approve_needs_a_rollout_in_flight(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    repo = FleetSpec().write(tmp_path / "repo")
    key_file, _ = _key(tmp_path, "k")
    assert main(["approve", "t1", "primary", "--percent", "5", "--key", str(key_file),
                 "--repo", str(repo), "--by", "x@y.example"]) == 1
    assert "no rollout in flight" in capsys.readouterr().err


def test_approvers_model_rejects_duplicates_and_bad_keys() -> None:
    key = signing.public_key_b64(signing.generate_private_key().public_key())
    with pytest.raises(ValueError, match="repeats the public key"):
        Approvers.model_validate({"keys": [{"name": "a@x.example", "public_key": key},
                                           {"name": "b@x.example", "public_key": key}]})
    with pytest.raises(ValueError, match="32 bytes"):
        Approvers.model_validate({"keys": [{"name": "a@x.example", "public_key": "AAAA"}]})
