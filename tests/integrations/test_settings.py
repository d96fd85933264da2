"""``callback_settings.modelpin``: every problem reported with its key path, and where a
request's tenant and session come from."""

from __future__ import annotations

from typing import Any

import pytest
from litellm.proxy._types import UserAPIKeyAuth

from modelpin.integrations.settings import (
    HookConfigError,
    parse_settings,
    session_of,
    tenant_of,
)

GOOD: dict[str, Any] = {"table": "https://example.test/t.dsse.json", "trusted_keys": ["a2V5"]}


def problems(raw: object, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(HookConfigError) as info:
        parse_settings(raw, environ or {})
    return str(info.value)


def test_defaults() -> None:
    s = parse_settings(GOOD, {})
    assert s.table == GOOD["table"] and s.trusted_keys == ("a2V5",)
    assert s.tenant_from == "team_metadata.modelpin_tenant"
    assert s.session_from == ("header.x-session-id", "metadata.session_id")
    assert (s.missing_session, s.unknown_alias, s.redis_url) == ("stable", "reject", None)


def test_missing_section_has_a_hint() -> None:
    text = problems(None)
    assert "callback_settings.modelpin is missing" in text
    assert "trusted_keys" in text  # the hint shows a working block
    assert "must be a mapping" in problems(["table"])


def test_every_problem_is_listed_at_once() -> None:
    text = problems({
        "table": "", "trusted_keys": [], "threshold": 0, "tenant_from": "header.x-tenant",
        "session_from": ["cookie.sid"], "missing_session": "canary", "redis_url": "http://x",
        "poll_interval": -1, "shadow_max_in_flight": 1.5, "metrics_address": "9464",
        "tabel": "x",
    })
    for expected in (
        "callback_settings.modelpin.table: must be a non-empty string",
        "callback_settings.modelpin.trusted_keys: must be a non-empty list",
        "callback_settings.modelpin.threshold: must be an integer >= 1",
        "callback_settings.modelpin.tenant_from: 'header.x-tenant' is not one of",
        "callback_settings.modelpin.session_from[0]: 'cookie.sid'",
        "callback_settings.modelpin.missing_session: 'canary' is not one of stable, reject",
        "callback_settings.modelpin.redis_url: must be a redis://",
        "callback_settings.modelpin.poll_interval: must be a number >= 0.1",
        "callback_settings.modelpin.shadow_max_in_flight: must be an integer >= 0",
        "callback_settings.modelpin.metrics_address: '9464' is not host:port",
        "callback_settings.modelpin.tabel: unknown key",
    ):
        assert expected in text, (expected, text)


@pytest.mark.parametrize("source", ["header.x-tenant", "metadata.tenant", "team_metadata.",
                                    "key_metadata.a b", "api_key", ""])
def test_the_tenant_can_only_come_from_the_authenticated_key(source: str) -> None:
    assert "tenant_from" in problems({**GOOD, "tenant_from": source})


def test_threshold_above_the_keys_is_refused() -> None:
    assert "2 is more than the 1 trusted key(s)" in problems({**GOOD, "threshold": 2})


def test_environment_values() -> None:
    s = parse_settings({**GOOD, "redis_url": "os.environ/REDIS_URL",
                        "trusted_keys": ["os.environ/KEY"]},
                       {"REDIS_URL": "redis://127.0.0.1:6379/0", "KEY": "a2V5"})
    assert s.redis_url == "redis://127.0.0.1:6379/0" and s.trusted_keys == ("a2V5",)
    text = problems({**GOOD, "redis_url": "os.environ/NOPE"})
    assert "redis_url: environment variable NOPE is not set" in text


def test_tenant_of_reads_only_the_named_attribute() -> None:
    auth = UserAPIKeyAuth(api_key="sk", team_id="team-1", team_alias="t1", key_alias="k1",
                          team_metadata={"modelpin_tenant": "acme", "n": 3},
                          metadata={"tenant": "from-key"})
    assert tenant_of("team_metadata.modelpin_tenant", auth) == "acme"
    assert tenant_of("key_metadata.tenant", auth) == "from-key"
    assert tenant_of("team_id", auth) == "team-1"
    assert tenant_of("key_alias", auth) == "k1"
    assert tenant_of("team_metadata.n", auth) is None  # not a string: no tenant
    assert tenant_of("key_metadata.modelpin_tenant", auth) is None  # team's, not the key's
    assert tenant_of("team_metadata.modelpin_tenant", UserAPIKeyAuth(api_key="x")) is None


def test_session_of_takes_the_first_source_that_has_one() -> None:
    sources = ("header.x-session-id", "metadata.session_id")
    assert session_of(sources, {"X-Session-Id": "h"}, {"session_id": "m"}) == "h"
    assert session_of(sources, {}, {"session_id": "m"}) == "m"
    assert session_of(sources, {"x-session-id": ""}, {"session_id": 42}) == "42"
    assert session_of(sources, None, {"session_id": True}) is None
    assert session_of(sources, None, None) is None
    long = "x" * 500
    digest = session_of(sources, {"x-session-id": long}, None)
    assert digest is not None and digest.startswith("sha256:") and len(digest) == 71
    assert digest != session_of(sources, {"x-session-id": long + "y"}, None)


def test_a_trust_root_or_trusted_keys_never_both() -> None:
    s = parse_settings({"table": "t", "root": "/etc/modelpin/root.json"}, {})
    assert s.root == "/etc/modelpin/root.json" and s.trusted_keys == ()
    assert "either root (a signed trust root) or trusted_keys, not both" in problems(
        {**GOOD, "root": "/r.json"})
    assert "(or give root: the path of a signed trust root)" in problems({"table": "t"})
