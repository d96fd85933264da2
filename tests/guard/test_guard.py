"""The guard's faults: Prometheus down or slow, Redis down, a broken main; and the
``guard clear`` / ``guard list`` commands. (The whole loop: test_e2e.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from modelpin.bot.github import GitHubClient
from modelpin.bot.guard import Guard, GuardOptions
from modelpin.cli import cli
from modelpin.router.trips import Trip, TripStore
from tests.fleetkit import git
from tests.guard.procs import RedisProc, free_port
from tests.guard.scenario import ALIAS, CANDIDATE, TENANT, Loop


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    lp = Loop(tmp_path)
    lp.fleet(compile_table=False)
    try:
        yield lp
    finally:
        lp.stop()


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProc]:
    proc = RedisProc(tmp_path / "redis-guard").start()
    try:
        yield proc
    finally:
        proc.stop()


def guard(loop: Loop, prometheus: str, redis_url: str, **kw: Any) -> Guard:
    opts = GuardOptions(repo=loop.guard_repo, prometheus=prometheus, interval=1.0,
                        timeout=kw.pop("timeout", 0.5), guard_id="g-test", **kw)
    return Guard(opts, TripStore.from_url(redis_url), registry=CollectorRegistry())


def errors(g: Guard, kind: str) -> float:
    return g.registry.get_sample_value("modelpin_guard_errors_total", {"kind": kind}) or 0


def test_prometheus_down_is_counted_and_trips_nothing(loop: Loop, redis_proc: RedisProc) -> None:
    g = guard(loop, f"http://127.0.0.1:{free_port()}", redis_proc.url)
    for _ in range(2):
        report = g.cycle()
        assert any(e.startswith("prometheus") for e in report.errors), report
        assert report.tripped == []
    assert errors(g, "prometheus") >= 2
    assert TripStore.from_url(redis_proc.url).load() == {}


def test_a_slow_prometheus_is_cut_off_by_the_deadline(loop: Loop, redis_proc: RedisProc) -> None:
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:
            release.wait(10)

        do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        g = guard(loop, f"http://127.0.0.1:{server.server_address[1]}", redis_proc.url,
                  timeout=0.3)
        start = time.monotonic()
        report = g.cycle()
        took = time.monotonic() - start
        assert any(e.startswith("prometheus") for e in report.errors), report
        assert took < 5, took  # bounded: the remaining queries are skipped
        assert report.tripped == []
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_redis_down_is_counted_and_the_cycle_goes_on(loop: Loop) -> None:
    g = guard(loop, f"http://127.0.0.1:{free_port()}", f"redis://127.0.0.1:{free_port()}/0")
    report = g.cycle()
    assert any(e.startswith("redis") for e in report.errors), report
    assert errors(g, "redis") == 1
    assert report.proposals  # the rollouts were still judged (inconclusive: no data)


def test_a_broken_main_keeps_judging_the_last_good_fleet(loop: Loop,
                                                         redis_proc: RedisProc) -> None:
    g = guard(loop, f"http://127.0.0.1:{free_port()}", redis_proc.url)
    assert f"{TENANT}/{ALIAS}" in g.cycle().proposals
    (loop.clone / "tenants" / f"{TENANT}.yaml").write_text("id: [unclosed\n")
    loop.commit(loop.clone, "break it")
    git(loop.clone, "push", "-q", "origin", "main")
    report = g.cycle()
    assert any(e.startswith("fleet") for e in report.errors), report
    assert f"{TENANT}/{ALIAS}" in report.proposals


def test_a_trip_whose_rollout_main_abandoned_is_cleared_after_the_grace(
    loop: Loop, redis_proc: RedisProc
) -> None:
    store = TripStore.from_url(redis_proc.url)
    store.trip(Trip(TENANT, ALIAS, "gpt-4-old", "stale", 1.0, "g-old"))
    g = guard(loop, f"http://127.0.0.1:{free_port()}", redis_proc.url, clear_grace=0.5)
    assert g.cycle().cleared == []  # moot, but within the grace
    time.sleep(0.6)
    assert g.cycle().cleared == [f"{TENANT}/{ALIAS}"]
    assert store.load() == {}
    assert store.log()[0]["why"] == "main no longer rolls out that candidate"


def test_a_live_trip_is_not_cleared(loop: Loop, redis_proc: RedisProc) -> None:
    store = TripStore.from_url(redis_proc.url)
    store.trip(Trip(TENANT, ALIAS, CANDIDATE, "breach", 1.0, "g-other"))
    g = guard(loop, f"http://127.0.0.1:{free_port()}", redis_proc.url, clear_grace=0.0)
    for _ in range(2):
        assert g.cycle().cleared == []
    assert list(store.load()) == [f"{TENANT}/{ALIAS}"]


def test_no_pr_is_opened_for_a_trip_main_no_longer_rolls_out(
    loop: Loop, redis_proc: RedisProc
) -> None:
    store = TripStore.from_url(redis_proc.url)
    store.trip(Trip(TENANT, ALIAS, "gpt-4-old", "stale", 1.0, "g-old"))
    github = GitHubClient(httpx.Client(base_url=loop.github.url), "acme", "fleet",
                          loop.github.token, min_interval=0.0, max_retries=0)
    opts = GuardOptions(repo=loop.guard_repo, prometheus=f"http://127.0.0.1:{free_port()}",
                        interval=1.0, timeout=0.5, guard_id="g-test", github="acme/fleet",
                        clear_grace=3600.0)
    g = Guard(opts, store, registry=CollectorRegistry(), github=github)
    for _ in range(2):
        report = g.cycle()
        assert report.prs == [] and not any(e.startswith("github") for e in report.errors)
    assert loop.github.pulls == {} and not any(
        r.method == "POST" for r in loop.github.requests)


def test_guard_clear_and_list_commands(redis_proc: RedisProc) -> None:
    store = TripStore.from_url(redis_proc.url)
    store.trip(Trip(TENANT, ALIAS, CANDIDATE, "breach", 1.0, "g1"))
    runner = CliRunner()
    out = runner.invoke(cli, ["guard", "list", "--redis", redis_proc.url])
    assert out.exit_code == 0 and f"TRIPPED {TENANT}/{ALIAS} candidate {CANDIDATE}" in out.output
    out = runner.invoke(cli, ["guard", "clear", TENANT, ALIAS, "--redis", redis_proc.url,
                              "--reason", "false alarm, checked by hand", "--by", "jane"])
    assert out.exit_code == 0, out.output
    assert store.load() == {}
    assert store.log()[0]["why"] == "manual: false alarm, checked by hand"
    assert store.log()[0]["by"] == "jane"


def test_guard_commands_refuse_bad_input(redis_proc: RedisProc) -> None:
    from modelpin.cli import main

    assert main(["guard", "clear", TENANT, ALIAS, "--redis", redis_proc.url,
                 "--reason", "x"]) == 1  # nothing to clear
    assert main(["guard", "clear", TENANT, ALIAS, "--redis", "http://nope",
                 "--reason", "x"]) == 2
    assert main(["guard", "clear", TENANT, ALIAS, "--redis", redis_proc.url]) == 2  # reason
    assert main(["guard", "run", "--prometheus", "ftp://x", "--redis", redis_proc.url]) == 2
    assert main(["guard", "run", "--prometheus", "http://x", "--redis", redis_proc.url,
                 "--table", "t.json"]) == 2
    assert main(["guard", "list", "--redis", f"redis://127.0.0.1:{free_port()}/0"]) == 1


def test_guard_table_trust_options_are_checked_before_it_starts(
    tmp_path: Path, redis_proc: RedisProc, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--root`` (the routers' trust root file) or ``--trusted-key`` go with ``--table``;
    a missing, unsigned or garbled root stops the guard at start with a hint."""
    from modelpin.cli import main
    from tests.routing.compilekit import keypair

    base = ["guard", "run", "--prometheus", "http://127.0.0.1:9", "--redis", redis_proc.url,
            "--repo", str(tmp_path), "--once"]
    _, public, _ = keypair(tmp_path / "keys", "root-admin")
    root = tmp_path / "modelpin-root.json"
    assert main(["root", "init", "--root-key", str(public), "--table-key", str(public),
                 "--out", str(root)]) == 0
    capsys.readouterr()

    assert main([*base, "--root", str(root)]) == 2  # no --table to verify
    assert "--root and --trusted-key need --table" in capsys.readouterr().err
    assert main([*base, "--table", "t.json", "--root", str(tmp_path / "none.json")]) == 2
    assert "--root" in capsys.readouterr().err
    assert main([*base, "--table", "t.json", "--root", str(root)]) == 2  # not signed yet
    err = capsys.readouterr().err
    assert "not signed" in err and "modelpin root init / sign" in err
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{")
    assert main([*base, "--table", "t.json", "--root", str(garbled)]) == 2
    assert "--root" in capsys.readouterr().err


def test_the_guard_counts_soak_from_publication_like_check(
    loop: Loop, redis_proc: RedisProc
) -> None:
    """SPEC 2.1 rule 5: the guard judges with the one soak clock check uses (the later of
    ``since`` and the stage's publication on main), not ``since`` alone: the loop's canary
    says since two hours ago but its current stage was published by a commit just now."""
    from datetime import UTC, datetime

    from modelpin.rollout.transitions import clock_start

    tenant_file = loop.clone / "tenants" / f"{TENANT}.yaml"
    text = tenant_file.read_text()
    assert "percent: 50" in text
    tenant_file.write_text(text.replace("percent: 50", "percent: 25"))  # a new stage
    loop.commit(loop.clone, "canary 25")
    git(loop.clone, "push", "-q", "origin", "main")
    published = datetime.fromtimestamp(
        int(git(loop.clone, "log", "-1", "--format=%ct").strip()), UTC)
    g = guard(loop, f"http://127.0.0.1:{free_port()}", redis_proc.url)
    g.cycle()
    assert g._ctx is not None
    alias = g._ctx.fleet.tenants[TENANT].aliases[ALIAS]
    assert alias.rollout is not None and alias.rollout.since < published
    assert g._ctx.entered[(TENANT, ALIAS)] == published
    assert clock_start(alias.rollout.since, g._ctx.entered[(TENANT, ALIAS)]) == published
