"""The hook's error paths, in process: a real Router on a signed table, the real
``UserAPIKeyAuth``, the hook's calls to models sent over HTTP to the fake provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import HTTPException
from litellm.proxy._types import UserAPIKeyAuth
from prometheus_client import CollectorRegistry

from modelpin import signing
from modelpin.integrations.litellm import STATE_KEY, ModelpinHook
from modelpin.integrations.settings import parse_settings
from modelpin.router import Router, bucket
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.integrations.harness import (
    ALIAS,
    CANDIDATE,
    STABLE,
    TOOLS,
    fleet,
    hook_on_redis,
    start_redis,
)
from tests.router.tables import envelope, salt_of, write_atomically

ACME = UserAPIKeyAuth(api_key="sk-acme", team_id="t", team_metadata={"modelpin_tenant": "acme"})
BETA = UserAPIKeyAuth(api_key="sk-beta", team_id="t", team_metadata={"modelpin_tenant": "beta"})


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    f = FakeOpenAI()
    f.script(STABLE, Reply(content="s", tool_calls=(("lookup_clause", '{"clause_id": "1"}'),)))
    f.script(CANDIDATE, Reply(content="c", tool_calls=(("lookup_clause", '{"x": 1}'),)))
    yield f
    f.close()


def make_hook(tmp_path: Path, fake: FakeOpenAI, *, load: bool = True,
              **settings: Any) -> ModelpinHook:
    key = signing.generate_private_key()
    table = tmp_path / "t.dsse.json"
    if load:
        write_atomically(table, envelope(fleet(1), [key]))
    raw = {"table": str(table), "trusted_keys": [signing.public_key_b64(key.public_key())],
           **settings}
    router = Router(table, [key.public_key()], registry=CollectorRegistry())
    router.refresh()

    async def complete(kwargs: dict[str, Any]) -> Any:  # the fake, over real HTTP
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(fake.base_url + "/chat/completions", json=kwargs,
                                  headers={"Authorization": f"Bearer {fake.api_key}"})
            r.raise_for_status()
            return r.json()

    return ModelpinHook(router, parse_settings(raw, {}), complete=complete)


def request(session: str | None = "s-1", **extra: Any) -> dict[str, Any]:
    headers = {} if session is None else {"x-session-id": session}
    data = {"model": ALIAS, "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS,
            "metadata": {}, "proxy_server_request": {"headers": headers}}
    data.update(extra)
    return data


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_no_table_is_a_503_with_retry_after(tmp_path: Path, fake: FakeOpenAI) -> None:
    hook = make_hook(tmp_path, fake, load=False)
    with pytest.raises(HTTPException) as info:
        run(hook.async_pre_call_hook(ACME, None, request(), "acompletion"))
    assert info.value.status_code == 503
    assert info.value.headers == {"Retry-After": "5"}
    assert "no verified routing table" in info.value.detail["error"]["message"]


def test_missing_session_can_be_refused(tmp_path: Path, fake: FakeOpenAI) -> None:
    hook = make_hook(tmp_path, fake, missing_session="reject")
    with pytest.raises(HTTPException) as info:
        run(hook.async_pre_call_hook(ACME, None, request(None), "acompletion"))
    assert info.value.status_code == 400
    assert "header.x-session-id, metadata.session_id" in info.value.detail["error"]["message"]


def test_unknown_alias_can_be_passed_through(tmp_path: Path, fake: FakeOpenAI) -> None:
    hook = make_hook(tmp_path, fake, unknown_alias="pass")
    data = request(model="some-other-model")
    out = run(hook.async_pre_call_hook(ACME, None, data, "acompletion"))
    assert out["model"] == "some-other-model" and STATE_KEY not in out["metadata"]


def test_other_call_types_are_untouched_and_embeddings_are_pinned(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    hook = make_hook(tmp_path, fake)
    data = request()
    assert run(hook.async_pre_call_hook(ACME, None, data, "image_generation"))["model"] == ALIAS
    out = run(hook.async_pre_call_hook(BETA, None, request(), "aembedding"))
    assert out["model"] == STABLE
    # No shadow copy for an embedding, even on a shadow route.
    run(hook.async_moderation_hook(out, BETA, "aembedding"))
    assert hook._shadows == set()


def test_a_client_cannot_supply_the_hooks_state(tmp_path: Path, fake: FakeOpenAI) -> None:
    hook = make_hook(tmp_path, fake)
    first = run(hook.async_pre_call_hook(ACME, None, request(), "acompletion"))
    token = first["metadata"][STATE_KEY]
    # Another request (a key that is no modelpin tenant) naming that token gets nothing.
    plain = UserAPIKeyAuth(api_key="sk-plain")
    other = request(metadata={STATE_KEY: token})
    out = run(hook.async_pre_call_hook(plain, None, other, "acompletion"))
    assert STATE_KEY not in out["metadata"]
    assert run(hook.async_post_call_response_headers_hook(out, plain, None)) is None
    assert run(hook.async_post_call_response_headers_hook(first, ACME, None)) is not None


def test_shadow_copies_are_capped_and_their_failures_never_raise(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    hook = make_hook(tmp_path, fake, shadow_max_in_flight=1)
    fake.script(CANDIDATE, Reply.error(500))

    async def scenario() -> None:
        a = await hook.async_pre_call_hook(BETA, None, request("b-1"), "acompletion")
        b = await hook.async_pre_call_hook(BETA, None, request("b-2"), "acompletion")
        await hook.async_moderation_hook(a, BETA, "acompletion")
        await hook.async_moderation_hook(b, BETA, "acompletion")  # over the cap: dropped
        await hook.aclose()

    run(scenario())
    assert hook.shadows_dropped == 1
    assert hook.shadow_failures == 1
    assert len(fake.requests_for(CANDIDATE)) == 1


def test_a_failed_re_ask_on_stable_is_a_502_never_the_invalid_call(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    hook = make_hook(tmp_path, fake)
    fake.script(STABLE, Reply.error(503, retry_after=1))
    sid = next(s for s in (f"c-{i}" for i in range(500))
               if hook.router.resolve("acme", ALIAS, s).cohort == "canary")
    data = run(hook.async_pre_call_hook(ACME, None, request(sid), "acompletion"))
    invalid = {"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [
        {"id": "1", "type": "function",
         "function": {"name": "lookup_clause", "arguments": '{"x": 1}'}}]}}]}
    with pytest.raises(HTTPException) as info:
        run(hook.async_post_call_success_hook(data, ACME, invalid))
    assert info.value.status_code == 502
    assert info.value.detail["error"]["code"] == "modelpin_fallback_failed"


def test_the_proxy_handler_is_built_from_callback_settings_with_a_trust_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import litellm

    from modelpin.integrations.litellm import from_proxy_config
    from tests.router.test_root_chain import Repo

    site = tmp_path / "site"
    site.mkdir()
    repo = Repo(site)
    repo.publish_root()
    write_atomically(repo.table_file, envelope(fleet(3), repo.table_keys))
    monkeypatch.setattr(litellm, "callback_settings", {"modelpin": {
        "table": str(repo.table_file), "root": "os.environ/ROOT_FILE",
        "state_file": str(tmp_path / "state.json")}})
    hook = from_proxy_config({"ROOT_FILE": str(site / "1.root.json")})
    try:
        assert hook.router.status().serial == 3
        out = run(hook.async_pre_call_hook(BETA, None, request(), "acompletion"))
        assert out["model"] == STABLE
    finally:
        hook.router.stop()


# --- the sticky-session lookup never holds the event loop; Redis faults never raise ------


async def loop_stall_while(hook: ModelpinHook, sessions: list[str]) -> tuple[float, float,
                                                                            list[str]]:
    """Resolve ``sessions`` at once through the pre-call hook while a ticker measures the
    event loop: (longest gap between ticks, the slowest request, the models chosen)."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def one(sid: str) -> tuple[float, str]:
        start = time.perf_counter()
        out = await hook.async_pre_call_hook(ACME, None, request(sid), "acompletion")
        return time.perf_counter() - start, out["model"]

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    results = await asyncio.gather(*(one(s) for s in sessions))
    done.set()
    await tick
    return max(gaps), max(t for t, _ in results), [m for _, m in results]


def canary_bucket(n: int) -> list[str]:
    salt = salt_of("acme", ALIAS, CANDIDATE)
    return [s for s in (f"slow-{i}" for i in range(2000)) if bucket(salt, s) < 2500][:n]


@pytest.mark.slow
def test_a_slow_redis_never_stalls_the_proxy_event_loop(tmp_path: Path, fake: FakeOpenAI) -> None:
    """A real redis-server made slow (CLIENT PAUSE): with the hook's default (a remote
    store is read off the loop) the loop keeps ticking while requests wait for Redis; the
    same hook resolving on the loop (the old way, the control) stalls it for the whole
    Redis timeout. Either way the request is decided (by its bucket) and nothing raises."""
    red = start_redis(tmp_path / "redis")
    admin = redis.Redis.from_url(red.url)
    try:
        sessions = canary_bucket(4)
        stalls: dict[bool, tuple[float, float, list[str]]] = {}
        for remote in (True, False):
            hook = hook_on_redis(tmp_path / str(remote), red.url, remote_sessions=remote,
                              timeout=0.4)
            admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
            stalls[remote] = asyncio.run(loop_stall_while(hook, sessions))
            admin.execute_command("CLIENT", "UNPAUSE")
            errors = hook.router.registry.get_sample_value(
                "modelpin_router_session_store_errors_total", {"router": "default"})
            assert errors is not None and errors >= 1
            hook.router.stop()
    finally:
        admin.close()
        red.process.kill()
        red.process.wait()
    off_loop, on_loop = stalls[True], stalls[False]
    print(f"longest event-loop gap: off the loop {off_loop[0] * 1000:.0f} ms, "
          f"on the loop {on_loop[0] * 1000:.0f} ms (slowest request "
          f"{off_loop[1] * 1000:.0f} / {on_loop[1] * 1000:.0f} ms)")
    for _gap, slowest, models in (off_loop, on_loop):
        assert slowest >= 0.35  # Redis really was slow: the store's 0.4 s timeout ran out
        assert models == [CANDIDATE] * len(sessions)  # decided by bucket, no error
    assert on_loop[0] >= 0.35  # the control: resolving on the loop stalls it
    # The hook's way: the loop kept ticking. A blocking lookup would stall it for the
    # store's whole 0.4 s timeout (the control above); 0.3 s leaves room for a loaded
    # machine's scheduling without letting a blocked loop pass.
    assert off_loop[0] < 0.3, off_loop


def test_redis_down_decides_by_bucket_and_never_raises(tmp_path: Path, fake: FakeOpenAI) -> None:
    """No Redis at all (nothing listens on the port): every request is still decided, by
    its bucket (no stickiness), fast, and the fault is counted; nothing raises."""
    red = start_redis(tmp_path / "redis")
    url = red.url
    red.process.kill()
    red.process.wait()
    hook = hook_on_redis(tmp_path, url, remote_sessions=True, timeout=0.05)
    salt = salt_of("acme", ALIAS, CANDIDATE)
    sessions = [f"down-{i}" for i in range(40)]
    try:
        start = time.perf_counter()
        models = [run(hook.async_pre_call_hook(ACME, None, request(s), "acompletion"))["model"]
                  for s in sessions]
        elapsed = time.perf_counter() - start
    finally:
        hook.router.stop()
    assert models == [CANDIDATE if bucket(salt, s) < 2500 else STABLE for s in sessions]
    assert CANDIDATE in models and STABLE in models
    assert elapsed < 2.0, elapsed  # marked down after the first failure: no 40 timeouts
    errors = hook.router.registry.get_sample_value(
        "modelpin_router_session_store_errors_total", {"router": "default"})
    assert errors is not None and errors >= len(sessions)
