"""Chat-completions calls through the ``openai`` SDK, within a lane's limits, with retries.

The SDK's own retries are off (``max_retries=0``): every attempt must pass the lane's
pacing, and a ``Retry-After`` must hold back the whole lane, so the loop is here.
Retried: 429 (except ``insufficient_quota``: waiting does not refill a balance), 408,
409, 5xx, timeouts and connection errors. Anything else (400, 401, 403, 404, 422) is the
request's or the account's fault and fails at once.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from modelpin.bets.checks import Answer, ToolCallMade
from modelpin.bets.limits import Lane, backoff, parse_retry_after

RETRIED_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class CallFailed(Exception):
    """A call that did not produce an answer (after the retries it deserved)."""


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:  # pragma: no cover - exercised by the CLI test with a blocked import
        raise CallFailed("the 'openai' package is missing") from None
    return openai


def estimate_tokens(request: dict[str, Any]) -> int:
    """A request's cost before it is known: about four characters a token for the input,
    plus a quarter of ``max_tokens`` for the answer (corrected from ``usage`` after)."""
    size = len(json.dumps(request.get("messages", []))) + len(json.dumps(request.get("tools", [])))
    return size // 4 + int(request.get("max_tokens", 256)) // 4 + 1


def answer_of(response: Any) -> Answer:
    """The parts of a ``ChatCompletion`` the checks read."""
    if not response.choices:
        raise CallFailed("the response has no choices")
    choice = response.choices[0]
    message = choice.message
    calls = tuple(ToolCallMade(c.function.name, c.function.arguments or "")
                  for c in (message.tool_calls or []) if getattr(c, "function", None))
    usage = getattr(response, "usage", None)
    return Answer(content=message.content, tool_calls=calls,
                  refusal=getattr(message, "refusal", None),
                  finish_reason=choice.finish_reason,
                  tokens=int(getattr(usage, "total_tokens", 0) or 0))


SHARD_CONNECTIONS = 4
"""Connections per HTTP pool. httpcore's pool rescans every (request, connection) pair on
each event, so one pool of 64 connections costs milliseconds of CPU per call; a lane uses
several small pools instead, each call going to the least busy one."""


class ProviderClient:
    """One lane's ``AsyncOpenAI`` clients (small connection pools) and its retry loop."""

    def __init__(self, lane: Lane, api_key: str, *, seed: int = 0) -> None:
        openai = _import_openai()
        import httpx

        self.openai = openai
        self.lane = lane
        provider = lane.provider
        shards = -(-provider.concurrency // SHARD_CONNECTIONS)
        tls = httpx.create_ssl_context()  # one CA bundle load, shared by the pools
        self.clients = []
        for i in range(shards):
            size = min(SHARD_CONNECTIONS, provider.concurrency - i * SHARD_CONNECTIONS)
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            http = httpx.AsyncClient(limits=limits, timeout=provider.timeout_seconds, verify=tls)
            self.clients.append(openai.AsyncOpenAI(
                base_url=provider.base_url, api_key=api_key, max_retries=0,
                timeout=provider.timeout_seconds, http_client=http))
        self.busy = [0] * shards
        self.rng = random.Random(seed)
        from openai.types.chat import ChatCompletion

        self.completion_type = ChatCompletion

    async def close(self) -> None:
        for client in self.clients:
            await client.close()

    async def complete(self, request: dict[str, Any]) -> Answer:
        """One answer for ``request``, or ``CallFailed`` with the last problem."""
        lane = self.lane
        estimate = estimate_tokens(request)
        attempts = lane.provider.max_attempts
        last = "no attempt"
        for attempt in range(1, attempts + 1):
            async with lane.slots:
                await lane.admit(estimate)
                lane.stats["calls"] += 1
                try:
                    # The SDK's generic POST: our body is already the documented JSON, so
                    # the per-call TypedDict transform of ``chat.completions.create`` (a
                    # few ms of CPU per call) is skipped; auth, errors, parsing are the SDK's.
                    shard = self.busy.index(min(self.busy))
                    self.busy[shard] += 1
                    try:
                        response = await self.clients[shard].post(
                            "/chat/completions", body=request, cast_to=self.completion_type)
                    finally:
                        self.busy[shard] -= 1
                except self.openai.APIStatusError as exc:
                    status = exc.status_code
                    code = _error_code(exc)
                    last = f"HTTP {status}{' ' + code if code else ''}: {_message(exc)}"
                    wait = parse_retry_after(exc.response.headers.get("retry-after"))
                    ms = exc.response.headers.get("retry-after-ms")
                    if wait is None and ms is not None:
                        wait = parse_retry_after(str(float(ms) / 1000)) if _number(ms) else None
                    retried = status in RETRIED_STATUS and code != "insufficient_quota"
                    if not retried:
                        raise CallFailed(last) from None
                    if wait is not None:
                        lane.hold(wait)
                except self.openai.APITimeoutError:
                    last = f"timed out after {lane.provider.timeout_seconds:g} s"
                    wait = None
                except self.openai.APIConnectionError as exc:
                    last = f"connection failed: {exc.__cause__ or exc}"
                    wait = None
                else:
                    answer = answer_of(response)
                    lane.stats["tokens"] += answer.tokens
                    if answer.tokens:
                        lane.tokens.adjust(answer.tokens - estimate, time.monotonic())
                    return answer
            if attempt < attempts:
                lane.stats["retries"] += 1
                delay = backoff(attempt, self.rng)
                if wait is not None:
                    delay = max(delay, wait)
                import asyncio

                await asyncio.sleep(delay)
        raise CallFailed(f"{last} (after {attempts} attempts)")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _error_code(exc: Any) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    if isinstance(inner, dict):
        return str(inner.get("code") or inner.get("type") or "")
    return ""


def _message(exc: Any) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    if isinstance(inner, dict) and inner.get("message"):
        return str(inner["message"])[:200]
    return str(exc)[:200]
