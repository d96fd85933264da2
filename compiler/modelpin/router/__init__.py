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

Submodules load on first use (PEP 562): the compiler imports the light registries
``modelpin.router.coercion`` and ``modelpin.router.metric_names`` without paying for
the router's HTTP, Redis and Prometheus clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        UnboundDecisionError,
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

_EXPORTS: dict[str, str] = {
    "basis_points": "bucketing",
    "bucket": "bucketing",
    "in_canary": "bucketing",
    "ExpiredRootError": "errors",
    "RootRejected": "errors",
    "RootVersionError": "errors",
    "UntrustedTableError": "errors",
    "Root": "root",
    "ExpiredTableError": "errors",
    "MalformedTableError": "errors",
    "OversizeTableError": "errors",
    "ResolveError": "errors",
    "RollbackError": "errors",
    "RouterError": "errors",
    "SerialConflictError": "errors",
    "SourceError": "errors",
    "StateFileError": "errors",
    "TableRejected": "errors",
    "TableUnavailableError": "errors",
    "UnboundDecisionError": "errors",
    "UnknownAliasError": "errors",
    "UnknownTenantError": "errors",
    "UnsignedTableError": "errors",
    "Floor": "floor",
    "RefreshResult": "router",
    "Router": "router",
    "RouterStatus": "router",
    "trusted_keys": "router",
    "InMemorySessionStore": "sessions",
    "RedisSessionStore": "sessions",
    "SessionStore": "sessions",
    "SessionStoreUnavailable": "sessions",
    "FileSource": "sources",
    "HttpSource": "sources",
    "TableSource": "sources",
    "CANARY": "table",
    "STABLE": "table",
    "Decision": "table",
    "RoutingTable": "table",
    "ToolAction": "tools",
    "ToolCallResult": "tools",
    "TrustedTableSet": "trusted",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelpin.router' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


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
    "UnboundDecisionError",
    "UnknownAliasError",
    "UnknownTenantError",
    "UnsignedTableError",
    "UntrustedTableError",
    "basis_points",
    "bucket",
    "in_canary",
    "trusted_keys",
]
