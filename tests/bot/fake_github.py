"""A small GitHub REST API on 127.0.0.1 for the bot's tests: real HTTP, documented shapes.

Implements only the endpoints the bot calls (list/create/update pulls, add labels,
list/create issue comments, list/create issues), records every request, and can be
told to answer the next matching request with an injected status (403 + retry-after,
502...) or a delay. Lists are paginated as documented: ``per_page`` (default 30, max
100), ``page``, and a ``Link`` header with ``rel="next"``/``rel="last"`` absolute URLs.
The issues list includes pull requests (with a ``pull_request`` key), as GitHub's does.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from .fake_github_app import FakeApp


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Injection:
    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    when: Callable[[Any], bool] | None = None
    """Only requests whose JSON body satisfies this (e.g. one tenant's PR)."""
    times: int = 1
    delay: float = 0.0
    """Seconds to wait before answering (a timeout, when longer than the client's)."""
    drip: float = 0.0
    """Seconds between the bytes of the answer's body (a server that drips)."""


class FakeGitHub:
    def __init__(self, owner: str = "acme", repo: str = "fleet", token: str = "t0k") -> None:
        self.owner, self.repo, self.token = owner, repo, token
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.issues: dict[int, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.injections: list[Injection] = []
        self.app: FakeApp | None = None
        """Set by :meth:`install_app`: the GitHub App endpoints and installation tokens."""
        self._next = 1
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PATCH = _handle

            def handle_one_request(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle_one_request()  # the client gave up (a timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeGitHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def install_app(self, app_id: str, public_key: rsa.RSAPublicKey, *,
                    installation_id: int = 4242, token_ttl: int = 3600,
                    clock: Callable[[], float] = time.time) -> FakeApp:
        """Install a GitHub App on this repository (``fake_github_app``)."""
        self.app = FakeApp(app_id, public_key, installation_id, (self.repo,), clock, token_ttl)
        return self.app

    def inject(self, method: str, path: str, status: int, **kw: Any) -> None:
        self.injections.append(Injection(method, path, status, **kw))

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    # --- the API -----------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        with self._lock:
            self.requests.append(
                Recorded(
                    h.command, url.path, query, body, {k.lower(): v for k, v in h.headers.items()}
                )
            )
            status, headers, payload, delay, drip = self._route(h, url.path, query, body)
        if delay:
            time.sleep(delay)
        data = b"" if status == 204 else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if drip:
            for i in range(len(data)):
                h.wfile.write(data[i : i + 1])
                h.wfile.flush()
                time.sleep(drip)
            return
        h.wfile.write(data)

    def _route(
        self, h: BaseHTTPRequestHandler, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any, float, float]:
        for inj in self.injections:
            if inj.method == h.command and inj.path == path and (
                inj.when is None or inj.when(body)
            ):
                inj.times -= 1
                if inj.times <= 0:
                    self.injections.remove(inj)
                return (inj.status, inj.headers, inj.body or {"message": "injected"},
                        inj.delay, inj.drip)
        return (*self._api(h, path, query, body), 0.0, 0.0)

    def _page(
        self, path: str, query: dict[str, str], items: list[Any]
    ) -> tuple[int, dict[str, str], Any]:
        per_page = min(int(query.get("per_page", "30")), 100)
        page = int(query.get("page", "1"))
        last = max(1, -(-len(items) // per_page))
        headers: dict[str, str] = {}
        if last > 1:
            def link(n: int) -> str:
                rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "page")
                return f"<{self.url}{path}?{rest}&page={n}>"
            rels = []
            if page < last:
                rels += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
            if page > 1:
                rels += [f'{link(1)}; rel="first"', f'{link(page - 1)}; rel="prev"']
            headers["Link"] = ", ".join(rels)
        return 200, headers, items[(page - 1) * per_page : page * per_page]

    def _api(
        self, h: BaseHTTPRequestHandler, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        authorization = h.headers.get("Authorization")
        if self.app is not None:
            answer = self.app.serve(h.command, path, authorization, body, self.owner, self.repo)
            if answer is not None:
                return answer
        bearer = (authorization or "").removeprefix("Bearer ")
        if authorization != f"Bearer {self.token}" and not (
            self.app is not None and self.app.accepts(bearer)
        ):
            return 401, {}, {"message": "Bad credentials", "status": "401"}
        prefix = f"/repos/{self.owner}/{self.repo}/"
        if not path.startswith(prefix):
            return 404, {}, {"message": "Not Found"}
        parts = path[len(prefix) :].split("/")
        if parts == ["dispatches"] and h.command == "POST":
            if not isinstance(body, dict) or not body.get("event_type"):
                return 422, {}, {"message": "Invalid request.\n\n\"event_type\" wasn't supplied."}
            return 204, {}, None
        if parts == ["pulls"] and h.command == "GET":
            owner, _, branch = query.get("head", ":").partition(":")
            state = query.get("state", "open")
            found = [
                p
                for p in self.pulls.values()
                if (not branch or (owner == self.owner and p["head"]["ref"] == branch))
                and (state == "all" or p["state"] == state)
            ]
            return self._page(path, query, sorted(found, key=lambda p: -p["number"]))
        if parts == ["pulls"] and h.command == "POST":
            return self._create(body)
        if len(parts) == 2 and parts[0] == "pulls" and h.command == "PATCH":
            pr = self.pulls.get(int(parts[1]))
            if pr is None:
                return 404, {}, {"message": "Not Found"}
            for key in ("title", "body", "state"):
                if key in body:
                    pr[key] = body[key]
            return 200, {}, pr
        if len(parts) == 3 and parts[0] == "issues" and parts[2] == "labels":
            pr = self.pulls[int(parts[1])]
            for name in body["labels"]:
                if name not in [label["name"] for label in pr["labels"]]:
                    pr["labels"].append(
                        {
                            "id": len(pr["labels"]) + 1,
                            "name": name,
                            "color": "ededed",
                            "default": False,
                        }
                    )
            return 200, {}, pr["labels"]
        if len(parts) == 3 and parts[0] == "issues" and parts[2] == "comments":
            thread = self.comments.setdefault(int(parts[1]), [])
            if h.command == "GET":
                return self._page(path, query, thread)
            comment = {
                "id": 1000 + len(thread),
                "body": body["body"],
                "user": {"login": "modelpin-bot"},
            }
            thread.append(comment)
            return 201, {}, comment
        if parts == ["issues"] and h.command == "GET":
            state = query.get("state", "open")
            wanted = set(filter(None, query.get("labels", "").split(",")))
            every = [*self.issues.values(),
                     *({**p, "pull_request": {"url": p["url"]}} for p in self.pulls.values())]
            found = [
                i for i in every
                if (state == "all" or i["state"] == state)
                and wanted <= {label["name"] for label in i["labels"]}
            ]
            return self._page(path, query, sorted(found, key=lambda i: -i["number"]))
        if parts == ["issues"] and h.command == "POST":
            if not body.get("title"):
                return 422, {}, {"message": "Validation Failed", "errors": [
                    {"resource": "Issue", "field": "title", "code": "missing_field"}]}
            number = self._next
            self._next += 1
            issue = {
                "number": number, "state": "open", "title": body["title"],
                "body": body.get("body"),
                "html_url": f"https://github.com/{self.owner}/{self.repo}/issues/{number}",
                "url": f"https://api.github.com/repos/{self.owner}/{self.repo}/issues/{number}",
                "labels": [{"id": i + 1, "name": n, "color": "ededed", "default": False}
                           for i, n in enumerate(body.get("labels", []))],
            }
            self.issues[number] = issue
            return 201, {"Location": issue["url"]}, issue
        return 404, {}, {"message": "Not Found"}

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        missing = [k for k in ("head", "base") if not body.get(k)]
        if missing:
            return (
                422,
                {},
                {
                    "message": "Validation Failed",
                    "errors": [
                        {"resource": "PullRequest", "field": k, "code": "missing_field"}
                        for k in missing
                    ],
                },
            )
        branch = body["head"].split(":", 1)[-1]
        if any(p["head"]["ref"] == branch and p["state"] == "open" for p in self.pulls.values()):
            return (
                422,
                {},
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {self.owner}:{branch}.",
                        }
                    ],
                    "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                },
            )
        number = self._next
        self._next += 1
        pr = {
            "number": number,
            "state": "open",
            "title": body.get("title", ""),
            "body": body.get("body"),
            "html_url": f"https://github.com/{self.owner}/{self.repo}/pull/{number}",
            "url": f"https://api.github.com/repos/{self.owner}/{self.repo}/pulls/{number}",
            "head": {"ref": branch, "label": f"{self.owner}:{branch}"},
            "base": {"ref": body["base"]},
            "labels": [],
            "merged_at": None,
            "draft": bool(body.get("draft", False)),
        }
        self.pulls[number] = pr
        return 201, {"Location": pr["url"]}, pr
