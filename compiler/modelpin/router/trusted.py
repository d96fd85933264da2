"""The trusted state of a router: which table it holds and what it will accept next.

Modelled on python-tuf's ``TrustedMetadataSet``: it takes bytes, does no I/O and reads
no clock (the caller passes ``now``), raises a ``TableRejected`` subclass for bad data,
and changes state only through ``accept``. The shell (``Router``) persists the floor
between ``verify`` and ``accept``: verify, persist, then swap.

Rules, checked in this order on every candidate envelope:

1. Size: at most ``max_bytes`` bytes, checked before any parsing (``OversizeTableError``).
2. The envelope parses strictly as DSSE (``MalformedTableError``).
3. ``payloadType`` is the routing-table type (``UnsignedTableError``).
4. At least ``threshold`` distinct trusted keys signed PAE(payloadType, payload) with
   Ed25519; unknown key ids and bad signatures do not count (``UnsignedTableError``).
5. The payload is parsed from exactly the bytes that were verified, and must satisfy
   the payload schema (``MalformedTableError``).
6. ``expires_at`` is later than ``now``, the start of the reload (``ExpiredTableError``).
7. Against the floor (the last accepted serial and payload sha256, persisted across
   restarts): a lower serial is a rollback (``RollbackError``); an equal serial with
   another digest is an alarm (``SerialConflictError``); an equal serial with the same
   digest is the table already held, a no-op (``verify`` returns None), unless no table
   is loaded yet (a restart), in which case it is loaded again.

A table that passes every rule is returned by ``verify``; nothing changes until
``accept``. ``accept`` of a table ``verify`` did not return is misuse (``ValueError``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelpin import signing

from .errors import (
    ExpiredTableError,
    MalformedTableError,
    OversizeTableError,
    RollbackError,
    SerialConflictError,
    UnsignedTableError,
)
from .floor import Floor
from .payload import parse_payload
from .table import RoutingTable

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class TrustedTableSet:
    def __init__(
        self,
        trusted_keys: Mapping[str, Ed25519PublicKey],
        *,
        threshold: int = 1,
        floor: Floor | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        if len(trusted_keys) < threshold:
            raise ValueError(
                f"threshold {threshold} can never be met with {len(trusted_keys)} trusted keys"
            )
        self._keys = dict(trusted_keys)
        self._threshold = threshold
        self._max_bytes = max_bytes
        self._floor = floor
        self._table: RoutingTable | None = None
        self._verified: RoutingTable | None = None

    @property
    def table(self) -> RoutingTable | None:
        return self._table

    @property
    def floor(self) -> Floor | None:
        return self._floor

    def verify(self, data: bytes, now: float) -> RoutingTable | None:
        """Check ``data`` against every rule; the new table, or None if already held."""
        if len(data) > self._max_bytes:
            raise OversizeTableError(
                f"envelope is {len(data)} bytes, the cap is {self._max_bytes}"
            )
        try:
            envelope = signing.parse_envelope(data)
        except signing.EnvelopeError as exc:
            raise MalformedTableError(str(exc)) from None
        try:
            payload = signing.verify(envelope, self._keys, self._threshold)
        except signing.SignatureError as exc:
            raise UnsignedTableError(str(exc)) from None
        digest = hashlib.sha256(payload).hexdigest()
        table = parse_payload(payload, digest)
        if table.expires_ts <= now:
            raise ExpiredTableError(f"table serial {table.serial} expired at {table.expires_at}")
        floor = self._floor
        if floor is not None:
            if table.serial < floor.serial:
                raise RollbackError(
                    f"table serial {table.serial} is below the accepted serial {floor.serial}"
                )
            if table.serial == floor.serial:
                if digest != floor.sha256:
                    raise SerialConflictError(
                        f"table serial {table.serial} was already accepted with payload "
                        f"sha256 {floor.sha256[:16]}…, this one has {digest[:16]}…"
                    )
                if self._table is not None:
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
