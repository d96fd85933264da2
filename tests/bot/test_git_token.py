"""Proposal branches are fetched and pushed with the GitHub token (or the App's
installation token) over HTTP Basic ``x-access-token:TOKEN``, against a real git server
(``git http-backend``) on loopback that demands it; the token is never on disk, in argv,
in the repository's config or in a message."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from modelpin.bot.git import GitAdapterError, ProposalGit
from modelpin.bot.git_auth import GitToken, TokenUnavailable, auth_env, config_url, git_host
from modelpin.cli import main
from tests.fleetkit import NOW, git

from . import faults
from .conftest import PATH, TENANT_TEXT, run
from .fake_github import FakeGitHub
from .git_http import GitHttpServer
from .test_git import BRANCH, message
from .test_github_app import APP_ID, Clock, _pem

SECRET = "ghp_" + secrets.token_hex(16)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME whose git config stores every credential git approves (``store``): a
    token handed to a credential helper would land in ``~/.git-credentials``."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    for name in ("GIT_ASKPASS", "SSH_ASKPASS", "GITHUB_TOKEN", "GH_TOKEN", "GITHUB_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHttpServer]:
    """``origin.git`` (main with one tenant file) behind Basic auth accepting SECRET."""
    root = tmp_path / "served"
    root.mkdir()
    run(root, "init", "-q", "--bare", "-b", "main", "origin.git")
    seed = tmp_path / "seed"
    run(tmp_path, "init", "-q", "-b", "main", str(seed))
    (seed / "tenants").mkdir()
    (seed / PATH).write_text(TENANT_TEXT)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "fleet")
    run(seed, "push", "-q", str(root / "origin.git"), "main")
    http = GitHttpServer(root, accepts=lambda token: token == SECRET).start()
    yield http
    http.stop()


def _clone(tmp_path: Path, server: GitHttpServer, name: str = "clone") -> Path:
    """A clone whose ``origin`` is the HTTP URL (cloned from disk: no credentials)."""
    clone = tmp_path / name
    run(tmp_path, "clone", "-q", str(server.root / "origin.git"), str(clone))
    run(clone, "remote", "set-url", "origin", f"{server.url}/origin.git")
    return clone


def _token(value: str, host: str = "127.0.0.1") -> GitToken:
    return GitToken(host, lambda: value)


def _new_text() -> str:
    return TENANT_TEXT.replace("percent: 5 ", "percent: 25")


def _leaks(token: str, *places: Path) -> list[str]:
    """Files under ``places`` holding the token (plain or in a Basic header)."""
    needles = [token.encode(), base64.b64encode(f"x-access-token:{token}".encode())]
    found = []
    for place in places:
        for path in [place] if place.is_file() else place.rglob("*"):
            if path.is_file() and any(n in path.read_bytes() for n in needles):
                found.append(str(path))
    return found


def test_push_sends_the_token_as_x_access_token_basic_auth(
    tmp_path: Path, server: GitHttpServer, home: Path
) -> None:
    clone = _clone(tmp_path, server)
    result = ProposalGit(clone, token=_token(SECRET)).propose(BRANCH, {PATH: _new_text()},
                                                              message())
    assert result.status == "created"
    assert run(server.root / "origin.git", "rev-parse", f"refs/heads/{BRANCH}") == result.commit
    pushes = [s for s in server.seen if s.path.endswith("/git-receive-pack")]
    assert [(s.method, s.token, s.status) for s in pushes] == [("POST", SECRET, 200)]
    assert all(s.token == SECRET for s in server.seen if s.status == 200)
    # nowhere on disk: not the clone's config or objects, not a credential helper's store
    assert _leaks(SECRET, clone / ".git", home) == []
    assert not (home / ".git-credentials").exists()
    assert SECRET not in run(clone, "config", "--list", "--show-origin")
    assert run(clone, "remote", "get-url", "origin") == f"{server.url}/origin.git"


def test_without_the_token_the_server_refuses(tmp_path: Path, server: GitHttpServer) -> None:
    """The server really demands auth: the same push without a token is refused."""
    clone = _clone(tmp_path, server)
    proc = subprocess.run(["git", "-C", str(clone), "push", "origin", "main:refs/heads/x"],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    assert proc.returncode != 0
    assert {s.status for s in server.seen} == {401}


def test_a_wrong_token_fails_clearly_without_showing_it(
    tmp_path: Path, server: GitHttpServer, home: Path
) -> None:
    clone = _clone(tmp_path, server)
    wrong = "ghp_" + secrets.token_hex(16)
    with pytest.raises(GitAdapterError) as err:
        ProposalGit(clone, token=_token(wrong)).propose(BRANCH, {PATH: _new_text()}, message())
    text = str(err.value)
    assert "cannot reach remote origin (the remote refused the GitHub token" in text
    assert wrong not in text and SECRET not in text
    assert base64.b64encode(f"x-access-token:{wrong}".encode()).decode() not in text
    assert {s.token for s in server.seen} <= {wrong, None}
    assert all(s.status == 401 for s in server.seen)
    assert _leaks(wrong, clone / ".git", home) == []


def test_a_refused_token_leaves_the_machines_credentials_alone(
    tmp_path: Path, server: GitHttpServer, home: Path
) -> None:
    """No credential helper is asked or told: after a refusal git would tell the
    machine's helper to ``reject`` what it holds for the host (``store`` erases it from
    ``~/.git-credentials``); the bot's token must not cost the machine its own."""
    clone = _clone(tmp_path, server)
    stored = home / ".git-credentials"
    stored.write_text(f"http://x-access-token:{SECRET}@127.0.0.1:"
                      f"{server.url.rsplit(':', 1)[1]}\n")
    run(clone, "fetch", "-q", "origin")  # the machine's own credentials work
    assert (server.seen[-1].token, server.seen[-1].status) == (SECRET, 200)
    before = stored.read_text()  # as git rewrote it after approving them
    assert SECRET in before
    seen = len(server.seen)
    with pytest.raises(GitAdapterError, match="refused the GitHub token"):
        ProposalGit(clone, token=_token("ghp_revoked")).fetch_main()
    assert [(s.token, s.status) for s in server.seen[seen:]] == [("ghp_revoked", 401)]
    assert stored.read_text() == before


def test_the_token_is_not_in_any_process_argv_during_the_push(
    tmp_path: Path, server: GitHttpServer
) -> None:
    clone = _clone(tmp_path, server)
    server.hold = threading.Event()
    outcome: list[object] = []
    pusher = threading.Thread(target=lambda: outcome.append(
        ProposalGit(clone, token=_token(SECRET)).propose(BRANCH, {PATH: _new_text()},
                                                         message())))
    pusher.start()
    try:
        assert server.held.wait(30), "the push never reached the server"
        needles = [SECRET.encode(),
                   base64.b64encode(f"x-access-token:{SECRET}".encode())]
        argv_seen, git_processes = [], 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            git_processes += argv.startswith(b"git")
            argv_seen += [argv for n in needles if n in argv]
        assert git_processes >= 1  # the push in flight (git push, git-remote-http, ...)
        assert argv_seen == []
    finally:
        server.hold.set()
        pusher.join(30)
    assert [getattr(o, "status", o) for o in outcome] == ["created"]


def test_a_header_persisted_by_actions_checkout_is_replaced(
    tmp_path: Path, server: GitHttpServer
) -> None:
    """``actions/checkout`` persists ``http.https://github.com/.extraheader`` with its own
    token in .git/config: the bot's push must carry the bot's token, not that one."""
    clone = _clone(tmp_path, server)
    stale = base64.b64encode(b"x-access-token:the-checkout-token").decode()
    run(clone, "config", f"http.{server.url}/.extraheader", f"AUTHORIZATION: basic {stale}")
    with pytest.raises(GitAdapterError):  # the checkout's header alone is refused
        ProposalGit(clone).propose(BRANCH, {PATH: _new_text()}, message())
    result = ProposalGit(clone, token=_token(SECRET)).propose(BRANCH, {PATH: _new_text()},
                                                              message())
    assert result.status == "created"
    assert {s.token for s in server.seen if s.status == 200} == {SECRET}


def test_git_config_from_the_environment_is_kept(
    tmp_path: Path, server: GitHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries the caller already put in GIT_CONFIG_* stay in force (ours come after)."""
    clone = _clone(tmp_path, server)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "From The Environment")
    env = auth_env([f"{server.url}/origin.git"], SECRET)
    assert env["GIT_CONFIG_COUNT"] == "4"
    assert "GIT_CONFIG_KEY_0" not in env and env["GIT_CONFIG_KEY_1"] == "credential.helper"
    full = {**os.environ, **env}
    name = subprocess.run(["git", "-C", str(clone), "config", "user.name"], env=full,
                          capture_output=True, text=True, check=True).stdout.strip()
    assert name == "From The Environment"
    result = ProposalGit(clone, token=_token(SECRET)).propose(BRANCH, {PATH: _new_text()},
                                                              message())
    assert result.status == "created"


@pytest.mark.parametrize(
    ("url", "host", "scoped"),
    [
        ("https://github.com/acme/fleet.git", "github.com", "https://github.com/acme/fleet.git"),
        ("https://bot:old@GitHub.com/acme/fleet", "github.com", "https://github.com/acme/fleet"),
        ("https://ghe.acme.example:8443/a/b.git", "ghe.acme.example",
         "https://ghe.acme.example:8443/a/b.git"),
        ("http://127.0.0.1:9/origin.git", "127.0.0.1", "http://127.0.0.1:9/origin.git"),
        ("http://[::1]:9/o.git", "::1", "http://[::1]:9/o.git"),
        # never: another host, plain http off loopback, ssh, file, a path
        ("https://gitlab.com/acme/fleet.git", "github.com", None),
        ("https://github.com.evil.example/acme/fleet.git", "github.com", None),
        ("http://github.com/acme/fleet.git", "github.com", None),
        ("ssh://git@github.com/acme/fleet.git", "github.com", None),
        ("git@github.com:acme/fleet.git", "github.com", None),
        ("file:///srv/git/fleet.git", "", None),
        ("/srv/git/fleet.git", "", None),
    ],
)
def test_the_token_goes_only_to_https_remotes_on_githubs_host(
    url: str, host: str, scoped: str | None
) -> None:
    assert config_url(url, host) == scoped


def test_the_git_host_of_the_api() -> None:
    assert git_host("https://api.github.com") == "github.com"
    assert git_host("https://ghe.acme.example/api/v3") == "ghe.acme.example"


def test_a_path_remote_is_pushed_exactly_as_before(remote_and_clone: tuple[Path, Path]
                                                   ) -> None:
    """A token given for github.com changes nothing for a bare repository on disk."""
    _, clone = remote_and_clone
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return SECRET

    result = ProposalGit(clone, token=GitToken("github.com", token)).propose(
        BRANCH, {PATH: _new_text()}, message())
    assert result.status == "created" and calls == []


def test_a_token_that_cannot_be_had_is_a_clear_error(tmp_path: Path,
                                                     server: GitHttpServer) -> None:
    clone = _clone(tmp_path, server)

    def token() -> str:
        raise TokenUnavailable("GitHub App auth: could not create an installation access "
                               "token: HTTP 401")

    with pytest.raises(GitAdapterError, match="no GitHub token for origin: GitHub App auth"):
        ProposalGit(clone, token=GitToken("127.0.0.1", token)).fetch_main()
    assert server.seen == []


# --- the App's installation token, end to end through `modelpin bot` ---------------------


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def app_github(app_key: rsa.RSAPrivateKey) -> Iterator[tuple[FakeGitHub, Clock]]:
    clock = Clock()
    github = FakeGitHub().start()
    github.install_app(APP_ID, app_key.public_key(), clock=clock)
    yield github, clock
    github.stop()


def _app_repo(tmp_path: Path, github: FakeGitHub) -> tuple[Path, GitHttpServer]:
    """``faults.repo`` with its origin served over HTTP, accepting the App's live tokens."""
    work = faults.repo(tmp_path)
    app = github.app
    assert app is not None
    http = GitHttpServer(tmp_path, accepts=app.accepts).start()
    git(work, "remote", "set-url", "origin", f"{http.url}/origin.git")
    return work, http


def test_modelpin_bot_pushes_with_the_apps_installation_token(
    tmp_path: Path, app_key: rsa.RSAPrivateKey, app_github: tuple[FakeGitHub, Clock],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    github, _ = app_github
    monkeypatch.setenv("GITHUB_APP_ID", APP_ID)
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", _pem(app_key))
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", "4242")
    work, http = _app_repo(tmp_path, github)
    try:
        telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
        args = ["bot", "--repo", str(work), "--telemetry", str(telemetry), "--now", NOW,
                "--push", "--github", f"{github.owner}/{github.repo}", "--github-api",
                github.url, "--github-interval", "0"]
        assert main(args) == 0
        out = capsys.readouterr()
        assert github.app is not None
        (first,) = github.app.issued
        pushed = [s for s in http.seen if s.path.endswith("/git-receive-pack")]
        assert len(pushed) == len(faults.TENANTS)
        assert {s.token for s in http.seen if s.status == 200} == {first}
        assert sorted(p["head"]["ref"] for p in github.pulls.values()) == [
            f"modelpin/rollback/{t}/primary" for t in faults.TENANTS]
        assert first not in out.out + out.err
        assert _leaks(first, work / ".git", home, tmp_path / "origin.git") == []
    finally:
        http.stop()


def test_a_refreshed_or_revoked_token_is_the_one_the_next_push_uses(
    tmp_path: Path, app_key: rsa.RSAPrivateKey, app_github: tuple[FakeGitHub, Clock]
) -> None:
    """One client across pushes (as the guard keeps it): a token within 5 minutes of
    ``expires_at`` is replaced before the push; one revoked early is refused (401) and
    replaced once."""
    import httpx

    from modelpin.bot.github import GitHubClient
    from modelpin.bot.github_app import AppAuth

    github, clock = app_github
    work, http = _app_repo(tmp_path, github)
    app = github.app
    assert app is not None
    try:
        client = GitHubClient(
            httpx.Client(base_url=github.url), github.owner, github.repo,
            AppAuth(httpx.Client(base_url=github.url), APP_ID, app_key, github.owner,
                    github.repo, installation_id=4242, wall_clock=clock),
            min_interval=0, max_retries=0, wall_clock=clock)
        adapter = ProposalGit(work, token=client.git_token())
        path = f"tenants/{faults.TENANTS[0]}.yaml"
        text = (work / path).read_text()

        def push(n: int) -> None:
            result = adapter.propose(f"modelpin/x/{n}", {path: text + f"# {n}\n"}, message())
            assert result.status == "created"

        push(1)
        (t1,) = app.issued
        clock.t += app.token_ttl - 200  # inside the 5-minute refresh margin
        push(2)
        t2 = next(t for t in app.issued if t != t1)
        assert [s.token for s in http.seen if s.path.endswith("/git-receive-pack")] == [t1, t2]

        app.revoke(t2)  # revoked early: the client still holds it
        before = len(http.seen)
        push(3)
        t3 = next(t for t in app.issued if t not in (t1, t2))
        after = http.seen[before:]
        assert (after[0].token, after[0].status) == (t2, 401)
        assert {s.token for s in after if s.status == 200} == {t3}
    finally:
        http.stop()
