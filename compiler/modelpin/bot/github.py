"""GitHub REST API client for the bot's pull requests, over an injected ``httpx.Client``.

Only what the bot needs: find the PR of a branch, create, update (PATCH only when the
title or body changed), add labels, comment, and the issues ``escalate`` opens. Lists
follow the ``Link: <...>; rel="next"`` header to the last page (never to another host:
the token goes only to the API it was given for). Mutating calls are spaced by at least
``min_interval`` seconds (GitHub asks for a second between content-creating requests).
Rate limits are honoured: ``retry-after``, else ``x-ratelimit-reset`` when
``x-ratelimit-remaining`` is 0. 5xx answers and timeouts are retried a bounded number
of times with exponential backoff. ``sleep`` and the clocks are injectable for tests.
Each exchange has a total deadline (``timeout``: a server that drips its answer cannot
hold the bot) and a size cap (:func:`modelpin.bot.http.bounded_exchange`).

Authentication: a token (``GITHUB_TOKEN``), or a GitHub App in process
(:mod:`modelpin.bot.github_app`: a JWT signed with the App's key exchanged for an
installation token, cached until shortly before it expires, refreshed; a 401 drops the
token and the request is tried once more with a new one). ``git_token()`` hands the same
credentials to the git adapter (:mod:`modelpin.bot.git_auth`).

Why not githubkit: the bot calls nine endpoints; this client is small, runs over the
httpx every other part uses, and covers what githubkit would bring here (pagination,
rate limits, retries, App auth in ~150 lines over ``cryptography``, already a core
dependency). githubkit's generated models would be a large dependency of the core
install for typing the bot does not need.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from .git_auth import GitToken, TokenUnavailable, git_host
from .github_app import AppAuth, AppAuthError, load_app_key
from .http import ExchangeTimeout, ExchangeTooLarge, bounded_exchange

API_VERSION = "2022-11-28"


class GitHubError(Exception):
    """GitHub refused or failed a request after the allowed retries."""

    def __init__(self, status: int | None, message: str, errors: Sequence[Any] = ()) -> None:
        super().__init__(f"GitHub API {status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.errors = list(errors)


@dataclass(frozen=True)
class PullRequest:
    number: int
    html_url: str
    state: str
    head_ref: str
    title: str
    body: str
    labels: tuple[str, ...]
    merged: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PullRequest:
        return cls(
            number=int(data["number"]),
            html_url=str(data.get("html_url", "")),
            state=str(data.get("state", "open")),
            head_ref=str(data.get("head", {}).get("ref", "")),
            title=str(data.get("title") or ""),
            body=str(data.get("body") or ""),
            labels=tuple(str(label["name"]) for label in data.get("labels", [])),
            merged=data.get("merged_at") is not None,
        )


@dataclass(frozen=True)
class Issue:
    number: int
    html_url: str
    state: str
    title: str
    body: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Issue:
        return cls(
            number=int(data["number"]),
            html_url=str(data.get("html_url", "")),
            state=str(data.get("state", "open")),
            title=str(data.get("title") or ""),
            body=str(data.get("body") or ""),
        )


_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
MAX_PAGES = 100


class GitHubClient:
    def __init__(
        self,
        http: httpx.Client,
        owner: str,
        repo: str,
        token: str | AppAuth,
        *,
        min_interval: float = 1.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_wait: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
        max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.http = http
        self.owner = owner
        self.repo = repo
        self._auth = token
        self._headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "modelpin-bot",
        }
        self.min_interval = min_interval
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._last_mutation: float | None = None
        self.timeout = timeout
        self.max_bytes = max_bytes

    @classmethod
    def from_env(cls, http: httpx.Client, repository: str, **kw: Any) -> GitHubClient:
        """``repository`` is ``owner/name``. A GitHub App when ``GITHUB_APP_ID`` is set
        (key in ``GITHUB_APP_PRIVATE_KEY`` as PEM text or ``GITHUB_APP_PRIVATE_KEY_FILE``;
        ``GITHUB_APP_INSTALLATION_ID`` optional: found from the repository), else the
        token ``GITHUB_TOKEN`` (or ``GH_TOKEN``)."""
        owner, _, name = repository.partition("/")
        if not owner or not name:
            raise GitHubError(None, f"repository {repository!r} is not owner/name")
        app_id = os.environ.get("GITHUB_APP_ID", "").strip()
        if app_id:
            return cls(http, owner, name, _app_from_env(http, app_id, owner, name, kw), **kw)
        token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
        if not token:
            raise GitHubError(None, "set GITHUB_TOKEN to a token that may open pull requests, "
                              "or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY for a GitHub App")
        return cls(http, owner, name, token, **kw)

    def dispatch(self, event_type: str, client_payload: dict[str, Any]) -> None:
        """``POST /repos/{owner}/{repo}/dispatches``: start the workflows listening for
        ``repository_dispatch`` of ``event_type`` (the guard after a trip)."""
        self._request("POST", f"/repos/{self.owner}/{self.repo}/dispatches",
                      json={"event_type": event_type, "client_payload": client_payload})

    def find_pr(self, branch: str) -> PullRequest | None:
        """The PR whose head is ``branch`` in this repository: open first, else the newest."""
        data = self._pages(
            self._path("pulls"),
            {"head": f"{self.owner}:{branch}", "state": "all", "per_page": "100"},
        )
        prs = [PullRequest.from_json(item) for item in data]
        prs = [p for p in prs if p.head_ref == branch]
        if not prs:
            return None
        return sorted(prs, key=lambda p: (p.state == "open", p.number))[-1]

    def create_pr(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        """Open a PR; a 422 "already exists" means someone (us, earlier) did: return it."""
        try:
            data = self._request(
                "POST",
                self._path("pulls"),
                json={"title": title, "head": branch, "base": base, "body": body},
            )
        except GitHubError as exc:
            if exc.status == 422 and _already_exists(exc):
                found = self.find_pr(branch)
                if found is not None:
                    return found
            raise
        return PullRequest.from_json(data)

    def update_pr(self, pr: PullRequest, title: str, body: str) -> tuple[PullRequest, bool]:
        """PATCH title and body only when they differ; returns (pr, whether it changed)."""
        changes = {k: v for k, v in (("title", title), ("body", body)) if getattr(pr, k) != v}
        if not changes:
            return pr, False
        data = self._request("PATCH", self._path(f"pulls/{pr.number}"), json=changes)
        return PullRequest.from_json(data), True

    def add_labels(self, pr: PullRequest, labels: Iterable[str]) -> tuple[str, ...]:
        """Add the labels the PR lacks (none -> no call); returns the labels added."""
        missing = tuple(label for label in dict.fromkeys(labels) if label not in pr.labels)
        if missing:
            self._request(
                "POST", self._path(f"issues/{pr.number}/labels"), json={"labels": list(missing)}
            )
        return missing

    def comments(self, number: int) -> list[str]:
        """Every comment of an issue or PR (all pages)."""
        data = self._pages(self._path(f"issues/{number}/comments"), {"per_page": "100"})
        return [str(c.get("body") or "") for c in data]

    def find_issue(self, marker: str, label: str) -> Issue | None:
        """The issue (not PR) labelled ``label`` whose body has ``marker``: open first."""
        data = self._pages(
            self._path("issues"), {"labels": label, "state": "all", "per_page": "100"}
        )
        found = [
            Issue.from_json(i) for i in data
            if isinstance(i, dict) and "pull_request" not in i and marker in (i.get("body") or "")
        ]
        if not found:
            return None
        return sorted(found, key=lambda i: (i.state == "open", i.number))[-1]

    def create_issue(self, title: str, body: str, labels: Sequence[str]) -> Issue:
        data = self._request(
            "POST", self._path("issues"),
            json={"title": title, "body": body, "labels": list(labels)},
        )
        return Issue.from_json(data)

    def comment(self, number: int, body: str) -> None:
        self._request("POST", self._path(f"issues/{number}/comments"), json={"body": body})

    # --- transport ---------------------------------------------------------------------

    def _path(self, tail: str) -> str:
        return f"/repos/{self.owner}/{self.repo}/{tail}"

    def _pages(self, path: str, params: dict[str, str]) -> list[Any]:
        """A list endpoint, every page: follows ``Link: rel="next"`` on the same host."""
        items: list[Any] = []
        url: str = path
        query: dict[str, str] | None = params
        for _ in range(MAX_PAGES):
            data, link = self._request("GET", url, params=query, with_link=True)
            if not isinstance(data, list):
                raise GitHubError(None, f"GET {path}: expected a list, got {type(data).__name__}")
            items.extend(data)
            match = _NEXT.search(link or "")
            if match is None:
                return items
            url, query = self._same_host(match.group(1)), None
        raise GitHubError(None, f"GET {path}: more than {MAX_PAGES} pages")

    def _same_host(self, url: str) -> str:
        target = httpx.URL(url)
        base = self.http.base_url
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise GitHubError(None, f"pagination link to another host refused: {url}")
        return url

    def git_token(self) -> GitToken:
        """The same credentials for ``git`` (fetch and push over HTTPS to this GitHub's
        host): the token, or the App's installation token, refreshed like the API's."""
        def token() -> str:
            try:
                return self._bearer()
            except GitHubError as exc:
                raise TokenUnavailable(str(exc)) from None

        invalidate = self._auth.invalidate if isinstance(self._auth, AppAuth) else None
        return GitToken(git_host(str(self.http.base_url)), token, invalidate)

    def _bearer(self) -> str:
        if isinstance(self._auth, str):
            return self._auth
        try:
            return self._auth.token()
        except AppAuthError as exc:
            raise GitHubError(exc.status, str(exc)) from None

    def _space_mutation(self) -> None:
        if self._last_mutation is not None:
            wait = self.min_interval - (self._monotonic() - self._last_mutation)
            if wait > 0:
                self._sleep(wait)
        self._last_mutation = self._monotonic()

    def _request(self, method: str, path: str, *, with_link: bool = False, **kw: Any) -> Any:
        mutating = method != "GET"
        attempt = 0
        renewed = False
        while True:
            if mutating:
                self._space_mutation()
            try:
                headers = {**self._headers, "Authorization": f"Bearer {self._bearer()}"}
                answer = bounded_exchange(self.http, method, path, headers=headers,
                                          timeout=self.timeout, max_bytes=self.max_bytes, **kw)
                response = httpx.Response(answer.status, headers=answer.headers,
                                          content=answer.body)
            except ExchangeTooLarge as exc:
                raise GitHubError(None, f"{method} {path}: {exc}") from None
            except (ExchangeTimeout, httpx.TimeoutException, httpx.TransportError) as exc:
                if attempt >= self.max_retries:
                    raise GitHubError(None, f"{method} {path}: {exc!r}") from exc
                self._sleep(self.backoff * 2**attempt)
                attempt += 1
                continue
            if response.is_success:
                try:
                    data = response.json() if response.content else None
                except ValueError:
                    raise GitHubError(response.status_code,
                                      f"{method} {path}: the answer is not JSON") from None
                return (data, response.headers.get("link")) if with_link else data
            if (response.status_code == 401 and isinstance(self._auth, AppAuth)
                    and not renewed):
                self._auth.invalidate()  # revoked before it expired: a new one, once
                renewed = True
                continue
            wait = self._rate_limit_wait(response)
            retryable = wait is not None or response.status_code >= 500
            if retryable and attempt < self.max_retries:
                self._sleep(wait if wait is not None else self.backoff * 2**attempt)
                attempt += 1
                continue
            raise _error(response)

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        if response.status_code not in (403, 429):
            return None
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            return self._bounded(self._retry_after_seconds(retry_after))
        if response.headers.get("x-ratelimit-remaining") == "0":
            try:
                reset = float(response.headers.get("x-ratelimit-reset", "0"))
            except ValueError:
                reset = self._wall_clock() + 60.0
            return self._bounded(max(0.0, reset - self._wall_clock()) + 1.0)
        if "rate limit" in response.text.lower():
            return self._bounded(60.0)  # a secondary limit without headers: wait a minute
        return None  # a plain 403: permissions, not a limit

    def _retry_after_seconds(self, value: str) -> float:
        """``Retry-After``: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return 60.0  # unreadable: wait a minute, as for a bare secondary limit
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp() - self._wall_clock()
        if seconds != seconds:  # NaN
            return 60.0
        return max(0.0, seconds)

    def _bounded(self, seconds: float) -> float:
        if seconds > self.max_wait:
            raise GitHubError(None, f"GitHub asks to wait {seconds:.0f}s (> {self.max_wait}s)")
        return seconds


def _error(response: httpx.Response) -> GitHubError:
    try:
        data = response.json()
    except ValueError:
        data = {"message": response.text[:200]}
    if not isinstance(data, dict):
        data = {"message": str(data)}
    return GitHubError(response.status_code, str(data.get("message", "")), data.get("errors", []))


def _already_exists(exc: GitHubError) -> bool:
    texts = [exc.message] + [str(e.get("message", "")) for e in exc.errors if isinstance(e, dict)]
    return any("already exists" in t for t in texts)


def _app_from_env(http: httpx.Client, app_id: str, owner: str, repo: str,
                  kw: dict[str, Any]) -> AppAuth:
    pem_text = os.environ.get("GITHUB_APP_PRIVATE_KEY", "")
    key_file = os.environ.get("GITHUB_APP_PRIVATE_KEY_FILE", "")
    if bool(pem_text) == bool(key_file):
        raise GitHubError(None, "GITHUB_APP_ID is set: give the App's private key in exactly "
                          "one of GITHUB_APP_PRIVATE_KEY (PEM text) and "
                          "GITHUB_APP_PRIVATE_KEY_FILE (a path)")
    try:
        pem = pem_text.encode() if pem_text else Path(key_file).read_bytes()
    except OSError as exc:
        raise GitHubError(None, f"GITHUB_APP_PRIVATE_KEY_FILE {key_file}: {exc.strerror}"
                          ) from None
    installation = os.environ.get("GITHUB_APP_INSTALLATION_ID", "").strip()
    if installation and not installation.isdigit():
        raise GitHubError(None, f"GITHUB_APP_INSTALLATION_ID {installation!r} is not a number")
    try:
        key = load_app_key(pem)
    except AppAuthError as exc:
        raise GitHubError(None, str(exc)) from None
    return AppAuth(http, app_id, key, owner, repo,
                   installation_id=int(installation) if installation else None,
                   wall_clock=kw.get("wall_clock", time.time),
                   timeout=kw.get("timeout", 30.0))
