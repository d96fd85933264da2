"""GitHub App authentication for the bot, in process: JWT -> installation access token.

GitHub's documented flow ("Authenticating as a GitHub App installation"):

1. A JSON Web Token signed with the App's private key, RS256: header
   ``{"alg": "RS256", "typ": "JWT"}``, claims ``iat`` (60 s in the past, against clock
   drift), ``exp`` (at most 10 minutes after ``iat``; 9 here) and ``iss`` (the App's
   client ID or App ID). Signed with ``cryptography`` (RSASSA-PKCS1-v1_5 + SHA-256).
2. ``POST /app/installations/{installation_id}/access_tokens`` with
   ``Authorization: Bearer <JWT>`` answers ``201 {"token", "expires_at", ...}``; the token
   is scoped here to the one repository the bot works on. Without an installation id,
   ``GET /repos/{owner}/{repo}/installation`` (JWT) finds it.
3. The token is used as ``Authorization: Bearer <token>`` until shortly before
   ``expires_at`` (``REFRESH_BEFORE``), then exchanged again; a 401 on an API call (the
   token was revoked) drops it so that the next attempt exchanges a new one.

Errors (a bad key, a JWT GitHub refuses, an unknown installation, an answer without a
token) are :class:`~modelpin.bot.github.GitHubError` with what to check.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .http import ExchangeTimeout, ExchangeTooLarge, bounded_exchange

JWT_LIFETIME = 540
"""Seconds from ``iat`` to ``exp`` are at most 600 (GitHub); 60 back + 480 ahead."""
CLOCK_DRIFT = 60
REFRESH_BEFORE = 300
"""Seconds before ``expires_at`` at which a cached installation token is replaced."""
API_VERSION = "2022-11-28"


class AppAuthError(Exception):
    """The App's credentials cannot be used (raised as ``GitHubError`` by the client)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_app_key(pem: bytes) -> rsa.RSAPrivateKey:
    """The App's private key (PEM, as GitHub downloads it); anything else is refused."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise AppAuthError(None, "GITHUB_APP_PRIVATE_KEY is not a PEM private key without a "
                           "passphrase (the .pem file GitHub generates for the App)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AppAuthError(None, "the GitHub App private key must be an RSA key (RS256)")
    return key


def app_jwt(app_id: str, key: rsa.RSAPrivateKey, now: float) -> str:
    """The App's JWT, valid from ``now - 60`` for ``JWT_LIFETIME`` seconds."""
    issued = int(now) - CLOCK_DRIFT
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64url(json.dumps({"iat": issued, "exp": issued + JWT_LIFETIME, "iss": app_id},
                                separators=(",", ":")).encode())
    signing_input = f"{header}.{claims}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64url(signature)}"


class AppAuth:
    """Installation tokens of one App for one repository, cached and refreshed.

    ``token()`` is what the client sends as the bearer; ``invalidate()`` drops it after
    a 401. Thread-safe (one exchange at a time)."""

    def __init__(self, http: httpx.Client, app_id: str, key: rsa.RSAPrivateKey, owner: str,
                 repo: str, *, installation_id: int | None = None,
                 wall_clock: Callable[[], float] = time.time, timeout: float = 30.0,
                 max_bytes: int = 1024 * 1024) -> None:
        self.http = http
        self.app_id = app_id
        self._key = key
        self.owner, self.repo = owner, repo
        self.installation_id = installation_id
        self._clock = wall_clock
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires - REFRESH_BEFORE:
                self._token, self._expires = self._exchange()
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _exchange(self) -> tuple[str, float]:
        jwt = app_jwt(self.app_id, self._key, self._clock())
        if self.installation_id is None:
            found = self._call("GET", f"/repos/{self.owner}/{self.repo}/installation", jwt,
                               "find the App's installation on the repository")
            ident = found.get("id")
            if isinstance(ident, bool) or not isinstance(ident, int):
                raise AppAuthError(None, "GitHub App auth: the installation answer has no id")
            self.installation_id = ident
        answer = self._call("POST", f"/app/installations/{self.installation_id}/access_tokens",
                            jwt, "create an installation access token",
                            json={"repositories": [self.repo]})
        token, expires = answer.get("token"), answer.get("expires_at")
        if not isinstance(token, str) or not token or not isinstance(expires, str):
            raise AppAuthError(None, "GitHub App auth: the access token answer has no `token` "
                               "and `expires_at`")
        try:
            until = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise AppAuthError(None, f"GitHub App auth: `expires_at` {expires[:40]!r} is not "
                               "a time") from None
        self.exchanges += 1
        return token, until

    def _call(self, method: str, path: str, jwt: str, what: str, **kw: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {jwt}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": API_VERSION, "User-Agent": "modelpin-bot"}
        try:
            answer = bounded_exchange(self.http, method, path, headers=headers,
                                      timeout=self._timeout, max_bytes=self._max_bytes, **kw)
        except (ExchangeTimeout, ExchangeTooLarge, httpx.HTTPError) as exc:
            raise AppAuthError(None, f"GitHub App auth: could not {what}: {exc!r}") from None
        try:
            data = json.loads(answer.body) if answer.body else {}
        except ValueError:
            data = None
        if not 200 <= answer.status < 300 or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else None
            hint = {
                401: "check GITHUB_APP_ID and that GITHUB_APP_PRIVATE_KEY is this App's key "
                     "(and the machine's clock)",
                403: "the App lacks a permission, or the installation is suspended",
                404: "the App is not installed on this repository (or the installation id "
                     "is wrong)",
                422: "the App's installation cannot access this repository",
            }.get(answer.status, "")
            raise AppAuthError(answer.status, f"GitHub App auth: could not {what}: "
                               f"HTTP {answer.status} {message or ''}".rstrip()
                               + (f" ({hint})" if hint else ""))
        return data
