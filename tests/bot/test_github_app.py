"""GitHub App auth in process: an RS256 JWT exchanged for an installation token at
``POST /app/installations/{id}/access_tokens``, cached until shortly before
``expires_at``, refreshed, renewed once after a 401; against the fake GitHub, which
verifies the JWT as GitHub documents (signature, iss, iat, exp <= iat + 10 min)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from modelpin.bot.github import GitHubClient, GitHubError
from modelpin.bot.github_app import JWT_LIFETIME, REFRESH_BEFORE, AppAuth, app_jwt
from modelpin.cli import main
from tests.fleetkit import NOW

from . import faults
from .fake_github import FakeGitHub

APP_ID = "123456"


class Clock:
    def __init__(self) -> None:
        import time

        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def github(app_key: rsa.RSAPrivateKey, clock: Clock) -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    server.install_app(APP_ID, app_key.public_key(), clock=clock)
    yield server
    server.stop()


def _client(github: FakeGitHub, key: rsa.RSAPrivateKey, clock: Clock,
            installation_id: int | None = 4242) -> GitHubClient:
    http = httpx.Client(base_url=github.url)
    auth = AppAuth(http, APP_ID, key, github.owner, github.repo,
                   installation_id=installation_id, wall_clock=clock)
    return GitHubClient(http, github.owner, github.repo, auth, min_interval=0,
                        max_retries=0, wall_clock=clock)


def _exchanges(github: FakeGitHub) -> list[str]:
    return [r.path for r in github.requests if r.path.endswith("/access_tokens")]


def test_the_jwt_is_rs256_with_the_documented_claims(app_key: rsa.RSAPrivateKey,
                                                     github: FakeGitHub, clock: Clock) -> None:
    assert github.app is not None
    jwt = app_jwt(APP_ID, app_key, clock.t)
    assert github.app.jwt_problem(f"Bearer {jwt}") is None  # signature, iss, iat, exp
    claims = github.app.jwts_seen[-1]
    now = int(clock.t)
    assert claims == {"iat": now - 60, "exp": now - 60 + JWT_LIFETIME, "iss": APP_ID}
    assert claims["exp"] - claims["iat"] <= 600
    tampered = jwt[:-4] + ("AAAA" if not jwt.endswith("AAAA") else "BBBB")
    assert github.app.jwt_problem(f"Bearer {tampered}") == "A JSON web token could not be decoded"


def test_one_installation_token_serves_many_requests(
    app_key: rsa.RSAPrivateKey, github: FakeGitHub, clock: Clock
) -> None:
    client = _client(github, app_key, clock)
    pr = client.create_pr("modelpin/rollback/t/a", "main", "title", "body")
    client.add_labels(pr, ["modelpin"])
    assert client.find_pr("modelpin/rollback/t/a") is not None
    assert _exchanges(github) == ["/app/installations/4242/access_tokens"]
    exchange = next(r for r in github.requests if r.path.endswith("/access_tokens"))
    assert exchange.method == "POST"
    assert exchange.body == {"repositories": [github.repo]}  # scoped to the one repository
    assert exchange.headers["accept"] == "application/vnd.github+json"
    api_calls = [r for r in github.requests if r.path.startswith("/repos/")]
    assert {r.headers["authorization"] for r in api_calls} == {"Bearer ghs_00014242"}


def test_the_token_is_refreshed_shortly_before_it_expires(
    app_key: rsa.RSAPrivateKey, github: FakeGitHub, clock: Clock
) -> None:
    client = _client(github, app_key, clock)
    client.find_pr("x")
    clock.t += 3600 - REFRESH_BEFORE - 1  # still valid for a while: reused
    client.find_pr("x")
    assert len(_exchanges(github)) == 1
    clock.t += 2  # within REFRESH_BEFORE of expires_at: a new token before it lapses
    client.find_pr("x")
    assert len(_exchanges(github)) == 2
    last = [r for r in github.requests if r.path.endswith("/pulls")][-1]
    assert last.headers["authorization"] == "Bearer ghs_00024242"


def test_a_revoked_token_is_replaced_once(app_key: rsa.RSAPrivateKey, github: FakeGitHub,
                                          clock: Clock) -> None:
    client = _client(github, app_key, clock)
    client.find_pr("x")
    assert github.app is not None
    github.app.revoke("ghs_00014242")
    assert client.find_pr("x") is None  # 401 -> new token -> the request succeeds
    assert len(_exchanges(github)) == 2
    github.token = "never"  # and a 401 that persists is an error, not a loop
    github.app.issued.clear()
    github.inject("GET", f"/repos/{github.owner}/{github.repo}/pulls", 401, times=5)
    with pytest.raises(GitHubError) as err:
        client.find_pr("x")
    assert err.value.status == 401
    assert len(_exchanges(github)) == 3


def test_the_installation_is_found_when_not_given(app_key: rsa.RSAPrivateKey,
                                                  github: FakeGitHub, clock: Clock) -> None:
    client = _client(github, app_key, clock, installation_id=None)
    client.find_pr("x")
    client.find_pr("y")
    found = [r.path for r in github.requests if r.path.endswith("/installation")]
    assert found == [f"/repos/{github.owner}/{github.repo}/installation"]
    assert _exchanges(github) == ["/app/installations/4242/access_tokens"]


def test_a_jwt_signed_by_another_key_is_refused_with_a_hint(github: FakeGitHub,
                                                           clock: Clock) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(GitHubError) as err:
        _client(github, other, clock).find_pr("x")
    assert err.value.status == 401
    assert "A JSON web token could not be decoded" in str(err.value)
    assert "GITHUB_APP_PRIVATE_KEY is this App's key" in str(err.value)
    assert not any(r.path.startswith("/repos/") for r in github.requests)


def test_a_clock_far_behind_gives_an_expired_jwt(app_key: rsa.RSAPrivateKey,
                                                 github: FakeGitHub, clock: Clock) -> None:
    behind = Clock()
    behind.t = clock.t - 3600
    with pytest.raises(GitHubError, match="'Expiration time' claim"):
        _client(github, app_key, behind).find_pr("x")


def test_an_unknown_installation_is_a_clear_404(app_key: rsa.RSAPrivateKey,
                                                github: FakeGitHub, clock: Clock) -> None:
    with pytest.raises(GitHubError) as err:
        _client(github, app_key, clock, installation_id=99).find_pr("x")
    assert err.value.status == 404
    assert "the App is not installed on this repository" in str(err.value)


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, app_key: rsa.RSAPrivateKey) -> pytest.MonkeyPatch:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_APP_ID", APP_ID)
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", _pem(app_key))
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", "4242")
    return monkeypatch


def test_modelpin_bot_publishes_as_a_github_app(tmp_path: Path, app_env: pytest.MonkeyPatch,
                                                github: FakeGitHub) -> None:
    repo = faults.repo(tmp_path)
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    code = main(["bot", "--repo", str(repo), "--telemetry", str(telemetry), "--now", NOW,
                 "--push", "--github", f"{github.owner}/{github.repo}", "--github-api",
                 github.url, "--github-interval", "0"])
    assert code == 0
    assert sorted(p["head"]["ref"] for p in github.pulls.values()) == [
        f"modelpin/rollback/{t}/primary" for t in faults.TENANTS]
    assert len(_exchanges(github)) == 1  # one token for the whole run


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITHUB_APP_PRIVATE_KEY": ""}, "give the App's private key in exactly one of"),
        ({"GITHUB_APP_PRIVATE_KEY": "not a pem"}, "is not a PEM private key"),
        ({"GITHUB_APP_PRIVATE_KEY": "ed25519"}, "must be an RSA key (RS256)"),
        ({"GITHUB_APP_INSTALLATION_ID": "abc"}, "GITHUB_APP_INSTALLATION_ID 'abc' is not a "
         "number"),
        ({"GITHUB_APP_PRIVATE_KEY": "", "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/key.pem"},
         "GITHUB_APP_PRIVATE_KEY_FILE /nonexistent/key.pem: No such file"),
    ],
    ids=["no-key", "not-pem", "not-rsa", "bad-installation", "missing-key-file"],
)
def test_bad_app_settings_are_clear_errors(tmp_path: Path, app_env: pytest.MonkeyPatch,
                                           github: FakeGitHub, env: dict[str, str],
                                           message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env.items():
        if value == "ed25519":
            value = _pem(ed25519.Ed25519PrivateKey.generate())
        app_env.setenv(name, value)
    repo = faults.repo(tmp_path)
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    code = main(["bot", "--repo", str(repo), "--telemetry", str(telemetry), "--now", NOW,
                 "--push", "--github", f"{github.owner}/{github.repo}", "--github-api",
                 github.url, "--github-interval", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert github.pulls == {}
