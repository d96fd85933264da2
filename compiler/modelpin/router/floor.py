"""The persisted floor: the serial and payload digest of the last accepted table.

A restarted router reads it before it accepts anything, so it never goes back to an
older table, nor accepts another table under the same serial. Written atomically:
a temp file in the same directory, fsync, rename over the old file, fsync of the
directory. A missing file means "no floor yet"; an unreadable one is an error (failing
open would let anyone who can truncate the file roll the router back).
"""

from __future__ import annotations

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
    sha256: str


def load_floor(path: Path) -> Floor | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read state file {path}: {exc}") from None
    try:
        doc = json.loads(data)
        serial, digest = doc["serial"], doc["sha256"]
    except (ValueError, TypeError, KeyError):
        raise StateFileError(f"state file {path} is corrupt") from None
    if type(serial) is not int or serial < 1 or not isinstance(digest, str) or not (
        _HEX64.fullmatch(digest)
    ):
        raise StateFileError(f"state file {path} is corrupt")
    return Floor(serial, digest)


def save_floor(path: Path, floor: Floor) -> None:
    data = json.dumps({"serial": floor.serial, "sha256": floor.sha256}).encode() + b"\n"
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
