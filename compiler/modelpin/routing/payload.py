"""Fleet -> routing-table payload (format ``modelpin.routing-table/v1``), as canonical bytes.

Pure: takes a validated ``Fleet`` and the header values (serial, commit, times), returns
bytes; never reads files, git or the clock. The format is ``docs/routing-table.md``.

The payload is assembled from one fragment per tenant: the canonical bytes of the
tenant's object. A fragment depends only on the tenant's own file and the policy's
``drain_seconds``, so a compile can reuse the fragments of unchanged tenants (keyed by
the file's content hash, see ``fragment_key``). The top-level object is put together
around the sorted fragments; that is RFC 8785 because tenant ids, alias ids and every
other key at those levels are ASCII identifiers, for which code-point order (Python) and
UTF-16 order (RFC 8785) agree. Tests compare the assembly with ``rfc8785.dumps`` of the
whole document.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelpin.model.fleet import Fleet
from modelpin.model.tenant import Tenant, format_time
from modelpin.rollout.state import mode_of
from modelpin.routing.canonical import CanonicalError, canonical_bytes

FORMAT = "modelpin.routing-table/v1"
FRAGMENT_REVISION = "1"
"""Bump when the shape of a tenant fragment changes: cached fragments then miss."""
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NO_COMMIT = "0" * 40
"""``source.commit`` of a table compiled outside git."""


class PayloadError(ValueError):
    """A valid fleet that still has no payload (a tool schema with no JSON form)."""


@dataclass(frozen=True)
class Header:
    serial: int
    commit: str
    issued_at: datetime
    expires_at: datetime


def salt_of(tenant: str, alias: str, candidate: str | None) -> str:
    """First 16 hex digits of ``sha256("<tenant>:<alias>:<candidate or ''>")``."""
    text = f"{tenant}:{alias}:{candidate or ''}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _number(value: float) -> int | float:
    """Integral values as ints (RFC 8785 writes 5.0 as 5; keep the value the same type)."""
    return int(value) if float(value).is_integer() else value


def tenant_document(tenant: Tenant, drain_seconds: int) -> dict[str, Any]:
    """The payload object of one tenant."""
    aliases: dict[str, Any] = {}
    for name, alias in tenant.aliases.items():
        route = mode_of(alias)
        rollout = alias.rollout
        aliases[name] = {
            "kind": alias.kind,
            "stable": route.stable,
            "candidate": route.candidate,
            "mode": route.mode,
            "paused": route.paused,
            "percent": _number(route.percent) if route.mode == "canary" else 0,
            "salt": salt_of(tenant.id, name, route.candidate),
            "since": format_time(rollout.since) if rollout is not None else None,
            "drain_seconds": drain_seconds,
        }
    doc: dict[str, Any] = {
        "group": tenant.group,
        "failure_policy": tenant.failure_policy,
        "tools": tenant.tools,
        "aliases": aliases,
    }
    if tenant.coercions:  # optional in the table: only tenants that allow some
        doc["coercions"] = list(tenant.coercions)
    return doc


def fragment_key(content_id: str, drain_seconds: int) -> str:
    """Cache key of a tenant fragment: the tenant file's content hash and what else goes in."""
    return f"{FRAGMENT_REVISION}:{drain_seconds}:{content_id}"


def tenant_fragment(tenant: Tenant, drain_seconds: int) -> bytes:
    for name in tenant.tools:
        if _TOOL_NAME.fullmatch(name) is None:
            raise PayloadError(f"tenant '{tenant.id}': tool name {name!r} is not "
                               "^[A-Za-z0-9_.-]{1,64}$ (the routing-table schema)")
    try:
        return canonical_bytes(tenant_document(tenant, drain_seconds))
    except CanonicalError as exc:
        raise PayloadError(
            f"tenant '{tenant.id}': a tool schema has no canonical JSON form: {exc}"
        ) from None


def referenced_models(fleet: Fleet) -> dict[str, dict[str, str]]:
    """Every model version a route names (stable or candidate): provider and kind."""
    used: set[str] = set()
    for tenant in fleet.tenants.values():
        for alias in tenant.aliases.values():
            used.add(alias.pin)
            if alias.rollout is not None:
                used.add(alias.rollout.candidate)
    return {
        mid: {"provider": fleet.models[mid].provider, "kind": fleet.models[mid].kind}
        for mid in sorted(used)
    }


def build_document(fleet: Fleet, header: Header) -> dict[str, Any]:
    """The whole payload as a plain value (for tests and tools; compile uses ``build``)."""
    drain = fleet.artifact.drain_seconds
    return {
        **_header_fields(header),
        "models": referenced_models(fleet),
        "tenants": {
            tid: tenant_document(fleet.tenants[tid], drain) for tid in sorted(fleet.tenants)
        },
    }


def _header_fields(header: Header) -> dict[str, Any]:
    if header.serial < 1:
        raise PayloadError(f"serial must be at least 1, not {header.serial}")
    return {
        "format": FORMAT,
        "serial": header.serial,
        "source": {"commit": header.commit},
        "issued_at": format_time(header.issued_at),
        "expires_at": format_time(header.expires_at),
    }


def build(
    fleet: Fleet,
    header: Header,
    *,
    content_ids: Mapping[str, str] | None = None,
    fragments: MutableMapping[str, bytes] | None = None,
) -> bytes:
    """The canonical payload bytes of ``fleet``.

    With ``content_ids`` (tenant id -> content hash of its file) and a ``fragments``
    cache, a tenant's fragment is taken from the cache when its key is there and stored
    when it is not. Both caches are optional and never change the bytes.
    """
    drain = fleet.artifact.drain_seconds
    parts: list[bytes] = []
    for tid in sorted(fleet.tenants):
        key = None
        fragment = None
        if fragments is not None and content_ids is not None and tid in content_ids:
            key = fragment_key(content_ids[tid], drain)
            fragment = fragments.get(key)
        if fragment is None:
            fragment = tenant_fragment(fleet.tenants[tid], drain)
            if key is not None and fragments is not None:
                fragments[key] = fragment
        parts.append(b'"' + tid.encode("ascii") + b'":' + fragment)
    head = _header_fields(header)
    head["models"] = referenced_models(fleet)
    head["tenants"] = {}
    # Top-level keys sort as: expires_at format issued_at models serial source tenants;
    # "tenants" is last, so its (empty) object closes the document: splice the fragments in.
    skeleton = canonical_bytes(head)
    assert skeleton.endswith(b'"tenants":{}}')
    return skeleton[:-2] + b",".join(parts) + b"}}"
