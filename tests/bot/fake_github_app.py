"""The GitHub App side of the fake GitHub, as GitHub documents it.

- ``POST /app/installations/{installation_id}/access_tokens`` with ``Authorization:
  Bearer <JWT>``: the JWT must be RS256, signed by the App's key, ``iss`` the App ID (or
  client ID), ``iat`` not in the future (60 s of drift allowed), ``exp`` in the future
  and at most 10 minutes after ``iat``; else ``401`` with GitHub's message. An unknown
  installation is ``404``; ``repositories`` naming a repository the installation cannot
  reach is ``422``. Success: ``201 {"token", "expires_at", "permissions",
  "repository_selection"}``.
- ``GET /repos/{owner}/{repo}/installation`` (JWT): ``200 {"id", "app_id", ...}``.
- Installation tokens are accepted as bearers on the repository endpoints until they
  expire or are revoked (``revoke``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DOCS = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class FakeApp:
    app_id: str
    public_key: rsa.RSAPublicKey
    installation_id: int
    repositories: tuple[str, ...]
    clock: Callable[[], float]
    token_ttl: int = 3600
    issued: dict[str, float] = field(default_factory=dict)
    """Installation token -> its expiry (POSIX time)."""
    jwts_seen: list[dict[str, Any]] = field(default_factory=list)
    minted: int = 0

    def jwt_problem(self, authorization: str | None) -> str | None:
        """None when the bearer is a valid JWT of this App, else GitHub's message."""
        if not authorization or not authorization.startswith("Bearer "):
            return "A JSON web token could not be decoded"
        parts = authorization[7:].split(".")
        if len(parts) != 3:
            return "A JSON web token could not be decoded"
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except ValueError:
            return "A JSON web token could not be decoded"
        if header.get("alg") != "RS256":
            return "A JSON web token could not be decoded"
        try:
            self.public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(),
                                   padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "A JSON web token could not be decoded"
        self.jwts_seen.append(claims)
        now = self.clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or iat > now + 60:
            return ("'Issued at' claim ('iat') must be an Integer representing the time that "
                    "the assertion was issued")
        if not isinstance(exp, int) or exp <= now:
            return ("'Expiration time' claim ('exp') must be a numeric value representing the "
                    "future time at which the assertion expires")
        if exp - iat > 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        if str(claims.get("iss")) != self.app_id:
            return "'Issuer' claim ('iss') must be an Integer"
        return None

    def accepts(self, token: str) -> bool:
        expiry = self.issued.get(token)
        return expiry is not None and self.clock() < expiry

    def revoke(self, token: str) -> None:
        self.issued.pop(token, None)

    def serve(self, method: str, path: str, authorization: str | None, body: Any,
              owner: str, repo: str) -> tuple[int, dict[str, str], Any] | None:
        """The answer to an App endpoint, or None when ``path`` is not one."""
        prefix = "/app/installations/"
        if method == "POST" and path.startswith(prefix) and path.endswith("/access_tokens"):
            problem = self.jwt_problem(authorization)
            if problem:
                return 401, {}, {"message": problem, "documentation_url": DOCS, "status": "401"}
            if path[len(prefix):-len("/access_tokens")] != str(self.installation_id):
                return 404, {}, {"message": "Not Found", "documentation_url": DOCS,
                                 "status": "404"}
            wanted = (body or {}).get("repositories") if isinstance(body, dict) else None
            if wanted is not None and any(r not in self.repositories for r in wanted):
                return 422, {}, {"message": "There is at least one repository that does not "
                                 "exist or is not accessible to the parent installation.",
                                 "documentation_url": DOCS, "status": "422"}
            self.minted += 1  # never the name of a revoked token again
            token = f"ghs_{self.minted:04d}{self.installation_id}"
            expiry = int(self.clock()) + self.token_ttl
            self.issued[token] = expiry
            expires_at = datetime.fromtimestamp(expiry, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return 201, {}, {"token": token, "expires_at": expires_at,
                             "permissions": {"contents": "write", "pull_requests": "write",
                                             "issues": "write"},
                             "repository_selection": "selected"}
        if method == "GET" and path == f"/repos/{owner}/{repo}/installation":
            problem = self.jwt_problem(authorization)
            if problem:
                return 401, {}, {"message": problem, "status": "401"}
            if repo not in self.repositories:
                return 404, {}, {"message": "Not Found", "status": "404"}
            return 200, {}, {"id": self.installation_id, "app_id": int(self.app_id),
                             "account": {"login": owner}, "repository_selection": "selected"}
        return None
