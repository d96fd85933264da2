"""The hook's error paths, in process: a real Router on a signed table, the real
``UserAPIKeyAuth``, the hook's calls to models sent over HTTP to the fake provider."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import HTTPException
from litellm.proxy._types import UserAPIKeyAuth
from prometheus_client import CollectorRegistry

from modelpin import signing
from modelpin.integrations.litellm import STATE_KEY, ModelpinHook
from modelpin.integrations.settings import parse_settings
from modelpin.router import Router
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.integrations.harness import ALIAS, CANDIDATE, STABLE, TOOLS, fleet
from tests.router.tables import envelope, write_atomically

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
