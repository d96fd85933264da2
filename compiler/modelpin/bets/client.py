"""Chat-completions calls through the ``openai`` SDK, within a lane's limits, with retries.

The SDK's own retries are off (``max_retries=0``): every attempt must pass the lane's
pacing, and a ``Retry-After`` must hold back the whole lane, so the loop is here.
Retried: 429 (except ``insufficient_quota``: waiting does not refill a balance), 408,
409, 5xx, timeouts and connection errors. Anything else (400, 401, 403, 404, 422) is the
request's or the account's fault and fails at once.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Mapping
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


def answer_of(body: bytes) -> Answer:
    """The parts of a chat completion (the documented JSON) the checks read; a body that
    is not one is a failed call, never a guess."""
    try:
        data = json.loads(body)
    except ValueError:
        raise CallFailed(f"the response is not JSON: {body[:120]!r}") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise CallFailed("the response has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise CallFailed("the response's first choice has no message")
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue  # not a function call: nothing the checks read
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not isinstance(arguments, str | None):
            raise CallFailed(f"malformed tool call in the response: {json.dumps(call)[:200]}")
        calls.append(ToolCallMade(name, arguments or ""))
    content, refusal = message.get("content"), message.get("refusal")
    if not isinstance(content, str | None) or not isinstance(refusal, str | None):
        raise CallFailed("the response's message content is not text")
    usage = data.get("usage")
    tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
    finish = choice.get("finish_reason")
    return Answer(content=content, tool_calls=tuple(calls), refusal=refusal,
                  finish_reason=finish if isinstance(finish, str) else None,
                  tokens=tokens if isinstance(tokens, int) and tokens > 0 else 0)


class ProviderClient:
    """One lane's ``AsyncOpenAI`` client and its retry loop.

    The client's HTTP layer is ``transport.LeanTransport`` (constant CPU per call; httpx's
    default transport costs about twice as much), unless a proxy variable is set: then
    httpx's own transport, which honours it, with one pool as large as the concurrency."""

    def __init__(self, lane: Lane, api_key: str, *, seed: int = 0,
                 environ: Mapping[str, str] | None = None) -> None:
        openai = _import_openai()
        import httpx

        from modelpin.bets.transport import LeanTransport, proxy_configured

        self.openai = openai
        self.lane = lane
        provider = lane.provider
        tls = httpx.create_ssl_context()
        proxied = proxy_configured(os.environ if environ is None else environ)
        self.transport_name = "httpx" if proxied else "lean"
        if proxied:
            limits = httpx.Limits(max_connections=provider.concurrency,
                                  max_keepalive_connections=provider.concurrency)
            http = httpx.AsyncClient(limits=limits, timeout=provider.timeout_seconds,
                                     verify=tls)
        else:
            http = httpx.AsyncClient(transport=LeanTransport(tls),
                                     timeout=provider.timeout_seconds)
        self.client = openai.AsyncOpenAI(
            base_url=provider.base_url, api_key=api_key, max_retries=0,
            timeout=provider.timeout_seconds, http_client=http)
        self.rng = random.Random(seed)

    async def close(self) -> None:
        await self.client.close()

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
                    # the per-call TypedDict transform of ``chat.completions.create`` is
                    # skipped, and so is building a pydantic ``ChatCompletion`` from the
                    # answer (together ~0.5 ms of CPU a call); auth, headers and the errors
                    # (``APIStatusError`` with the body) are the SDK's.
                    response = await self.client.post("/chat/completions", body=request,
                                                      cast_to=bytes)
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
