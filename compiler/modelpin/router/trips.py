"""Trips: the guard's fast rollback, shared by every router through Redis.

A trip names one tenant alias and the candidate it stops. Routers poll the store about
every second and treat a tripped route exactly as a rolled-back one: new sessions go
stable at once, sessions on the candidate drain for ``drain_seconds`` from the moment a
router first applied the rollback, then are cut over with ``session_reset``. A trip
only ever moves traffic toward stable: it applies only to a route in canary or shadow
mode with that very candidate, and a table that already carries the rollback (or has
moved to another candidate) makes it moot. The guard clears it then; ``modelpin guard
clear`` clears it by hand, and every clear is written to the trip log.

Layout (prefix ``modelpin:``):

- ``trips`` (hash): ``<tenant>/<alias>`` -> the trip as JSON. Created with HSETNX, so of
  two guards exactly one trips a route (and opens its PR).
- ``trips:log`` (list): the newest 1,000 trip and clear events, JSON.
- ``drain:<session key>`` (string): when a router first applied a rollback of that route
  (SET NX: the first router's clock wins, so every router drains the same window).
- ``lock:<name>`` (string, SET NX EX): short leases, e.g. "who opens this PR".

A store fault raises ``TripStoreUnavailable``; the router keeps the trips it last read
(a trip never lapses because Redis is down) and counts the failure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import redis

from .errors import RouterError
from .sessions import fail_fast_client

DEFAULT_PREFIX = "modelpin:"
LOG_LENGTH = 1000
DRAIN_KEY_TTL = 7 * 24 * 3600


class TripStoreUnavailable(RouterError):
    """The trip store cannot answer now."""


@dataclass(frozen=True)
class Trip:
    tenant: str
    alias: str
    candidate: str
    reason: str
    tripped_at: float
    by: str
    signals: tuple[str, ...] = ()
    pr_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return trip_key(self.tenant, self.alias)

    def to_json(self) -> str:
        data = asdict(self)
        data["signals"] = list(self.signals)
        data["extra"] = dict(self.extra)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Trip:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a trip is a JSON object")
        for name in ("tenant", "alias", "candidate", "reason", "by"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ValueError(f"trip field {name!r} must be a non-empty string")
        tripped_at = data.get("tripped_at")
        if not isinstance(tripped_at, (int, float)) or isinstance(tripped_at, bool):
            raise ValueError("trip field 'tripped_at' must be a number")
        signals = data.get("signals", [])
        if not isinstance(signals, list) or not all(isinstance(s, str) for s in signals):
            raise ValueError("trip field 'signals' must be a list of strings")
        pr_url = data.get("pr_url")
        if pr_url is not None and not isinstance(pr_url, str):
            raise ValueError("trip field 'pr_url' must be a string")
        extra = data.get("extra", {})
        return cls(data["tenant"], data["alias"], data["candidate"], data["reason"],
                   float(tripped_at), data["by"], tuple(signals), pr_url,
                   extra if isinstance(extra, dict) else {})

    def with_pr(self, url: str) -> Trip:
        return replace(self, pr_url=url)


def trip_key(tenant: str, alias: str) -> str:
    return f"{tenant}/{alias}"


class TripStore:
    """Trips in Redis. Short timeouts, no retries: callers poll again soon anyway."""

    def __init__(self, client: redis.Redis[bytes], *, prefix: str = DEFAULT_PREFIX) -> None:
        self._r = client
        self._prefix = prefix
        self._hash = prefix + "trips"
        self._log = prefix + "trips:log"
        #: Trips read and skipped because they did not parse (key -> error).
        self.invalid: dict[str, str] = {}

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 0.25, prefix: str = DEFAULT_PREFIX
    ) -> TripStore:
        return cls(fail_fast_client(url, timeout), prefix=prefix)

    def describe(self) -> str:
        kwargs = self._r.connection_pool.connection_kwargs
        return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise TripStoreUnavailable(f"trip store ({what}): {exc}") from None

    def load(self) -> dict[str, Trip]:
        """Every trip, by ``<tenant>/<alias>``; an entry that does not parse is skipped
        and reported in ``invalid`` (it can only move traffic toward stable, but a
        router must not guess what it meant)."""
        raw = self._call("read", self._r.hgetall, self._hash)
        out: dict[str, Trip] = {}
        invalid: dict[str, str] = {}
        for k, v in raw.items():
            key = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
            try:
                trip = Trip.from_json(v)
            except (ValueError, UnicodeDecodeError) as exc:
                invalid[key] = str(exc)
                continue
            if trip.key != key:
                invalid[key] = f"the trip inside names {trip.key}"
                continue
            out[key] = trip
        self.invalid = invalid
        return out

    def trip(self, trip: Trip) -> bool:
        """Create the trip unless the route is already tripped; True iff this call did."""
        created = bool(self._call("trip", self._r.hsetnx, self._hash, trip.key, trip.to_json()))
        if created:
            self._append_log({"event": "trip", **json.loads(trip.to_json())})
        return created

    def update(self, trip: Trip) -> None:
        """Rewrite an existing trip (e.g. to record its PR); never creates one."""
        script = (
            "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then "
            "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end return 0"
        )
        self._call("update", self._r.eval, script, 1, self._hash, trip.key, trip.to_json())

    def clear(self, tenant: str, alias: str, *, why: str, by: str) -> Trip | None:
        """Remove the trip of ``tenant``/``alias``, logging who and why; the removed
        trip, or None if there was none."""
        key = trip_key(tenant, alias)
        pipe = self._r.pipeline(transaction=True)
        pipe.hget(self._hash, key)
        pipe.hdel(self._hash, key)
        raw, deleted = self._call("clear", pipe.execute)
        if not deleted or raw is None:
            return None
        try:
            trip: Trip | None = Trip.from_json(raw)
        except ValueError:
            trip = None
        self._append_log({"event": "clear", "tenant": tenant, "alias": alias, "why": why,
                          "by": by, "at": time.time(),
                          "trip": None if trip is None else json.loads(trip.to_json())})
        return trip or Trip(tenant, alias, "?", "unparseable trip", 0.0, "?")

    def log(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest trip and clear events, newest first."""
        raw = self._call("log", self._r.lrange, self._log, 0, max(0, limit - 1))
        out = []
        for item in raw:
            try:
                out.append(json.loads(item))
            except ValueError:
                continue
        return out

    def _append_log(self, event: dict[str, Any]) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.lpush(self._log, json.dumps(event, sort_keys=True, separators=(",", ":")))
        pipe.ltrim(self._log, 0, LOG_LENGTH - 1)
        self._call("log", pipe.execute)

    def first_applied(self, session_key: str, now: float) -> float:
        """When a router first applied a rollback of the route with ``session_key``:
        ``now`` if this is the first, else the earlier router's time."""
        key = self._prefix + "drain:" + session_key
        previous = self._call("drain", self._r.set, key, repr(now), nx=True,
                              ex=DRAIN_KEY_TTL, get=True)
        if previous is None:
            return now
        try:
            return float(previous)
        except ValueError:
            return now

    def lock(self, name: str, owner: str, ttl: float) -> bool:
        """A lease: True iff ``owner`` now holds ``name`` (taken, or already its own)."""
        key = self._prefix + "lock:" + name
        if self._call("lock", self._r.set, key, owner, nx=True, px=int(ttl * 1000)):
            return True
        holder = self._call("lock", self._r.get, key)
        return holder is not None and holder.decode("utf-8", "replace") == owner

    def unlock(self, name: str, owner: str) -> None:
        script = (
            "if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('DEL', KEYS[1]) end return 0"
        )
        self._call("unlock", self._r.eval, script, 1, self._prefix + "lock:" + name, owner)
