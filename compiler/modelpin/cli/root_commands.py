"""``modelpin root``: create, sign, rotate and check the trust root chain.

The chain lives in the fleet repository as ``root/<N>.root.json`` (DSSE envelopes) and
is published beside the routing table; routers configured with ``1.root.json`` follow
it. Signing is offline and incremental: ``init``/``rotate`` write an unsigned version,
each key holder runs ``sign`` on their own machine to add their signature, and
``verify`` says what is still missing. Every check is the router's own
(``modelpin.router.root``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelpin import signing
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    default_repo,
    parse_time,
    repo_option,
)
from modelpin.cli.keys import read_private_key, write_new_file
from modelpin.router.errors import RootRejected
from modelpin.router.root import (
    ROOT_PAYLOAD_TYPE,
    Root,
    load_trusted_root,
    parse_root,
    root_payload,
    verify_next_root,
)
from modelpin.router.sources import root_name

ROOT_DIR = Path("root")
_DURATION = re.compile(r"([0-9]{1,5})([dh])")
_NAME = re.compile(r"([0-9]+)\.root\.json")


def _duration(text: str) -> timedelta:
    m = _DURATION.fullmatch(text)
    if m is None:
        raise CommandError(f"--expires {text!r} is not a duration", hint="e.g. 365d or 48h")
    n = int(m.group(1))
    return timedelta(days=n) if m.group(2) == "d" else timedelta(hours=n)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now(now_text: str | None) -> datetime:
    return parse_time(now_text) if now_text else datetime.now(UTC).replace(microsecond=0)


def _public_keys(paths: tuple[Path, ...], option: str) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    for path in paths:
        try:
            key = signing.load_public_key(path.read_bytes())
        except OSError as exc:
            raise CommandError(f"cannot read {option} {path}: {exc.strerror}") from None
        except signing.KeyFileError as exc:
            raise CommandError(f"{option} {path}: {exc}") from None
        out[signing.keyid_of(key)] = (signing.public_key_b64(key), path.stem)
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}", exit_code=EXIT_INVALID) from None


def _unsigned(path: Path) -> tuple[signing.Envelope, Root]:
    """A root file as written by init/rotate/sign: well formed, signatures unchecked."""
    data = _read(path)
    try:
        envelope = signing.parse_envelope(data)
        if envelope.payload_type != ROOT_PAYLOAD_TYPE:
            raise RootRejected(f"payloadType is {envelope.payload_type!r}, not a root")
        return envelope, parse_root(envelope.payload, data)
    except (signing.EnvelopeError, RootRejected) as exc:
        raise CommandError(f"{path}: {exc}", exit_code=EXIT_INVALID) from None


def _write(path: Path, envelope: signing.Envelope, *, force: bool) -> None:
    data = signing.dump_envelope(envelope)
    try:
        write_new_file(path, data, 0o644, force=force)
    except FileExistsError:
        raise CommandError(f"{path} exists; not overwriting it", hint="pass --force") from None
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}",
                           exit_code=EXIT_INVALID) from None


def _build(out: Path, *, version: int, expires_at: str,
           keys: dict[str, tuple[str, str | None]], root_ids: list[str], root_threshold: int,
           table_ids: list[str], table_threshold: int, serial_floor: int | None,
           force: bool) -> Root:
    doc = root_payload(version=version, expires_at=expires_at,
                       keys={k: keys[k] for k in sorted(set(root_ids) | set(table_ids))},
                       roles={"root": (sorted(root_ids), root_threshold),
                              "table": (sorted(table_ids), table_threshold)},
                       serial_floor=serial_floor)
    payload = rfc8785.dumps(doc)
    try:
        root = parse_root(payload, b"")
    except RootRejected as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    _write(out, signing.Envelope(ROOT_PAYLOAD_TYPE, payload, ()), force=force)
    return root


def _describe(root: Root) -> list[str]:
    lines = [f"root version {root.version}, expires {root.expires_at}"]
    for name, role in (("root", root.root), ("table", root.table)):
        lines.append(f"  {name} keys ({role.threshold} of {len(role.keys)}):")
        lines += [f"    {k}  {root.owners.get(k) or ''}".rstrip() for k in sorted(role.keys)]
    if root.serial_floor is not None:
        lines.append(f"  serial_floor {root.serial_floor}: routers lower their table-serial "
                     "floor to this")
    return lines


@click.group(name="root")
def root_group() -> None:
    """Trust root: which keys sign routing tables, rotated in-band (root/<N>.root.json)."""


@root_group.command(name="init")
@click.option("--root-key", "root_keys", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Public key of a root key holder (repeat).")
@click.option("--root-threshold", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--table-key", "table_keys", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Public key that signs routing tables (repeat).")
@click.option("--table-threshold", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--expires", default="365d", show_default=True, help="Lifetime (e.g. 365d).")
@click.option("--now", "now_text", default=None, metavar="TIME", help="Default: the clock.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Default: <repo>/root/1.root.json.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@repo_option
def init_command(root_keys: tuple[Path, ...], root_threshold: int, table_keys: tuple[Path, ...],
                 table_threshold: int, expires: str, now_text: str | None, out: Path | None,
                 force: bool, repo: Path | None) -> int:
    """Write root version 1, unsigned: each root key holder then runs `root sign`."""
    roots = _public_keys(root_keys, "--root-key")
    tables = _public_keys(table_keys, "--table-key")
    target = out or (repo or default_repo()) / ROOT_DIR / root_name(1)
    root = _build(target, version=1, expires_at=_stamp(_now(now_text) + _duration(expires)),
                  keys={**roots, **tables}, root_ids=list(roots), root_threshold=root_threshold,
                  table_ids=list(tables), table_threshold=table_threshold, serial_floor=None,
                  force=force)
    click.echo(f"wrote {target} (unsigned)")
    for line in _describe(root):
        click.echo(line)
    click.echo(f"next: {root.root.threshold} root key holder(s) run "
               f"`modelpin root sign {target} --key THEIR_KEY.pem`", err=True)
    return EXIT_OK


@root_group.command(name="rotate")
@click.argument("previous", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--add-root-key", multiple=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--remove-root-key", multiple=True, metavar="KEYID",
              help="Key id (or a unique prefix of one) to revoke as a root key.")
@click.option("--root-threshold", type=click.IntRange(min=1), default=None)
@click.option("--add-table-key", multiple=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--remove-table-key", multiple=True, metavar="KEYID",
              help="Key id (or a unique prefix) to revoke as a table-signing key.")
@click.option("--table-threshold", type=click.IntRange(min=1), default=None)
@click.option("--serial-floor", type=click.IntRange(min=0), default=None,
              help="Routers lower their table-serial floor to this (runaway serial recovery).")
@click.option("--expires", default="365d", show_default=True)
@click.option("--now", "now_text", default=None, metavar="TIME")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Default: <N+1>.root.json beside PREVIOUS.")
@click.option("--force", is_flag=True)
def rotate_command(previous: Path, add_root_key: tuple[Path, ...],
                   remove_root_key: tuple[str, ...], root_threshold: int | None,
                   add_table_key: tuple[Path, ...], remove_table_key: tuple[str, ...],
                   table_threshold: int | None, serial_floor: int | None, expires: str,
                   now_text: str | None, out: Path | None, force: bool) -> int:
    """Write root version N+1 from PREVIOUS (version N), unsigned. It must then be signed
    by a threshold of N's root keys and a threshold of its own."""
    _, prev = _unsigned(previous)
    keys = {k: (signing.public_key_b64(v), prev.owners.get(k))
            for role in (prev.root, prev.table) for k, v in role.keys.items()}

    def ids(role_keys: Mapping[str, object], added: dict[str, tuple[str, str | None]],
            removed: tuple[str, ...], what: str) -> list[str]:
        current = set(role_keys) | set(added)
        for prefix in removed:
            hits = [k for k in current if k.startswith(prefix)]
            if len(hits) != 1:
                raise CommandError(f"--remove-{what}-key {prefix!r} matches {len(hits)} "
                                   f"{what} keys", hint="give more of the key id")
            current.discard(hits[0])
        return sorted(current)

    new_roots = _public_keys(add_root_key, "--add-root-key")
    new_tables = _public_keys(add_table_key, "--add-table-key")
    keys.update(new_roots)
    keys.update(new_tables)
    root_ids = ids(prev.root.keys, new_roots, remove_root_key, "root")
    table_ids = ids(prev.table.keys, new_tables, remove_table_key, "table")
    target = out or previous.parent / root_name(prev.version + 1)
    root = _build(target, version=prev.version + 1,
                  expires_at=_stamp(_now(now_text) + _duration(expires)), keys=keys,
                  root_ids=root_ids,
                  root_threshold=root_threshold or min(prev.root.threshold, len(root_ids)),
                  table_ids=table_ids,
                  table_threshold=table_threshold or min(prev.table.threshold, len(table_ids)),
                  serial_floor=serial_floor, force=force)
    click.echo(f"wrote {target} (unsigned)")
    for line in _describe(root):
        click.echo(line)
    click.echo(f"next: {prev.root.threshold} root key holder(s) of version {prev.version} and "
               f"{root.root.threshold} of version {root.version} run `modelpin root sign "
               f"{target} --key THEIR_KEY.pem`", err=True)
    return EXIT_OK


@root_group.command(name="sign")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Your private root key (PKCS#8 PEM).")
def sign_command(file: Path, key_file: Path) -> int:
    """Add your signature to a root file (offline; each key holder in turn)."""
    envelope, root = _unsigned(file)
    key = read_private_key(_read(key_file), str(key_file))
    allowed = set(root.root.keys)
    previous = file.parent / root_name(root.version - 1)
    if root.version > 1 and previous.is_file():
        allowed |= set(_unsigned(previous)[1].root.keys)
    if key.keyid not in allowed:
        raise CommandError(
            f"key {key.keyid[:16]}… is not a root key of version {root.version}"
            + (f" or {root.version - 1}" if root.version > 1 else ""),
            exit_code=EXIT_INVALID, hint="only root key holders sign roots")
    sig = signing.sign(envelope.payload, [key.key], ROOT_PAYLOAD_TYPE).signatures[0]
    kept = tuple(s for s in envelope.signatures if s.keyid != key.keyid)
    _write(file, signing.Envelope(ROOT_PAYLOAD_TYPE, envelope.payload, (*kept, sig)),
           force=True)
    click.echo(f"signed {file} with {key.keyid[:16]}… ({len(kept) + 1} signature(s))")
    return EXIT_OK


def chain_files(directory: Path) -> list[Path]:
    found = sorted((int(m.group(1)), p) for p in directory.glob("*.root.json")
                   if (m := _NAME.fullmatch(p.name)))
    return [p for _, p in found]


def _missing(envelope: signing.Envelope, role_keys: Mapping[str, Ed25519PublicKey],
             threshold: int) -> str:
    try:
        signing.verified_signers(envelope, role_keys, threshold, ROOT_PAYLOAD_TYPE)
        return ""
    except signing.SignatureError as exc:
        return str(exc)


@root_group.command(name="verify")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--now", "now_text", default=None, metavar="TIME", help="Default: the clock.")
@repo_option
def verify_command(directory: Path | None, now_text: str | None, repo: Path | None) -> int:
    """Check the chain 1, 2, ... in DIRECTORY (default <repo>/root) as a router would."""
    where = directory or (repo or default_repo()) / ROOT_DIR
    files = chain_files(where)
    if not files:
        raise CommandError(f"no <N>.root.json files in {where}", exit_code=EXIT_INVALID,
                           hint="create one with `modelpin root init`")
    trusted: Root | None = None
    for expected, path in enumerate(files, start=1):
        if path.name != root_name(expected):
            raise CommandError(f"{where}: the chain skips from {expected - 1} to {path.name}",
                               exit_code=EXIT_INVALID)
        data = _read(path)
        try:
            trusted = load_trusted_root(data) if trusted is None else (
                verify_next_root(trusted, data))
        except RootRejected as exc:
            envelope, root = _unsigned(path)
            gaps = [m for m in (_missing(envelope, root.root.keys, root.root.threshold),) if m]
            hint = f"signatures: {gaps[0]}" if gaps else None
            raise CommandError(f"{path}: {exc}", exit_code=EXIT_INVALID, hint=hint) from None
        click.echo(f"ok: {path.name}: version {trusted.version}, expires {trusted.expires_at}")
    assert trusted is not None
    for line in _describe(trusted):
        click.echo(line)
    if trusted.expires_ts <= _now(now_text).timestamp():
        raise CommandError(f"the newest root (version {trusted.version}) expired at "
                           f"{trusted.expires_at}: routers accept no new table",
                           exit_code=EXIT_INVALID,
                           hint="publish a new version: `modelpin root rotate`")
    return EXIT_OK


@root_group.command(name="show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def show_command(file: Path) -> int:
    """Print a root file: version, expiry, keys and thresholds, signatures present."""
    envelope, root = _unsigned(file)
    for line in _describe(root):
        click.echo(line)
    click.echo(f"  signatures: {len(envelope.signatures)}"
               + "".join(f"\n    {s.keyid or '<no keyid>'}" for s in envelope.signatures))
    return EXIT_OK
