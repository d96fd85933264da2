"""``policies/providers.yaml``: the OpenAI-compatible endpoints BETS runs talk to.

A provider here is the ``provider`` of ``model_versions/<id>.yaml``. The API key is
never in the file, only the name of the environment variable that holds it. Limits are
the provider's (or the platform's share of them): requests and tokens per minute and
concurrent requests; a run stays within all three.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from modelpin.model.base import IDS_ONLY, Identifier, StrictModel, rule_error

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class Provider(StrictModel):
    base_url: str
    api_key_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    requests_per_minute: int = Field(ge=1)
    tokens_per_minute: int = Field(ge=1)
    concurrency: int = Field(ge=1, le=1024)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    max_attempts: int = Field(default=6, ge=1, le=20)
    insecure_http: bool = False

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL, e.g. https://api.openai.com/v1")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(f"{url!r} carries credentials, a query or a fragment: give the "
                             "base URL only (keys come from 'api_key_env')")
        return url

    @model_validator(mode="after")
    def _plain_http(self) -> Provider:
        host = urlsplit(self.base_url).hostname or ""
        if urlsplit(self.base_url).scheme == "http" and host not in LOOPBACK_HOSTS \
                and not self.insecure_http:
            raise rule_error("plain http sends the API key in clear text: use https, or set "
                             "'insecure_http: true' for an endpoint on a private network",
                             "base_url")
        return self


class ProvidersPolicy(StrictModel):
    providers: dict[Identifier, Provider] = Field(min_length=1, json_schema_extra=IDS_ONLY)
