"""Sticky sessions: where a session's cohort on a rollout is remembered.

A pin is keyed by the route's session key (its salt, so a new candidate starts
afresh) and the session id, and holds the cohort, ``"stable"`` or ``"canary"``. Stores
refresh the TTL on every use. A store may raise on an outage; the router catches it,
decides without stickiness and counts it, so a store fault never reaches a request.

- ``InMemorySessionStore`` (the default): one process, bounded size, TTL.
- ``RedisSessionStore``: shared by every router replica. Redis is the authority: no
  local cache in front of it (a cache could disagree between replicas). One round trip
  per pinned request (GETEX), one more the first time (SET NX GET EX).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import RouterError


def fail_fast_client(url: str, timeout: float) -> redis.Redis[bytes]:
    """A Redis client for the request path: ``timeout``-second socket and connect
    timeouts and no retries, so an outage costs a request at most one timeout (the
    session store and the trip store share it)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )

DEFAULT_TTL_SECONDS = 24 * 3600


class SessionStoreUnavailable(RouterError):
    """The store cannot answer now; the request is decided without stickiness."""


class SessionStore(Protocol):
    def get(self, key: str, session_id: str) -> str | None:
        """The session's pinned cohort (TTL refreshed), or None if it has none."""
        ...

    def claim(self, key: str, session_id: str, cohort: str) -> str:
        """Pin ``cohort`` unless the session already has one; return the pin that holds."""
        ...

    def cut_over(self, key: str, session_id: str, cohort: str) -> bool:
        """Replace the pin by ``cohort``; True iff this call changed it (exactly one
        caller, across replicas, sees True for a given change)."""
        ...


class InMemorySessionStore:
    """Pins in this process: at most ``max_sessions``, each forgotten ``ttl`` seconds
    after its last use.

    When full, expired pins are swept; if that frees nothing, the oldest-claimed tenth is
    evicted (an evicted session is bucketed afresh on its next request). Size it above
    the number of sessions active within one TTL.
    """

    def __init__(
        self, *, max_sessions: int = 1_000_000, ttl: float = DEFAULT_TTL_SECONDS
    ) -> None:
        if max_sessions < 1 or ttl <= 0:
            raise ValueError("max_sessions and ttl must be positive")
        self._max = max_sessions
        self._ttl = ttl
        self._count = 0
        # key -> session id -> [cohort, expiry on the monotonic clock]; nested dicts so
        # a lookup allocates no tuple key.
        self._pins: dict[str, dict[str, list[Any]]] = {}
        self._lock = threading.Lock()
        self._clock = time.monotonic

    def __len__(self) -> int:
        return self._count

    def get(self, key: str, session_id: str) -> str | None:
        sessions = self._pins.get(key)
        if sessions is None:
            return None
        entry = sessions.get(session_id)
        if entry is None:
            return None
        now = self._clock()
        if entry[1] < now:
            if sessions.pop(session_id, None) is not None:
                self._count -= 1
            return None
        entry[1] = now + self._ttl
        return entry[0]  # type: ignore[no-any-return]

    def claim(self, key: str, session_id: str, cohort: str) -> str:
        sessions = self._pins.get(key)
        if sessions is None:
            sessions = self._pins.setdefault(key, {})
        now = self._clock()
        entry = sessions.get(session_id)
        if entry is not None and entry[1] >= now:
            return entry[0]  # type: ignore[no-any-return]
        if entry is None:
            if self._count >= self._max:
                with self._lock:
                    self._make_room(now)
            self._count += 1
        # setdefault is atomic under the GIL: of two racing threads, one pin wins.
        entry = sessions.setdefault(session_id, [cohort, now + self._ttl])
        return entry[0]  # type: ignore[no-any-return]

    def cut_over(self, key: str, session_id: str, cohort: str) -> bool:
        sessions = self._pins.get(key)
        entry = None if sessions is None else sessions.get(session_id)
        if entry is None:
            return False
        with self._lock:  # exactly one caller sees the change
            previous, entry[0] = entry[0], cohort
        entry[1] = self._clock() + self._ttl
        return bool(previous != cohort)

    def _make_room(self, now: float) -> None:
        # list(...) snapshots in one C call: safe against concurrent inserts.
        for sessions in list(self._pins.values()):
            for sid, e in list(sessions.items()):
                if e[1] < now:
                    sessions.pop(sid, None)
        self._count = sum(len(s) for s in self._pins.values())
        if self._count < self._max:
            return
        for sessions in list(self._pins.values()):
            drop = max(1, len(sessions) // 10)
            for sid in list(sessions)[:drop]:
                sessions.pop(sid, None)
        self._pins = {k: s for k, s in self._pins.items() if s}
        self._count = sum(len(s) for s in self._pins.values())


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


class RedisSessionStore:
    """Pins in Redis, shared by replicas. Short socket timeouts, no retries; after a
    failure the store answers ``SessionStoreUnavailable`` at once for ``retry_after``
    seconds instead of making every request wait for a timeout."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        *,
        ttl: int = DEFAULT_TTL_SECONDS,
        prefix: str = "modelpin:session:",
        retry_after: float = 1.0,
    ) -> None:
        self._r = client
        self._ttl = int(ttl)
        self._prefix = prefix
        self._retry_after = retry_after
        self._down_until = 0.0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = 0.05,
        ttl: int = DEFAULT_TTL_SECONDS,
        prefix: str = "modelpin:session:",
        retry_after: float = 1.0,
    ) -> RedisSessionStore:
        """A store on ``url`` with ``timeout``-second socket timeouts and no retries."""
        return cls(fail_fast_client(url, timeout), ttl=ttl, prefix=prefix,
                   retry_after=retry_after)

    def _failed(self, exc: Exception) -> SessionStoreUnavailable:
        if isinstance(exc, redis.ResponseError) and str(exc).startswith("WRONGTYPE"):
            # One key holds something else (another app, an operator): that session is
            # decided without stickiness, the store itself is fine.
            return SessionStoreUnavailable(f"redis: {exc}")
        self._down_until = time.monotonic() + self._retry_after
        return SessionStoreUnavailable(f"redis: {exc}")

    def _check_up(self) -> None:
        if self._down_until:
            if time.monotonic() < self._down_until:
                raise SessionStoreUnavailable("redis is marked down")
            self._down_until = 0.0

    def get(self, key: str, session_id: str) -> str | None:
        self._check_up()
        try:
            value = self._r.getex(self._prefix + key + ":" + session_id, ex=self._ttl)
        except (redis.RedisError, OSError) as exc:
            raise self._failed(exc) from None
        return _text(value)

    def claim(self, key: str, session_id: str, cohort: str) -> str:
        self._check_up()
        try:
            # SET NX GET (Redis >= 7.0): one round trip; the winner's value comes back.
            previous = self._r.set(
                self._prefix + key + ":" + session_id, cohort, nx=True, ex=self._ttl,
                get=True,
            )
        except (redis.RedisError, OSError) as exc:
            raise self._failed(exc) from None
        won = _text(previous)
        return cohort if won is None else won

    def cut_over(self, key: str, session_id: str, cohort: str) -> bool:
        self._check_up()
        try:
            previous = self._r.set(
                self._prefix + key + ":" + session_id, cohort, ex=self._ttl, get=True
            )
        except (redis.RedisError, OSError) as exc:
            raise self._failed(exc) from None
        old = _text(previous)
        return old is not None and old != cohort
