"""The persisted state: the floor (serial and payload digest of the last accepted
table) and the newest trust root the router adopted.

A restarted router reads it before it accepts anything, so it never goes back to an
older table, nor accepts another table under the same serial, nor trusts keys that a
root it already adopted revoked. A floor lowered by a root's ``serial_floor`` has no
digest (any table at that serial or above is accepted). Written atomically:
a temp file in the same directory, fsync, rename over the old file, fsync of the
directory. A missing file means "no floor yet"; an unreadable one is an error (failing
open would let anyone who can truncate the file roll the router back).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import StateFileError

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Floor:
    serial: int
    sha256: str | None


@dataclass(frozen=True, slots=True)
class State:
    floor: Floor | None = None
    root: bytes | None = None
    """The newest adopted root envelope (verified again when loaded)."""


def load_state(path: Path) -> State:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return State()
    except OSError as exc:
        raise StateFileError(f"cannot read state file {path}: {exc}") from None
    try:
        doc = json.loads(data)
        serial, digest, root = doc["serial"], doc["sha256"], doc.get("root")
        root_bytes = None if root is None else base64.b64decode(root, validate=True)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, binascii.Error):
        raise StateFileError(f"state file {path} is corrupt") from None
    if serial is None and digest is None:
        return State(None, root_bytes)
    if type(serial) is not int or serial < 0 or not (
        digest is None or (isinstance(digest, str) and _HEX64.fullmatch(digest))
    ):
        raise StateFileError(f"state file {path} is corrupt")
    return State(Floor(serial, digest), root_bytes)


def load_floor(path: Path) -> Floor | None:
    return load_state(path).floor


def save_state(path: Path, state: State) -> None:
    floor = state.floor
    doc: dict[str, object] = {
        "serial": None if floor is None else floor.serial,
        "sha256": None if floor is None else floor.sha256,
    }
    if state.root is not None:
        doc["root"] = base64.b64encode(state.root).decode("ascii")
    data = json.dumps(doc).encode() + b"\n"
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StateFileError(f"cannot write state file {path}: {exc}") from None
