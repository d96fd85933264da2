"""The content digest of a BETS suite: what evidence binds to (SPEC 2.1 rules 2 and 3).

A suite is two files, ``bets/<suite>/suite.yaml`` and ``bets/<suite>/cases.jsonl``
(``layout.suite_paths``). Its digest is over their **raw bytes**, not a canonical form:
any byte changed (a case deleted, edited, reordered, a line re-wrapped, a threshold or
the judge changed) is a new content and needs a new ``version``. Spelled out so anyone
can recompute it::

    cd bets/<suite> && sha256sum suite.yaml cases.jsonl | sha256sum

i.e. the sha256 of ``"<hex sha256 of suite.yaml>  suite.yaml\\n<hex sha256 of
cases.jsonl>  cases.jsonl\\n"``. ``modelpin bets run`` records it in the evidence as
``suite_sha256``; ``check`` compares it with the base's suite at that version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel

from modelpin.load.layout import CASES_FILE, SUITE_FILE, suite_paths
from modelpin.load.tree import SourceTree
from modelpin.model.bets import Suite, SuiteCases, SuiteSource

DIGEST_FILES = (SUITE_FILE, CASES_FILE)
"""The files of a suite, in the order the digest lists them."""

_BY_BLOB: dict[str, str] = {}
"""git blob id -> sha256 of the blob's bytes. Both are hashes of the same bytes, so an
entry never goes stale; it spares re-reading unchanged suite files when a process loads
several trees (``check`` loads base and head)."""
_MAX_REMEMBERED = 4096


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def suite_sha256(file_digests: Mapping[str, str]) -> str:
    """The suite digest from the hex sha256 of each file (keyed by file name)."""
    listing = "".join(f"{file_digests[name]}  {name}\n" for name in DIGEST_FILES)
    return hashlib.sha256(listing.encode("ascii")).hexdigest()


def folder_sha256(folder: Path) -> str:
    """The digest of the suite in ``folder`` as the files on disk read now (raises
    ``OSError``). ``bets run`` and ``attest`` use it; ``check`` reads git objects."""
    return suite_sha256({name: file_sha256((folder / name).read_bytes())
                         for name in DIGEST_FILES})


def suite_sources(tree: SourceTree, values: Mapping[str, BaseModel],
                  suites: Mapping[str, Suite]) -> dict[str, SuiteSource]:
    """The ``SuiteSource`` of every valid suite of ``tree`` (``suites``, from
    ``check_bets``). Reads only suite files (in one go), and through a git blob id memo
    not even those when another tree of the run already had the same bytes."""
    held = {sid: suite_paths(sid) for sid in sorted(suites)
            if isinstance(values.get(suite_paths(sid)[1]), SuiteCases)}
    digests = _digests(tree, [path for paths in held.values() for path in paths])
    out: dict[str, SuiteSource] = {}
    for suite_id, paths in held.items():
        cases = values[paths[1]]
        assert isinstance(cases, SuiteCases)
        by_name = {name: digests[path] for name, path in zip(DIGEST_FILES, paths, strict=True)}
        out[suite_id] = SuiteSource(suite_id, suites[suite_id].version,
                                    tuple((path, digests[path]) for path in paths),
                                    suite_sha256(by_name), cases)
    return out


def _digests(tree: SourceTree, paths: list[str]) -> dict[str, str]:
    """path -> sha256 of its bytes in ``tree``."""
    blob_id: Callable[[str], str] | None = getattr(tree, "blob_id", None)
    blobs = {p: blob_id(p) for p in paths} if callable(blob_id) else {}
    out = {p: _BY_BLOB[blobs[p]] for p in paths if blobs.get(p) in _BY_BLOB}
    missing = [p for p in paths if p not in out]
    if not missing:
        return out
    read_some: Callable[[list[str]], dict[str, bytes]] | None = getattr(tree, "read_some", None)
    data = read_some(missing) if callable(read_some) else {p: tree.read(p) for p in missing}
    if len(_BY_BLOB) + len(missing) > _MAX_REMEMBERED:
        _BY_BLOB.clear()
    for path in missing:
        out[path] = file_sha256(data[path])
        if path in blobs:
            _BY_BLOB[blobs[path]] = out[path]
    return out
