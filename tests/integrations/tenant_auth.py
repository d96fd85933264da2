"""The test proxy's API keys (LiteLLM ``general_settings.custom_auth``).

A real deployment keeps keys and teams in LiteLLM's database; the test proxy has none,
so this custom auth hands LiteLLM the same ``UserAPIKeyAuth`` objects a database-backed
key would produce: a team id, the team's metadata and the key's metadata.
"""

from __future__ import annotations

from typing import Any

from litellm.proxy._types import UserAPIKeyAuth

KEYS: dict[str, dict[str, Any]] = {
    "sk-acme": {"team_id": "team-acme", "team_metadata": {"modelpin_tenant": "acme"}},
    "sk-beta": {"team_id": "team-beta", "team_metadata": {"modelpin_tenant": "beta"}},
    "sk-gamma": {"team_id": "team-gamma", "team_metadata": {"modelpin_tenant": "gamma"}},
    "sk-delta": {"team_id": "team-delta", "team_metadata": {"modelpin_tenant": "delta"}},
    "sk-epsilon": {"team_id": "team-epsilon", "team_metadata": {"modelpin_tenant": "epsilon"}},
    "sk-ghost": {"team_id": "team-ghost", "team_metadata": {"modelpin_tenant": "ghost"}},
    # A key whose team is not a modelpin tenant: the proxy serves it as configured.
    "sk-plain": {"team_id": "team-plain", "team_metadata": {}},
}


async def authenticate(request: Any, api_key: str) -> UserAPIKeyAuth:
    entry = KEYS.get(api_key)
    if entry is None:
        raise Exception("invalid API key")
    return UserAPIKeyAuth(api_key=api_key, metadata={}, **entry)
