"""The LiteLLM hook's settings (``callback_settings.modelpin`` in the proxy's config.yaml)
and where a request's tenant and session come from.

Pure: a mapping in, a frozen ``HookSettings`` or a ``HookConfigError`` out (every problem,
each with its key path and a hint). Values may be ``os.environ/NAME`` (LiteLLM's own
convention for secrets in config.yaml); the environment is passed in, never read here.

The tenant comes only from what the proxy authenticated (the API key's team or the key
itself): a request body or header is the client's word and could name another tenant.
The session id is the client's own conversation id, so a header or the request's
``metadata`` may carry it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

ENV_PREFIX: Final = "os.environ/"

#: ``tenant_from`` values without a field, and the prefixes that take one.
TENANT_ATTRIBUTES: Final = ("team_id", "team_alias", "key_alias", "user_id", "org_id")
TENANT_METADATA: Final = ("team_metadata.", "key_metadata.")
MAX_SESSION_ID: Final = 128

MissingSession = Literal["stable", "reject"]
UnknownAlias = Literal["reject", "pass"]

_KEYS: Final = frozenset({
    "table", "trusted_keys", "threshold", "root", "state_file", "redis_url", "poll_interval",
    "tenant_from", "session_from", "missing_session", "unknown_alias",
    "shadow_max_in_flight", "shadow_timeout", "stale_policy", "metrics_address",
})
_HEADER: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
_FIELD: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")


DEFAULT_TENANT_FROM: Final = "team_metadata.modelpin_tenant"
DEFAULT_SESSION_FROM: Final = ("header.x-session-id", "metadata.session_id")


class HookConfigError(ValueError):
    """``callback_settings.modelpin`` is missing or invalid; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class HookSettings:
    table: str
    trusted_keys: tuple[str, ...] = ()
    threshold: int = 1
    root: str | None = None
    state_file: str | None = None
    redis_url: str | None = None
    poll_interval: float = 5.0
    stale_policy: Literal["serve", "refuse"] = "serve"
    tenant_from: str = "team_metadata.modelpin_tenant"
    session_from: tuple[str, ...] = ("header.x-session-id", "metadata.session_id")
    missing_session: MissingSession = "stable"
    unknown_alias: UnknownAlias = "reject"
    shadow_max_in_flight: int = 32
    shadow_timeout: float = 60.0
    metrics_address: tuple[str, int] | None = None


_HINT: Final = (
    "hint: in the proxy's config.yaml:\n"
    "  callback_settings:\n"
    "    modelpin:\n"
    "      table: https://acme.github.io/fleet/routing-table.dsse.json\n"
    "      trusted_keys: [\"<base64 Ed25519 public key>\"]"
)


def parse_settings(raw: object, environ: Mapping[str, str]) -> HookSettings:
    """``HookSettings`` from the ``callback_settings.modelpin`` mapping."""
    where = "callback_settings.modelpin"
    if raw is None:
        raise HookConfigError(f"{where} is missing\n{_HINT}")
    if not isinstance(raw, Mapping):
        raise HookConfigError(f"{where} must be a mapping, not {type(raw).__name__}\n{_HINT}")
    problems: list[str] = []

    def bad(key: str, message: str) -> None:
        problems.append(f"{where}.{key}: {message}")

    for key in sorted(set(raw) - _KEYS, key=str):
        bad(str(key), f"unknown key (known: {', '.join(sorted(_KEYS))})")

    def text(key: str, value: object) -> str | None:
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX):]
            if name not in environ:
                bad(key, f"environment variable {name} is not set")
                return None
            value = environ[name]
        if not isinstance(value, str) or not value:
            bad(key, "must be a non-empty string")
            return None
        return value

    def number(key: str, default: float, *, integer: bool, minimum: float) -> Any:
        value = raw.get(key, default)
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or value < minimum:
            kind = "an integer" if integer else "a number"
            bad(key, f"must be {kind} >= {minimum:g}, not {value!r}")
            return default
        return value

    def choice(key: str, default: str, allowed: tuple[str, ...]) -> Any:
        value = raw.get(key, default)
        if value not in allowed:
            bad(key, f"{value!r} is not one of {', '.join(allowed)}")
            return default
        return value

    table = text("table", raw.get("table")) or ""
    keys_raw = raw.get("trusted_keys")
    keys: list[str] = []
    root = text("root", raw["root"]) if "root" in raw else None
    if "root" in raw and "trusted_keys" in raw:
        bad("root", "give either root (a signed trust root) or trusted_keys, not both")
    elif "root" in raw:
        pass
    elif not isinstance(keys_raw, list) or not keys_raw:
        bad("trusted_keys", "must be a non-empty list of base64 Ed25519 public keys "
            "(or give root: the path of a signed trust root)")
    else:
        for i, k in enumerate(keys_raw):
            value = text(f"trusted_keys[{i}]", k)
            if value is not None:
                keys.append(value)
    threshold = number("threshold", 1, integer=True, minimum=1)
    if keys and threshold > len(keys):
        bad("threshold", f"{threshold} is more than the {len(keys)} trusted key(s)")
    state_file = text("state_file", raw["state_file"]) if "state_file" in raw else None
    redis_url = text("redis_url", raw["redis_url"]) if "redis_url" in raw else None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        bad("redis_url", "must be a redis://, rediss:// or unix:// URL")

    metrics_address = None
    if "metrics_address" in raw:
        address = text("metrics_address", raw["metrics_address"])
        host, _, port = (address or "").rpartition(":")
        if address is not None and (not host or not port.isdigit() or not 0 < int(port) < 65536):
            bad("metrics_address", f"{address!r} is not host:port (e.g. 127.0.0.1:9464)")
        elif address is not None:
            metrics_address = (host, int(port))

    tenant_from = raw.get("tenant_from", DEFAULT_TENANT_FROM)
    if not _valid_tenant_source(tenant_from):
        bad("tenant_from", f"{tenant_from!r} is not one of {', '.join(TENANT_ATTRIBUTES)}, "
            "team_metadata.<field> or key_metadata.<field> (the tenant comes only from "
            "what the proxy authenticated)")
    session_raw = raw.get("session_from", list(DEFAULT_SESSION_FROM))
    if isinstance(session_raw, str):
        session_raw = [session_raw]
    session_from: list[str] = []
    if not isinstance(session_raw, list) or not session_raw:
        bad("session_from", "must be a non-empty list of header.<name> or metadata.<key>")
    else:
        for i, s in enumerate(session_raw):
            if _valid_session_source(s):
                session_from.append(s.lower() if s.startswith("header.") else s)
            else:
                bad(f"session_from[{i}]", f"{s!r} is not header.<name> or metadata.<key>")

    settings = HookSettings(
        table=table,
        trusted_keys=tuple(keys),
        threshold=threshold,
        root=root,
        state_file=state_file,
        redis_url=redis_url,
        poll_interval=number("poll_interval", 5.0, integer=False, minimum=0.1),
        stale_policy=choice("stale_policy", "serve", ("serve", "refuse")),
        tenant_from=tenant_from if isinstance(tenant_from, str) else "",
        session_from=tuple(session_from),
        missing_session=choice("missing_session", "stable", ("stable", "reject")),
        unknown_alias=choice("unknown_alias", "reject", ("reject", "pass")),
        shadow_max_in_flight=number("shadow_max_in_flight", 32, integer=True, minimum=0),
        shadow_timeout=number("shadow_timeout", 60.0, integer=False, minimum=0.1),
        metrics_address=metrics_address,
    )
    if problems:
        raise HookConfigError("\n".join(problems))
    return settings


def _valid_tenant_source(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if value in TENANT_ATTRIBUTES:
        return True
    for prefix in TENANT_METADATA:
        if value.startswith(prefix):
            return _FIELD.fullmatch(value[len(prefix):]) is not None
    return False


def _valid_session_source(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith("header."):
        return _HEADER.fullmatch(value[len("header."):]) is not None
    if value.startswith("metadata."):
        return _FIELD.fullmatch(value[len("metadata."):]) is not None
    return False


# --- per request ---------------------------------------------------------------------------


def tenant_of(source: str, auth: object) -> str | None:
    """The tenant named by ``source`` on the proxy's authenticated key (``UserAPIKeyAuth``),
    or None when the key carries none (the request is then not modelpin's)."""
    if source in TENANT_ATTRIBUTES:
        value = getattr(auth, source, None)
    else:
        prefix, _, field = source.partition(".")
        attribute = "team_metadata" if prefix == "team_metadata" else "metadata"
        metadata = getattr(auth, attribute, None)
        value = metadata.get(field) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) and value else None


def session_of(sources: tuple[str, ...], headers: Mapping[str, Any] | None,
               metadata: Mapping[str, Any] | None) -> str | None:
    """The first session id found among ``sources`` (headers matched case-insensitively)."""
    lowered: dict[str, Any] | None = None
    for source in sources:
        kind, _, name = source.partition(".")
        if kind == "header":
            if headers is None:
                continue
            if lowered is None:
                lowered = {str(k).lower(): v for k, v in headers.items()}
            value = lowered.get(name)
        else:
            value = None if metadata is None else metadata.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            text = str(value)
            # Session ids are client input and become session-store keys: a long one is
            # replaced by its digest (distinct ids stay distinct, keys stay small).
            if len(text) > MAX_SESSION_ID:
                return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
            return text
    return None
