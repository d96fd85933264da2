"""Signing keys: where ``compile`` gets its key, the development key, ``keygen``.

The private key comes from ``--key FILE``, else ``$MODELPIN_SIGNING_KEY`` (PEM text: how
CI passes a secret), else a local development key that ``compile`` creates and warns
about. When ``policies/artifact.yaml`` lists trusted keys, any other key is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modelpin import signing
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    warn,
)
from modelpin.diagnostics import has_errors
from modelpin.load.document import parse
from modelpin.load.fleet import ARTIFACT
from modelpin.model.policies import ArtifactPolicy
from modelpin.router.errors import RootRejected
from modelpin.router.root import Root, load_trusted_root, verify_next_root

DEV_KEY = Path(".modelpin") / "dev-signing-key.pem"
KEY_ENV = "MODELPIN_SIGNING_KEY"


@dataclass(frozen=True)
class SigningKey:
    key: Ed25519PrivateKey
    origin: str

    @property
    def keyid(self) -> str:
        return signing.keyid_of(self.key.public_key())


def read_private_key(data: bytes, origin: str) -> SigningKey:
    try:
        return SigningKey(signing.load_private_key(data), origin)
    except signing.KeyFileError as exc:
        raise CommandError(f"{origin}: {exc}",
                           hint="a PKCS#8 PEM Ed25519 key, as `modelpin keygen` writes") from None


def write_new_file(path: Path, data: bytes, mode: int, *, force: bool) -> None:
    """Write ``data`` with ``mode`` from the first byte on (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if ``path`` appeared meanwhile: never overwrite
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dev_key(root: Path) -> SigningKey:
    path = root / DEV_KEY
    if path.is_file():
        return read_private_key(path.read_bytes(), str(path))
    key = signing.generate_private_key()
    try:
        write_new_file(path, signing.private_key_pem(key), 0o600, force=False)
    except FileExistsError:
        return read_private_key(path.read_bytes(), str(path))
    except OSError as exc:
        raise CommandError(f"cannot create the development key {path}: {exc.strerror}",
                           hint="pass --key FILE or set MODELPIN_SIGNING_KEY") from None
    return SigningKey(key, str(path))


def signing_keys(root: Path, key_files: tuple[Path, ...], policy: ArtifactPolicy,
                 *, require_key: bool = False) -> tuple[list[SigningKey], bool]:
    """The keys to sign with, and whether that is the local development key."""
    keys: list[SigningKey] = []
    for path in key_files:
        try:
            keys.append(read_private_key(path.read_bytes(), str(path)))
        except OSError as exc:
            raise CommandError(f"cannot read --key {path}: {exc.strerror}") from None
    env = os.environ.get(KEY_ENV, "").strip()
    if not keys and env:
        # CI secrets sometimes arrive with literal "\n" for newlines.
        text = env.replace("\\n", "\n") if "\n" not in env else env
        keys.append(read_private_key(text.encode("utf-8"), f"${KEY_ENV}"))
    dev = not keys
    if dev and require_key:
        raise CommandError(
            f"no signing key: pass --key FILE or set {KEY_ENV} (--require-key refuses the "
            "local development key)", exit_code=EXIT_INVALID)
    if dev:
        keys.append(_dev_key(root))
    trusted = {k.computed_keyid: k.owner for k in policy.trusted_keys}
    if trusted:
        for k in keys:
            if k.keyid not in trusted:
                what = "the local development key" if dev else f"the key from {k.origin}"
                raise CommandError(
                    f"refusing to sign with {what} (keyid {k.keyid[:16]}…): it is not one "
                    f"of the {len(trusted)} trusted_keys in {ARTIFACT}",
                    exit_code=EXIT_INVALID,
                    hint="pass --key FILE or set MODELPIN_SIGNING_KEY to a trusted private key",
                )
        distinct = {k.keyid for k in keys}
        if len(distinct) < policy.threshold:
            raise CommandError(
                f"{ARTIFACT} requires {policy.threshold} signatures, {len(distinct)} "
                "distinct key(s) given", exit_code=EXIT_INVALID,
                hint="pass --key once per signing key")
    newest = newest_root(root)
    if newest is not None:
        role = newest.table
        where = f"root/{newest.version}.root.json"
        for k in keys:
            if k.keyid not in role.keys:
                what = "the local development key" if dev else f"the key from {k.origin}"
                raise CommandError(
                    f"refusing to sign with {what} (keyid {k.keyid[:16]}…): it is not a "
                    f"table key of the trust root ({where}); routers would refuse the table",
                    exit_code=EXIT_INVALID,
                    hint="pass --key FILE with a table key of the newest root, or rotate the "
                    "root (`modelpin root rotate --add-table-key`)")
        if len({k.keyid for k in keys}) < role.threshold:
            raise CommandError(
                f"the trust root ({where}) requires {role.threshold} table signatures, "
                f"{len({k.keyid for k in keys})} distinct key(s) given",
                exit_code=EXIT_INVALID, hint="pass --key once per signing key")
    return keys, dev


def newest_root(repo: Path) -> Root | None:
    """The newest root of ``<repo>/root/`` that chains from ``1.root.json`` (a version
    still being signed is skipped with a warning), or None without a ``root/``."""
    first = repo / "root" / "1.root.json"
    if not first.is_file():
        return None
    try:
        trusted = load_trusted_root(first.read_bytes())
    except (OSError, RootRejected) as exc:
        raise CommandError(f"{first}: {exc}", exit_code=EXIT_INVALID,
                           hint="check it with `modelpin root verify`") from None
    version = 2
    while True:
        path = repo / "root" / f"{version}.root.json"
        if not path.is_file():
            return trusted
        try:
            trusted = verify_next_root(trusted, path.read_bytes())
        except (OSError, RootRejected) as exc:
            warn(f"{path} is not (yet) a valid next root, signing for version "
                 f"{trusted.version}: {exc}")
            return trusted
        version += 1


def trusted_from_files(paths: tuple[Path, ...]) -> dict[str, Ed25519PublicKey]:
    out: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            key = signing.load_public_key(path.read_bytes())
        except OSError as exc:
            raise CommandError(f"cannot read --key {path}: {exc.strerror}",
                               exit_code=EXIT_INVALID) from None
        except signing.KeyFileError as exc:
            raise CommandError(f"--key {path}: {exc}", exit_code=EXIT_INVALID) from None
        out[signing.keyid_of(key)] = key
    return out


def read_artifact_policy(root: Path) -> ArtifactPolicy:
    path = root / ARTIFACT
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ArtifactPolicy()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}", exit_code=EXIT_INVALID) from None
    doc = parse(ARTIFACT, raw)
    try:
        if has_errors(doc.diagnostics):
            raise ValueError(doc.diagnostics[0].message)
        return ArtifactPolicy.model_validate(doc.data if doc.data is not None else {})
    except ValueError as exc:
        raise CommandError(f"{path} is invalid: {str(exc).splitlines()[0]}",
                           exit_code=EXIT_INVALID,
                           hint=f"run `modelpin validate --repo {root}`") from None



KEY_DIR_ENV = "MODELPIN_KEY_DIR"


def default_key_dir() -> Path:
    """Where keygen writes without --out: $MODELPIN_KEY_DIR, else
    $XDG_CONFIG_HOME/modelpin/keys (~/.config/modelpin/keys): never the current
    directory, which is usually the fleet's git work tree."""
    env = os.environ.get(KEY_DIR_ENV)
    if env:
        return Path(env)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "modelpin" / "keys"


def _inside_work_tree(directory: Path) -> Path | None:
    """The top of the git work tree holding ``directory`` (or its nearest existing
    parent), or None."""
    probe = directory.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        proc = subprocess.run(["git", "-C", str(probe), "rev-parse", "--show-toplevel"],
                              capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    top = proc.stdout.strip()
    return Path(top) if proc.returncode == 0 and top else None


@click.command(name="keygen")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Directory for modelpin-signing-key.pem and .pub (default: ${KEY_DIR_ENV}, "
              "else ~/.config/modelpin/keys).")
@click.option("--private", "private_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Private key file (with --public).")
@click.option("--public", "public_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Public key file (with --private).")
@click.option("--owner", default="platform-ci", show_default=True,
              help="Owner recorded in the printed policy snippet.")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@click.option("--inside-work-tree", "inside_work_tree", is_flag=True,
              help="Allow writing the private key inside a git work tree (it could be "
              "committed by accident; refused without this flag).")
def keygen_command(out_dir: Path | None, private_path: Path | None, public_path: Path | None,
                   owner: str, force: bool, inside_work_tree: bool) -> int:
    """Create an Ed25519 signing key pair and print its policies/artifact.yaml entry."""
    if (private_path is None) != (public_path is None):
        raise CommandError("--private and --public go together", exit_code=EXIT_USAGE)
    if private_path is not None and out_dir is not None:
        raise CommandError("use either --out DIR or --private/--public", exit_code=EXIT_USAGE)
    if private_path is None or public_path is None:
        base = out_dir if out_dir is not None else default_key_dir()
        private_path = base / "modelpin-signing-key.pem"
        public_path = base / "modelpin-signing-key.pub"
    if private_path.resolve() == public_path.resolve():
        raise CommandError("--private and --public name the same file", exit_code=EXIT_USAGE)
    work_tree = _inside_work_tree(private_path.parent)
    if work_tree is not None and not inside_work_tree:
        raise CommandError(
            f"refusing to write a private key inside the git work tree {work_tree}: it could "
            "be committed and published", exit_code=EXIT_USAGE,
            hint=f"omit --out (default {default_key_dir()}), choose a directory outside the "
            "repository, or pass --inside-work-tree if you mean it")
    if not force:
        for path in (private_path, public_path):
            if path.exists():
                raise CommandError(f"{path} exists; not overwriting a key",
                                   exit_code=EXIT_USAGE, hint="pass --force to replace it")
    key = signing.generate_private_key()
    public = key.public_key()
    b64 = signing.public_key_b64(public)
    try:
        write_new_file(private_path, signing.private_key_pem(key), 0o600, force=force)
        write_new_file(public_path, (b64 + "\n").encode("ascii"), 0o644, force=force)
    except FileExistsError as exc:
        raise CommandError(f"{exc.filename} exists; not overwriting a key", exit_code=EXIT_USAGE,
                           hint="pass --force to replace it") from None
    except OSError as exc:
        raise CommandError(f"cannot write the key pair: {exc.strerror} ({exc.filename})",
                           exit_code=EXIT_INVALID) from None
    keyid = signing.keyid_of(public)
    click.echo(f"wrote private key {private_path} (mode 0600: keep it secret; in CI pass its "
               f"PEM text as ${KEY_ENV})", err=True)
    click.echo(f"wrote public key  {public_path}", err=True)
    click.echo(f"add to {ARTIFACT}:", err=True)
    click.echo(f"trusted_keys:\n  - keyid: {keyid}\n    public_key: \"{b64}\"\n"
               f"    owner: {json.dumps(owner)}")
    return EXIT_OK


