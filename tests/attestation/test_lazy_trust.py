"""Evidence signatures are verified when a rule consults them, with the same verdicts.

``attestation.authenticate_fleet`` hands out ``TrustVerdicts``: each verdict is computed
on first look-up. These tests pin down that laziness never changes an answer: every
verdict equals the eager ``authenticate``; a forged signature is refused wherever a
rule looks (explain, the compiled dashboard, check); ``validate`` (which consults no
verdict) verifies nothing and says what it said before.
"""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from modelpin import attestation, signing
from modelpin.cli import main
from modelpin.cli.common import parse_time
from modelpin.load.fleet import load_fleet
from modelpin.load.tree import DirectoryTree
from tests.fleetkit import NOW, FleetSpec, commit_all, evidence, git, init_repo, tenant

EVAL, ROGUE = signing.generate_private_key(), signing.generate_private_key()
V = "gpt-5-2026-03-14"


def _canary(percent: float) -> dict[str, Any]:
    return {"candidate": V, "stage": "canary", "percent": percent,
            "since": "2026-03-20T00:00:00Z"}


def _spec() -> FleetSpec:
    spec = FleetSpec()
    spec.tenants = {}
    for tid in ("good", "forged", "rogue"):
        spec.add(tenant(tid, group="pioneers", rollout=_canary(100)))
        spec.evidence.append(evidence(tid))
    spec.evaluators = {"threshold": 1, "keys": [
        {"name": "bets-ci", "public_key": signing.public_key_b64(EVAL.public_key())}]}
    spec.evidence_key = signing.private_key_pem(EVAL)
    return spec


def _flip(root: Path, tid: str) -> None:
    """One bit of the signature of ``tid``'s evidence flipped."""
    path = root / f"evidence/{tid}/primary" / f"{V}.dsse.json"
    doc = json.loads(path.read_bytes())
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[0] ^= 1
    doc["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _forge(root: Path) -> None:
    """``forged``: a flipped bit; ``rogue``: signed by a key nobody trusts."""
    _flip(root, "forged")
    (root / "evidence/rogue/primary" / f"{V}.dsse.json").write_bytes(
        attestation.sign(evidence("rogue"), [ROGUE]))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = _spec().write(tmp_path / "repo")
    _forge(root)
    return root


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = signing.verified_signers

    def counted(envelope: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append("verify")
        return real(envelope, *args, **kwargs)

    monkeypatch.setattr(signing, "verified_signers", counted)
    return calls


def test_verdicts_are_computed_on_look_up_and_equal_the_eager_ones(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    result = load_fleet(DirectoryTree(repo), parse_time(NOW))
    fleet = result.fleet
    assert fleet is not None and calls == []  # loading verifies nothing
    trust = fleet.evidence_trust
    assert sorted(trust) == [(t, "primary", V) for t in ("forged", "good", "rogue")]
    assert len(trust) == 3 and ("good", "primary", V) in trust and calls == []
    states = {key[0]: trust[key].state for key in sorted(trust)}
    assert states == {"good": "signed", "forged": "refused", "rogue": "refused"}
    assert len(calls) == 3
    for key, source in fleet.evidence_sources.items():  # the same as judging eagerly
        assert trust[key] == attestation.authenticate(source, fleet.evaluators, source)
    assert len(calls) == 6  # 3 remembered look-ups + 3 eager ones
    assert "signature does not verify" in trust[("forged", "primary", V)].reason
    with pytest.raises(KeyError):
        trust[("nobody", "primary", V)]


def test_validate_verifies_nothing_and_reports_as_before(
        repo: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    calls = _counting(monkeypatch)
    assert main(["validate", "--repo", str(repo), "--now", NOW]) == 0
    assert calls == []
    assert "valid: " in capsys.readouterr().out


def test_explain_refuses_the_forged_evidence_it_consults(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for tid, signed in (("good", True), ("forged", False), ("rogue", False)):
        assert main(["explain", tid, "--repo", str(repo), "--now", NOW, "--no-cache"]) == 0
        out = capsys.readouterr().out
        assert ("MP130" not in out) is signed, out


class _Evidence(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self._tenant: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-tenant"):
            self._tenant = found["data-tenant"]
        if tag == "span" and self._tenant and (found.get("class") or "").startswith("ev-"):
            self.rows[self._tenant] = (found.get("class") or "")[3:]


@pytest.mark.parametrize("cache", [(), ("--no-cache",)], ids=["cache", "no-cache"])
def test_the_compiled_dashboard_still_shows_forged_evidence_failing(
        repo: Path, cache: tuple[str, ...]) -> None:
    init_repo(repo)
    commit_all(repo, "fleet")
    for _ in range(2):  # cold, then through the cache
        assert main(["compile", "--repo", str(repo), "--now", NOW, *cache]) == 0
        page = _Evidence()
        page.feed((repo / "dist" / "index.html").read_text(encoding="utf-8"))
        assert page.rows == {"good": "pass", "forged": "fail", "rogue": "fail"}
    assert git(repo, "status", "--porcelain", "--", "evidence") == ""


def test_check_refuses_a_forged_envelope_added_by_a_change(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec()
    spec.tenants = {"good": tenant("good", group="pioneers", rollout=_canary(100)),
                    "late": tenant("late", group="pioneers")}
    spec.evidence = [evidence("good")]
    root = spec.write(tmp_path / "repo")
    init_repo(root)
    base = commit_all(root, "base")
    spec.evidence.append(evidence("late"))
    spec.write(root)
    _flip(root, "late")
    head = commit_all(root, "add forged evidence")
    code = main(["check", "--repo", str(root), "--base", base, "--head", head, "--now", NOW])
    out = capsys.readouterr().out
    assert code == 1
    assert f"evidence/late/primary/{V}.dsse.json:" in out and "MP130" in out, out
