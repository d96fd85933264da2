"""A trip whose rollback PR could not be opened gets it later, from a restarted guard.

GitHub answers 500 to every pull-request creation when the guard has tripped the route
(the trip is in Redis, no PR); the guard is killed. GitHub recovers; the guard is
restarted, with a second guard at once, and Prometheus is down, so no current verdict
asks for the rollback: the PR is opened from the trip itself, exactly once, through the
bot's path, and its URL is written into the trip.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from modelpin.rollout.plan import escape_markdown
from modelpin.router.trips import Trip
from tests.fleetkit import git
from tests.guard.procs import free_port
from tests.guard.scenario import ALIAS, BRANCH, CANDIDATE, TENANT, Loop, wait_for

PULLS = "/repos/acme/fleet/pulls"
REASON = ("tool_call_failure_rate failed: canary worse than stable by 0.31 "
          "(at least 0.22 at 95%), tolerance 0.005 -> rollback")


def pr_creations(loop: Loop) -> int:
    return sum(r.method == "POST" and r.path == PULLS for r in loop.github.requests)


@pytest.mark.slow
def test_a_restarted_guard_opens_the_rollback_pr_github_refused_once(tmp_path: Path) -> None:
    loop = Loop(tmp_path)
    try:
        loop.fleet()
        loop.redis.start()
        loop.procs.append(loop.redis)
        store = loop.store()
        # what the guard left when it tripped the route while GitHub was down
        assert store.trip(Trip(TENANT, ALIAS, CANDIDATE, REASON, time.time(), "guard-1",
                               signals=("tool_call_failure_rate",)))
        loop.github.inject("POST", PULLS, 500, times=1_000_000)  # GitHub is down
        prometheus_down = f"http://127.0.0.1:{free_port()}"
        first = loop.start_guard("guard-1", prometheus=prometheus_down)
        wait_for(lambda: pr_creations(loop) >= 1, 60, "the guard to try to open the PR")
        wait_for(lambda: "rollback PR for acme/primary" in first.tail(), 30,
                 "the guard to report GitHub's failure")
        assert loop.github.pulls == {} and store.load()[f"{TENANT}/{ALIAS}"].pr_url is None
        first.kill()

        loop.github.injections.clear()  # GitHub is back
        loop.start_guard("guard-1", prometheus=prometheus_down)  # restarted
        loop.start_guard("guard-2", prometheus=prometheus_down)  # and a second one at once
        wait_for(lambda: all(t.pr_url for t in store.load().values()), 60,
                 "the PR recorded in the trip")
        time.sleep(4)  # several more cycles of both guards: never a second PR
        [pr] = loop.github.pulls.values()
        assert pr["head"]["ref"] == BRANCH and pr["base"]["ref"] == "main"
        # the reason is escaped like any text in a PR body (rollout.plan.escape_markdown)
        assert "## Incident report" in pr["body"] and escape_markdown(REASON) in pr["body"]
        assert {label["name"] for label in pr["labels"]} >= {"modelpin", "rollback"}
        [trip] = store.load().values()
        assert trip.pr_url == pr["html_url"] and trip.by == "guard-1"
        assert [e["event"] for e in store.log()] == ["trip"]  # neither tripped again
        # the branch carries the rollback edit of the tenant file, as the bot makes it
        git(loop.clone, "fetch", "-q", "origin", f"+refs/heads/{BRANCH}:refs/remotes/pr")
        shown = git(loop.clone, "show", f"refs/remotes/pr:tenants/{TENANT}.yaml")
        assert "stage: rolled-back" in shown
    except BaseException:
        print(loop.logs())
        raise
    finally:
        loop.stop()
