"""Payload bytes -> ``RoutingTable``: parse and check the schema while building routes.

The rules are those of ``schemas/routing-table.schema.json`` (the compiler validates its
output against that file; a test runs both against the same bad payloads). The router
does not run a JSON Schema validator over the whole table: for 10,000 tenants that costs
many times a ``json.loads``. It checks each value once, by hand, while it builds the
routes, plus what a schema cannot say: a percent on the 0.01 grid, every referenced
model declared with the alias's kind, ``issued_at <= expires_at``.

The bytes must be canonical JSON nested at most ``strict_json.MAX_DEPTH`` deep
(``strict_json.loads_canonical``), and every field has its type and range checked before
it is used, so no signed payload can raise anything but ``MalformedTableError``: the
serial is at most ``MAX_SERIAL`` (2**53 - 1, what every JSON parser reads exactly; the
compiler's ``commits x 1,000,000 + minutes`` stays below it for 9 billion commits).

Pure: bytes in, a table or ``MalformedTableError`` out. It never touches the garbage
collector or any other process-wide state (it runs inside a customer's gateway).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NoReturn

from .bucketing import on_grid
from .coercion import COERCION_NAMES
from .errors import MalformedTableError
from .strict_json import NotCanonicalError, loads_canonical
from .table import (
    CANARY,
    CANARY_MODE,
    FAILURE_POLICIES,
    MODES,
    PINNED,
    ROLLED_BACK,
    SHADOW,
    STABLE,
    Decision,
    Route,
    RoutingTable,
    TenantPolicy,
)

FORMAT = "modelpin.routing-table/v1"
MAX_SERIAL = 2**53 - 1
MAX_DRAIN_SECONDS = 366 * 24 * 3600

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_TOOL = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SALT_MATCH = re.compile(r"[0-9a-f]{16}").fullmatch
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

_TOP_KEYS = frozenset(
    {"format", "serial", "source", "issued_at", "expires_at", "models", "tenants"}
)
_MODEL_KEYS = frozenset({"provider", "kind"})
_KINDS = frozenset({"chat", "embedding"})
_TENANT_KEYS = frozenset({"group", "failure_policy", "tools", "aliases"})
_ALIAS_KEYS = frozenset(
    {"kind", "stable", "candidate", "mode", "paused", "percent", "salt", "since",
     "drain_seconds"}
)


def _fail(path: str, message: str) -> NoReturn:
    raise MalformedTableError(f"payload {path}: {message}")


def _keys(value: object, expected: frozenset[str], path: str) -> dict[str, Any]:
    if type(value) is not dict:
        _fail(path, "must be an object")
    if value.keys() != expected:
        missing = sorted(expected - value.keys())
        unknown = sorted(value.keys() - expected)
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unknown:
            parts.append("unknown " + ", ".join(unknown))
        _fail(path, "; ".join(parts))
    return value


def _enum(value: object, allowed: frozenset[str], path: str) -> str:
    if type(value) is not str or value not in allowed:
        _fail(path, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _id(value: object, path: str) -> str:
    if type(value) is not str or _ID.fullmatch(value) is None:
        _fail(path, f"{value!r} is not an id matching ^[a-z0-9][a-z0-9._-]{{0,62}}$")
    return value


def _time(value: object, path: str) -> float:
    """An RFC 3339 UTC time with second precision and ``Z``, as epoch seconds."""
    if type(value) is not str or _TIME.fullmatch(value) is None:
        _fail(path, f"{value!r} is not a UTC time like 2026-03-20T10:00:00Z")
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        _fail(path, f"{value!r} is not a valid date and time")


def parse_payload(payload: bytes, sha256: str) -> RoutingTable:
    """Parse the signed payload bytes into a table; ``MalformedTableError`` if invalid."""
    try:
        doc = loads_canonical(payload)
    except NotCanonicalError as exc:
        raise MalformedTableError(str(exc)) from None
    try:
        return _parse(doc, sha256)
    except MalformedTableError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError,
            RecursionError) as exc:  # a check this module forgot: still a bad table
        raise MalformedTableError(f"payload is malformed: {type(exc).__name__}: {exc}") from None


def _parse(doc: Any, sha256: str) -> RoutingTable:
    top = _keys(doc, _TOP_KEYS, "(root)")
    if top["format"] != FORMAT:
        _fail("format", f"{str(top['format'])[:80]!r} is not {FORMAT!r}")
    serial = top["serial"]
    if type(serial) is not int or not 1 <= serial <= MAX_SERIAL:
        _fail("serial", f"must be an integer from 1 to {MAX_SERIAL} (2**53 - 1)")
    source = _keys(top["source"], frozenset({"commit"}), "source")
    commit = source["commit"]
    if type(commit) is not str or _COMMIT.fullmatch(commit) is None:
        _fail("source.commit", "must be a lowercase hex commit id")
    issued_at = top["issued_at"]
    expires_at = top["expires_at"]
    issued_ts = _time(issued_at, "issued_at")
    expires_ts = _time(expires_at, "expires_at")
    if expires_ts < issued_ts:
        _fail("expires_at", "is before issued_at")

    models = top["models"]
    if type(models) is not dict:
        _fail("models", "must be an object")
    kinds: dict[str, str] = {}
    for model_id, model in models.items():
        path = f"models.{model_id}"
        _id(model_id, path)
        m = _keys(model, _MODEL_KEYS, path)
        _id(m["provider"], path + ".provider")
        kinds[model_id] = _enum(m["kind"], _KINDS, path + ".kind")

    tenants_doc = top["tenants"]
    if type(tenants_doc) is not dict:
        _fail("tenants", "must be an object")
    # The hot loop: 10,000s of tenants. Fast checks inline, a path string is built only
    # on failure, and values repeated across tenants (alias ids, groups, times) are
    # validated once.
    build = _RouteBuilder(kinds, serial)
    known_ids: set[str] = set()
    id_match = _ID.fullmatch
    routes: dict[str, dict[str, Route]] = {}
    policies: dict[str, TenantPolicy] = {}
    # The parsed tenants are consumed as the routes are built: each tenant's JSON objects
    # are freed as its Route objects are made, so the allocation count that triggers the
    # cyclic GC barely moves (the GC itself is never touched: this runs in a customer's
    # process). ``doc`` belongs to this parse (``loads_canonical`` made it).
    pop = tenants_doc.pop
    for tenant_id in list(tenants_doc):
        t = pop(tenant_id)
        if id_match(tenant_id) is None:
            _id(tenant_id, f"tenants.{tenant_id}")
        coercions: tuple[str, ...] = ()
        if type(t) is dict and "coercions" in t:  # optional: only tenants that allow some
            coercions = _coercions(t["coercions"], f"tenants.{tenant_id}.coercions")
            t = {k: v for k, v in t.items() if k != "coercions"}
        # Exactly the expected keys: the right count, and every one present (a missing
        # one raises KeyError below) -- cheaper than comparing key sets.
        if type(t) is not dict or len(t) != 4:
            _keys(t, _TENANT_KEYS, f"tenants.{tenant_id}")
        try:
            group, policy, tools, aliases = t["group"], t["failure_policy"], t["tools"], t[
                "aliases"]
        except KeyError:
            _keys(t, _TENANT_KEYS, f"tenants.{tenant_id}")
        if type(group) is not str or group not in known_ids:
            known_ids.add(_id(group, f"tenants.{tenant_id}.group"))
        if type(policy) is not str or policy not in FAILURE_POLICIES:
            _enum(policy, FAILURE_POLICIES, f"tenants.{tenant_id}.failure_policy")
        if type(tools) is not dict:
            _fail(f"tenants.{tenant_id}.tools", "must be an object")
        for name, schema in tools.items():
            if name not in build.tool_names:
                if _TOOL.fullmatch(name) is None:
                    _fail(f"tenants.{tenant_id}.tools.{name}",
                          "is not a tool name ^[A-Za-z0-9_.-]{1,64}$")
                build.tool_names.add(name)
            if type(schema) is not dict and type(schema) is not bool:
                _fail(f"tenants.{tenant_id}.tools.{name}",
                      "must be a JSON Schema (object or boolean)")
        if type(aliases) is not dict:
            _fail(f"tenants.{tenant_id}.aliases", "must be an object")
        tenant_routes: dict[str, Route] = {}
        for alias_id, a in aliases.items():
            if alias_id not in known_ids:
                known_ids.add(_id(alias_id, f"tenants.{tenant_id}.aliases.{alias_id}"))
            if type(a) is not dict or len(a) != 9:
                _keys(a, _ALIAS_KEYS, f"tenants.{tenant_id}.aliases.{alias_id}")
            try:
                built = tenant_routes[alias_id] = build.route(tenant_id, alias_id, a)
                built.drain_seconds = a["drain_seconds"]
            except KeyError:  # a key missing, another in its place
                _keys(a, _ALIAS_KEYS, f"tenants.{tenant_id}.aliases.{alias_id}")
        routes[tenant_id] = tenant_routes
        policies[tenant_id] = TenantPolicy(policy, tools, coercions)
    return RoutingTable(
        serial=serial,
        sha256=sha256,
        issued_at=issued_at,
        expires_at=expires_at,
        expires_ts=expires_ts,
        source_commit=commit,
        routes=routes,
        tenants=policies,
        models=models,
        issued_ts=issued_ts,
    )


_NO_STICKY: dict[str, Decision] = {}  # shared by routes that need no session (never mutated)


class _RouteBuilder:
    """Checks one alias object and builds its ``Route``, sharing Decision objects and
    parsed times across the whole table. Written for speed: the common case runs
    straight through; the precise message is worked out only on failure."""

    def __init__(self, kinds: dict[str, str], serial: int) -> None:
        self.kinds = kinds
        self.serial = serial
        self.decisions: dict[tuple[str, str, str | None, bool], Decision] = {}
        self.stable: dict[str, Decision] = {}
        self.canary: dict[str, Decision] = {}
        self.times: dict[str, float] = {}
        self.sticky: dict[tuple[str, str], dict[str, Decision]] = {}
        self.on_grid: set[float] = set()  # canary percents already checked
        self.tool_names: set[str] = set()

    def decision(self, model: str, cohort: str, shadow: str | None, reset: bool) -> Decision:
        key = (model, cohort, shadow, reset)
        d = self.decisions.get(key)
        if d is None:
            d = Decision(model, cohort, shadow, self.serial, reset, shadow is not None)
            self.decisions[key] = d
        return d

    def route(self, tenant: str, alias: str, a: dict[str, Any]) -> Route:
        kind = a["kind"]
        mode = a["mode"]
        stable = a["stable"]
        percent = a["percent"]
        paused = a["paused"]
        salt = a["salt"]
        drain = a["drain_seconds"]
        # A declared model's kind is "chat" or "embedding", so this also checks `kind`.
        if type(stable) is not str or self.kinds.get(stable) != kind:
            self._bad_model(tenant, alias, "stable", stable, kind)
        if type(salt) is not str or _SALT_MATCH(salt) is None:
            _fail(_path(tenant, alias, "salt"), "must be 16 lowercase hex digits")
        if type(drain) is not int or not 0 <= drain <= MAX_DRAIN_SECONDS:
            _fail(_path(tenant, alias, "drain_seconds"),
                  f"must be an integer from 0 to {MAX_DRAIN_SECONDS}")
        stable_d = self.stable.get(stable)
        if stable_d is None:
            stable_d = self.stable[stable] = self.decision(stable, STABLE, None, False)
        if mode == PINNED:
            if (
                a["candidate"] is not None or a["since"] is not None or paused is not False
                or percent != 0 or type(percent) is bool
            ):
                self._bad_fields(tenant, alias, a)
            return Route(tenant, alias, mode, stable, None, 0, False, salt, None, None,
                         stable_d, stable_d, stable_d, stable_d, _NO_STICKY)
        candidate = a["candidate"]
        since = a["since"]
        if type(candidate) is not str or self.kinds.get(candidate) != kind:
            self._bad_model(tenant, alias, "candidate", candidate, kind)
        since_ts = self.times.get(since) if type(since) is str else None
        if since_ts is None:
            since_ts = self.times[since] = _time(since, _path(tenant, alias, "since"))
        if mode == CANARY_MODE:
            if (
                type(paused) is not bool
                or (type(percent) is not int and type(percent) is not float)
                or (percent not in self.on_grid
                    and (not 0 < percent <= 100 or not on_grid(percent)))
            ):
                self._bad_fields(tenant, alias, a)
            self.on_grid.add(percent)
            canary_d = self.canary.get(candidate)
            if canary_d is None:
                canary_d = self.canary[candidate] = self.decision(candidate, CANARY, None, False)
            sticky = self.sticky.get((stable, candidate))
            if sticky is None:  # shared by every route of this pair (never mutated)
                sticky = self.sticky[(stable, candidate)] = {STABLE: stable_d, CANARY: canary_d}
            return Route(tenant, alias, mode, stable, candidate, percent, paused, salt, since,
                         None, stable_d, None, canary_d, stable_d, sticky)
        if paused is not False or percent != 0 or type(percent) is bool:
            self._bad_fields(tenant, alias, a)
        if mode == SHADOW:
            shadow_d = self.decision(stable, STABLE, candidate, False)
            return Route(tenant, alias, mode, stable, candidate, 0, False, salt, since, None,
                         stable_d, shadow_d, stable_d, stable_d, _NO_STICKY)
        if mode == ROLLED_BACK:
            return Route(tenant, alias, mode, stable, candidate, 0, False, salt, since,
                         since_ts + drain, stable_d,
                         None, self.decision(candidate, CANARY, None, False),
                         self.decision(stable, STABLE, None, True), {STABLE: stable_d})
        _enum(mode, MODES, _path(tenant, alias, "mode"))
        raise AssertionError("unreachable")

    def _bad_model(self, tenant: str, alias: str, field: str, model: object, kind: object) -> None:
        _enum(kind, _KINDS, _path(tenant, alias, "kind"))
        _fail(_path(tenant, alias, field), f"{model!r} is not a declared {kind} model")

    def _bad_fields(self, tenant: str, alias: str, a: dict[str, Any]) -> NoReturn:
        mode, percent, paused = a["mode"], a["percent"], a["paused"]
        if type(paused) is not bool:
            _fail(_path(tenant, alias, "paused"), "must be a boolean")
        if paused and mode != CANARY_MODE:
            _fail(_path(tenant, alias, "paused"), "only a canary can be paused")
        if type(percent) is bool or (type(percent) is not int and type(percent) is not float):
            _fail(_path(tenant, alias, "percent"), "must be a number")
        if mode == CANARY_MODE:
            _fail(_path(tenant, alias, "percent"),
                  "a canary percent is in (0, 100] with 0.01 resolution")
        if percent != 0:
            _fail(_path(tenant, alias, "percent"), f"must be 0 in mode {mode}")
        _fail(_path(tenant, alias, ""), "a pinned route has candidate and since null")


def _coercions(value: object, path: str) -> tuple[str, ...]:
    if type(value) is not list or not value:
        _fail(path, "must be a non-empty list of coercion names")
    for name in value:
        if type(name) is not str or name not in COERCION_NAMES:
            _fail(path, f"{name!r} is not one of {', '.join(COERCION_NAMES)}")
    if len(set(value)) != len(value):
        _fail(path, "lists a coercion twice")
    return tuple(value)


def _path(tenant: str, alias: str, field: str) -> str:
    path = f"tenants.{tenant}.aliases.{alias}"
    return f"{path}.{field}" if field else path
