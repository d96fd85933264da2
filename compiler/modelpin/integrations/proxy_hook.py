"""``ModelpinHook``: the LiteLLM proxy hook itself (what each proxy hook does is in
``modelpin.integrations.litellm``'s docstring). Built by ``litellm.from_proxy_config``."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from modelpin.router import (
    CANARY,
    STABLE,
    Decision,
    ResolveError,
    Router,
    TableUnavailableError,
    ToolAction,
    ToolCallResult,
    UnknownAliasError,
    UnknownTenantError,
)

from .answers import AnswerSignals, answer_signals
from .chat import (
    ToolCall,
    invalid_tool_call_error,
    replay_request,
    set_arguments,
    set_streamed_arguments,
    streamed_tool_calls,
    tool_calls_of,
    tool_signature,
)
from .settings import HookSettings, session_of, tenant_of

log = logging.getLogger("modelpin.integrations.litellm")

#: ``data["metadata"]`` key holding this hook's token for a request (client values are
#: removed before anything reads it).
STATE_KEY: Final = "modelpin_request"
CHAT_CALLS: Final = frozenset({"completion", "acompletion"})
EMBEDDING_CALLS: Final = frozenset({"embeddings", "aembedding"})
MAX_IN_FLIGHT: Final = 100_000
#: Threads that run ``Router.resolve`` when the session store is remote (Redis): the
#: sticky-session round trip then never holds the proxy's event loop.
RESOLVE_THREADS: Final = 8

HEADER_COHORT: Final = "x-modelpin-cohort"
HEADER_MODEL: Final = "x-modelpin-model"
HEADER_SERIAL: Final = "x-modelpin-serial"
HEADER_SESSION_RESET: Final = "x-modelpin-session-reset"
HEADER_FALLBACK: Final = "x-modelpin-fallback"
_NO_SIGNALS: Final = AnswerSignals()


@dataclass(slots=True)
class _Request:
    tenant: str
    alias: str
    session: str | None
    decision: Decision
    chat: bool
    started: float
    fallback_model: str | None = None
    answered: bool = False
    shadow: asyncio.Task[dict[str, Any] | None] | None = None
    #: What the decided model's own answer says (refused, format, length), for ``record``.
    signals: AnswerSignals | None = None


def _error(status: int, message: str, error_type: str, code: str,
           headers: dict[str, str] | None = None) -> HTTPException:
    detail = {"error": {"message": f"modelpin: {message}", "type": error_type,
                        "param": None, "code": code}}
    return HTTPException(status_code=status, detail=detail, headers=headers)


def _as_dict(response: object) -> dict[str, Any] | None:
    if isinstance(response, Mapping):
        return dict(response)
    dump = getattr(response, "model_dump", None)
    if callable(dump):
        value = dump()
        return value if isinstance(value, dict) else None
    return None


class ModelpinHook(CustomLogger):  # type: ignore[misc]  # litellm is untyped here
    """The proxy hook. Build it with ``from_proxy_config()`` (the proxy does, through
    ``proxy_handler``) or directly with a started ``Router``."""

    def __init__(
        self,
        router: Router,
        settings: HookSettings,
        *,
        complete: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
        remote_sessions: bool | None = None,
    ) -> None:
        """``complete(kwargs)`` sends a chat completion (the shadow copy, the re-ask on
        stable); by default through the proxy's own model list. ``remote_sessions``: the
        router's session store does network I/O (default: ``settings.redis_url`` is
        set); a request on a route in rollout is then resolved in a worker thread, so a
        slow or unreachable Redis never stalls the proxy's other requests."""
        super().__init__()
        self.router = router
        self.settings = settings
        self._complete = complete or _acompletion
        remote = settings.redis_url is not None if remote_sessions is None else remote_sessions
        self._resolver = (ThreadPoolExecutor(RESOLVE_THREADS, "modelpin-resolve")
                          if remote else None)
        self._requests: OrderedDict[str, _Request] = OrderedDict()
        self._shadows: set[asyncio.Task[Any]] = set()
        #: Shadow copies not sent because ``shadow_max_in_flight`` were under way.
        self.shadows_dropped = 0
        #: Shadow copies that failed or timed out (never seen by the client).
        self.shadow_failures = 0

    # --- 1. resolve and rewrite ------------------------------------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop(STATE_KEY, None)  # only this hook writes it
        chat = call_type in CHAT_CALLS
        if not chat and call_type not in EMBEDDING_CALLS:
            return data
        alias = data.get("model")
        tenant = tenant_of(self.settings.tenant_from, user_api_key_dict)
        if tenant is None or not isinstance(alias, str):
            return data  # not a modelpin tenant: the proxy serves it as configured
        server_request = data.get("proxy_server_request")
        headers = server_request.get("headers") if isinstance(server_request, dict) else None
        session = session_of(
            self.settings.session_from,
            headers if isinstance(headers, Mapping) else None,
            metadata if isinstance(metadata, Mapping) else None,
        )
        decision = await self._decide(tenant, alias, session)
        if decision is None:
            return data
        data["model"] = decision.model
        token = secrets.token_hex(16)
        self._requests[token] = _Request(tenant, alias, session, decision, chat,
                                         time.perf_counter())
        if len(self._requests) > MAX_IN_FLIGHT:
            self._requests.popitem(last=False)
        if not isinstance(metadata, dict):
            metadata = data["metadata"] = {}
        metadata[STATE_KEY] = token
        return data

    async def _decide(self, tenant: str, alias: str, session: str | None) -> Decision | None:
        try:
            if session is None:
                return self._without_session(tenant, alias)
            if self._resolver is None or self._pinned(tenant, alias):
                return self.router.resolve(tenant, alias, session)  # memory only
            # The router's sticky lookup is a Redis round trip (with a short timeout, and
            # none at all while Redis is marked down): off the event loop.
            return await asyncio.get_running_loop().run_in_executor(
                self._resolver, self.router.resolve, tenant, alias, session)
        except UnknownAliasError:
            if self.settings.unknown_alias == "pass":
                return None
            raise _error(400, f"tenant {tenant!r} has no model alias {alias!r}; call one of "
                         "its aliases", "invalid_request_error", "modelpin_unknown_alias") \
                from None
        except UnknownTenantError:
            raise _error(403, f"tenant {tenant!r} (from {self.settings.tenant_from}) is not "
                         "in the routing table", "permission_error",
                         "modelpin_unknown_tenant") from None
        except TableUnavailableError as exc:
            raise _error(503, str(exc), "service_unavailable", "modelpin_no_table",
                         {"Retry-After": "5"}) from None
        except ResolveError as exc:
            raise _error(503, str(exc), "service_unavailable", "modelpin_unresolved",
                         {"Retry-After": "5"}) from None

    def _pinned(self, tenant: str, alias: str) -> bool:
        """The route has one decision for every session (pinned, or shadow): resolving
        it reads no session store. A trip never turns such a route into one that does."""
        table = self.router.table
        route = None if table is None else table.routes.get(tenant, {}).get(alias)
        return route is not None and route.fixed is not None

    def _without_session(self, tenant: str, alias: str) -> Decision:
        """A request without a session id cannot be kept on one version across turns, so
        it never starts on the candidate: stable (a shadow copy still fires), or 400."""
        if self.settings.missing_session == "reject":
            sources = ", ".join(self.settings.session_from)
            raise _error(400, f"no session id (looked in {sources})",
                         "invalid_request_error", "modelpin_missing_session")
        table = self.router.table
        route = None if table is None else table.routes.get(tenant, {}).get(alias)
        if route is None or not self.router.status().serving:
            self.router.resolve(tenant, alias, "")  # raises the precise ResolveError
            raise TableUnavailableError("no verified routing table is being served")
        if route.fixed is None:
            return route.stable
        # pinned or shadow: one answer for every session, read from memory (the router
        # binds a pinned route's own decision here; a tripped shadow answers stable)
        return self.router.resolve(tenant, alias, "")

    def _lookup(self, data: Mapping[str, Any]) -> _Request | None:
        metadata = data.get("metadata")
        token = metadata.get(STATE_KEY) if isinstance(metadata, Mapping) else None
        return self._requests.get(token) if isinstance(token, str) else None

    # --- 2. the shadow copy ------------------------------------------------------------

    async def async_moderation_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, call_type: str
    ) -> None:
        request = self._lookup(data)
        if request is not None:
            self._fire_shadow(request, data)

    def _fire_shadow(self, request: _Request, data: Mapping[str, Any]) -> None:
        shadow = request.decision.shadow
        if shadow is None or not request.chat or request.shadow is not None:
            return
        if len(self._shadows) >= self.settings.shadow_max_in_flight:
            self.shadows_dropped += 1
            log.warning("modelpin: shadow copy for %s/%s dropped (%d in flight)",
                        request.tenant, request.alias, len(self._shadows))
            return
        kwargs = replay_request(data, shadow)
        kwargs["metadata"] = {"modelpin_shadow": True, "modelpin_tenant": request.tenant,
                              "modelpin_alias": request.alias}
        task = asyncio.create_task(self._shadow_call(kwargs))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)
        request.shadow = task

    async def _shadow_call(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = await asyncio.wait_for(self._complete(kwargs),
                                              self.settings.shadow_timeout)
        except Exception as exc:  # a shadow fault never reaches the client
            self.shadow_failures += 1
            log.warning("modelpin: shadow copy to %s failed: %s", kwargs.get("model"), exc)
            return None
        return _as_dict(response)

    async def _judge_shadow(self, request: _Request, stable: list[ToolCall]) -> None:
        """Judge the shadow's tool calls (comparison only: ``shadow=True`` never answers
        EXECUTE, and they count under cohort ``shadow``) and count their drift from the
        answer the client got."""
        assert request.shadow is not None
        answer = await request.shadow
        if answer is None:
            return
        shadow = tool_calls_of(answer)
        for call in shadow:
            self.router.check_tool_call(request.tenant, call.name, call.arguments,
                                        alias=request.alias, shadow=True)
        self.router.compare_shadow(request.tenant, request.alias, tool_signature(stable),
                                   tool_signature(shadow))

    # --- 3. tool-call contracts ----------------------------------------------------------

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any
    ) -> Any:
        request = self._lookup(data)
        if request is None or not request.chat:
            return None
        completion = _as_dict(response)
        if completion is not None:  # judged before any fallback replaces it
            request.signals = answer_signals(data, completion)
        calls = [] if completion is None else tool_calls_of(completion)
        invalid = self._judge_answer(request, data, calls,
                                     lambda call, args: set_arguments(response, call, args))
        if invalid is None:
            return None
        call, result = invalid
        if result.action is ToolAction.RETRY_ON_STABLE:
            return await self._ask_stable(request, data, call.name)
        raise _error_for_contract(request, call.name, result.errors, result.error_result)

    def _judge_answer(
        self, request: _Request, data: Mapping[str, Any], calls: list[ToolCall],
        repair: Callable[[ToolCall, Any], None],
    ) -> tuple[ToolCall, ToolCallResult] | None:
        """Judge an answer (whole, or a held stream): its shadow copy is compared later;
        each tool call is checked against the contract under the request's cohort, and a
        coercion the tenant allows repairs the arguments the client executes (``repair``;
        the router has logged and counted it). The first invalid call if the failure
        policy applies (the answer is the candidate's), else None: a stable answer is
        never replaced."""
        request.answered = True
        self._judge_shadow_later(request, data, calls)
        invalid = None
        for call in calls:
            result = self.router.check_tool_call(
                request.tenant, call.name, call.arguments, alias=request.alias,
                cohort=request.decision.cohort)
            if result.valid and result.arguments is not None:
                repair(call, result.arguments)
            if not result.valid and invalid is None:
                invalid = (call, result)
        return invalid if request.decision.cohort == CANARY else None

    # --- 3b. streamed answers -------------------------------------------------------------

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: Any, request_data: dict[str, Any]
    ) -> AsyncIterator[Any]:
        """A streamed answer to a request that offered tools is held until complete (its
        tool calls can only be judged whole), then checked like any answer; a text-only
        stream passes chunk by chunk."""
        request = self._lookup(request_data)
        try:
            if request is None or not request.chat or not request_data.get("tools"):
                async for item in response:
                    yield item
                return
            chunks = [item async for item in response]
            async for item in self._checked_stream(request, request_data, chunks):
                yield item
        finally:
            if request is not None:
                self._forget(request_data)

    async def _checked_stream(
        self, request: _Request, data: Mapping[str, Any], chunks: list[Any]
    ) -> AsyncIterator[Any]:
        calls = streamed_tool_calls([_as_dict(c) or {} for c in chunks])
        invalid = self._judge_answer(
            request, data, calls, lambda call, args: set_streamed_arguments(chunks, call, args))
        if invalid is None:
            for item in chunks:
                yield item
            return
        call, result = invalid
        if result.action is ToolAction.RETRY_ON_STABLE:
            async for item in await self._ask_stable(request, data, call.name, stream=True):
                yield item
            return
        raise _error_for_contract(request, call.name, result.errors, result.error_result)

    def _judge_shadow_later(self, request: _Request, data: Mapping[str, Any],
                            calls: list[ToolCall]) -> None:
        if request.decision.shadow is None:
            return
        self._fire_shadow(request, data)  # in case the moderation hook did not run
        if request.shadow is not None:
            task = asyncio.create_task(self._judge_shadow(request, calls))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

    def _forget(self, data: Mapping[str, Any]) -> _Request | None:
        metadata = data.get("metadata")
        token = metadata.get(STATE_KEY) if isinstance(metadata, Mapping) else None
        return self._requests.pop(token, None) if isinstance(token, str) else None

    async def _ask_stable(self, request: _Request, data: Mapping[str, Any], tool: str,
                          *, stream: bool = False) -> Any:
        table = self.router.table
        route = None if table is None else table.routes.get(request.tenant, {}).get(
            request.alias)
        if route is None:
            raise _error_for_contract(request, tool, ("the route is gone",), None)
        kwargs = replay_request(data, route.stable_model)
        kwargs["stream"] = stream
        metadata = data.get("metadata")
        if isinstance(metadata, Mapping):
            kwargs["metadata"] = {k: v for k, v in metadata.items() if k != STATE_KEY}
        try:
            answer = await self._complete(kwargs)
        except Exception as exc:
            log.warning("modelpin: re-asking stable %s failed: %s", route.stable_model, exc)
            raise _error(502, f"the candidate's tool call {tool!r} broke the contract and "
                         f"re-asking stable failed: {exc}", "api_error",
                         "modelpin_fallback_failed") from None
        request.fallback_model = route.stable_model
        replacement = None if stream else _as_dict(answer)
        for c in [] if replacement is None else tool_calls_of(replacement):
            # Stable's answer counts as stable's, and is passed on as it is.
            self.router.check_tool_call(request.tenant, c.name, c.arguments,
                                        alias=request.alias, cohort=STABLE)
        log.info("modelpin: %s/%s session %s: invalid %r from %s, answered by stable %s",
                 request.tenant, request.alias, request.session, tool,
                 request.decision.model, route.stable_model)
        return answer

    # --- 4. response headers ---------------------------------------------------------------

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        # This hook runs before a stream's first chunk; the streaming hook needs the
        # request after it, and forgets it at the end.
        streaming = data.get("stream") is True
        request = self._lookup(data) if streaming else self._forget(data)
        if request is None:
            return None
        d = request.decision
        # Every request is reported once, here: this hook runs last, on success and on
        # failure. No answer at all (the model call failed) is a downstream error.
        failed = response is None and not request.answered
        signals = request.signals or _NO_SIGNALS
        latency = time.perf_counter() - request.started
        if failed or signals != _NO_SIGNALS or self.router.telemetry.events is not None:
            self.router.record(request.tenant, request.alias, d, latency=latency,
                               downstream_errors=1 if failed else 0,
                               session_id=request.session, refused=signals.refused,
                               format_ok=signals.format_ok,
                               response_tokens=signals.response_tokens)
        else:  # nothing but the latency to report (the event would name the session)
            d.observe(latency)  # one C call (Decision.observe)
        headers = {HEADER_COHORT: d.cohort, HEADER_MODEL: d.model, HEADER_SERIAL: str(d.serial)}
        if d.session_reset:
            headers[HEADER_SESSION_RESET] = "true"
        if request.fallback_model is not None:
            headers[HEADER_FALLBACK] = "stable"
            headers[HEADER_MODEL] = request.fallback_model
        return headers

    async def aclose(self) -> None:
        """Wait for shadow work under way (tests, shutdown)."""
        while self._shadows:
            await asyncio.gather(*list(self._shadows), return_exceptions=True)


def _error_for_contract(request: _Request, tool: str, errors: tuple[str, ...],
                        error_result: Any) -> HTTPException:
    body = invalid_tool_call_error(request.tenant, request.alias, tool, errors, error_result)
    return HTTPException(status_code=422, detail=body)


async def _acompletion(kwargs: dict[str, Any]) -> Any:
    """A chat completion through the proxy's own model list (its deployments, keys,
    retries and logging), or plain ``litellm.acompletion`` outside a proxy."""
    from litellm.proxy import proxy_server

    router = getattr(proxy_server, "llm_router", None)
    if router is not None:
        return await router.acompletion(**kwargs)
    import litellm

    return await litellm.acompletion(**kwargs)
