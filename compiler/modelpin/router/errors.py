"""The router's exception tree, split by the origin of the fault (python-tuf style).

- ``TableRejected``: a candidate routing table is bad (the *repository* side). The
  router keeps its current table and reports the rejection; it never raises these into
  a request.
- ``SourceError``: the table could not be fetched (file or network fault).
- ``ResolveError``: a request cannot be answered (unknown tenant/alias, no table).
"""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error ``modelpin.router`` raises."""


# --- candidate table rejected (repository side) -------------------------------------


class TableRejected(RouterError):
    """A candidate table failed verification; the current table stays in place."""

    kind = "rejected"


class OversizeTableError(TableRejected):
    """The envelope is larger than the configured byte cap; it was not parsed."""

    kind = "oversize"


class MalformedTableError(TableRejected):
    """The envelope or its payload is not well formed, or breaks the payload schema."""

    kind = "malformed"


class UnsignedTableError(TableRejected):
    """Wrong payloadType, or fewer than ``threshold`` trusted keys signed the payload."""

    kind = "unsigned"


class ExpiredTableError(TableRejected):
    """``expires_at`` is not later than the start of the reload."""

    kind = "expired"


class RollbackError(TableRejected):
    """The serial is below the floor: an older table (rollback attack or stale mirror)."""

    kind = "rollback"


class SerialConflictError(TableRejected):
    """The serial equals the floor but the payload digest differs: an alarm.

    Two different tables signed with the same serial means either a compromised or
    misused signing key or a broken pipeline; the router refuses both and alarms.
    """

    kind = "serial-conflict"


class RootRejected(TableRejected):
    """A trust root in the chain is bad (malformed, not signed by the thresholds of the
    trusted root and of itself). The router keeps its root and table and accepts no new
    table until the chain is fixed."""

    kind = "root"


class RootVersionError(RootRejected):
    """Root N+1 does not say version N+1 (an older root served again: a rollback)."""

    kind = "root-version"


class ExpiredRootError(RootRejected):
    """The newest trusted root has expired: no new table is trusted until a new root."""

    kind = "root-expired"


class UntrustedTableError(TableRejected):
    """The table being served was signed by keys the newest root no longer trusts."""

    kind = "revoked"


# --- fetching ------------------------------------------------------------------------


class SourceError(RouterError):
    """The table could not be fetched (I/O error, HTTP status, timeout)."""

    kind = "source"


class StateFileError(RouterError):
    """The persisted floor could not be read or written."""

    kind = "state-file"


class UnexpectedReloadError(RouterError):
    """A reload failed in a way no other error covers (a bug); reported, never raised."""

    kind = "internal"


# --- request path ----------------------------------------------------------------------


class ResolveError(RouterError):
    """A request cannot be resolved."""


class UnknownTenantError(ResolveError, KeyError):
    """The tenant is not in the current table."""

    def __init__(self, tenant: str) -> None:
        super().__init__(f"unknown tenant {tenant!r}")
        self.tenant = tenant

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownAliasError(ResolveError, KeyError):
    """The tenant exists but has no such model alias."""

    def __init__(self, tenant: str, alias: str) -> None:
        super().__init__(f"tenant {tenant!r} has no model alias {alias!r}")
        self.tenant = tenant
        self.alias = alias

    def __str__(self) -> str:
        return str(self.args[0])


class TableUnavailableError(ResolveError):
    """No verified table is loaded, or the table expired and the policy is to refuse."""


class UnboundDecisionError(RouterError, TypeError):
    """``Decision.observe`` on a decision no router handed out (a table's shared
    decision, or one built by hand): it carries no counters, so the count would be
    lost. Observe on what ``resolve`` returned, or report with ``Router.record``."""
