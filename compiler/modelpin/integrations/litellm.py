"""modelpin in a LiteLLM proxy: one line of ``litellm_settings.callbacks``.

::

    litellm_settings:
      callbacks: ["modelpin.integrations.litellm.proxy_handler"]
    callback_settings:
      modelpin: {table: ..., trusted_keys: [...], redis_url: ...}   # see settings.py

Per request (the proxy's hook API, LiteLLM >= 1.100):

1. ``async_pre_call_hook``: tenant from the authenticated key or team, alias = the
   requested model, session id from a header or the request's metadata; resolve with
   ``modelpin.router``; rewrite ``model`` to the exact version. A tenant unknown to the
   table, an unknown alias (by default) and a missing table are refused with an
   OpenAI-shaped error (403, 400, 503 + ``Retry-After``), never sent somewhere unpinned.
2. ``async_moderation_hook`` (runs beside the model call, after every pre-call hook, so
   a guardrail's masking is kept): a shadow decision fires the comparison copy to the
   shadow model as a background task. Its answer never reaches the client, so none of its
   tool calls can be executed; it is only judged (``check_tool_call(shadow=True)``).
3. ``async_post_call_success_hook``: the answer's tool calls are checked against the
   tenant's contract. An invalid call from the candidate gets the tenant's failure
   policy: ``fallback-stable`` re-asks the stable model and returns its answer;
   ``structured-error`` answers 422 with the structured error. A stable answer is never
   replaced (there is nothing more stable to fall back to): its invalid calls are
   counted and passed on, as without modelpin. Coercions the tenant allows repair the
   arguments the client executes. What the answer says about the model (refused, the
   requested JSON format kept, its length in tokens: ``answers.py``) is kept for step 4.
3b. ``async_post_call_streaming_iterator_hook``: a streamed answer to a request that
   offered tools is held until complete and checked the same way (the fallback streams
   stable's answer; a structured error arrives as the stream's error event); a text-only
   stream passes chunk by chunk.
4. ``async_post_call_response_headers_hook``: the request is recorded once (latency, a
   failed call as a downstream error, the answer's signals of step 3);
   ``x-modelpin-session-reset: true`` when the router cut the session over from a
   rolled-back candidate (the client should drop conversation state that depended on
   it), plus the cohort, model, serial, and ``x-modelpin-fallback: stable`` after a
   fallback.

Nothing here is shared with the proxy's other requests except the router (lock-free
reads) and this hook's bounded table of requests in flight.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from modelpin.router import RedisSessionStore, Router
from modelpin.router.trips import TripStore

from .proxy_hook import (
    HEADER_COHORT,
    HEADER_FALLBACK,
    HEADER_MODEL,
    HEADER_SERIAL,
    HEADER_SESSION_RESET,
    STATE_KEY,
    ModelpinHook,
)
from .settings import HookConfigError, HookSettings, parse_settings

__all__ = [
    "HEADER_COHORT",
    "HEADER_FALLBACK",
    "HEADER_MODEL",
    "HEADER_SERIAL",
    "HEADER_SESSION_RESET",
    "STATE_KEY",
    "HookConfigError",
    "HookSettings",
    "ModelpinHook",
    "from_proxy_config",
]

log = logging.getLogger("modelpin.integrations.litellm")


# --- construction from the proxy's config.yaml ------------------------------------------------


def from_proxy_config(environ: Mapping[str, str] | None = None, *,
                      remote_sessions: bool | None = None) -> ModelpinHook:
    """The hook configured by ``callback_settings.modelpin`` of the running proxy's
    config.yaml: a started ``Router`` (loaded now, then polling in the background).
    ``remote_sessions``: see ``ModelpinHook`` (default: resolve off the event loop when
    sessions live in Redis)."""
    import litellm

    raw = (getattr(litellm, "callback_settings", None) or {}).get("modelpin")
    settings = parse_settings(raw, os.environ if environ is None else environ)
    store: RedisSessionStore | None = None
    trips: TripStore | None = None
    if settings.redis_url is not None:
        # One Redis for both: session pins shared by the replicas, and the guard's trips
        # (every replica honours a trip within about a second, as a rollback).
        store = RedisSessionStore.from_url(settings.redis_url)
        trips = TripStore.from_url(settings.redis_url)
    trust: dict[str, Any] = (
        {"root": settings.root} if settings.root is not None
        else {"trusted": list(settings.trusted_keys), "threshold": settings.threshold})
    router = Router(
        settings.table,
        **trust,
        state_file=settings.state_file,
        session_store=store,
        stale_policy=settings.stale_policy,
        poll_interval=settings.poll_interval,
        name="litellm",
        trips=trips,
    )
    result = router.start()
    if result.error is not None:
        log.error("modelpin: no routing table loaded yet (%s); requests for modelpin "
                  "tenants get 503 until one verifies", result.error)
    if settings.metrics_address is not None:
        from prometheus_client import REGISTRY, start_http_server

        host, port = settings.metrics_address
        start_http_server(port, addr=host, registry=getattr(router, "registry", REGISTRY))
    return ModelpinHook(router, settings, remote_sessions=remote_sessions)


_handlers: dict[str, ModelpinHook] = {}


def __getattr__(name: str) -> Any:
    """``proxy_handler``: built on first access, when the proxy loads its callbacks (after
    it has read ``callback_settings``), so a bad setting stops the proxy at start-up with
    the list of problems instead of failing requests later."""
    if name != "proxy_handler":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    handler = _handlers.get(name)
    if handler is None:
        try:
            handler = _handlers[name] = from_proxy_config()
        except HookConfigError as exc:
            log.error("modelpin: invalid proxy configuration:\n%s", exc)
            raise
    return handler
