"""The trusted state of a router: which root and table it holds, what it accepts next.

Modelled on python-tuf's ``TrustedMetadataSet``: it takes bytes, does no I/O and reads
no clock (the caller passes ``now``), raises a ``TableRejected`` subclass for bad data
and ``ValueError`` for misuse, and changes state only through ``accept_root`` and
``accept``. The shell (``Router``) persists between verify and accept: verify, persist,
then swap.

Who may sign tables comes either from a plain list of trusted keys with a threshold
(small setups; never expires, rotates only by reconfiguring), or from a trust root
(``root.py``): ``verify_next_root``/``accept_root`` walk the chain one version at a
time, and the newest root names the table keys and threshold. Key ids are always the
sha256 of the raw key and the threshold counts distinct keys.

Rules, checked in this order on every candidate table envelope:

1. Size: at most ``max_bytes`` bytes, checked before any parsing (``OversizeTableError``).
2. The newest root has not expired (``ExpiredRootError``).
3. The envelope parses strictly as DSSE: strict UTF-8 JSON, no duplicate keys, at most
   ``signing.MAX_SIGNATURES`` signatures, strict base64 (``MalformedTableError``).
4. ``payloadType`` is the routing-table type, and ``threshold`` distinct table keys
   signed PAE(payloadType, payload) with Ed25519; duplicates and unknown key ids cost
   nothing, verification stops at the threshold (``UnsignedTableError``).
5. The payload is parsed from exactly the bytes that were verified; it must be
   canonical JSON, bounded in depth, and satisfy the payload schema
   (``MalformedTableError``).
6. The table is fresh at ``now``, the start of the reload: before ``expires_at`` and,
   with ``max_staleness``, before ``issued_at + max_staleness`` (``ExpiredTableError``).
7. Against the floor (the last accepted serial and payload sha256, persisted across
   restarts): a lower serial is a rollback (``RollbackError``); an equal serial with
   another digest is an alarm (``SerialConflictError``); an equal serial with the same
   digest is the table already held, a no-op (``verify`` returns None), unless no table
   is loaded yet (a restart), in which case it is loaded again.

A table that passes every rule is returned by ``verify``; nothing changes until
``accept``. ``accept`` of a table ``verify`` did not return is misuse (``ValueError``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelpin import signing

from .errors import (
    ExpiredRootError,
    ExpiredTableError,
    MalformedTableError,
    OversizeTableError,
    RollbackError,
    SerialConflictError,
    UnsignedTableError,
)
from .floor import Floor
from .payload import parse_payload
from .root import Role, Root, load_trusted_root, verify_next_root
from .table import RoutingTable

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class TrustedTableSet:
    def __init__(
        self,
        trusted_keys: Mapping[str, Ed25519PublicKey] | None = None,
        *,
        threshold: int = 1,
        root: bytes | None = None,
        floor: Floor | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_staleness: float | None = None,
    ) -> None:
        """Trust ``trusted_keys`` (key id -> key, ids the sha256 of the raw key) with
        ``threshold``, or the trust root envelope ``root`` (signed by itself)."""
        if (trusted_keys is None) == (root is None):
            raise ValueError("pass either trusted_keys or root")
        if max_staleness is not None and max_staleness <= 0:
            raise ValueError("max_staleness must be positive")
        self._root: Root | None = None
        if root is not None:
            self._root = load_trusted_root(root)
            self._role = self._root.table
        else:
            assert trusted_keys is not None
            if threshold < 1:
                raise ValueError("threshold must be at least 1")
            keys = signing.distinct_keys(trusted_keys)
            if len(keys) < threshold:
                raise ValueError(
                    f"threshold {threshold} can never be met with {len(keys)} distinct "
                    "trusted keys"
                )
            self._role = Role(keys, threshold)
        self._max_bytes = max_bytes
        self._max_staleness = max_staleness
        self._floor = floor
        self._table: RoutingTable | None = None
        self._verified: RoutingTable | None = None

    @property
    def table(self) -> RoutingTable | None:
        return self._table

    @property
    def floor(self) -> Floor | None:
        return self._floor

    @property
    def root(self) -> Root | None:
        return self._root

    @property
    def table_role(self) -> Role:
        """The keys and threshold a table must be signed with now."""
        return self._role

    def stale_at(self, table: RoutingTable) -> float:
        """When ``table`` stops being fresh: ``expires_at``, or earlier with
        ``max_staleness`` (the freeze-attack bound)."""
        if self._max_staleness is None:
            return table.expires_ts
        return min(table.expires_ts, table.issued_ts + self._max_staleness)

    # --- the root chain ---------------------------------------------------------------

    def verify_root(self, data: bytes) -> Root:
        """Check root version N+1 against the trusted root N (``root.py`` rule 3)."""
        if self._root is None:
            raise ValueError("this router trusts a plain key list, not a root")
        return verify_next_root(self._root, data)

    def floor_after(self, root: Root) -> Floor | None:
        """The floor once ``root`` is adopted (lowered by its ``serial_floor``)."""
        floor = self._floor
        if root.serial_floor is not None and floor is not None and (
            floor.serial > root.serial_floor
        ):
            return Floor(root.serial_floor, None)
        return floor

    def accept_root(self, root: Root) -> None:
        """Make a root returned by ``verify_root`` the trusted one."""
        if self._root is None or root.version != self._root.version + 1:
            raise ValueError("accept_root() takes the root the last verify_root() returned")
        self._floor = self.floor_after(root)
        self._root = root
        self._role = root.table

    def adopt_persisted_root(self, data: bytes) -> Root | None:
        """A root persisted by an earlier run: trusted if it is newer than the
        configured one and signed by itself (local state is trusted, as in TUF).
        Returns it, or None if it is not newer."""
        if self._root is None:
            raise ValueError("this router trusts a plain key list, not a root")
        root = load_trusted_root(data)
        if root.version <= self._root.version:
            return None
        self._root = root
        self._role = root.table
        return root

    def still_trusted(self, table: RoutingTable) -> bool:
        """True if ``table``'s signers still meet the current table role."""
        return len(set(table.signed_by) & self._role.keys.keys()) >= self._role.threshold

    # --- tables -----------------------------------------------------------------------

    def verify(self, data: bytes, now: float) -> RoutingTable | None:
        """Check ``data`` against every rule; the new table, or None if already held."""
        if len(data) > self._max_bytes:
            raise OversizeTableError(
                f"envelope is {len(data)} bytes, the cap is {self._max_bytes}"
            )
        root = self._root
        if root is not None and root.expires_ts <= now:
            raise ExpiredRootError(
                f"trust root version {root.version} expired at {root.expires_at}: no new "
                "table is trusted until a newer root is published"
            )
        try:
            envelope = signing.parse_envelope(data)
        except signing.EnvelopeError as exc:
            raise MalformedTableError(str(exc)) from None
        try:
            signers = signing.verified_signers(envelope, self._role.keys, self._role.threshold)
        except signing.SignatureError as exc:
            raise UnsignedTableError(str(exc)) from None
        payload = envelope.payload
        digest = hashlib.sha256(payload).hexdigest()
        table = dataclasses.replace(parse_payload(payload, digest), signed_by=signers)
        if self.stale_at(table) <= now:
            if table.expires_ts <= now:
                raise ExpiredTableError(
                    f"table serial {table.serial} expired at {table.expires_at}"
                )
            raise ExpiredTableError(
                f"table serial {table.serial} was issued at {table.issued_at}, longer ago "
                f"than max_staleness ({self._max_staleness:g} s)"
            )
        floor = self._floor
        if floor is not None:
            if table.serial < floor.serial:
                raise RollbackError(
                    f"table serial {table.serial} is below the accepted serial {floor.serial}"
                )
            if table.serial == floor.serial and floor.sha256 is not None:
                if digest != floor.sha256:
                    raise SerialConflictError(
                        f"table serial {table.serial} was already accepted with payload "
                        f"sha256 {floor.sha256[:16]}…, this one has {digest[:16]}…"
                    )
                if self._table is not None and self._table.sha256 == digest:
                    return None
        self._verified = table
        return table

    def accept(self, table: RoutingTable) -> None:
        """Make a table returned by the last ``verify`` the trusted one."""
        if table is not self._verified:
            raise ValueError("accept() takes the table the last verify() returned")
        self._verified = None
        self._table = table
        self._floor = Floor(table.serial, table.sha256)
