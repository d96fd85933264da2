"""GitHubClient against a local GitHub fake over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from modelpin.bot.github import GitHubClient, GitHubError

from .fake_github import FakeGitHub

BRANCH = "modelpin/rollback/acme-legal/primary-reasoning"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    yield server
    server.stop()


class Sleeper:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def client(fake: FakeGitHub, sleeper: Sleeper) -> Iterator[GitHubClient]:
    with httpx.Client(base_url=fake.url, timeout=5) as http:
        yield GitHubClient(
            http, "acme", "fleet", "t0k", min_interval=0.01, sleep=sleeper, backoff=0.01
        )


def test_create_then_find_dedupes(client: GitHubClient, fake: FakeGitHub) -> None:
    assert client.find_pr(BRANCH) is None
    pr = client.create_pr(BRANCH, "main", "roll back", "body")
    assert (pr.number, pr.state, pr.head_ref) == (1, "open", BRANCH)
    assert pr.html_url == "https://github.com/acme/fleet/pull/1"
    found = client.find_pr(BRANCH)
    assert found == pr
    assert fake.calls() == [
        ("GET", "/repos/acme/fleet/pulls"),
        ("POST", "/repos/acme/fleet/pulls"),
        ("GET", "/repos/acme/fleet/pulls"),
    ]
    listing = fake.requests[0]
    assert listing.query == {"head": f"acme:{BRANCH}", "state": "all", "per_page": "100"}
    assert listing.headers["authorization"] == "Bearer t0k"
    assert listing.headers["accept"] == "application/vnd.github+json"
    assert listing.headers["x-github-api-version"] == "2022-11-28"
    assert fake.requests[1].body == {
        "title": "roll back",
        "head": BRANCH,
        "base": "main",
        "body": "body",
    }


def test_422_already_exists_returns_the_existing_pr(client: GitHubClient, fake: FakeGitHub):
    first = client.create_pr(BRANCH, "main", "t", "b")
    again = client.create_pr(BRANCH, "main", "t", "b")
    assert again.number == first.number
    assert fake.calls()[-2:] == [
        ("POST", "/repos/acme/fleet/pulls"),
        ("GET", "/repos/acme/fleet/pulls"),
    ]
    assert len(fake.pulls) == 1


def test_other_422_is_raised(client: GitHubClient) -> None:
    with pytest.raises(GitHubError) as err:
        client.create_pr(BRANCH, "", "t", "b")
    assert err.value.status == 422
    assert err.value.errors[0]["code"] == "missing_field"


def test_update_patches_only_when_changed(client: GitHubClient, fake: FakeGitHub) -> None:
    pr = client.create_pr(BRANCH, "main", "t", "old body")
    same, changed = client.update_pr(pr, "t", "old body")
    assert not changed and same == pr
    new, changed = client.update_pr(pr, "t", "new body")
    assert changed and new.body == "new body"
    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert [(r.path, r.body) for r in patches] == [
        ("/repos/acme/fleet/pulls/1", {"body": "new body"})
    ]


def test_labels_added_once(client: GitHubClient, fake: FakeGitHub) -> None:
    pr = client.create_pr(BRANCH, "main", "t", "b")
    assert client.add_labels(pr, ["modelpin", "rollback", "needs-approval"]) == (
        "modelpin",
        "rollback",
        "needs-approval",
    )
    refreshed = client.find_pr(BRANCH)
    assert refreshed is not None
    assert refreshed.labels == ("modelpin", "rollback", "needs-approval")
    assert client.add_labels(refreshed, ["modelpin", "rollback"]) == ()
    label_calls = [r for r in fake.requests if r.path.endswith("/labels")]
    assert [r.body for r in label_calls] == [{"labels": ["modelpin", "rollback", "needs-approval"]}]


def test_403_with_retry_after_waits_then_succeeds(client, fake, sleeper) -> None:
    fake.inject(
        "POST",
        "/repos/acme/fleet/pulls",
        403,
        headers={"retry-after": "7"},
        body={"message": "You have exceeded a secondary rate limit."},
    )
    pr = client.create_pr(BRANCH, "main", "t", "b")
    assert pr.number == 1
    assert 7.0 in sleeper.calls
    assert fake.calls().count(("POST", "/repos/acme/fleet/pulls")) == 2


def test_primary_rate_limit_waits_until_reset(fake, sleeper) -> None:
    fake.inject(
        "GET",
        "/repos/acme/fleet/pulls",
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000030"},
        body={"message": "API rate limit exceeded"},
    )
    with httpx.Client(base_url=fake.url) as http:
        gh = GitHubClient(http, "acme", "fleet", "t0k", sleep=sleeper, wall_clock=lambda: 1000000.0)
        assert gh.find_pr(BRANCH) is None
    assert sleeper.calls == [31.0]


def test_502_then_success_is_retried(client, fake, sleeper) -> None:
    fake.inject("GET", "/repos/acme/fleet/pulls", 502, body={"message": "Server Error"})
    assert client.find_pr(BRANCH) is None
    assert fake.calls() == [("GET", "/repos/acme/fleet/pulls")] * 2
    assert len(sleeper.calls) == 1


def test_retries_are_bounded(client, fake) -> None:
    for _ in range(4):
        fake.inject("GET", "/repos/acme/fleet/pulls", 502, body={"message": "Server Error"})
    with pytest.raises(GitHubError, match="502"):
        client.find_pr(BRANCH)
    assert len(fake.requests) == 4  # 1 + max_retries


def test_plain_403_is_not_retried(client, fake) -> None:
    fake.inject("POST", "/repos/acme/fleet/pulls", 403, body={"message": "Resource not accessible"})
    with pytest.raises(GitHubError, match="Resource not accessible"):
        client.create_pr(BRANCH, "main", "t", "b")
    assert len(fake.requests) == 1


def test_mutations_are_spaced_by_min_interval(fake) -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    with httpx.Client(base_url=fake.url) as http:
        gh = GitHubClient(http, "acme", "fleet", "t0k", sleep=sleep, monotonic=lambda: now[0])
        assert gh.min_interval == 1.0  # the default
        pr = gh.create_pr(BRANCH, "main", "t", "b")
        now[0] += 0.25
        gh.comment(pr.number, "hello")
        gh.find_pr(BRANCH)  # reads are not spaced
    assert slept == [pytest.approx(0.75)]


def test_timeouts_are_retried() -> None:
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if len(attempts) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json=[])

    with httpx.Client(
        base_url="https://api.github.com", transport=httpx.MockTransport(handler)
    ) as http:
        gh = GitHubClient(http, "acme", "fleet", "t", sleep=lambda s: None)
        assert gh.find_pr(BRANCH) is None
    assert len(attempts) == 2


def test_comments_follow_link_pagination_past_the_first_100(
    client: GitHubClient, fake: FakeGitHub
) -> None:
    pr = client.create_pr(BRANCH, "main", "t", "b")
    fake.comments[pr.number] = [
        {"id": i, "body": f"c{i}", "user": {"login": "x"}} for i in range(250)
    ]
    bodies = client.comments(pr.number)
    assert bodies == [f"c{i}" for i in range(250)]
    pages = [r.query.get("page", "1") for r in fake.requests
             if r.path.endswith(f"/issues/{pr.number}/comments")]
    assert pages == ["1", "2", "3"]


def test_pagination_never_follows_a_link_to_another_host(
    client: GitHubClient, fake: FakeGitHub
) -> None:
    pr = client.create_pr(BRANCH, "main", "t", "b")
    fake.inject("GET", f"/repos/acme/fleet/issues/{pr.number}/comments", 200,
                headers={"Link": '<https://evil.example/steal?page=2>; rel="next"'},
                body=[{"id": 1, "body": "x"}])
    with pytest.raises(GitHubError, match="pagination link to another host refused"):
        client.comments(pr.number)


def test_retry_after_as_an_http_date(fake: FakeGitHub, sleeper: Sleeper) -> None:
    # RFC 9110: Retry-After = HTTP-date / delay-seconds; the wall clock is pinned
    now = 1_774_440_000.0  # 2026-03-25T12:00:00Z
    fake.inject("GET", "/repos/acme/fleet/pulls", 429,
                headers={"Retry-After": "Wed, 25 Mar 2026 12:00:30 GMT"})
    with httpx.Client(base_url=fake.url, timeout=5) as http:
        client = GitHubClient(http, "acme", "fleet", "t0k", sleep=sleeper,
                              wall_clock=lambda: now)
        assert client.find_pr(BRANCH) is None
    assert sleeper.calls == [30.0]


@pytest.mark.parametrize("value", ["soon", "Wed, 99 Foo 2026 25:00:00 GMT", "nan"])
def test_an_unreadable_retry_after_waits_a_minute_not_a_traceback(
    fake: FakeGitHub, sleeper: Sleeper, value: str
) -> None:
    fake.inject("GET", "/repos/acme/fleet/pulls", 403, headers={"Retry-After": value})
    with httpx.Client(base_url=fake.url, timeout=5) as http:
        client = GitHubClient(http, "acme", "fleet", "t0k", sleep=sleeper)
        assert client.find_pr(BRANCH) is None
    assert sleeper.calls == [60.0]


def test_issues_are_found_by_marker_and_prs_are_not_issues(
    client: GitHubClient, fake: FakeGitHub
) -> None:
    client.create_pr(BRANCH, "main", "t", "<!-- key -->")  # a PR with the marker
    assert client.find_issue("<!-- key -->", "modelpin") is None
    for i in range(120):  # more than one page of other issues
        client.create_issue(f"other {i}", f"<!-- other {i} -->", ["modelpin"])
    made = client.create_issue("incident", "report <!-- key -->", ["modelpin", "escalate"])
    found = client.find_issue("<!-- key -->", "modelpin")
    assert found is not None and found.number == made.number
    listing = [r for r in fake.requests if r.path.endswith("/issues") and r.method == "GET"]
    assert listing[-1].query.get("page") == "2"
