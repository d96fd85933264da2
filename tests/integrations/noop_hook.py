"""A LiteLLM hook that overrides the same proxy hooks as modelpin's and does nothing: the
benchmark's middle baseline (what any such hook costs in LiteLLM itself)."""

from __future__ import annotations

from typing import Any

from litellm.integrations.custom_logger import CustomLogger


class NoopHook(CustomLogger):  # type: ignore[misc]
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict[str, Any],
                                  call_type: str) -> dict[str, Any]:
        return data

    async def async_moderation_hook(self, data: dict[str, Any], user_api_key_dict: Any,
                                    call_type: str) -> None:
        return None

    async def async_post_call_success_hook(self, data: dict[str, Any], user_api_key_dict: Any,
                                           response: Any) -> Any:
        return None

    async def async_post_call_response_headers_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        return None


handler = NoopHook()
