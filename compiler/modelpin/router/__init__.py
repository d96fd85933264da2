"""modelpin.router: what an LLM gateway embeds to route requests by a signed table.

Usage::

    router = Router("https://artifacts.example/routing-table.dsse.json",
                    root="/etc/gateway/modelpin-1.root.json",   # or: trusted_keys([...])
                    max_staleness=2 * 86400,             # freeze-attack bound (seconds)
                    state_file="/var/lib/gateway/modelpin-floor.json",
                    session_store=RedisSessionStore.from_url("redis://..."))
    router.start()                       # load now, then hot-reload in the background
    d = router.resolve("acme-legal", "primary-reasoning", session_id)
    call(d.model); if d.shadow: shadow_copy(d.shadow)   # comparison only
    router.check_tool_call("acme-legal", "lookup_clause", args, shadow=False)

Depends on ``modelpin.signing`` only, never on the compiler.
"""

from .bucketing import basis_points, bucket, in_canary
from .errors import (
    ExpiredRootError,
    ExpiredTableError,
    MalformedTableError,
    OversizeTableError,
    ResolveError,
    RollbackError,
    RootRejected,
    RootVersionError,
    RouterError,
    SerialConflictError,
    SourceError,
    StateFileError,
    TableRejected,
    TableUnavailableError,
    UnknownAliasError,
    UnknownTenantError,
    UnsignedTableError,
    UntrustedTableError,
)
from .floor import Floor
from .root import Root
from .router import RefreshResult, Router, RouterStatus, trusted_keys
from .sessions import (
    InMemorySessionStore,
    RedisSessionStore,
    SessionStore,
    SessionStoreUnavailable,
)
from .sources import FileSource, HttpSource, TableSource
from .table import CANARY, STABLE, Decision, RoutingTable
from .tools import ToolAction, ToolCallResult
from .trusted import TrustedTableSet

__all__ = [
    "CANARY",
    "STABLE",
    "Decision",
    "ExpiredRootError",
    "ExpiredTableError",
    "FileSource",
    "Floor",
    "HttpSource",
    "InMemorySessionStore",
    "MalformedTableError",
    "OversizeTableError",
    "RedisSessionStore",
    "RefreshResult",
    "ResolveError",
    "RollbackError",
    "Root",
    "RootRejected",
    "RootVersionError",
    "Router",
    "RouterError",
    "RouterStatus",
    "RoutingTable",
    "SerialConflictError",
    "SessionStore",
    "SessionStoreUnavailable",
    "SourceError",
    "StateFileError",
    "TableRejected",
    "TableSource",
    "TableUnavailableError",
    "ToolAction",
    "ToolCallResult",
    "TrustedTableSet",
    "UnknownAliasError",
    "UnknownTenantError",
    "UnsignedTableError",
    "UntrustedTableError",
    "basis_points",
    "bucket",
    "in_canary",
    "trusted_keys",
]
