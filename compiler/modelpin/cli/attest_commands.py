"""``modelpin attest`` (sign a BETS result) and ``modelpin approve`` (sign off a step).

Both sign with a private key read from ``--key FILE`` (PKCS#8 PEM, as ``modelpin
keygen`` writes) and write one file atomically: ``attest`` the evidence envelope,
``approve`` the tenant file (a round-trip edit keeping comments). Nothing is written
when the input is malformed; every fault is a diagnostic with file:line:col.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from modelpin import approvals, attestation
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    default_repo,
    emit_diagnostics,
    format_option,
    judgement_now,
    judgement_now_option,
    repo_option,
    warn,
)
from modelpin.cli.keys import read_private_key
from modelpin.diagnostics import Diagnostic, error
from modelpin.load.document import parse
from modelpin.load.layout import APPROVERS, EVALUATORS, ROLLOUT_GROUPS, evidence_path
from modelpin.model.policies import RolloutPolicy
from modelpin.model.tenant import Tenant, format_time
from modelpin.model.trust import Approvers, Evaluators

MAX_RESULT_BYTES = 1 << 20


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` as one step (a temp file beside it, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def read_result(path: Path) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """A BETS result JSON file -> its mapping, or diagnostics at file:line:col."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_RESULT_BYTES:
        return None, [error("MP001", f"file is {len(raw):,} bytes, the limit is "
                            f"{MAX_RESULT_BYTES:,}", name)]
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        return None, [error("MP002", "file is not UTF-8", name)]
    except json.JSONDecodeError as exc:
        return None, [error("MP003", f"not JSON: {exc.msg}", name, exc.lineno, exc.colno)]
    except ValueError as exc:  # a duplicate key: find it with the YAML composer
        doc = parse(name, raw)
        found = [d for d in doc.diagnostics if d.code == "MP004"]
        return None, found or [error("MP004", str(exc), name)]
    if not isinstance(data, dict):
        return None, [error("MP006", "a BETS result is a JSON object", name)]
    doc = parse(name, raw)
    try:
        attestation.validate_result(data)
    except attestation.PredicateError as exc:
        out = []
        for where, message in exc.problems:
            line, col = doc.position(where)
            out.append(error("MP012", message, name, line, col,
                             hint="a BETS result as in SPEC section 1; numbers are JSON "
                             "numbers, ids exact ids, run_at RFC 3339"))
        return None, out
    return data, []


def _read_policy(root: Path, rel: str, model: type[Evaluators] | type[Approvers]) -> Any:
    path = root / rel
    if not path.is_file():
        return None
    doc = parse(rel, path.read_bytes())
    if doc.data is None:
        return None
    try:
        return model.model_validate(doc.data)
    except ValueError:
        return None


@click.command("attest")
@click.argument("result", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_file", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The evaluator's Ed25519 private key (PEM).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the envelope (default: the conventional evidence path).")
@repo_option
@format_option("text", "github", "json")
def attest_command(result: Path, key_file: Path, out: Path | None, repo: Path | None,
                   fmt: str) -> int:
    """Sign a BETS result JSON as evidence (a DSSE in-toto envelope) with an evaluator key."""
    data, diagnostics = read_result(result)
    if data is None:
        lines = result.read_text(encoding="utf-8", errors="replace").splitlines()
        emit_diagnostics(diagnostics, fmt, lambda _: lines, {"written": None})
        return EXIT_INVALID
    key = read_private_key(key_file.read_bytes(), str(key_file))
    root = repo if repo is not None else default_repo()
    evaluators = _read_policy(root, EVALUATORS, Evaluators)
    if isinstance(evaluators, Evaluators) and key.keyid not in evaluators.keyids:
        warn(f"key {key.keyid[:16]} is not listed in {EVALUATORS}: `check` will not count "
             "this evidence until the key is listed there (in an earlier change)")
    _warn_unbound(root, data)
    envelope = attestation.sign(data, [key.key])
    target = out or root / evidence_path(data["tenant"], data["alias"], data["candidate"])
    write_atomically(target, envelope)
    unsigned = target.with_name(target.name.removesuffix(".dsse.json") + ".json")
    if out is None and unsigned.exists():
        warn(f"{unsigned} is the unsigned evidence of the same rollout: delete it")
    click.echo(f"wrote {target} (signed by {key.keyid[:16]})")
    return EXIT_OK


def _warn_unbound(root: Path, data: dict[str, Any]) -> None:
    """Evidence for a suite the repository holds must record that suite's digest
    (``suite_sha256``), or ``check`` refuses it (MP133): say so before signing."""
    from modelpin.load.suite_digest import folder_sha256

    suite = data["suite"]
    folder = root / "bets" / suite["id"]
    if not folder.is_dir():
        return
    try:
        digest = folder_sha256(folder)
    except OSError:
        return
    recorded = data.get("suite_sha256")
    if recorded is None:
        warn(f"the result records no suite_sha256, and bets/{suite['id']}/ is in the "
             f"repository (its digest is {digest}): `check` refuses new evidence without it "
             "(MP133); record the digest of the suite your harness ran")
    elif recorded != digest:
        warn(f"the result's suite_sha256 {recorded[:12]} is not bets/{suite['id']}/ as it is "
             f"here ({digest[:12]}): `check` refuses evidence run on other content (MP133)")


def _tenant_file(root: Path, tenant: str) -> Path:
    path = root / "tenants" / f"{tenant}.yaml"
    if not path.is_file():
        raise CommandError(f"no tenant file {path}", exit_code=EXIT_INVALID)
    return path


@click.command("approve")
@click.argument("tenant")
@click.argument("alias")
@click.option("--percent", required=True, type=float, help="The ladder step approved.")
@click.option("--key", "key_file", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Your Ed25519 private key (PEM): an approver's or a tenant contact's.")
@click.option("--by", default=None, metavar="NAME",
              help="Who approves (default: the name the key is listed under).")
@repo_option
@judgement_now_option
def approve_command(tenant: str, alias: str, percent: float, key_file: Path, by: str | None,
                    repo: Path | None, now_text: str | None) -> int:
    """Sign off a manual-approval step: append a signed approval to the tenant file."""
    root = repo if repo is not None else default_repo()
    path = _tenant_file(root, tenant)
    rel = f"tenants/{tenant}.yaml"
    text = path.read_text(encoding="utf-8")
    doc = parse(rel, text.encode("utf-8"))
    if doc.data is None:
        lines = text.splitlines()
        emit_diagnostics(doc.diagnostics, "text", lambda _: lines, {})
        return EXIT_INVALID
    try:
        found = Tenant.model_validate(doc.data)
    except ValueError:
        raise CommandError(f"{rel} is not a valid tenant file; run `modelpin validate`",
                           exit_code=EXIT_INVALID) from None
    entry = found.aliases.get(alias)
    if entry is None or entry.rollout is None:
        raise CommandError(f"{tenant}/{alias} has no rollout in flight to approve",
                           exit_code=EXIT_INVALID)
    policy = _read_group_policy(root)
    group = policy.groups.get(found.group) if policy else None
    if group is not None and percent not in group.ladder:
        steps = ", ".join(f"{s:g}" for s in group.ladder)
        raise CommandError(f"{percent:g} is not a step of group {found.group} ({steps})",
                           hint=f"use one of: {steps}")
    key = read_private_key(key_file.read_bytes(), str(key_file))
    approvers = _read_policy(root, APPROVERS, Approvers)
    holders = approvals.sign_off_keys(approvers if isinstance(approvers, Approvers) else None,
                                      found)
    holder = next((h for h in holders if h.keyid == key.keyid), None)
    if by is None:
        if holder is None:
            raise CommandError(
                f"key {key.keyid[:16]} is neither an approver ({APPROVERS}) nor a contact of "
                f"{tenant}", hint="pass --by NAME, or list the key first (in its own change)")
        by = holder.name
    elif holder is not None and holder.name != by:
        raise CommandError(f"--by {by} but the key is listed for {holder.name}")
    elif holder is None:
        warn(f"key {key.keyid[:16]} is neither an approver nor a contact of {tenant}: "
             "`check` will not count this approval")
    at = judgement_now(now_text)
    sig = approvals.sign(key.key, tenant, alias, entry.rollout.candidate, percent, by, at)
    from modelpin.bot.yaml_edit import YamlEditError, apply_approval

    try:
        new_text = apply_approval(text, alias, {"percent": percent, "by": by,
                                                "at": format_time(at), "sig": sig})
    except YamlEditError as exc:
        raise CommandError(f"{rel}: {exc}", exit_code=EXIT_INVALID) from None
    write_atomically(path, new_text.encode("utf-8"))
    click.echo(f"approved {tenant}/{alias} {entry.rollout.candidate} at {percent:g}% by {by} "
               f"(key {key.keyid[:16]}) in {rel}")
    return EXIT_OK


def _read_group_policy(root: Path) -> RolloutPolicy | None:
    path = root / ROLLOUT_GROUPS
    if not path.is_file():
        return None
    doc = parse(ROLLOUT_GROUPS, path.read_bytes())
    try:
        return RolloutPolicy.model_validate(doc.data) if doc.data is not None else None
    except ValueError:
        return None

