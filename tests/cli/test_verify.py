"""``modelpin verify``: every way an envelope can be wrong is exit 1 with a clear message."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import rfc8785

from modelpin import signing
from modelpin.cli import main
from tests.routing.compilekit import NOW, git_fleet, keypair, spec


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(repo, envelope, public key file) compiled with a trusted key."""
    private, public, b64 = keypair(tmp_path / "keys")
    fleet = spec()
    fleet.artifact = {"ttl": "7d", "trusted_keys": [{"public_key": b64, "owner": "ci"}]}
    repo = git_fleet(tmp_path / "repo", fleet)
    assert main(["compile", "--repo", str(repo), "--now", NOW, "--key", str(private)]) == 0
    return repo, repo / "dist/routing-table.dsse.json", public


def verify(envelope: Path, *args: str) -> int:
    return main(["verify", str(envelope), "--now", "2026-03-26T00:00:00Z", *args])


def rewrite(envelope: Path, **changes: object) -> None:
    doc = json.loads(envelope.read_bytes())
    doc.update(changes)
    envelope.write_text(json.dumps(doc))


def test_verify_with_the_repo_policy_prints_the_summary(
    signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, envelope, _ = signed
    assert verify(envelope, "--repo", str(repo), "--table") == 0
    out = capsys.readouterr().out
    assert "serial     1" in out
    assert "expires    2026-04-01T12:00:00Z" in out
    assert "tenants    3, aliases 3: pinned 1, shadow 1, canary 1, paused 0, rolled-back 0" in out
    assert "beta" in out and "gpt-5-2026-03-14" in out  # the route table


def test_verify_with_a_public_key_file(
    signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _repo, envelope, public = signed
    assert verify(envelope, "--key", str(public)) == 0


def test_tampered_payload(signed: tuple[Path, Path, Path],
                          capsys: pytest.CaptureFixture[str]) -> None:
    repo, envelope, _ = signed
    doc = json.loads(envelope.read_bytes())
    payload = base64.b64decode(doc["payload"]).replace(b'"percent":25', b'"percent":50')
    rewrite(envelope, payload=base64.b64encode(payload).decode())
    assert verify(envelope, "--repo", str(repo)) == 1
    assert "signature check failed" in capsys.readouterr().err


def test_tampered_payload_type(signed: tuple[Path, Path, Path],
                               capsys: pytest.CaptureFixture[str]) -> None:
    repo, envelope, _ = signed
    rewrite(envelope, payloadType="application/json")
    assert verify(envelope, "--repo", str(repo)) == 1
    assert "payloadType is 'application/json'" in capsys.readouterr().err


def test_wrong_key(signed: tuple[Path, Path, Path], tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    _repo, envelope, _ = signed
    _, other_public, _ = keypair(tmp_path / "other")
    assert verify(envelope, "--key", str(other_public)) == 1
    assert "unknown key id" in capsys.readouterr().err


def test_signature_under_a_trusted_key_id_that_does_not_verify(
    signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, envelope, _ = signed
    doc = json.loads(envelope.read_bytes())
    doc["signatures"][0]["sig"] = base64.b64encode(b"\x00" * 64).decode()
    envelope.write_text(json.dumps(doc))
    assert verify(envelope, "--repo", str(repo)) == 1
    assert "signature does not verify" in capsys.readouterr().err


def test_unknown_key_id(signed: tuple[Path, Path, Path],
                        capsys: pytest.CaptureFixture[str]) -> None:
    repo, envelope, _ = signed
    doc = json.loads(envelope.read_bytes())
    doc["signatures"][0]["keyid"] = "ab" * 32
    envelope.write_text(json.dumps(doc))
    assert verify(envelope, "--repo", str(repo)) == 1
    assert "unknown key id abababababababab" in capsys.readouterr().err


@pytest.mark.parametrize("cut", [1, 100, -2])
def test_truncated_envelope(signed: tuple[Path, Path, Path], cut: int,
                            capsys: pytest.CaptureFixture[str]) -> None:
    repo, envelope, _ = signed
    data = envelope.read_bytes()
    envelope.write_bytes(data[:cut])
    assert verify(envelope, "--repo", str(repo)) == 1
    assert "not a valid routing table: envelope is not JSON" in capsys.readouterr().err


def test_expired(signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    repo, envelope, _ = signed
    assert main(["verify", str(envelope), "--repo", str(repo),
                 "--now", "2026-04-01T12:00:00Z"]) == 1
    assert "expired at 2026-04-01T12:00:00Z" in capsys.readouterr().err


def test_signed_payload_that_breaks_the_schema(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, envelope, _ = signed
    private = tmp_path / "keys/key.pem"
    doc = json.loads(signing.parse_envelope(envelope.read_bytes()).payload)
    doc["tenants"]["beta"]["aliases"]["primary"]["mode"] = "yolo"
    bad = signing.sign(rfc8785.dumps(doc), [signing.load_private_key(private.read_bytes())])
    envelope.write_bytes(signing.dump_envelope(bad))
    assert verify(envelope, "--repo", str(repo)) == 1
    err = capsys.readouterr().err
    assert "payload tenants.beta.aliases.primary" in err and "yolo" in err


def test_signed_but_non_canonical_payload_is_refused_like_a_router_refuses_it(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The old verifier (routing/verify.py) accepted this: same document, other bytes.
    repo, envelope, _ = signed
    private = tmp_path / "keys/key.pem"
    doc = json.loads(signing.parse_envelope(envelope.read_bytes()).payload)
    spaced = signing.sign(json.dumps(doc, indent=1).encode(),
                          [signing.load_private_key(private.read_bytes())])
    envelope.write_bytes(signing.dump_envelope(spaced))
    assert verify(envelope, "--repo", str(repo)) == 1
    assert "payload is not canonical JSON" in capsys.readouterr().err


def test_missing_envelope_and_missing_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(tmp_path / "nope.json") == 1
    assert "cannot read" in capsys.readouterr().err
    repo = spec().write(tmp_path / "plain")
    envelope = tmp_path / "e.json"
    envelope.write_text("{}")
    assert verify(envelope, "--repo", str(repo)) == 1
    assert "no trusted keys" in capsys.readouterr().err


def test_dev_key_is_used_when_the_policy_lists_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo")
    assert main(["compile", "--repo", str(repo), "--now", NOW]) == 0
    capsys.readouterr()
    assert verify(repo / "dist/routing-table.dsse.json", "--repo", str(repo)) == 0
    assert "verifying against the local development key" in capsys.readouterr().err
